package quorum

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/custos-pki/custos/pki"
)

// A quorum statement is what the root key signs, at the root ceremony and at every change of
// its quorum (a reshare, a new PKCS#11 module, a restore), about the facts every quorum
// operation relies on: which root (its certificate's SHA-256), the epoch, the threshold, the
// custodians with their share commitments, the secret's digest, the plan, the operations
// token, the PKCS#11 module (path and SHA-256), the token the root was made on or last
// restored to, and (from version 2) every token that holds the root key. A
// quorum operation verifies it against the root certificate before it trusts anything the
// registry says, so none of these facts can change without the quorum.
//
// # Encoding
//
// The signed bytes are the statement's canonical encoding: compact JSON of Statement, fields
// in the order the type declares them, no HTML escaping, hex in lower case, times in UTC to the
// second. ParseStatement refuses bytes that are not the canonical encoding of what they parse
// to (a duplicated key, another order, spaces), so one statement has one encoding.
//
// The encoding starts with {"type":"custos-quorum-statement", so a signature over it can never
// be taken for a signature over a certificate, a CRL or another kind of message.
//
// # Adding a field
//
// A new field is added at the end of Statement (or of a nested type) with `omitempty`, and
// StatementVersion goes up by one. ParseStatement reads every version up to its own: an older
// statement lacks the field, which stays empty, so it re-encodes to the same bytes and its
// signature still verifies. A statement of a newer version than this Custos knows is refused.

// StatementType is the type every quorum statement names in its first field.
const StatementType = "custos-quorum-statement"

// StatementVersion is the version of the statements this Custos writes (and the newest it
// reads).
const StatementVersion = 2

// maxStatement bounds a statement's encoding: 255 custodians of 128-byte names with their
// commitments are about 60 KiB.
const maxStatement = 256 << 10

// Statement is a quorum statement: see the comment above.
type Statement struct {
	Type    string `json:"type"`    // StatementType
	Version int    `json:"version"` // StatementVersion when written
	Root    string `json:"root"`    // the root's ceremony id
	// RootCertificateSHA256 is the root certificate's SHA-256 (hex), the fingerprint custodians
	// compare with their ceremony record.
	RootCertificateSHA256 string               `json:"root_certificate_sha256"`
	Seq                   int                  `json:"seq"`   // 1 for the root ceremony's statement, +1 for each later one
	Epoch                 int                  `json:"epoch"` // the quorum's epoch
	Threshold             int                  `json:"threshold"`
	Custodians            []StatementCustodian `json:"custodians"`
	SecretDigest          string               `json:"secret_digest"` // hex of Digest at Epoch
	PlanSHA256            string               `json:"plan_sha256"`   // of the plan file as reviewed
	OperationsToken       string               `json:"operations_token"`
	Module                Module               `json:"module"`
	RootToken             TokenIdentity        `json:"root_token"`
	RootKeyID             string               `json:"root_key_id"` // hex CKA_ID of the root key on RootToken
	Run                   string               `json:"run"`         // the run that signed the statement
	SignedAt              time.Time            `json:"signed_at"`
	// Holders are every token that holds the root key when the statement is signed (version
	// 2): a reshare must reach each of them or record it lost, and a quorum operation logs in
	// to no other. RootToken is among them unless a reshare recorded it lost. A version 1
	// statement names RootToken alone.
	Holders []Holder `json:"holders,omitempty"`
}

// Holder is a token that holds the root key, and the key's CKA_ID on it.
type Holder struct {
	Token TokenIdentity `json:"token"`
	KeyID string        `json:"key_id"` // hex
}

// HolderList is every token the statement says holds the root: Holders, or for a version 1
// statement the root token alone.
func (s *Statement) HolderList() []Holder {
	if len(s.Holders) > 0 {
		return s.Holders
	}
	return []Holder{{Token: s.RootToken, KeyID: s.RootKeyID}}
}

// StatementCustodian is one custodian of a statement: their share's number, name and
// commitment (hex).
type StatementCustodian struct {
	Number     int    `json:"number"`
	Name       string `json:"name"`
	Commitment string `json:"commitment"`
}

// Module is the PKCS#11 module quorum operations load: its path and the SHA-256 of the file.
type Module struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// TokenIdentity is a token as its module describes it.
type TokenIdentity struct {
	Label        string `json:"label"`
	Manufacturer string `json:"manufacturer"`
	Model        string `json:"model"`
	Serial       string `json:"serial"`
}

func (t TokenIdentity) String() string {
	return fmt.Sprintf("%q (%s %s, serial %s)", t.Label, t.Manufacturer, t.Model, t.Serial)
}

