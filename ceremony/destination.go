package ceremony

import (
	"fmt"
	"path/filepath"
	"strings"
	"unicode"

	"filippo.io/age"
	"filippo.io/age/plugin"
	"go.yaml.in/yaml/v3"

	"github.com/custos-pki/custos/hsm"
)

// Destination is where one custodian's share is delivered, as the plan's `deliver` says:
// their own token (token:LABEL), encrypted to their age recipient (age:RECIPIENT), a folder on
// their own medium (dir:PATH), or an age file in their folder (both). The zero Destination is
// the ceremony's default: a share file in the command line's --shares-dir, the window's
// screen.
type Destination struct {
	Token string // the label of the custodian's token
	Age   string // the custodian's age recipient (X25519, hybrid, or a plugin's)
	Dir   string // the custodian's folder
}

// IsDefault says the custodian named no destination.
func (d Destination) IsDefault() bool { return d == Destination{} }

// String is the destination as the plan writes it.
func (d Destination) String() string {
	var parts []string
	if d.Token != "" {
		parts = append(parts, "token:"+d.Token)
	}
	if d.Age != "" {
		parts = append(parts, "age:"+d.Age)
	}
	if d.Dir != "" {
		parts = append(parts, "dir:"+d.Dir)
	}
	return strings.Join(parts, ", ")
}

// ParseDestination reads a `deliver` value: one or more of "token:LABEL", "age:RECIPIENT" and
// "dir:PATH". A share goes to one place: a token excludes the others; age and dir together
// put the encrypted file in that folder.
func ParseDestination(values ...string) (Destination, error) {
	var d Destination
	for _, v := range values {
		kind, target, ok := strings.Cut(v, ":")
		if !ok || target == "" {
			return Destination{}, fmt.Errorf("%q is not a destination: use token:LABEL, age:RECIPIENT or dir:PATH", v)
		}
		var slot *string
		switch kind {
		case "token":
			if problem := hsm.TokenLabelProblem(target); problem != "" {
				return Destination{}, fmt.Errorf("token label %s", problem)
			}
			slot = &d.Token
		case "age":
			if _, err := parseRecipient(target, nil); err != nil {
				return Destination{}, err
			}
			slot = &d.Age
		case "dir":
			if strings.IndexFunc(target, unicode.IsControl) >= 0 {
				return Destination{}, fmt.Errorf("the folder %q holds a control character", target)
			}
			slot = &d.Dir
		default:
			return Destination{}, fmt.Errorf("%q is not a kind of destination: use token:LABEL, age:RECIPIENT or dir:PATH", kind+":")
		}
		if *slot != "" {
			return Destination{}, fmt.Errorf("two %s: destinations; a share goes to one place", kind)
		}
		*slot = target
	}
	if d.Token != "" && (d.Age != "" || d.Dir != "") {
		return Destination{}, fmt.Errorf("token:%s with %s: a share on a token goes nowhere else", d.Token, Destination{Age: d.Age, Dir: d.Dir})
	}
	return d, nil
}

// parseRecipient reads an age recipient: X25519 (age1...), hybrid post-quantum (age1pq1...),
// or a plugin's (age1NAME1..., such as a YubiKey's age1yubikey1...), whose plugin is run only
// when it encrypts. ui is how a plugin speaks to the people; nil for parsing alone.
func parseRecipient(s string, ui *plugin.ClientUI) (age.Recipient, error) {
	if r, err := age.ParseRecipients(strings.NewReader(s)); err == nil && len(r) == 1 {
		return r[0], nil
	}
	if name, _, err := plugin.ParseRecipient(s); err == nil && name != "" && !strings.HasPrefix(s, "age1pq1") {
		if ui == nil {
			ui = &plugin.ClientUI{}
		}
		return plugin.NewRecipient(s, ui)
	}
	return nil, fmt.Errorf("%q is not an age recipient: use an X25519 recipient (age1...) or a plugin's (age1NAME1...)", s)
}

// custodianEntry is one item of the plan's custodians: a name, or {name, deliver}.
type custodianEntry struct {
	Name    string
	Deliver []string
}

// UnmarshalYAML reads "Cara Cruz" or {name: Cody Chen, deliver: "token:cody-card"}; deliver
// may also be a list (["age:age1...", "dir:/media/cleo"]).
func (c *custodianEntry) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&c.Name)
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a custodian is a name or {name: NAME, deliver: DESTINATION}", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "name":
			if err := v.Decode(&c.Name); err != nil {
				return err
			}
		case "deliver":
			if v.Kind == yaml.SequenceNode {
				if err := v.Decode(&c.Deliver); err != nil {
					return err
				}
				continue
			}
			var one string
			if err := v.Decode(&one); err != nil {
				return err
			}
			c.Deliver = []string{one}
		default:
			return fmt.Errorf("line %d: custodians: field %s not found in a custodian (name, deliver)", k.Line, k.Value)
		}
	}
	return nil
}

// shareFileName is the name of a custodian's share file: <n>-<custodian>.share, with .age
// when it is encrypted.
func shareFileName(number int, custodian string, encrypted bool) string {
	name := fmt.Sprintf("%d-%s.share", number, fileSafe(custodian))
	if encrypted {
		name += ".age"
	}
	return name
}

// fileSafe keeps letters and digits of any script, so "Zoë Ångström" stays readable.
func fileSafe(name string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '.' {
			return r
		}
		return '-'
	}, name)
}

// cleanDir is a folder as compared with another: two spellings of one folder are one.
func cleanDir(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return filepath.Clean(dir)
}
