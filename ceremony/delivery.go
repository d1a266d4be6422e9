package ceremony

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/secret"
	"github.com/custos-pki/custos/quorum"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/workspace"
)

// CustodianPINs is a Participants that can ask a custodian for the PIN of their own token (the
// command line reads it from --custodian-pin-file, the window has the custodian type it). A
// plan that delivers a share to a token needs it. The caller zeroes the PIN.
type CustodianPINs interface {
	CustodianPIN(ctx context.Context, custodian, token string) ([]byte, error)
}

// ShareFolder is a Participants with a folder for the share files of custodians who named no
// folder of their own (the command line's --shares-dir). Without it, such a share goes to
// DeliverShare (the window's screen).
type ShareFolder interface {
	SharesDir() string
}

// shareDeliverer delivers the shares of one split where each custodian asked, and reads them
// back from there.
type shareDeliverer struct {
	people     Participants
	mod        *hsm.Module // the module the root is on; custodians' tokens are found on it
	known      []registry.KnownKey
	ceremonyID string
	epoch      int
	threshold  int
	custodians []string
	dests      []Destination
	written    map[int][]byte // what went into each encrypted file, to read it back
	// logins are the custodians' tokens logged in, by label: each custodian gives their PIN
	// once per split (checked, written and read back in one login), until close.
	logins map[string]*hsm.Session
}

// target is where share number (i+1) goes: a token, a file, or the people.
type target struct {
	token     string
	path      string // a share file, plain or .age
	recipient string // age
}

func (t target) String() string {
	switch {
	case t.token != "":
		return "token " + t.token
	case t.recipient != "":
		return "file " + t.path + " (encrypted to " + t.recipient + ")"
	case t.path != "":
		return "file " + t.path
	}
	return "screen"
}

func (s *shareDeliverer) dest(i int) Destination {
	if i < len(s.dests) {
		return s.dests[i]
	}
	return Destination{}
}

func (s *shareDeliverer) target(i int) (target, error) {
	d := s.dest(i)
	if d.Token != "" {
		return target{token: d.Token}, nil
	}
	dir := d.Dir
	if dir == "" {
		if f, ok := s.people.(ShareFolder); ok {
			dir = f.SharesDir()
		}
	}
	if dir == "" {
		if d.Age != "" {
			return target{}, fmt.Errorf("%s's share is encrypted to an age recipient, but no folder is named for the file: give %s a dir: in the plan, or a shares folder", s.custodians[i], s.custodians[i])
		}
		return target{}, nil
	}
	return target{path: filepath.Join(dir, shareFileName(i+1, s.custodians[i], d.Age != "")), recipient: d.Age}, nil
}

// check refuses, before anything is made, every destination that cannot take its share: a
// share file that exists, a folder that is missing or not writable, a token that is not the
// custodian's own (see checkToken). It returns the warnings the people must hear: plaintext
// shares that would rest together in one folder.
func (s *shareDeliverer) check(ctx context.Context) (warnings []string, err error) {
	together := map[string]int{}
	for i, c := range s.custodians {
		t, err := s.target(i)
		if err != nil {
			return nil, err
		}
		switch {
		case t.token != "":
			if err := s.checkToken(ctx, c, t.token); err != nil {
				return nil, err
			}
		case t.path != "":
			if err := checkShareFile(t.path); err != nil {
				return nil, fmt.Errorf("%s's share: %w", c, err)
			}
			if t.recipient == "" {
				together[cleanDir(filepath.Dir(t.path))]++
			}
		}
	}
	dirs := make([]string, 0, len(together))
	for d := range together {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		if n := together[d]; n > 1 {
			warnings = append(warnings, fmt.Sprintf("%d shares rest together in %s: hand each to its custodian, then delete the folder", n, d))
		}
	}
	return warnings, nil
}

// CheckShareFolder checks a folder share files are written into before a ceremony opens a
// token: it exists, is writable, and holds none of the files the shares of custodians would
// become (numbered from 1, in order). Destinations of the plan's own are checked by the
// ceremony.
func CheckShareFolder(dir string, custodians []string, dests []Destination) error {
	info, err := os.Stat(dir)
	if err != nil || !info.IsDir() {
		return fmt.Errorf("shares folder %s: no such folder", dir)
	}
	for i, c := range custodians {
		var d Destination
		if i < len(dests) {
			d = dests[i]
		}
		if d.Token != "" || d.Dir != "" {
			continue
		}
		if err := checkShareFile(filepath.Join(dir, shareFileName(i+1, c, d.Age != ""))); err != nil {
			return err
		}
	}
	return nil
}

// checkShareFile refuses a share file that exists (a share file is never overwritten) or
// whose folder is missing or not writable.
func checkShareFile(path string) error {
	dir := filepath.Dir(path)
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		return fmt.Errorf("the folder %s does not exist: plug in the custodian's medium, or correct the plan", dir)
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s already exists: a share file is never overwritten; move it away first", path)
	}
	probe := filepath.Join(dir, ".custos-probe")
	if err := workspace.CreateExclusive(probe, nil, 0o600); err != nil {
		return fmt.Errorf("the folder %s is not writable: %w", dir, err)
	}
	os.Remove(probe)
	return nil
}

