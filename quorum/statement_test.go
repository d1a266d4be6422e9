package quorum

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-pki/custos/pki"
)

// testRootCA is a software root key and its certificate, standing in for the root on its token.
func testRootCA(t *testing.T, key crypto.Signer) *x509.Certificate {
	t.Helper()
	serial, err := pki.NewSerial(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := pki.IssueRoot(pki.RootCA{CommonName: "Acme Medical Root CA 2026", Organization: "Acme Medical",
		Country: "US", ValidityYears: 20}, serial, key)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// testStatement is a statement of the test quorum for root.
func testStatement(t *testing.T, root *x509.Certificate) Statement {
	t.Helper()
	_, _, p := testQuorum(t)
	sum := sha256.Sum256(root.Raw)
	p.RootSHA256 = sum[:]
	s := StatementOf(p)
	s.Seq = 1
	s.PlanSHA256 = strings.Repeat("ab", 32)
	s.OperationsToken = "acme-ops"
	s.Module = Module{Path: "/usr/lib/softhsm/libsofthsm2.so", SHA256: strings.Repeat("cd", 32)}
	s.RootToken = TokenIdentity{Label: "acme-root-2026", Manufacturer: "SoftHSM project", Model: "SoftHSM v2", Serial: "8f2e4c1a9b7d3e05"}
	s.RootKeyID = "0102030405060708"
	s.Holders = []Holder{{Token: s.RootToken, KeyID: s.RootKeyID},
		{Token: TokenIdentity{Label: "acme-root-b", Manufacturer: "SoftHSM project", Model: "SoftHSM v2", Serial: "1c0ffee000000002"}, KeyID: s.RootKeyID}}
	s.Run = "acme-root-2026-root-20260101T000000Z-abcdef"
	s.SignedAt = time.Date(2026, 1, 1, 10, 30, 15, 123456789, time.FixedZone("CET", 3600))
	return s
}

func TestStatementEncoding(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s := testStatement(t, testRootCA(t, key))
	text, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(text, []byte(`{"type":"custos-quorum-statement","version":2,"root":"acme-root-2026",`)) {
		t.Errorf("encoding starts %s", text[:80])
	}
	if !bytes.Contains(text, []byte(`"signed_at":"2026-01-01T09:30:15Z"`)) {
		t.Errorf("time not in UTC to the second: %s", text)
	}
	got, err := ParseStatement(text)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := got.Encode(); !bytes.Equal(again, text) {
		t.Errorf("a parsed statement encodes as\n%s\nnot\n%s", again, text)
	}
	if err := SameQuorum(got.Params(), s.Params()); err != nil {
		t.Errorf("parsed quorum differs: %v", err)
	}

	replace := func(old, new string) []byte { return bytes.Replace(text, []byte(old), []byte(new), 1) }
	for _, tt := range []struct {
		name string
		text []byte
		want string
	}{
		{"a space", replace(`"epoch":2`, `"epoch": 2`), "canonical encoding"},
		{"a duplicated key", replace(`"epoch":2,`, `"epoch":2,"epoch":2,`), "canonical encoding"},
		{"fields reordered", replace(`"version":2,"root":"acme-root-2026"`, `"root":"acme-root-2026","version":2`), "canonical encoding"},
		{"upper-case hex", replace(`"plan_sha256":"abab`, `"plan_sha256":"ABab`), "is not lower-case hex"},
		{"an unknown field", replace(`"seq":1,`, `"seq":1,"extra":true,`), "unknown field"},
		{"a newer version", replace(`"version":2`, `"version":3`), "version 3; this Custos reads versions 1 to 2"},
		{"another type", replace(`custos-quorum-statement`, `custos-attestation`), `type "custos-attestation"`},
		{"threshold above the custodians", replace(`"threshold":3`, `"threshold":6`), "threshold 6 of 5 custodians"},
		{"a short digest", replace(`"secret_digest":"`, `"secret_digest":"00`), "secret digest has 33 bytes, not 32"},
		{"two values", append(bytes.Clone(text), []byte(" {}")...), "more than one JSON value"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseStatement(tt.text); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseStatement: %v, want %q", err, tt.want)
			}
		})
	}
}