// Encode returns the statement's canonical encoding, the bytes the root signs. It sets Type
// and Version when they are empty and rounds SignedAt to the second in UTC.
func (s *Statement) Encode() ([]byte, error) {
	if s.Type == "" {
		s.Type = StatementType
	}
	if s.Version == 0 {
		s.Version = StatementVersion
	}
	s.SignedAt = s.SignedAt.UTC().Truncate(time.Second)
	if err := s.check(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("encode the quorum statement: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// ParseStatement reads a statement's canonical encoding, refusing anything else: another type,
// a version newer than this Custos reads, unknown fields, or bytes that are not canonical.
func ParseStatement(b []byte) (*Statement, error) {
	if len(b) > maxStatement {
		return nil, fmt.Errorf("quorum statement: %d bytes; a statement is at most %d", len(b), maxStatement)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s Statement
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("quorum statement: %w", err)
	}
	if dec.More() {
		return nil, errors.New("quorum statement: more than one JSON value")
	}
	if s.Type != StatementType {
		return nil, fmt.Errorf("quorum statement: type %q, not %q", s.Type, StatementType)
	}
	if s.Version < 1 || s.Version > StatementVersion {
		return nil, fmt.Errorf("quorum statement: version %d; this Custos reads versions 1 to %d", s.Version, StatementVersion)
	}
	again, err := s.Encode()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, b) {
		return nil, errors.New("quorum statement: not in its canonical encoding (compact JSON, fields in order, no duplicate): it was not written by Custos")
	}
	return &s, nil
}

// check refuses a statement that lacks a fact or has one out of shape.
func (s *Statement) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("quorum statement: "+format, args...)
	}
	// hexOf checks v is lower-case hex of n bytes (of at least one when n is 0).
	hexOf := func(name, v string, n int) error {
		b, err := hex.DecodeString(v)
		switch {
		case err != nil || hex.EncodeToString(b) != v || len(b) == 0:
			return bad("%s %q is not lower-case hex", name, v)
		case n > 0 && len(b) != n:
			return bad("%s has %d bytes, not %d", name, len(b), n)
		}
		return nil
	}
	switch {
	case s.Root == "":
		return bad("no root")
	case s.Seq < 1:
		return bad("sequence number %d; the first is 1", s.Seq)
	case s.Epoch < 1:
		return bad("epoch %d; the first is 1", s.Epoch)
	case s.Threshold < 2 || s.Threshold > len(s.Custodians) || len(s.Custodians) > 255:
		return bad("threshold %d of %d custodians", s.Threshold, len(s.Custodians))
	case s.Module.Path == "":
		return bad("no PKCS#11 module")
	case s.RootToken.Label == "":
		return bad("no root token")
	case s.OperationsToken == "":
		return bad("no operations token")
	case s.Run == "":
		return bad("no run")
	case s.SignedAt.IsZero():
		return bad("no time of signing")
	}
	for _, h := range []struct {
		name, v string
		n       int
	}{{"root certificate SHA-256", s.RootCertificateSHA256, sha256.Size}, {"secret digest", s.SecretDigest, sha256.Size},
		{"plan SHA-256", s.PlanSHA256, sha256.Size}, {"module SHA-256", s.Module.SHA256, sha256.Size}, {"root key id", s.RootKeyID, 0}} {
		if err := hexOf(h.name, h.v, h.n); err != nil {
			return err
		}
	}
	if s.Version >= 2 && len(s.Holders) == 0 {
		return bad("no token holding the root")
	}
	labels := map[string]bool{}
	for _, h := range s.Holders {
		if h.Token.Label == "" || labels[h.Token.Label] {
			return bad("holder %s: every token holding the root is named, once", h.Token)
		}
		labels[h.Token.Label] = true
		if err := hexOf("key id on "+h.Token.Label, h.KeyID, 0); err != nil {
			return err
		}
	}
	seen := map[int]bool{}
	for _, c := range s.Custodians {
		if c.Number < 1 || c.Number > 255 || seen[c.Number] || c.Name == "" {
			return bad("custodian %q with share #%d: numbers are 1 to 255, once each, and every custodian is named", c.Name, c.Number)
		}
		seen[c.Number] = true
		if err := hexOf(fmt.Sprintf("commitment of share #%d", c.Number), c.Commitment, sha256.Size); err != nil {
			return err
		}
	}
	return nil
}

