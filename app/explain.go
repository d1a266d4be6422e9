package app

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/custos-pki/custos/decommission"
	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/inputfile"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/quorum"
	"github.com/custos-pki/custos/run"
)

// explain says what went wrong in words a custodian understands: what happened and what to
// do, without package prefixes, PKCS#11 return codes or Go formatting. The full text stays
// available to the screen's "Details" for whoever supports the workstation.
func explain(err error) string {
	if err == nil {
		return ""
	}
	for _, e := range explainers {
		if s, ok := e(err); ok {
			return sentence(s)
		}
	}
	return sentence(plainText(err.Error()))
}

// explainers are tried in order; the first that knows the error words it.
var explainers = []func(error) (string, bool){
	explainOwn, explainCancel, explainManifest, explainField, explainHSM, explainInput, explainShare,
	explainLimit, explainResume,
}

// explainer is an error that says itself what a person should read.
type explainer interface{ Explain() string }

func explainOwn(err error) (string, bool) {
	var e explainer
	if errors.As(err, &e) {
		return e.Explain(), true
	}
	return "", false
}

func explainCancel(err error) (string, bool) {
	if errors.Is(err, context.Canceled) {
		return "Cancelled. What was finished is journaled; a stopped run is listed on the Home screen", true
	}
	return "", false
}

// explainManifest words a manifest's or a UDI list's bad lines; the details list each.
func explainManifest(err error) (string, bool) {
	var m decommission.ManifestError
	if errors.As(err, &m) {
		return fmt.Sprintf("%s of the manifest cannot be used; each is marked with its reason. Correct the file and load it again. Nothing was changed",
			plural(len(m), "line", "lines")), true
	}
	var u decommission.UDIListError
	if errors.As(err, &u) {
		// The list is not on screen to be marked, so the first lines are said here.
		var lines []string
		for i, r := range u {
			if i == 3 {
				lines = append(lines, fmt.Sprintf("and %d more in the details", len(u)-3))
				break
			}
			lines = append(lines, fmt.Sprintf("line %d, %s", r.Line, plainText(r.Problem)))
		}
		return fmt.Sprintf("%s of the UDI list cannot be used: %s. Correct the file and import again. Nothing was registered",
			plural(len(u), "line", "lines"), strings.Join(lines, "; ")), true
	}
	return "", false
}

func explainField(err error) (string, bool) {
	var fe *run.FieldError
	if !errors.As(err, &fe) {
		return "", false
	}
	s := sentence(plainText(fe.Problem))
	if label, ok := fieldLabels[fe.Name]; ok {
		s += " Check the field “" + label + "”."
	}
	return s, true
}

// hsmWords say what each token error means for the person at the workstation; %s is the
// token as "token “label”" or "the token".
var hsmWords = []struct {
	err   error
	words string
}{
	{hsm.ErrPINIncorrect, "The PIN for %s is wrong. Type it again carefully: after too many wrong PINs the token locks"},
	{hsm.ErrPINLocked, "The PIN of %s is locked after too many wrong tries. Its security officer must unlock it"},
	{hsm.ErrPINLength, "The PIN is too short or too long for %s"},
	{hsm.ErrPINInvalid, "The PIN has characters %s does not accept"},
	{hsm.ErrUserPINNotSet, "The user PIN of %s has not been set. Initialise the token first"},
	{hsm.ErrTokenNotFound, "%s is not connected. Connect it, or check the PKCS#11 module under Settings"},
	{hsm.ErrTokenRemoved, "%s was removed or stopped answering. Reconnect it and try again"},
	{hsm.ErrTokenNotInitialized, "%s is not initialised"},
	{hsm.ErrNoFreeSlot, "There is no empty token to use: every token present is already initialised. Connect a new one"},
	{hsm.ErrModuleNotFound, "The PKCS#11 module was not found. Choose it under Settings"},
	{hsm.ErrNotPKCS11, "The file chosen as PKCS#11 module is not one. Choose the module under Settings"},
	{hsm.ErrWriteProtected, "%s is write-protected"},
	{hsm.ErrMechanismUnsupported, "%s cannot do what was asked (the algorithm is not supported)"},
	{hsm.ErrWrappedKeyInvalid, "The backup does not unwrap on %s: it is damaged or was made under another key"},
	{hsm.ErrDevice, "%s reported a failure. Check its connection"},
	{hsm.ErrNoPKCS11, "This build of Custos cannot use tokens (it was built without PKCS#11 support)"},
}

