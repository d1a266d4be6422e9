package pki

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-pki/custos/keyalg"
)

// testNow is the fixed time tests issue at, so that every validity and CRL date is known.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newKey makes a software key of alg, as an HSM would hand back a crypto.Signer.
func newKey(t testing.TB, alg keyalg.Algorithm) crypto.Signer {
	t.Helper()
	k, err := generateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newSerial(t testing.TB) *big.Int {
	t.Helper()
	s, err := NewSerial(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// hierarchy is a root, an issuing CA under it, and their keys.
type hierarchy struct {
	root, issuing       *x509.Certificate
	rootKey, issuingKey crypto.Signer
}

func (h hierarchy) rootIssuer() Issuer { return Issuer{Certificate: h.root, Signer: h.rootKey} }
func (h hierarchy) issuingIssuer() Issuer {
	return Issuer{Certificate: h.issuing, Signer: h.issuingKey}
}

func newHierarchy(t testing.TB, alg keyalg.Algorithm) hierarchy {
	t.Helper()
	h := hierarchy{rootKey: newKey(t, alg), issuingKey: newKey(t, alg)}
	var err error
	h.root, _, err = IssueRoot(RootCA{CommonName: "Acme Medical Root CA 2026", Organization: "Acme Medical", Country: "US", NotBefore: testNow, ValidityYears: 25}, newSerial(t), h.rootKey)
	if err != nil {
		t.Fatalf("root %s: %v", alg, err)
	}
	h.issuing, _, err = Issue(IssuingCA{CommonName: "Acme Medical Devices CA 1", Organization: "Acme Medical", Country: "US", NotBefore: testNow, ValidityYears: 20,
		CRLDistributionPoint: "http://pki.acme.example/root.crl", ExtKeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}, newSerial(t), h.issuingKey.Public(), h.rootIssuer())
	if err != nil {
		t.Fatalf("issuing CA %s: %v", alg, err)
	}
	return h
}

// openssl runs the openssl command line and returns its combined output, failing the test
// if it exits with an error.
func openssl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := opensslResult(args...)
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func opensslResult(args ...string) (string, error) {
	cmd := exec.Command("openssl", args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.String(), err
}

// writePEM writes der as a PEM file of the given type in dir and returns its path.
func writePEM(t testing.TB, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeCert(t testing.TB, dir, name string, c *x509.Certificate) string {
	t.Helper()
	return writePEM(t, dir, name, "CERTIFICATE", c.Raw)
}

func writeString(t testing.TB, s string) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "*.pem")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}