// checkToken refuses a token that is not a custodian's own: one that is missing or
// uninitialised (no user PIN set), or holds any key the registry knows (a CA's, the record
// signer's, a device's), by label or by a key's CKA_ID once the custodian logged in.
func (s *shareDeliverer) checkToken(ctx context.Context, custodian, label string) error {
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("%s's share cannot go to token:%s: %s", custodian, label, fmt.Sprintf(format, args...))
	}
	for _, k := range s.known {
		if k.TokenLabel == label {
			return refuse("that token holds the key of %s; give %s a token of their own", k.What, custodian)
		}
	}
	slot, err := s.mod.TokenByLabel(ctx, label)
	if errors.Is(err, hsm.ErrTokenNotFound) {
		return refuse("no token has that label on %s; plug it in, or initialise it with the custodian's own PIN", s.mod.Path())
	} else if err != nil {
		return refuse("%v", err)
	}
	if f := slot.Token.Flags; !f.Initialized || !f.UserPINInitialized {
		return refuse("the token is not initialised (no user PIN is set): the custodian initialises it and sets their own PIN first")
	}
	sess, err := s.custodianSession(ctx, custodian, label)
	if err != nil {
		return err
	}
	objs, err := sess.Objects(ctx)
	if err != nil {
		return refuse("%v", err)
	}
	for _, o := range objs {
		if len(o.ID) == 0 || o.Class == hsm.ClassData {
			continue
		}
		for _, k := range s.known {
			if len(k.KeyID) > 0 && bytes.Equal(o.ID, k.KeyID) {
				return refuse("it holds the key of %s (CKA_ID %x); give %s a token of their own", k.What, o.ID, custodian)
			}
		}
	}
	return nil
}

// custodianSession is the custodian's token logged in with the PIN they give: asked the first
// time the split needs the token, kept logged in until close, so a custodian types it once.
func (s *shareDeliverer) custodianSession(ctx context.Context, custodian, label string) (*hsm.Session, error) {
	if sess := s.logins[label]; sess != nil {
		return sess, nil
	}
	asker, ok := s.people.(CustodianPINs)
	if !ok {
		return nil, fmt.Errorf("%s's share goes to token:%s, but nobody can be asked for the token's PIN here", custodian, label)
	}
	pin, err := asker.CustodianPIN(ctx, custodian, label)
	if err != nil {
		return nil, fmt.Errorf("the PIN of %s's token %s: %w", custodian, label, err)
	}
	defer secret.Zero(pin)
	sess, _, err := loginCustodian(ctx, s.mod, label, pin)
	if err != nil {
		return nil, err
	}
	if s.logins == nil {
		s.logins = map[string]*hsm.Session{}
	}
	s.logins[label] = sess
	return sess, nil
}

// close logs out of and closes every custodian's token the split logged in to.
func (s *shareDeliverer) close(ctx context.Context) {
	if s == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	for _, sess := range s.logins {
		sess.Logout(ctx)
		sess.Close()
	}
	s.logins = nil
}

// loginCustodian opens a session on the custodian's token and logs in with their PIN.
func loginCustodian(ctx context.Context, mod *hsm.Module, label string, pin []byte) (*hsm.Session, func(), error) {
	sess, err := mod.OpenSession(ctx, label)
	if err != nil {
		return nil, nil, err
	}
	if err := sess.Login(ctx, hsm.User, pin); err != nil {
		sess.Close()
		return nil, nil, fmt.Errorf("custodian token %q: %w", label, err)
	}
	return sess, func() { sess.Logout(context.WithoutCancel(ctx)); sess.Close() }, nil
}

// deliver hands share sh of custodian i to where they asked, and returns where it went as the
// journal says it. A share on a token is read back and checked against its commitment at once.
func (s *shareDeliverer) deliver(ctx context.Context, i int, sh quorum.Share, n int) (string, error) {
	t, err := s.target(i)
	if err != nil {
		return "", err
	}
	d := ShareDelivery{CeremonyID: s.ceremonyID, Epoch: s.epoch, Custodian: s.custodians[i], Number: sh.Number, Of: n,
		Threshold: s.threshold, Text: sh.Encode(), Destination: s.dest(i)}
	switch {
	case t.token != "":
		sess, err := s.custodianSession(ctx, d.Custodian, t.token)
		if err != nil {
			return "", err
		}
		if err := storeShare(ctx, sess, d); err != nil {
			return "", err
		}
		back, err := readShare(ctx, sess, d.CeremonyID, d.Epoch, d.Number)
		if err != nil {
			return "", err
		}
		defer secret.Zero(back)
		if string(back) != d.Text {
			return "", fmt.Errorf("share #%d as read back from token %s differs from the share written, whose commitment is %x", d.Number, t.token, sh.Commitment())
		}
		return t.String(), nil
	case t.recipient != "":
		ct, err := encryptShare(d, t.recipient)
		if err != nil {
			return "", fmt.Errorf("encrypt %s's share to %s: %w", d.Custodian, t.recipient, err)
		}
		if err := workspace.CreateExclusive(t.path, ct, 0o600); err != nil {
			return "", err
		}
		if s.written == nil {
			s.written = map[int][]byte{}
		}
		s.written[i] = ct
		return t.String(), nil
	case t.path != "":
		text := shareFileText(d)
		defer secret.Zero(text)
		if err := workspace.CreateExclusive(t.path, text, 0o600); err != nil {
			return "", err
		}
		return t.String(), nil
	}
	return s.people.DeliverShare(ctx, d)
}