// Params are the quorum the statement states, for a Collector.
func (s *Statement) Params() Params {
	p := Params{CeremonyID: s.Root, Epoch: s.Epoch, Threshold: s.Threshold}
	p.RootSHA256, _ = hex.DecodeString(s.RootCertificateSHA256)
	p.Digest, _ = hex.DecodeString(s.SecretDigest)
	for _, c := range s.Custodians {
		cm, _ := hex.DecodeString(c.Commitment)
		p.Custodians = append(p.Custodians, Custodian{Name: c.Name, Number: c.Number, Commitment: cm})
	}
	return p
}

// StatementOf is a statement of the quorum p: its root, epoch, threshold, custodians,
// commitments and digest. The caller sets the rest.
func StatementOf(p Params) Statement {
	s := Statement{Root: p.CeremonyID, RootCertificateSHA256: hex.EncodeToString(p.RootSHA256), Epoch: p.Epoch,
		Threshold: p.Threshold, SecretDigest: hex.EncodeToString(p.Digest)}
	for _, c := range p.Custodians {
		s.Custodians = append(s.Custodians, StatementCustodian{Number: c.Number, Name: c.Name, Commitment: hex.EncodeToString(c.Commitment)})
	}
	return s
}

// SameQuorum says whether two quorums are the same: root, epoch, threshold, digest, and the
// same custodians with the same numbers and commitments, in the same order. It names the
// first difference.
func SameQuorum(a, b Params) error {
	switch {
	case a.CeremonyID != b.CeremonyID:
		return fmt.Errorf("root %q, not %q", a.CeremonyID, b.CeremonyID)
	case !bytes.Equal(a.RootSHA256, b.RootSHA256):
		return fmt.Errorf("root certificate SHA-256 %x, not %x", a.RootSHA256, b.RootSHA256)
	case a.Epoch != b.Epoch:
		return fmt.Errorf("epoch %d, not %d", a.Epoch, b.Epoch)
	case a.Threshold != b.Threshold:
		return fmt.Errorf("threshold %d, not %d", a.Threshold, b.Threshold)
	case !bytes.Equal(a.Digest, b.Digest):
		return fmt.Errorf("secret digest %x, not %x", a.Digest, b.Digest)
	}
	if !slices.EqualFunc(a.Custodians, b.Custodians, func(x, y Custodian) bool {
		return x.Name == y.Name && x.Number == y.Number && bytes.Equal(x.Commitment, y.Commitment)
	}) {
		return fmt.Errorf("custodians and commitments %s, not %s", custodianList(a.Custodians), custodianList(b.Custodians))
	}
	return nil
}

func custodianList(cs []Custodian) string {
	var b bytes.Buffer
	for i, c := range cs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "#%d %s %x", c.Number, c.Name, c.Commitment[:min(4, len(c.Commitment))])
	}
	return "[" + b.String() + "]"
}

// SignedStatement is a statement as kept: its canonical encoding and the root key's signature
// over it.
type SignedStatement struct {
	Text      []byte
	Signature []byte
}

// Sign encodes the statement and signs it with key, the root key certified by root. It
// checks the signature verifies under root before returning it.
func (s *Statement) Sign(key crypto.Signer, root *x509.Certificate) (SignedStatement, error) {
	if got := hex.EncodeToString(sha256Of(root.Raw)); s.RootCertificateSHA256 != got {
		return SignedStatement{}, fmt.Errorf("sign the quorum statement: it names root certificate %s, the key's is %s", s.RootCertificateSHA256, got)
	}
	text, err := s.Encode()
	if err != nil {
		return SignedStatement{}, err
	}
	sig, err := pki.SignMessage(key, text)
	if err != nil {
		return SignedStatement{}, fmt.Errorf("sign the quorum statement: %w", err)
	}
	ss := SignedStatement{Text: text, Signature: sig}
	if _, err := ss.Verify(root); err != nil {
		return SignedStatement{}, err
	}
	return ss, nil
}

// Verify checks the signature by the key root certifies, parses the statement and checks it
// names root: the statement it returns can be trusted as far as root is.
func (ss SignedStatement) Verify(root *x509.Certificate) (*Statement, error) {
	if len(ss.Text) == 0 {
		return nil, errors.New("no quorum statement")
	}
	if err := pki.CheckMessageSignature(root, ss.Text, ss.Signature); err != nil {
		return nil, fmt.Errorf("the quorum statement is not signed by the root: %w", err)
	}
	s, err := ParseStatement(ss.Text)
	if err != nil {
		return nil, err
	}
	if got := hex.EncodeToString(sha256Of(root.Raw)); s.RootCertificateSHA256 != got {
		return nil, fmt.Errorf("the quorum statement names root certificate %s, not %s", s.RootCertificateSHA256, got)
	}
	return s, nil
}

func sha256Of(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}
