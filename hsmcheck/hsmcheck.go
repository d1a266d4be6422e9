// Package hsmcheck tries, on a spare token, everything Custos will ask of a PKCS#11 module and
// reports each as supported or not, with the module's own return code: so that a custodian
// team learns what its HSM or device key store cannot do before the ceremony day, not on it.
//
// It initialises the spare token itself (an empty slot, labelled as asked, with PINs drawn for
// the check and never shown), and clears it again at the end: re-initialised when the module can,
// otherwise with every object it made destroyed.
package hsmcheck

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/keyalg"
)

// Requirements are what a ceremony plan will ask of the module: its root key algorithm and
// whether the root is backed up (wrapped under a key-encryption key).
type Requirements struct {
	Algorithm keyalg.Algorithm
	Backup    bool
}

// Request is one check.
type Request struct {
	Module string // the PKCS#11 module's path
	Token  string // the label to give the spare token; no token may have it yet
	// Plan, when set, is checked against the results: any of its choices the module cannot do
	// is named in Report.PlanProblems.
	Plan    *Requirements
	Options []hsm.Option // for tests: faults
}

// Check is one thing Custos asks of a module, and whether the module does it.
type Check struct {
	Name      string // such as "generate ecdsa-p384 key"
	Supported bool
	Tried     bool   // false when an earlier failure made it impossible to try
	Code      uint   // the PKCS#11 return value when the module refused; 0 otherwise
	Detail    string // what was seen, or why it is not supported
}

// Result is "supported", "NOT supported" or "not tried".
func (c Check) Result() string {
	switch {
	case !c.Tried:
		return "not tried"
	case c.Supported:
		return "supported"
	}
	return "NOT supported"
}

// CodeName is the return value's name ("CKR_OK" when the module did it, "" when not tried or
// refused by Custos's own checks).
func (c Check) CodeName() string {
	switch {
	case !c.Tried:
		return ""
	case c.Supported:
		return "CKR_OK"
	case c.Code != 0:
		return hsm.CodeName(c.Code)
	}
	return ""
}

// Report is the whole check.
type Report struct {
	Module       string
	ModuleSHA256 string
	Info         hsm.ModuleInfo
	Token        string
	TokenInfo    hsm.TokenInfo // the spare token as initialised
	Checks       []Check
	Plan         *Requirements
	PlanProblems []string // the plan's choices the module cannot do; empty when it can do them all
	Cleared      string   // how the spare token was left
}

// Supported counts the checks the module passed.
func (r *Report) Supported() int {
	n := 0
	for _, c := range r.Checks {
		if c.Supported {
			n++
		}
	}
	return n
}

// ErrTokenInUse is returned when a token already has the spare token's label.
var ErrTokenInUse = errors.New("a token already has this label")

