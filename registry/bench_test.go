package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"iter"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/custos-pki/custos/pki"
)

// benchFixtureVersion changes whenever benchDevices makes different data, so that a cached
// benchmark registry is rebuilt.
const benchFixtureVersion = 1

// benchSerial is device i's certificate serial: 16 bytes, first 0x01 (as the ceremony makes
// them), then a mix of i, so that serials arrive in random order as real ones do.
func benchSerial(i int) SerialNumber {
	s := make([]byte, 16)
	s[0] = 0x01
	x := uint64(i) + 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	binary.BigEndian.PutUint64(s[1:], x^x>>31)
	binary.BigEndian.PutUint64(s[8:], uint64(i)|1<<63) // overwrites s[8], keeps the serials unique
	return s
}

// benchDevices yields n devices of issuer "ica-bench" with certificates, keys and, when
// revoked, a revocation each. The certificates are one real certificate whose serial bytes are
// rewritten for each device: real size and shape on disk, a distinct SHA-256 each. (The
// signature no longer verifies; nothing the benchmarks time parses device DER.)
func benchDevices(template *x509Template, n int, revoked bool) iter.Seq2[NewDevice, error] {
	return func(yield func(NewDevice, error) bool) {
		at := t0
		for i := 0; i < n; i++ {
			serial := benchSerial(i)
			der := bytes.Clone(template.der)
			copy(der[template.serialAt:], serial)
			d := NewDevice{
				Device:      Device{Serial: fmt.Sprintf("DEV-%08d", i), Model: "InfusionPump X2", Owner: "St. Mary", Site: "Ward 3", IssuerID: "ica-bench", RegisteredAt: at},
				Certificate: Certificate{Serial: serial, Subject: template.subject, NotBefore: at, NotAfter: at.AddDate(10, 0, 0), DER: der},
				Key:         DeviceKey{KeyID: serial[8:], PublicKeySHA256: sha256.Sum256(serial), TokenLabel: "device"},
			}
			if revoked {
				d.Revoked = &Revocation{RevokedAt: at.AddDate(1, 0, 0), Reason: pki.ReasonCessationOfOperation}
				if i%10 == 0 {
					d.Revoked.Reason, d.Revoked.InvalidityDate = pki.ReasonKeyCompromise, at.AddDate(0, 11, 0)
				}
			}
			if !yield(d, nil) {
				return
			}
		}
	}
}

// x509Template is a real device certificate and where its serial's bytes are.
type x509Template struct {
	der      []byte
	serialAt int
	subject  string
}

// benchWorld registers a root and "ica-bench" in r and returns the device template.
func benchWorld(b testing.TB, r *Registry) *x509Template {
	ctx := context.Background()
	root := newRoot(b, "Bench Root")
	ica := newSubCA(b, root, "Bench Device CA")
	if _, err := r.AddIssuer(ctx, Issuer{ID: "bench-root", Kind: IssuerRoot, Certificate: root.cert.Raw, CeremonyID: "bench-root",
		Key: KeyLocation{TokenLabel: "bench-root", KeyID: []byte{1}, Algorithm: "ecdsa-p256"}}); err != nil {
		b.Fatal(err)
	}
	if _, err := r.AddIssuer(ctx, Issuer{ID: "ica-bench", Kind: IssuerIssuing, Certificate: ica.cert.Raw, ParentID: "bench-root",
		CeremonyID: "bench-root", Key: opsKey(1)}); err != nil {
		b.Fatal(err)
	}
	serial := benchSerial(1 << 40)
	c := leafWithSerial(b, ica, "DEV-TEMPLATE", new(big.Int).SetBytes(serial), t0, t0.AddDate(10, 0, 0))
	at := bytes.Index(c.Raw, serial)
	if at < 0 || bytes.Index(c.Raw[at+1:], serial) >= 0 {
		b.Fatal("cannot find the serial in the template certificate")
	}
	return &x509Template{der: c.Raw, serialAt: at, subject: c.Subject.String()}
}

// cachedRegistry1M is a registry with 1,000,000 revoked devices of "ica-bench", built once per
// schema and fixture version under the temporary folder (it takes a minute or two) and then
// reused read-only. CUSTOS_BENCH_CACHE chooses another folder.
func cachedRegistry1M(b *testing.B) *Registry {
	const n = 1_000_000
	ctx := context.Background()
	base := os.Getenv("CUSTOS_BENCH_CACHE")
	if base == "" {
		base = os.TempDir()
	}
	dir := filepath.Join(base, fmt.Sprintf("custos-registry-bench-s%d-f%d-%d", SchemaVersion(), benchFixtureVersion, n))
	path := filepath.Join(dir, "custos.db")
	if _, err := os.Stat(path); err != nil {
		b.Logf("building the 1M-device benchmark registry in %s", dir)
		tmp, err := os.MkdirTemp(base, "custos-registry-bench-build-")
		if err != nil {
			b.Fatal(err)
		}
		defer os.RemoveAll(tmp)
		r, err := Open(ctx, filepath.Join(tmp, "custos.db"))
		if err != nil {
			b.Fatal(err)
		}
		r = journaled(r)
		start := time.Now()
		if _, err := r.ImportDevices(ctx, benchDevices(benchWorld(b, r), n, true)); err != nil {
			b.Fatal(err)
		}
		b.Logf("built in %v", time.Since(start).Round(time.Second))
		if err := r.Close(); err != nil {
			b.Fatal(err)
		}
		if err := os.Rename(tmp, dir); err != nil && !os.IsExist(err) {
			b.Fatal(err)
		}
	}
	r, err := Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	r = journaled(r)
	b.Cleanup(func() { r.Close() })
	return r
}