func explainHSM(err error) (string, bool) {
	var he *hsm.Error
	if !errors.As(err, &he) {
		return "", false
	}
	token := "the token"
	if he.Token != "" {
		token = "token “" + he.Token + "”"
	}
	for _, w := range hsmWords {
		if errors.Is(err, w.err) {
			s := w.words
			if strings.Contains(s, "%s") {
				s = fmt.Sprintf(s, token)
			}
			s = upperFirst(s)
			if he.Hint != "" && w.err != hsm.ErrDevice {
				s = sentence(s) + " " + sentence(upperFirst(he.Hint))
			}
			return s, true
		}
	}
	return fmt.Sprintf("%s refused to %s", upperFirst(token), he.Op), true
}

func explainInput(err error) (string, bool) {
	var nr *inputfile.NotRegularError
	if errors.As(err, &nr) {
		return fmt.Sprintf("%s is not a file Custos can read (it is %s). Choose the %s itself", nr.Path, inputfile.Describe(nr.Mode), nr.What), true
	}
	var tl *inputfile.TooLargeError
	if errors.As(err, &tl) {
		return fmt.Sprintf("%s is too large to be a %s (at most %s). Check you chose the right file", tl.Path, tl.What, inputfile.Bytes(tl.Max)), true
	}
	return "", false
}

func explainShare(err error) (string, bool) {
	var se *quorum.ShareError
	if !errors.As(err, &se) {
		return "", false
	}
	if se.Group > 0 {
		return fmt.Sprintf("Group %d of %d of the share is wrong: %s. Compare it with the paper and type that group again", se.Group, se.Groups, se.Msg), true
	}
	return "The share is wrong: " + se.Msg, true
}

func explainLimit(err error) (string, bool) {
	var le *pki.LimitError
	if !errors.As(err, &le) {
		return "", false
	}
	return fmt.Sprintf("%s would be %s, later than %s allows (%s). %s. Nothing was signed",
		upperFirst(le.What), le.Value.UTC().Format("2 January 2006"), le.Bound, le.Limit.UTC().Format("2 January 2006"), upperFirst(le.Advice)), true
}

func explainResume(err error) (string, bool) {
	if !errors.Is(err, run.ErrCannotResume) {
		return "", false
	}
	_, why, _ := strings.Cut(err.Error(), run.ErrCannotResume.Error()+": ")
	return "This run cannot continue where it stopped (" + plainText(why) + "). Abort it instead", true
}

// codeRe matches what a person need not read: PKCS#11 return codes, Go's slice brackets and
// command-line flags in parentheses.
var codeRe = regexp.MustCompile(`\s*\((CKR_[A-Z_]+|0x[0-9A-Fa-f]+|--[a-z-]+)\)|\s*\[\]|\[([^\[\]]*)\]`)

// prefixRe matches the package or operation prefixes errors are wrapped with ("hsm: ").
var prefixRe = regexp.MustCompile(`\b(root ceremony|quorum operation|hsm|run|registry|workspace|record|pki|quorum|ceremony|decommission|fleet|plan|inputfile): `)

// keyIndexRe matches the index of a plan key ("custodians[2].deliver"), which names the key
// and stays.
var keyIndexRe = regexp.MustCompile(`([A-Za-z_])\[(\d+)\]`)

// plainText takes the programmer's formatting out of an error's text.
func plainText(s string) string {
	s = keyIndexRe.ReplaceAllString(s, "$1\x00$2\x01") // kept from codeRe
	s = codeRe.ReplaceAllStringFunc(s, func(m string) string {
		if sub := codeRe.FindStringSubmatch(m); sub[2] != "" {
			return sub[2]
		}
		return ""
	})
	s = prefixRe.ReplaceAllString(s, "")
	s = strings.NewReplacer("\x00", "[", "\x01", "]").Replace(s)
	return strings.TrimSpace(s)
}

// sentence starts s with a capital and ends it with a full stop.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	s = upperFirst(s)
	if !strings.HasSuffix(s, ".") && !strings.HasSuffix(s, "?") && !strings.HasSuffix(s, "!") {
		s += "."
	}
	return s
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	r := []rune(s)
	return strings.ToUpper(string(r[0])) + string(r[1:])
}
