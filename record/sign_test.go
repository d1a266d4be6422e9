package record

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos-pki/custos/pki"
)

// countingSigner counts the signatures its key makes, as an HSM would bill them.
type countingSigner struct {
	crypto.Signer
	n atomic.Int32
}

func (c *countingSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	c.n.Add(1)
	return c.Signer.Sign(r, d, o)
}

// signerWithKey is a record signer with the given key, certified by a software root.
func signerWithKey(t *testing.T, key crypto.Signer) (Signer, *x509.Certificate) {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := pki.NewSerial(rand.Reader)
	root, _, err := pki.IssueRoot(pki.RootCA{CommonName: "Acme Root CA", Organization: "Acme Medical", Country: "US", ValidityYears: 20}, serial, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ = pki.NewSerial(rand.Reader)
	cert, _, err := pki.Issue(pki.RecordSigner{CommonName: "Acme Records", ValidityYears: 5, EmailProtection: true},
		serial, key.Public(), pki.Issuer{Certificate: root, Signer: rootKey})
	if err != nil {
		t.Fatal(err)
	}
	testRootKeys.Store(root, rootKey)
	return Signer{Key: key, Certificate: cert, Chain: []*x509.Certificate{root}}, root
}

// The placeholder is measured from the signer's own key and certificates: the signature fits
// it with little to spare, whatever the algorithm, and the key signs once per record.
func TestSignaturePlaceholderFitsEachKey(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsa3072, _ := rsa.GenerateKey(rand.Reader, 3072)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	keys := map[string]crypto.Signer{"ecdsa-p256": p256, "ecdsa-p384": p384, "rsa-3072": rsa3072, "ed25519": ed}
	journal := testJournal(t, 2)
	for name, key := range keys {
		t.Run(name, func(t *testing.T) {
			counted := &countingSigner{Signer: key}
			s, root := signerWithKey(t, counted)
			ph, err := newPlaceholder(&s)
			if err != nil {
				t.Fatal(err)
			}
			if counted.n.Load() != 0 {
				t.Fatal("measuring the placeholder used the key")
			}
			for range 5 { // ECDSA signatures vary in length: several records, each must fit
				path := filepath.Join(t.TempDir(), "r.pdf")
				c := testCeremony()
				plain := s // the log's checkpoint is signed by the key uncounted
				plain.Key = key
				c.Log = testLog(t, plain, c.Kind, journal)
				if err := WriteCeremony(context.Background(), path, c, journal, s); err != nil {
					t.Fatal(err)
				}
				file, _ := os.ReadFile(path)
				_, sig, err := signedParts(file)
				if err != nil {
					t.Fatal(err)
				}
				if spare := ph.size - len(sig); spare < 0 || spare > timeSlack+4 {
					t.Errorf("a %d-byte signature in a %d-byte placeholder", len(sig), ph.size)
				}
				if rep := Verify(file, []*x509.Certificate{root}); !rep.OK() {
					t.Errorf("the record does not verify: %+v", rep.Checks)
				}
			}
			if n := counted.n.Load(); n != 5 {
				t.Errorf("the key signed %d times for 5 records", n)
			}
		})
	}
}

// A certificate without id-kp-documentSigning never gets a record signed, and the key is not
// asked to sign.
func TestSignRefusesASignerWithoutDocumentSigning(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	counted := &countingSigner{Signer: key}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "Acme Code Signing"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}, UnknownExtKeyUsage: []asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 37}}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	err = WriteCeremony(context.Background(), filepath.Join(t.TempDir(), "r.pdf"), testCeremony(), testJournal(t, 1), Signer{Key: counted, Certificate: cert})
	if err == nil || !strings.Contains(err.Error(), "1.3.6.1.5.5.7.3.36") {
		t.Errorf("signing with a code-signing certificate: %v", err)
	}
	if counted.n.Load() != 0 {
		t.Error("the key was asked to sign")
	}
	if hasDocumentSigning(cert) {
		t.Error("a certificate with id-kp-codeSigning and 1.3.6.1.5.5.7.3.37 reads as document signing")
	}
	s, _ := signerWithKey(t, key)
	if !hasDocumentSigning(s.Certificate) {
		t.Error("the record-signer profile's certificate does not read as document signing")
	}
}

// A cancelled context stops before the key signs.
func TestSignStopsOnCancel(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	counted := &countingSigner{Signer: key}
	s, _ := signerWithKey(t, counted)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	path := filepath.Join(t.TempDir(), "r.pdf")
	if err := WriteCeremony(ctx, path, testCeremony(), testJournal(t, 1), s); err == nil || counted.n.Load() != 0 {
		t.Errorf("cancelled: %v, %d signatures", err, counted.n.Load())
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("a record was written")
	}
}
