package registry

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// t0 is the tests' epoch: times are set explicitly so that history queries are exact.
var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// openTemp is a new registry in a temporary folder, journaling its facts in memory. When the
// test ends, its facts are replayed into another registry, which must equal it table by table:
// every registry test is also a test of its facts.
func openTemp(t testing.TB) *Registry {
	t.Helper()
	path := filepath.Join(t.TempDir(), "custos.db")
	r, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	j := &memJournal{}
	t.Cleanup(func() {
		if !t.Failed() && j.elsewhere == "" {
			j.checkReplay(t, path)
		}
	})
	return r.Journaled(j)
}

// writtenElsewhere says that another process writes r too, so its facts are not all in the
// test's journal and the test's end does not replay them.
func writtenElsewhere(r *Registry, why string) { r.journal.(*memJournal).elsewhere = why }

// journaled is r journaling its facts in memory, for tests that open registries themselves.
func journaled(r *Registry) *Registry { return r.Journaled(&memJournal{}) }

// memJournal keeps the facts a test's registry journals, encoded and decoded as a journal
// would.
type memJournal struct {
	mu    sync.Mutex
	facts []Fact
	// fail, when set, is returned instead of journaling.
	fail error
	// elsewhere, when set, says why the registry's changes are not all in this journal (another
	// process wrote too), so the test's end does not replay it.
	elsewhere string
}

func (j *memJournal) JournalFact(f Fact) (int64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail != nil {
		return 0, j.fail
	}
	b, err := json.Marshal(f)
	if err != nil {
		return 0, err
	}
	back, ok, err := DecodeFact(FactStep(f), b)
	if err != nil || !ok {
		return 0, fmt.Errorf("fact %s does not decode: %v", f.FactKind(), err)
	}
	j.facts = append(j.facts, back)
	return int64(len(j.facts)), nil
}

func (j *memJournal) DerivedFact(f Fact) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.facts = append(j.facts, f)
}