// Run checks the module on a spare token. An error means the check could not start (no
// module, no empty slot, the label taken); what the module cannot do is in the report.
func Run(ctx context.Context, req Request) (*Report, error) {
	file, err := hsm.HashModule(ctx, req.Module)
	if err != nil {
		return nil, err
	}
	m, err := hsm.Open(req.Module, append([]hsm.Option{hsm.TryKnownLimits()}, req.Options...)...)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	info, err := m.Info(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := m.TokenByLabel(ctx, req.Token); err == nil {
		return nil, fmt.Errorf("hsm check: token %q: %w: the check initialises a spare token itself; give the label for a new one", req.Token, ErrTokenInUse)
	} else if !errors.Is(err, hsm.ErrTokenNotFound) {
		return nil, err
	}
	free, err := m.FreeSlot(ctx)
	if err != nil {
		return nil, fmt.Errorf("hsm check needs an empty slot to initialise as the spare token: %w", err)
	}
	c := &checker{ctx: ctx, m: m, label: req.Token, rep: &Report{Module: m.Path(), ModuleSHA256: file.SHA256, Info: info, Token: req.Token, Plan: req.Plan}}
	c.run(free)
	c.rep.PlanProblems = planProblems(c.rep)
	return c.rep, nil
}

// checker runs the checks in order; later checks depend on earlier ones.
type checker struct {
	ctx     context.Context
	m       *hsm.Module
	label   string
	soPIN   []byte
	userPIN []byte
	s       *hsm.Session
	made    [][]byte // ids of the key pairs made, for the destruction check
	rep     *Report
}

func (c *checker) add(name string, err error, detail string) bool {
	ch := Check{Name: name, Tried: true, Supported: err == nil, Detail: detail}
	if err != nil {
		ch.Code = hsm.ReturnCode(err)
		ch.Detail = err.Error()
	}
	c.rep.Checks = append(c.rep.Checks, ch)
	return err == nil
}

func (c *checker) skip(name, why string) {
	c.rep.Checks = append(c.rep.Checks, Check{Name: name, Detail: why})
}

// Names of the checks, which the plan problems refer to.
const (
	checkInit     = "initialise a token (C_InitToken)"
	checkInitPIN  = "set the user PIN (C_InitPIN as SO)"
	checkUserPIN  = "change the user PIN (C_SetPIN)"
	checkSOPIN    = "change the SO PIN (C_SetPIN)"
	checkRandom   = "random numbers (C_GenerateRandom)"
	checkBackup   = "back up a key: CKM_AES_KEY_WRAP_PAD under a trusted key (CKA_WRAP_WITH_TRUSTED)"
	checkTrusted  = "refuse to wrap a wrap-with-trusted key under an untrusted key"
	checkRestore  = "restore a backup: unwrap into a new key that signs"
	checkData     = "store a share as a private data object, read it back"
	checkDestroy  = "destroy objects (C_DestroyObject)"
	checkReinit   = "re-initialise an initialised token (C_InitToken)"
	skipNoToken   = "the spare token could not be initialised"
	skipNoSession = "no user session on the spare token"
)

func checkGenerate(a keyalg.Algorithm) string {
	return fmt.Sprintf("generate %s key (CKA_LOCAL, never extractable, read back)", a)
}

func checkSign(a keyalg.Algorithm) string {
	switch a {
	case keyalg.RSA3072, keyalg.RSA4096:
		return fmt.Sprintf("sign with %s (CKM_RSA_PKCS and CKM_RSA_PKCS_PSS)", a)
	case keyalg.Ed25519:
		return fmt.Sprintf("sign with %s (CKM_EDDSA)", a)
	}
	return fmt.Sprintf("sign with %s (CKM_ECDSA)", a)
}

func (c *checker) run(free hsm.Slot) {
	ctx := c.ctx
	var err error
	if c.soPIN, err = pin(free.Token); err == nil {
		c.userPIN, err = pin(free.Token)
	}
	if err != nil {
		c.add(checkInit, err, "")
		return
	}
	slot, err := c.m.InitToken(ctx, free.ID, c.label, c.soPIN, nil)
	if !c.add(checkInit, err, fmt.Sprintf("slot %d initialised as %q", free.ID, c.label)) {
		for _, n := range []string{checkInitPIN, checkUserPIN, checkSOPIN, checkRandom, checkBackup, checkTrusted, checkRestore, checkData, checkDestroy, checkReinit} {
			c.skip(n, skipNoToken)
		}
		c.rep.Cleared = "nothing was made: the slot could not be initialised"
		return
	}
	c.rep.TokenInfo = slot.Token
	defer c.clear()
	if c.s, err = c.m.OpenSession(ctx, c.label); err != nil {
		c.add(checkInitPIN, err, "")
		return
	}
	c.add(checkInitPIN, c.s.InitUserPIN(ctx, c.soPIN, c.userPIN), "the SO set the user PIN")
	newUser, _ := pin(slot.Token)
	if c.add(checkUserPIN, c.s.ChangePIN(ctx, hsm.User, c.userPIN, newUser), "the user changed the user PIN, as a reshare does") {
		c.userPIN = newUser
	}
	newSO, _ := pin(slot.Token)
	if c.add(checkSOPIN, c.s.ChangePIN(ctx, hsm.SO, c.soPIN, newSO), "the SO changed the SO PIN, as a reshare does") {
		c.soPIN = newSO
	}
	if err := c.s.Login(ctx, hsm.User, c.userPIN); err != nil {
		c.add("log in as the user", err, "")
		for _, n := range []string{checkRandom, checkBackup, checkTrusted, checkRestore, checkData, checkDestroy} {
			c.skip(n, skipNoSession)
		}
		return
	}
	c.random()
	for _, a := range keyalg.All() {
		c.keys(a)
	}
	c.backup()
	c.data()
	c.destroy()
}

// pin draws a PIN the token accepts: 16 hex characters, or as long as it allows.
func pin(t hsm.TokenInfo) ([]byte, error) {
	n := 16
	if t.MaxPINLen > 0 && t.MaxPINLen < n {
		n = t.MaxPINLen
	}
	if t.MinPINLen > n {
		n = t.MinPINLen
	}
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return []byte(hex.EncodeToString(b)[:n]), nil
}

func (c *checker) random() {
	a, err := c.s.Random(c.ctx, 32)
	if err == nil {
		var b []byte
		if b, err = c.s.Random(c.ctx, 32); err == nil && string(a) == string(b) {
			err = errors.New("two draws of 32 bytes were equal")
		}
	}
	c.add(checkRandom, err, "two draws of 32 bytes, different")
}

func (c *checker) newID() []byte {
	id := make([]byte, 8)
	rand.Read(id)
	return id
}

// keys generates a key of algorithm a, reads back its protection, and signs with it.
func (c *checker) keys(a keyalg.Algorithm) {
	id := c.newID()
	k, err := c.s.GenerateKeyPair(c.ctx, hsm.KeySpec{Algorithm: a, ID: id, Label: "custos hsm check " + string(a)})
	if err == nil {
		c.made = append(c.made, id)
		err = c.protected(id)
	}
	if !c.add(checkGenerate(a), err, "generated on the token: local, sensitive, always sensitive, never extractable") {
		c.skip(checkSign(a), "no key to sign with")
		return
	}
	c.add(checkSign(a), sign(c.ctx, k), "signatures verify under the public key read from the token")
}

// protected reads the private key back and checks the token says it was made there and can
// never leave it.
func (c *checker) protected(id []byte) error {
	objs, err := c.s.Find(c.ctx, hsm.Match{Class: hsm.ClassPrivateKey, ID: id})
	if err != nil {
		return err
	}
	if len(objs) != 1 {
		return fmt.Errorf("%d private keys found with the new key's id", len(objs))
	}
	o := objs[0]
	var missing []string
	for _, p := range []struct {
		ok   bool
		name string
	}{{o.Local, "CKA_LOCAL"}, {o.Sensitive, "CKA_SENSITIVE"}, {o.AlwaysSensitive, "CKA_ALWAYS_SENSITIVE"},
		{o.NeverExtractable, "CKA_NEVER_EXTRACTABLE"}, {!o.Extractable, "CKA_EXTRACTABLE false"}} {
		if !p.ok {
			missing = append(missing, p.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the key was made, but the token does not say %s", strings.Join(missing, ", "))
	}
	return nil
}

// sign makes each signature Custos makes with such a key and verifies it.
func sign(ctx context.Context, k *hsm.Signer) error {
	msg := []byte("custos hsm check")
	d256 := sha256.Sum256(msg)
	d384 := sha512.Sum384(msg)
	switch pub := k.Public().(type) {
	case *ecdsa.PublicKey:
		for _, d := range []struct {
			h crypto.Hash
			v []byte
		}{{crypto.SHA256, d256[:]}, {crypto.SHA384, d384[:]}} {
			sig, err := k.SignContext(ctx, d.v, d.h)
			if err != nil {
				return err
			}
			if !ecdsa.VerifyASN1(pub, d.v, sig) {
				return fmt.Errorf("an ECDSA signature over %v does not verify", d.h)
			}
		}
	case *rsa.PublicKey:
		sig, err := k.SignContext(ctx, d256[:], crypto.SHA256)
		if err != nil {
			return err
		}
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, d256[:], sig); err != nil {
			return fmt.Errorf("a PKCS #1 v1.5 signature does not verify: %v", err)
		}
		pss := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
		if sig, err = k.SignContext(ctx, d256[:], pss); err != nil {
			return err
		}
		if err := rsa.VerifyPSS(pub, crypto.SHA256, d256[:], sig, pss); err != nil {
			return fmt.Errorf("a PSS signature does not verify: %v", err)
		}
	case ed25519.PublicKey:
		sig, err := k.SignContext(ctx, msg, crypto.Hash(0))
		if err != nil {
			return err
		}
		if !ed25519.Verify(pub, msg, sig) {
			return errors.New("an Ed25519 signature does not verify")
		}
	}
	return nil
}

// backup makes a key that may leave the token only wrapped under a trusted key, backs it up as
// a ceremony does, checks an untrusted key cannot wrap it, and restores the blob.
func (c *checker) backup() {
	alg := keyalg.ECDSAP256
	if c.rep.Plan != nil && c.rep.Plan.Algorithm != "" && c.rep.Plan.Algorithm != keyalg.Ed25519 {
		alg = c.rep.Plan.Algorithm
	}
	id := c.newID()
	k, err := c.s.GenerateKeyPair(c.ctx, hsm.KeySpec{Algorithm: alg, ID: id, Label: "custos hsm check backup", Wrappable: true})
	if err != nil {
		c.add(checkBackup, err, "")
		c.skip(checkTrusted, "no wrappable key")
		c.skip(checkRestore, "no backup")
		return
	}
	c.made = append(c.made, id)
	kek := make([]byte, 32)
	rand.Read(kek)
	blob, err := c.s.BackupKey(c.ctx, c.soPIN, c.userPIN, kek, id)
	c.add(checkBackup, err, fmt.Sprintf("an %s key wrapped into a %d-byte blob", alg, len(blob)))
	// BackupKey leaves the session logged out.
	if err := c.s.Login(c.ctx, hsm.User, c.userPIN); err != nil {
		c.add("log in as the user again", err, "")
		return
	}
	untrusted, err := c.s.ImportAESKey(c.ctx, kek, hsm.AESKeySpec{Label: "custos hsm check untrusted"})
	if err != nil {
		c.add(checkTrusted, err, "")
	} else {
		_, werr := c.s.Wrap(c.ctx, untrusted, id)
		switch {
		case werr == nil:
			c.add(checkTrusted, errors.New("an untrusted key wrapped it: CKA_WRAP_WITH_TRUSTED is not enforced"), "")
		case errors.Is(werr, hsm.ErrNotWrappable):
			c.add(checkTrusted, nil, "refused with "+hsm.CodeName(hsm.ReturnCode(werr)))
		default:
			c.add(checkTrusted, werr, "")
		}
		untrusted.Destroy(c.ctx)
	}
	if err != nil || blob == nil {
		c.skip(checkRestore, "no backup blob")
		return
	}
	rid := c.newID()
	_, err = c.s.RestoreKey(c.ctx, kek, blob, hsm.UnwrapSpec{ID: rid, Label: "custos hsm check restored", Public: k.Public()})
	if err == nil {
		c.made = append(c.made, rid)
	}
	c.add(checkRestore, err, "the restored key signed, and the signature verified under the original public key")
}

func (c *checker) data() {
	value := make([]byte, 64)
	rand.Read(value)
	err := c.s.StoreData(c.ctx, hsm.DataObject{Application: "custos", Label: "custos hsm check share", Value: value, Private: true})
	if err == nil {
		var d hsm.DataObject
		if d, err = c.s.Data(c.ctx, "custos", "custos hsm check share"); err == nil && string(d.Value) != string(value) {
			err = errors.New("the data read back differs from what was stored")
		}
	}
	c.add(checkData, err, "a 64-byte private data object stored and read back")
}

// destroy destroys everything the check made and looks for anything left.
func (c *checker) destroy() {
	var err error
	n := 0
	for _, id := range c.made {
		var k int
		if k, err = c.s.Destroy(c.ctx, hsm.Match{ID: id}); err != nil {
			break
		}
		n += k
	}
	if err == nil {
		var k int
		k, err = c.s.Destroy(c.ctx, hsm.Match{Class: hsm.ClassData, Label: "custos hsm check share"})
		n += k
	}
	if err == nil {
		if left, lerr := c.s.Objects(c.ctx); lerr != nil {
			err = lerr
		} else if len(left) > 0 {
			err = fmt.Errorf("%d objects left after destruction: %v", len(left), left)
		}
	}
	c.add(checkDestroy, err, fmt.Sprintf("%d objects destroyed, none left", n))
}

// clear re-initialises the spare token (the re-initialisation check), or says what is left.
func (c *checker) clear() {
	if c.s != nil {
		c.s.Logout(c.ctx)
		c.s.Close()
	}
	_, err := c.m.ReinitToken(c.ctx, c.label, c.soPIN, c.label, nil)
	if c.add(checkReinit, err, "the spare token was re-initialised with its SO PIN") {
		c.rep.Cleared = fmt.Sprintf("token %q was re-initialised: it is empty, with an SO PIN drawn for the check and forgotten; re-initialise it with the module's own tools before it holds anything", c.label)
		return
	}
	c.rep.Cleared = fmt.Sprintf("token %q could not be re-initialised through PKCS#11; every object the check made was destroyed (see the destruction check). It stays initialised with PINs drawn for the check and forgotten: clear it with the module's own tools", c.label)
}

// planProblems names each choice of the plan that a failed check rules out.
func planProblems(r *Report) []string {
	if r.Plan == nil {
		return nil
	}
	byName := map[string]Check{}
	for _, c := range r.Checks {
		byName[c.Name] = c
	}
	var out []string
	need := func(what, name string) {
		if c := byName[name]; !c.Supported {
			why := c.Result()
			if c.CodeName() != "" {
				why += ", " + c.CodeName()
			}
			out = append(out, fmt.Sprintf("%s: the module cannot %s (%s)", what, name, why))
		}
	}
	for _, n := range []string{checkInit, checkInitPIN, checkUserPIN, checkSOPIN, checkRandom} {
		need("the root token", n)
	}
	if a := r.Plan.Algorithm; a != "" {
		need("plan key "+string(a), checkGenerate(a))
		need("plan key "+string(a), checkSign(a))
	}
	if r.Plan.Backup {
		for _, n := range []string{checkBackup, checkTrusted, checkRestore} {
			need("plan backup: true", n)
		}
	}
	return out
}
