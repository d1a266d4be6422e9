package record

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/custos-pki/custos/internal/version"
	"time"

	"github.com/custos-pki/custos/pki"
)

// testSigner is a software root and record signer, as a ceremony would make on tokens.
func testSigner(t testing.TB, name string) (Signer, *x509.Certificate) {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	serial, _ := pki.NewSerial(rand.Reader)
	root, _, err := pki.IssueRoot(pki.RootCA{CommonName: name + " Root CA", Organization: "Acme Medical", Country: "US", ValidityYears: 20}, serial, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ = pki.NewSerial(rand.Reader)
	cert, _, err := pki.Issue(pki.RecordSigner{CommonName: name + " Ceremony Records", Organization: "Acme Medical",
		ValidityYears: 5, EmailProtection: true}, serial, key.Public(), pki.Issuer{Certificate: root, Signer: rootKey})
	if err != nil {
		t.Fatal(err)
	}
	testRootKeys.Store(root, rootKey)
	return Signer{Key: key, Certificate: cert, Chain: []*x509.Certificate{root}}, root
}

// testRootKeys are the test roots' keys, by certificate, for the tests that log records.
var testRootKeys sync.Map

// testLog is a record's place in a short record log: checkpointed by the record signer of s
// and, for a quorum kind, co-signed and attested by its root.
func testLog(t testing.TB, s Signer, kind string, journal []byte) *LogProof {
	t.Helper()
	if !ClaimsQuorum(kind) {
		return logged(t, s, s.Key, nil, nil, kind, journal)
	}
	root := s.Chain[len(s.Chain)-1]
	rootKey, ok := testRootKeys.Load(root)
	if !ok {
		t.Fatal("no key for the test root")
	}
	return logged(t, s, s.Key, root, rootKey.(crypto.Signer), kind, journal)
}

type testPayload struct {
	SHA256 string `json:"sha256"`
	Note   string `json:"note"`
}

// testJournal writes a short journal of a root ceremony.
func testJournal(t testing.TB, steps int) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "j.jsonl")
	j, err := CreateJournal(path, "acme-root-2026")
	if err != nil {
		t.Fatal(err)
	}
	who := Actor{Name: "Zoë Ångström", Role: "custodian"}
	for i := 0; i < steps; i++ {
		j.Begin(fmt.Sprintf("root.step-%d", i), who, nil)
		j.Done(fmt.Sprintf("root.step-%d", i), who, testPayload{SHA256: strings.Repeat("ab", 32), Note: "李雷 confirmed"})
	}
	b, _ := j.Bytes()
	j.Close()
	return b
}

func testCeremony() *Ceremony {
	return &Ceremony{
		ID: "acme-root-2026", Kind: "root", Root: "acme-root-2026", Outcome: "completed", Threshold: 3, Custodians: 5,
		Started: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC), Finished: time.Date(2026, 11, 25, 11, 30, 0, 0, time.UTC),
		Participants: []Actor{{"Ada Admin", "administrator"}, {"Wes Witness", "witness"}, {"Zoë Ångström", "custodian"}, {"李雷", "custodian"}},
		Workstation:  []Field{{"Host", "ceremony-ws-1"}, {"Network", "air-gapped: no interface up besides loopback"}},
		HSM:          []Field{{"Manufacturer", "SoftHSM project"}, {"Model", "SoftHSM v2"}, {"Serial", "a1b2c3d4"}},
		Certificates: []Cert{{Role: "root CA", Subject: "CN=Acme Medical Root CA 2026,O=Acme Medical,C=US", Serial: "01AB",
			SHA256: strings.Repeat("4d", 32), Algorithm: "ecdsa-p384", Fingerprint: "aardvark adroitness"}},
		Commitments: []Commitment{{1, "Cara Cruz", strings.Repeat("c1", 32)}, {2, "李雷", strings.Repeat("c2", 32)}},
		Horizon:     []string{"ecdsa-p384 is quantum-vulnerable: NIST IR 8547 deprecates it after 2030. Acknowledged by Ada Admin."},
	}
}

func writeSigned(t *testing.T, s Signer) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "record.pdf")
	c, journal := testCeremony(), testJournal(t, 40)
	c.Log = testLog(t, s, c.Kind, journal)
	if err := WriteCeremony(context.Background(), path, c, journal, s); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	return path, b
}

func TestCeremonyRecordReadsAndSigns(t *testing.T) {
	s, root := testSigner(t, "Acme")
	path, _ := writeSigned(t, s)
	txt, err := exec.Command("pdftotext", "-layout", path, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v %s", err, txt)
	}
	wants := []string{"Zoë Ångström", "李雷", "acme-root-2026", "4d4d4d4d 4d4d4d4d 4d4d4d4d", "page 1 of", "Share commitments", "Signatures",
		// the build that ran it, from the journal's first entry, its hash in groups
		"Software", "Tool (ran the run)", version.Current().String()}
	for _, want := range append(wants, strings.Fields(groupHex(version.Current().SHA256))...) {
		if !strings.Contains(string(txt), want) {
			t.Errorf("record text lacks %q", want)
		}
	}
	out, _ := exec.Command("pdfsig", path).CombinedOutput()
	for _, want := range []string{"Signature is Valid.", "Total document signed"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("pdfsig lacks %q:\n%s", want, out)
		}
	}
	// With the root trusted, the signer's certificate validates too.
	nss := t.TempDir()
	rootPEM := filepath.Join(nss, "root.pem")
	os.WriteFile(rootPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}), 0o644)
	for _, args := range [][]string{{"-d", "sql:" + nss, "-N", "--empty-password"}, {"-d", "sql:" + nss, "-A", "-n", "root", "-t", "CT,C,C", "-i", rootPEM}} {
		if o, err := exec.Command("certutil", args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil: %v %s", err, o)
		}
	}
	out, _ = exec.Command("pdfsig", "-nssdir", "sql:"+nss, path).CombinedOutput()
	if !strings.Contains(string(out), "Certificate is Trusted.") {
		t.Errorf("pdfsig with the root trusted:\n%s", out)
	}
}