// checkReplay replays the journaled facts into a new registry and compares it with the one at
// path.
func (j *memJournal) checkReplay(t testing.TB, path string) {
	t.Helper()
	ctx := context.Background()
	skip := map[int64]bool{}
	for _, f := range j.facts {
		if u, ok := f.(*Uncommitted); ok {
			for _, s := range u.Seqs {
				skip[s] = true
			}
		}
	}
	rebuilt := filepath.Join(filepath.Dir(path), "rebuilt.db")
	p, err := NewReplay(ctx, rebuilt)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range j.facts {
		if skip[int64(i+1)] {
			continue
		}
		if err := p.Apply(ctx, f); err != nil {
			t.Errorf("replay fact %d (%s): %v", i+1, f.FactKind(), err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	diffs, err := Compare(ctx, path, rebuilt)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Errorf("the registry rebuilt from its facts differs (- live, + rebuilt): %s", d)
	}
}

// testCA is a CA made in memory for tests: a real certificate and key.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func randomSerial(t testing.TB) *big.Int {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	b[0] = 0x01 // never shrinks, as the ceremony makes them
	return new(big.Int).SetBytes(b)
}

func sign(t testing.TB, tmpl *x509.Certificate, parent *testCA, pub crypto.PublicKey, priv crypto.Signer) *x509.Certificate {
	t.Helper()
	p, signer := tmpl, priv
	if parent != nil {
		p, signer = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newRoot makes a self-signed root CA.
func newRoot(t testing.TB, cn string) *testCA {
	k := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: randomSerial(t), Subject: pkix.Name{CommonName: cn, Organization: []string{"Acme Medical"}},
		NotBefore: t0.AddDate(-1, 0, 0), NotAfter: t0.AddDate(24, 0, 0), IsCA: true, BasicConstraintsValid: true, MaxPathLen: 1,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	return &testCA{cert: sign(t, tmpl, nil, k.Public(), k), key: k}
}

// newSubCA makes an issuing CA under parent.
func newSubCA(t testing.TB, parent *testCA, cn string) *testCA {
	k := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: randomSerial(t), Subject: pkix.Name{CommonName: cn, Organization: []string{"Acme Medical"}},
		NotBefore: t0.AddDate(-1, 0, 0), NotAfter: t0.AddDate(10, 0, 0), IsCA: true, BasicConstraintsValid: true, MaxPathLen: 0,
		MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	return &testCA{cert: sign(t, tmpl, parent, k.Public(), k), key: k}
}

// leaf makes an end-entity certificate under ca for a fresh key.
func leaf(t testing.TB, ca *testCA, cn string, notBefore, notAfter time.Time, eku ...x509.ExtKeyUsage) *x509.Certificate {
	k := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: randomSerial(t), Subject: pkix.Name{CommonName: cn, SerialNumber: cn},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: eku}
	return sign(t, tmpl, ca, k.Public(), k)
}

func opsKey(id byte) KeyLocation {
	return KeyLocation{TokenLabel: "acme-ops", KeyID: []byte{0xa0, id}, Algorithm: "ecdsa-p256"}
}

// world is a registry with a root "acme-root-2026" and an issuing CA "ica-test".
type world struct {
	r    *Registry
	root *testCA
	ica  *testCA
}

func newWorld(t testing.TB) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{r: openTemp(t), root: newRoot(t, "Acme Medical Root CA 2026")}
	w.ica = newSubCA(t, w.root, "Acme Medical Device CA 1")
	if _, err := w.r.AddIssuer(ctx, Issuer{ID: "acme-root-2026", Kind: IssuerRoot, Certificate: w.root.cert.Raw,
		CeremonyID: "acme-root-2026", Key: KeyLocation{TokenLabel: "acme-root-2026", KeyID: []byte{1}, Algorithm: "ecdsa-p256"}, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.r.AddIssuer(ctx, Issuer{ID: "ica-test", Kind: IssuerIssuing, Certificate: w.ica.cert.Raw, ParentID: "acme-root-2026",
		CeremonyID: "acme-root-2026", Key: opsKey(1), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	return w
}

// newDevice makes a device with a real certificate from the world's issuing CA, valid from
// activated for five years, its key generated an hour before.
func (w *world) newDevice(t testing.TB, serial string, activated time.Time) (NewDevice, *x509.Certificate) {
	t.Helper()
	c := leaf(t, w.ica, serial, activated, activated.AddDate(5, 0, 0))
	cert, err := CertificateFromX509("ica-test", c)
	if err != nil {
		t.Fatal(err)
	}
	return NewDevice{
		Device:      Device{Serial: serial, Model: "InfusionPump X2", Owner: "St. Mary", Site: "Ward 3", IssuerID: "ica-test", RegisteredAt: activated},
		Certificate: cert,
		Key: DeviceKey{KeyID: []byte("dev-" + serial), PublicKeySHA256: PublicKeySHA256(c), TokenLabel: serial,
			GeneratedAt: activated.Add(-time.Hour), ActivatedAt: activated},
	}, c
}

func (w *world) register(t testing.TB, serial string, activated time.Time) (NewDevice, *x509.Certificate) {
	t.Helper()
	d, c := w.newDevice(t, serial, activated)
	if err := w.r.RegisterDevice(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	return d, c
}

func (w *world) startRun(t testing.TB, id, op string) {
	t.Helper()
	run := DecommissionRun{Run: Run{ID: id, Operation: op, Subject: "x", JournalPath: "journal/" + id + ".jsonl", StartedAt: t0},
		Technician: "Tess Tech", Witness: "Wes Witness"}
	if op == "fleet" {
		sum := sha256.Sum256([]byte("manifest"))
		run.ManifestPath, run.ManifestSHA256 = "fleet.csv", sum[:]
	}
	if _, err := w.r.StartDecommissionRun(context.Background(), run); err != nil {
		t.Fatal(err)
	}
}

// wantErr checks that err matches target (nil for success) and mentions every word in want.
func wantErr(t testing.TB, err, target error, want ...string) {
	t.Helper()
	if target == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want %v", target)
	}
	if !errors.Is(err, target) {
		t.Fatalf("error %q is not %v", err, target)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func collect[T any](t testing.TB, seq func(func(T, error) bool)) []T {
	t.Helper()
	var out []T
	for v, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// leafWithSerial is leaf with a chosen serial number.
func leafWithSerial(t testing.TB, ca *testCA, cn string, serial *big.Int, notBefore, notAfter time.Time) *x509.Certificate {
	k := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn, SerialNumber: cn},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature}
	return sign(t, tmpl, ca, k.Public(), k)
}