// BenchmarkRevocationScan1M reads every revocation of an issuer with a million of them, as
// `crl publish` does. One op is the whole scan. The Revocations sub-benchmark is the API; the
// others read the same rows through database/sql's Rows.Scan, for comparison.
func BenchmarkRevocationScan1M(b *testing.B) {
	ctx := context.Background()
	r := cachedRegistry1M(b)
	num, err := issuerNum(ctx, r.db, "ica-bench")
	if err != nil {
		b.Fatal(err)
	}
	check := func(b *testing.B, n int) {
		if n != 1_000_000 {
			b.Fatalf("scanned %d revocations", n)
		}
	}
	b.Run("Revocations", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			for rv, err := range r.Revocations(ctx, "ica-bench") {
				if err != nil {
					b.Fatal(err)
				}
				if len(rv.Serial) != 16 {
					b.Fatalf("serial %x", rv.Serial)
				}
				n++
			}
			check(b, n)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ns/entry")
	})
	b.Run("sql.Rows.Scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rows, err := r.db.QueryContext(ctx, revocationScan, num)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			var serial []byte
			var at, reason int64
			var inv sql.NullInt64
			for rows.Next() {
				if err := rows.Scan(&serial, &at, &reason, &inv); err != nil {
					b.Fatal(err)
				}
				n++
			}
			if err := rows.Close(); err != nil {
				b.Fatal(err)
			}
			check(b, n)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ns/entry")
	})
	b.Run("sql.RawBytes", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rows, err := r.db.QueryContext(ctx, revocationScan, num)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			var serial sql.RawBytes
			var at, reason int64
			var inv sql.NullInt64
			for rows.Next() {
				if err := rows.Scan(&serial, &at, &reason, &inv); err != nil {
					b.Fatal(err)
				}
				n++
			}
			if err := rows.Close(); err != nil {
				b.Fatal(err)
			}
			check(b, n)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ns/entry")
	})
	b.Run("count-only", func(b *testing.B) {
		// The floor: SQLite walking the same b-tree range without handing rows to Go.
		for b.Loop() {
			var n int
			if err := r.db.QueryRowContext(ctx, `SELECT count(*) FROM revocations WHERE issuer_num = ?`, num).Scan(&n); err != nil {
				b.Fatal(err)
			}
			check(b, n)
		}
	})
}

// BenchmarkImportDevices1M registers a million devices, each with its certificate, key and a
// revocation, in one ImportDevices call on a fresh registry: the setup of the 1M benchmarks and
// the bulk path of `custos device import`. One op is the whole million.
func BenchmarkImportDevices1M(b *testing.B) {
	benchImport(b, 1_000_000)
}

func benchImport(b *testing.B, n int) {
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		r, err := Open(ctx, filepath.Join(dir, "custos.db"))
		if err != nil {
			b.Fatal(err)
		}
		r = journaled(r)
		tmpl := benchWorld(b, r)
		b.StartTimer()
		got, err := r.ImportDevices(ctx, benchDevices(tmpl, n, true))
		if err != nil || got != n {
			b.Fatal(got, err)
		}
		b.StopTimer()
		if err := r.Close(); err != nil {
			b.Fatal(err)
		}
		if fi, err := os.Stat(filepath.Join(dir, "custos.db")); err == nil {
			b.ReportMetric(float64(fi.Size())/(1<<20), "MB-on-disk")
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/device")
}

// BenchmarkDecommissionBatch decommissions devices in batches of 1,000 per transaction, as a
// fleet run does: status, key states (active, deactivated, destroyed), revocation and result,
// each batch one committed transaction with fsync. One op is one device.
func BenchmarkDecommissionBatch(b *testing.B) {
	const batchSize = 1000
	ctx := context.Background()
	r, err := Open(ctx, filepath.Join(b.TempDir(), "custos.db"))
	if err != nil {
		b.Fatal(err)
	}
	r = journaled(r)
	defer r.Close()
	tmpl := benchWorld(b, r)
	n := max(b.N, 1)
	if _, err := r.ImportDevices(ctx, benchDevices(tmpl, n, false)); err != nil {
		b.Fatal(err)
	}
	if _, err := r.StartDecommissionRun(ctx, DecommissionRun{Run: Run{ID: "fleet-bench", Operation: "fleet", JournalPath: "j"},
		ManifestPath: "m.csv", ManifestSHA256: make([]byte, 32), Technician: "T"}); err != nil {
		b.Fatal(err)
	}
	batch := make([]Decommission, 0, batchSize)
	flush := func() {
		res, err := r.DecommissionDevices(ctx, batch)
		if err != nil {
			b.Fatal(err)
		}
		if len(res) != len(batch) || res[0].Outcome != OutcomeDecommissioned {
			b.Fatalf("results %+v", res[0])
		}
		batch = batch[:0]
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		batch = append(batch, Decommission{RunID: "fleet-bench", DeviceSerial: fmt.Sprintf("DEV-%08d", i), Method: "unreachable",
			Verification: "device destroyed by fire", Reason: pki.ReasonCessationOfOperation, KeyState: KeyDestroyed, At: t0.AddDate(2, 0, 0)})
		if len(batch) == batchSize {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
	b.StopTimer()
	if got, _ := r.CountDevices(ctx, DeviceDecommissioned); got != int64(b.N) {
		b.Fatalf("%d decommissioned, want %d", got, b.N)
	}
}

// BenchmarkImportDevices100k is the import at a tenth of the size, quick enough to run while
// working on the registry.
func BenchmarkImportDevices100k(b *testing.B) {
	benchImport(b, 100_000)
}
