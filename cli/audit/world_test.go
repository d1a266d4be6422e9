package audit

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// world is a workspace as ceremonies leave it, made with software keys (the auditor's
// commands need no HSM): a root registered in the registry, its record signer, and records
// of runs entered in the record log by the run layer itself.
type world struct {
	t         *testing.T
	dir       string // the workspace
	root      *x509.Certificate
	rootKey   *ecdsa.PrivateKey
	signer    record.Signer
	signerKey *ecdsa.PrivateKey
	rootPEM   string
	n         int
}

func newWorld(t *testing.T, name string) *world {
	t.Helper()
	w := &world{t: t, dir: filepath.Join(t.TempDir(), name+"-ws")}
	w.rootKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := pki.NewSerial(rand.Reader)
	root, _, err := pki.IssueRoot(pki.RootCA{CommonName: name + " Root CA", Organization: "Acme Medical", Country: "US", ValidityYears: 20}, serial, w.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	w.root = root
	w.signerKey, _ = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	serial, _ = pki.NewSerial(rand.Reader)
	cert, _, err := pki.Issue(pki.RecordSigner{CommonName: name + " Ceremony Records", Organization: "Acme Medical", ValidityYears: 5, EmailProtection: true},
		serial, w.signerKey.Public(), pki.Issuer{Certificate: root, Signer: w.rootKey})
	if err != nil {
		t.Fatal(err)
	}
	w.signer = record.Signer{Key: w.signerKey, Certificate: cert, Chain: []*x509.Certificate{root}}
	env := w.open()
	defer env.Close()
	// The root is registered as a ceremony would, its fact in a journal of its own.
	if _, err := w.journaled(env).AddIssuer(context.Background(), registry.Issuer{ID: name + "-root", Kind: registry.IssuerRoot, Certificate: root.Raw,
		CeremonyID: name + "-root", Key: registry.KeyLocation{TokenLabel: name + "-root", KeyID: []byte{1}, Algorithm: "ecdsa-p256"}}); err != nil {
		t.Fatal(err)
	}
	w.rootPEM = filepath.Join(t.TempDir(), name+"-root.pem")
	os.WriteFile(w.rootPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}), 0o644)
	return w
}

// journaled is env's registry writing its facts to a journal of their own in the workspace,
// as a run's registry does; the journal is closed when the test ends.
func (w *world) journaled(env run.Env) *registry.Registry {
	w.t.Helper()
	id := run.NewID(env, "setup", "acme")
	j, err := record.CreateJournal(env.JournalPath(id), id)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { j.Close() })
	return env.Registry.Journaled(run.JournalFacts(j))
}

func (w *world) open() run.Env {
	env, err := run.Open(context.Background(), w.dir)
	if err != nil {
		w.t.Fatal(err)
	}
	return env
}

// record runs a short run of kind and writes its record, logged as the run layer logs every
// run: the root attests a quorum kind. It returns the record's path.
func (w *world) record(kind string) string {
	w.t.Helper()
	ctx := context.Background()
	env := w.open()
	defer env.Close()
	w.n++
	id := run.NewID(env, kind, "acme")
	j, err := record.CreateJournal(env.JournalPath(id), id)
	if err != nil {
		w.t.Fatal(err)
	}
	defer j.Close()
	if err := j.Note(kind+".step", record.System, struct {
		N int `json:"n"`
	}{w.n}); err != nil {
		w.t.Fatal(err)
	}
	seal := run.LogSeal{Kind: kind, RootID: "acme-root", Root: w.root}
	if record.ClaimsQuorum(kind) {
		seal.RootKey = w.rootKey
	}
	lp, err := run.EnterLog(ctx, env, j, seal, w.signer)
	if err != nil {
		w.t.Fatal(err)
	}
	jb, _ := j.Bytes()
	c := &record.Ceremony{ID: id, Kind: kind, Root: "acme-root", Outcome: "completed", Threshold: 2, Custodians: 3, Log: lp}
	path := env.RecordPath(id)
	if err := record.WriteCeremony(ctx, path, c, jb, w.signer); err != nil {
		w.t.Fatal(err)
	}
	return path
}

// crl writes a CRL of the root numbered n into the workspace's crl folder, revoking the record
// signer at revokedAt when it is not zero.
func (w *world) crl(n int64, revokedAt time.Time) string {
	w.t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(n), ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(24 * time.Hour)}
	if !revokedAt.IsZero() {
		tmpl.RevokedCertificateEntries = []x509.RevocationListEntry{{SerialNumber: w.signer.Certificate.SerialNumber, RevocationTime: revokedAt}}
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, w.root, w.rootKey)
	if err != nil {
		w.t.Fatal(err)
	}
	path := filepath.Join(w.dir, "crl", "acme-root-"+big.NewInt(n).String()+".crl")
	if err := os.WriteFile(path, der, 0o644); err != nil {
		w.t.Fatal(err)
	}
	return path
}