// Every algorithm a root can have signs a statement that verifies under its certificate, and
// under no other; an edited byte fails. openssl checks the signature independently.
func TestStatementSignatures(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	keys := map[string]crypto.Signer{"ecdsa-p256": p256, "ecdsa-p384": p384, "ed25519": ed}
	if !testing.Short() {
		rsaKey, err := rsa.GenerateKey(rand.Reader, 3072)
		if err != nil {
			t.Fatal(err)
		}
		keys["rsa-3072"] = rsaKey
	}
	other := testRootCA(t, p256)
	for name, key := range keys {
		t.Run(name, func(t *testing.T) {
			root := testRootCA(t, key)
			s := testStatement(t, root)
			ss, err := s.Sign(key, root)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ss.Verify(root)
			if err != nil || got.Seq != 1 || got.Module != s.Module {
				t.Fatalf("Verify: %+v, %v", got, err)
			}
			edited := SignedStatement{Text: bytes.Replace(ss.Text, []byte(`"threshold":3`), []byte(`"threshold":2`), 1), Signature: ss.Signature}
			if _, err := edited.Verify(root); err == nil || !strings.Contains(err.Error(), "not signed by the root") {
				t.Errorf("an edited statement: %v", err)
			}
			if _, err := ss.Verify(other); err == nil {
				t.Error("the statement verifies under another root")
			}
			if _, err := s.Sign(key, other); err == nil || !strings.Contains(err.Error(), "names root certificate") {
				t.Errorf("signing for another root's certificate: %v", err)
			}
			opensslVerify(t, root, ss)
		})
	}
}

// opensslVerify checks a statement's signature with the root's public key: openssl dgst with
// the hash the key signs with, or openssl pkeyutl -rawin for Ed25519, which signs the message.
func opensslVerify(t *testing.T, root *x509.Certificate, ss SignedStatement) {
	t.Helper()
	dir := t.TempDir()
	pub, err := x509.MarshalPKIXPublicKey(root.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"pub.pem": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
		"statement.json": ss.Text, "statement.sig": ss.Signature}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	alg, _ := pki.MessageSignatureAlgorithm(root.PublicKey)
	args := []string{"dgst", "-sha256", "-verify", filepath.Join(dir, "pub.pem"), "-signature", filepath.Join(dir, "statement.sig")}
	switch {
	case alg == x509.PureEd25519:
		args = []string{"pkeyutl", "-verify", "-pubin", "-inkey", filepath.Join(dir, "pub.pem"), "-rawin", "-sigfile", filepath.Join(dir, "statement.sig"), "-in"}
	case strings.Contains(alg.String(), "384"):
		args[1] = "-sha384"
	}
	out, err := exec.Command("openssl", append(args, filepath.Join(dir, "statement.json"))...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verified") && !strings.Contains(string(out), "Success") {
		t.Errorf("openssl %s: %v\n%s", strings.Join(args[:2], " "), err, out)
	}
}

// A version 1 statement, written before statements listed the tokens holding the root, still
// parses, re-encodes to the bytes its root signed, and names its root token as the one holder.
func TestStatementVersion1(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	root := testRootCA(t, key)
	s := testStatement(t, root)
	s.Version, s.Holders = 1, nil
	ss, err := s.Sign(key, root)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(ss.Text, []byte(`"version":1,`)) || bytes.Contains(ss.Text, []byte("holders")) {
		t.Fatalf("a version 1 statement encodes as %s", ss.Text)
	}
	got, err := ss.Verify(root)
	if err != nil {
		t.Fatal(err)
	}
	if h := got.HolderList(); len(h) != 1 || h[0].Token != s.RootToken || h[0].KeyID != s.RootKeyID {
		t.Errorf("holders of a version 1 statement: %+v", h)
	}
}

func TestStatementRefusesIncomplete(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	root := testRootCA(t, key)
	for name, edit := range map[string]func(s *Statement){
		"no module":               func(s *Statement) { s.Module.Path = "" },
		"no module hash":          func(s *Statement) { s.Module.SHA256 = "" },
		"no root token":           func(s *Statement) { s.RootToken.Label = "" },
		"no holders":              func(s *Statement) { s.Holders = nil },
		"a holder twice":          func(s *Statement) { s.Holders[1] = s.Holders[0] },
		"a holder without key id": func(s *Statement) { s.Holders[1].KeyID = "" },
		"no run":                  func(s *Statement) { s.Run = "" },
		"sequence 0":              func(s *Statement) { s.Seq = 0 },
		"a share twice":           func(s *Statement) { s.Custodians[1].Number = s.Custodians[0].Number },
		"a bad commitment": func(s *Statement) {
			s.Custodians[2].Commitment = hex.EncodeToString(make([]byte, 31))
		},
	} {
		s := testStatement(t, root)
		edit(&s)
		if _, err := s.Sign(key, root); err == nil {
			t.Errorf("%s: signed", name)
		}
	}
}