// readBack reads custodian i's share back from where it went. An encrypted file cannot be
// read back without the custodian's identity: it is checked to hold what was written, and
// the share as split (sh) stands for it.
func (s *shareDeliverer) readBack(ctx context.Context, i int, sh quorum.Share, n int) (string, error) {
	t, err := s.target(i)
	if err != nil {
		return "", err
	}
	d := ShareDelivery{CeremonyID: s.ceremonyID, Epoch: s.epoch, Custodian: s.custodians[i], Number: i + 1, Of: n,
		Threshold: s.threshold, Destination: s.dest(i)}
	switch {
	case t.token != "":
		sess, err := s.custodianSession(ctx, d.Custodian, t.token)
		if err != nil {
			return "", err
		}
		b, err := readShare(ctx, sess, d.CeremonyID, d.Epoch, d.Number)
		if err != nil {
			return "", err
		}
		defer secret.Zero(b)
		return string(b), nil
	case t.recipient != "":
		b, err := os.ReadFile(t.path)
		if err != nil {
			return "", err
		}
		if !bytes.Equal(b, s.written[i]) {
			return "", fmt.Errorf("%s does not hold what was written to it", t.path)
		}
		return sh.Encode(), nil
	case t.path != "":
		b, err := secret.ReadShareFile(t.path)
		if err != nil {
			return "", err
		}
		defer secret.Zero(b)
		return StripShareComments(string(b)), nil
	}
	return s.people.ReadBackShare(ctx, d)
}

// shareFileText is a share file: two comment lines saying whose it is, then the share.
func shareFileText(d ShareDelivery) []byte {
	return []byte(fmt.Sprintf("# Share %d of %d of root ceremony %s for %s. %d shares are needed.\n# Keep it offline; never copy it onto a networked computer.\n%s\n",
		d.Number, d.Of, d.CeremonyID, d.Custodian, d.Threshold, d.Text))
}

// StripShareComments drops the '#' lines a share file starts with.
func StripShareComments(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// encryptShare is the share file encrypted to recipient, ASCII-armored so it can also be
// printed.
func encryptShare(d ShareDelivery, recipient string) ([]byte, error) {
	r, err := parseRecipient(recipient, nil)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	a := armor.NewWriter(&out)
	w, err := age.Encrypt(a, r)
	if err != nil {
		return nil, err
	}
	text := shareFileText(d)
	defer secret.Zero(text)
	if _, err := w.Write(text); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if err := a.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// shareLabelPrefix begins the labels of a root's shares of one epoch on custodians' tokens.
func shareLabelPrefix(ceremonyID string, epoch int) string {
	return fmt.Sprintf("custos share %s epoch %d #", ceremonyID, epoch)
}

// storeShare writes a share on the custodian's token as a private data object that cannot be
// modified; one of the same ceremony, epoch and number left by a failed run is replaced.
func storeShare(ctx context.Context, sess *hsm.Session, d ShareDelivery) error {
	label := fmt.Sprintf("%s%d", shareLabelPrefix(d.CeremonyID, d.Epoch), d.Number)
	if _, err := sess.Destroy(ctx, hsm.Match{Class: hsm.ClassData, Label: label}); err != nil {
		return err
	}
	value := []byte(d.Text)
	defer secret.Zero(value)
	return sess.StoreData(ctx, hsm.DataObject{Application: "custos", Label: label, Value: value, Private: true, ReadOnly: true})
}

// readShare reads the share of number n (0: the one share of that epoch on the token) from a
// logged-in custodian token. The caller zeroes it.
func readShare(ctx context.Context, sess *hsm.Session, ceremonyID string, epoch, n int) ([]byte, error) {
	prefix := shareLabelPrefix(ceremonyID, epoch)
	label := fmt.Sprintf("%s%d", prefix, n)
	if n == 0 {
		objs, err := sess.Find(ctx, hsm.Match{Class: hsm.ClassData})
		if err != nil {
			return nil, err
		}
		var labels []string
		for _, o := range objs {
			if o.Application == "custos" && strings.HasPrefix(o.Label, prefix) {
				labels = append(labels, o.Label)
			}
		}
		switch len(labels) {
		case 0:
			return nil, fmt.Errorf("token %q holds no share of %s epoch %d (a share of another epoch no longer works)", sess.Label(), ceremonyID, epoch)
		case 1:
			label = labels[0]
		default:
			return nil, fmt.Errorf("token %q holds %d shares of %s epoch %d: one custodian holds one", sess.Label(), len(labels), ceremonyID, epoch)
		}
	}
	obj, err := sess.Data(ctx, "custos", label)
	if err != nil {
		return nil, err
	}
	return obj.Value, nil
}
