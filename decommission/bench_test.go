package decommission

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-pki/custos/internal/procstat"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
	"github.com/custos-pki/custos/workspace"
)

// crlWorld is a registry with n revoked device certificates of one issuing CA whose key is
// a software ECDSA P-384 key (one signature per CRL: the HSM's part is not what is measured).
type crlWorld struct {
	reg    *registry.Registry
	ws     *workspace.Workspace
	issuer pki.Issuer
	serial func(i int) *big.Int
}

func newCRLWorld(b testing.TB, dir string, n int) *crlWorld {
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rootKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	sn, _ := pki.NewSerial(rand.Reader)
	root, _, err := pki.IssueRoot(pki.RootCA{CommonName: "Bench Root", Organization: "Bench", Country: "US", ValidityYears: 20}, sn, rootKey)
	if err != nil {
		b.Fatal(err)
	}
	sn, _ = pki.NewSerial(rand.Reader)
	ica, _, err := pki.Issue(pki.IssuingCA{CommonName: "Bench Devices CA", Organization: "Bench", Country: "US", ValidityYears: 10}, sn, key.Public(), pki.Issuer{Certificate: root, Signer: rootKey})
	if err != nil {
		b.Fatal(err)
	}
	// The registry is built once and reused; the issuer's certificate is replaced each run
	// (the CRL only needs its subject and key).
	os.RemoveAll(dir)
	ws, err := workspace.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	reg, err := registry.Open(ctx, ws.DBPath())
	if err != nil {
		b.Fatal(err)
	}
	reg = reg.Journaled(discardFacts{}) // a benchmark's million devices need no journal
	reg.AddIssuer(ctx, registry.Issuer{ID: "bench-root", Kind: registry.IssuerRoot, Certificate: root.Raw, CeremonyID: "bench-root",
		Key: registry.KeyLocation{TokenLabel: "bench-root", KeyID: []byte{1}, Algorithm: "ecdsa-p384"}})
	reg.AddIssuer(ctx, registry.Issuer{ID: "ica-bench", Kind: registry.IssuerIssuing, Certificate: ica.Raw, ParentID: "bench-root",
		CeremonyID: "bench-root", Key: registry.KeyLocation{TokenLabel: "ops", KeyID: []byte{2}, Algorithm: "ecdsa-p384"}})
	w := &crlWorld{reg: reg, ws: ws, issuer: pki.Issuer{Certificate: ica, Signer: key}}
	w.serial = func(i int) *big.Int {
		return new(big.Int).SetBytes([]byte{0x01, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i), 0x5a, 0xa5, byte(i * 7)})
	}
	// One real device certificate, its serial rewritten per device.
	devKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl, _, err := pki.Issue(pki.DeviceIdentity{SerialNumber: "TEMPLATE", Manufacturer: "Bench", ValidityYears: 5}, w.serial(1<<30), devKey.Public(), w.issuer)
	if err != nil {
		b.Fatal(err)
	}
	at := strings.Index(string(tmpl.Raw), string(w.serial(1<<30).Bytes()))
	start := time.Now()
	_, err = reg.ImportDevices(ctx, func(yield func(registry.NewDevice, error) bool) {
		for i := 0; i < n; i++ {
			s := w.serial(i).Bytes()
			der := append([]byte(nil), tmpl.Raw...)
			copy(der[at:], s)
			d := registry.NewDevice{
				Device:      registry.Device{Serial: fmt.Sprintf("DEV-%07d", i), Model: "Pump", IssuerID: "ica-bench"},
				Certificate: registry.Certificate{Serial: s, Subject: tmpl.Subject.String(), NotBefore: tmpl.NotBefore, NotAfter: tmpl.NotAfter, DER: der},
				Key:         registry.DeviceKey{PublicKeySHA256: sha256.Sum256(s)},
				Revoked:     &registry.Revocation{RevokedAt: time.Now(), Reason: pki.ReasonCessationOfOperation},
			}
			if !yield(d, nil) {
				return
			}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("registered %d revoked devices in %v", n, time.Since(start))
	return w
}

// BenchmarkCRLPublish1M signs the CRLs of an issuing CA with 1,000,000 revoked certificates
// straight from the registry into crl/, on one registry: "full" is the full CRL alone, as
// `custos crl publish` does (target: ≤2 s and ≤300 MB); "shards-1000" is the full CRL and
// 1,000 shards of it, each written to its own file (target: at most twice "full" in time,
// and memory within its).
func BenchmarkCRLPublish1M(b *testing.B) {
	w := newCRLWorld(b, filepath.Join(os.TempDir(), fmt.Sprintf("custos-crl-bench-s%d-1000000", registry.SchemaVersion())), 1_000_000)
	defer w.reg.Close()
	defer w.ws.Close()
	ctx := context.Background()
	full := func(b *testing.B) {
		op, err := run.StartOperation(ctx, run.Env{Registry: w.reg, Workspace: w.ws}, "crl-publish", "ica-bench")
		if err != nil {
			b.Fatal(err)
		}
		defer op.Close()
		meter := procstat.Start(b)
		for b.Loop() {
			c, err := run.SignCRL(ctx, op, registry.Issuer{ID: "ica-bench"}, w.issuer, run.CRLRequest{NextUpdate: 30 * 24 * time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			if c.Entries != 1_000_000 {
				b.Fatalf("%d entries", c.Entries)
			}
			os.Remove(c.DERPath)
			os.Remove(c.PEMPath)
		}
		meter.Report(b)
	}
	shards := func(b *testing.B) {
		// The same issuer, as the registry has it once it splits its CRL into 1,000 shards.
		sharded := registry.Issuer{ID: "ica-bench", CRLBaseURL: "http://pki.bench.example/crl", CRLShards: 1000}
		var largest int
		op, err := run.StartOperation(ctx, run.Env{Registry: w.reg, Workspace: w.ws}, "crl-publish", "ica-bench")
		if err != nil {
			b.Fatal(err)
		}
		defer op.Close()
		meter := procstat.Start(b)
		for b.Loop() {
			c, err := run.SignCRL(ctx, op, sharded, w.issuer, run.CRLRequest{NextUpdate: 30 * 24 * time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			if c.Entries != 1_000_000 || c.Shards != 1000 {
				b.Fatalf("%d entries, %d shards", c.Entries, c.Shards)
			}
			if len(c.OverBudget) > 0 {
				b.Fatalf("%d shards pass %d bytes", len(c.OverBudget), pki.DefaultShardBudget)
			}
			largest = c.LargestSize
			os.RemoveAll(c.SetDir)
		}
		meter.Report(b)
		b.ReportMetric(float64(largest)/1024, "shard-max-KiB")
	}
	// Twice each, in turn, so that each is measured both after the registry's set-up and
	// after the other: what the process holds from before shows, and cancels out.
	for range 2 {
		b.Run("full", full)
		b.Run("shards-1000", shards)
	}
}

// BenchmarkOpenSSLGenCRL1M is `openssl ca -gencrl` over the same 1,000,000 serials, for
// comparison; peak-MB is the openssl process's maximum resident memory.
func BenchmarkOpenSSLGenCRL1M(b *testing.B) {
	if _, err := exec.LookPath("openssl"); err != nil {
		b.Skip("openssl not installed")
	}
	dir := b.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	sn, _ := pki.NewSerial(rand.Reader)
	ca, _, err := pki.IssueRoot(pki.RootCA{CommonName: "Bench Devices CA", Organization: "Bench", Country: "US", ValidityYears: 10}, sn, key)
	if err != nil {
		b.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(filepath.Join(dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), 0o644)
	os.WriteFile(filepath.Join(dir, "ca.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	f, _ := os.Create(filepath.Join(dir, "index.txt"))
	bw := bufio.NewWriter(f)
	exp := time.Now().AddDate(5, 0, 0).UTC().Format("060102150405Z")
	rev := time.Now().Add(-time.Hour).UTC().Format("060102150405Z")
	for i := 0; i < 1_000_000; i++ {
		fmt.Fprintf(bw, "R\t%s\t%s,cessationOfOperation\t%X\tunknown\t/CN=DEV-%07d\n", exp, rev, []byte{0x01, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i), 0x5a, 0xa5, byte(i * 7)}, i)
	}
	bw.Flush()
	f.Close()
	os.WriteFile(filepath.Join(dir, "crlnumber"), []byte("01\n"), 0o644)
	conf := fmt.Sprintf("[ca]\ndefault_ca=b\n[b]\ndatabase=%s/index.txt\ncertificate=%s/ca.pem\nprivate_key=%s/ca.key\ncrlnumber=%s/crlnumber\ndefault_md=sha384\ndefault_crl_days=30\n", dir, dir, dir, dir)
	os.WriteFile(filepath.Join(dir, "ca.cnf"), []byte(conf), 0o644)
	b.ResetTimer()
	var openssl procstat.Children
	for i := 0; i < b.N; i++ {
		openssl.Run(b, exec.Command("openssl", "ca", "-config", filepath.Join(dir, "ca.cnf"), "-gencrl", "-out", filepath.Join(dir, "crl.pem")))
	}
	openssl.Report(b)
}

// BenchmarkFleet100k retires 100,000 unreachable devices from a manifest: revocations in
// batches, one CRL and the signed fleet record with all of them. Issue 18's bound: ≤ 10 s
// and ≤ 300 MB peak.
func BenchmarkFleet100k(b *testing.B) {
	const n = 100_000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		f := newFixture(b)
		serials := registerMany(b, f, n)
		text := manifestOf(serials, Unreachable)
		path := writeFile(b, filepath.Join(f.dir, "fleet.csv"), text)
		meter := procstat.Start(b)
		b.StartTimer()
		m, err := ParseManifest(strings.NewReader(text))
		if err != nil {
			b.Fatal(err)
		}
		res, err := Fleet(context.Background(), f.env, m, FleetRequest{ManifestPath: path, Technician: "T", Validator: "Vic Validator", Witness: "W", OpsPIN: []byte(opsPIN)})
		if err != nil {
			b.Fatal(err)
		}
		if res.Decommissioned != n {
			b.Fatalf("%d decommissioned", res.Decommissioned)
		}
		b.StopTimer()
		meter.Report(b)
		info, _ := os.Stat(res.RecordPath)
		b.ReportMetric(float64(info.Size())/1e6, "record-MB")
	}
}

// discardFacts is a registry.Journal that keeps nothing, for benchmark registries built
// without a run.
type discardFacts struct{}

func (discardFacts) JournalFact(registry.Fact) (int64, error) { return 0, nil }
