package pki

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"iter"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/custos-pki/custos/internal/procstat"
	"github.com/custos-pki/custos/keyalg"
)

// fleet yields n revocations as a fleet's issuing CA would have them, computed as they are
// read, like rows from a database cursor: serials shaped as NewSerial makes them (0x01 and
// 16 bytes), increasing, the same on every run; mostly cessationOfOperation, with some
// keyCompromise (with invalidity dates), superseded, affiliationChanged and no reason.
// Invalidity dates go only with keyCompromise, the one reason openssl's index can give one.
// The yielded Serial is reused from one entry to the next.
func fleet(n int) iter.Seq2[Revocation, error] {
	return func(yield func(Revocation, error) bool) {
		rng := mrand.NewChaCha8([32]byte{'c', 'u', 's', 't', 'o', 's'})
		step := ^uint64(0) / uint64(n)
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		var raw [17]byte
		serial := new(big.Int)
		for i := range n {
			// The high 8 bytes grow with i, so serials increase; the low 8 are random.
			raw[0] = 0x01
			binary.BigEndian.PutUint64(raw[1:9], uint64(i)*step+rng.Uint64()%step)
			binary.BigEndian.PutUint64(raw[9:], rng.Uint64())
			r := Revocation{
				Serial:    serial.SetBytes(raw[:]),
				RevokedAt: start.Add(time.Duration(i%(365*24*3600)) * time.Second),
				Reason:    ReasonCessationOfOperation,
			}
			switch i % 20 {
			case 0:
				r.Reason = ReasonKeyCompromise
				r.InvalidityDate = r.RevokedAt.Add(-72 * time.Hour)
			case 1, 2:
				r.Reason = ReasonSuperseded
			case 3:
				r.Reason = ReasonAffiliationChanged
			case 4:
				r.Reason = ReasonUnspecified
			}
			if !yield(r, nil) {
				return
			}
		}
	}
}

// collect reads a source into a slice, copying each serial.
func collect(src iter.Seq2[Revocation, error]) []Revocation {
	var out []Revocation
	for r := range src {
		r.Serial = new(big.Int).Set(r.Serial)
		out = append(out, r)
	}
	return out
}

// fleetThisUpdate is after every fleet revocation.
var fleetThisUpdate = time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC)

// benchIssuer is an ECDSA P-384 root valid over the fleet's revocations.
func benchIssuer(b testing.TB) Issuer {
	key := newKey(b, keyalg.ECDSAP384)
	root, _, err := IssueRoot(RootCA{CommonName: "Acme Medical Devices CA 1", Organization: "Acme Medical", Country: "US",
		NotBefore: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), ValidityYears: 20}, newSerial(b), key)
	if err != nil {
		b.Fatal(err)
	}
	return Issuer{Certificate: root, Signer: key}
}

// BenchmarkCRL1M signs and writes a CRL of 1,000,000 entries with an ECDSA P-384 key, the
// entries coming from a generator as they would from the registry.
func BenchmarkCRL1M(b *testing.B) {
	issuer := benchIssuer(b)
	b.ReportAllocs()
	var size int
	meter := procstat.Start(b)
	for b.Loop() {
		crl, _, err := SignCRL(CRL{Number: big.NewInt(1), ThisUpdate: fleetThisUpdate, NextUpdate: fleetThisUpdate.AddDate(0, 1, 0), MaxNextUpdate: DefaultMaxNextUpdate, Revoked: fleet(1_000_000)}, issuer)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := crl.WriteTo(io.Discard); err != nil {
			b.Fatal(err)
		}
		size = crl.Len()
	}
	b.ReportMetric(float64(size)/1e6, "MB-DER")
	meter.Report(b)
}

// BenchmarkCRLSet1M signs and writes the same 1,000,000 entries as BenchmarkCRL1M as a set:
// the full CRL and 1,000 shards, each signed by the issuer, the entries spooled to a file in
// a temporary folder (on the disk the workspace is, or in memory where that is a tmpfs). It fails if a shard passes
// DefaultShardBudget; shard-max-KiB is the largest.
func BenchmarkCRLSet1M(b *testing.B) {
	issuer := benchIssuer(b)
	shards := CRLShards{BaseURL: "http://pki.acme.example/crl", IssuerID: "ica-0a1b2c3d4e", Count: 1000}
	b.ReportAllocs()
	var largest int
	meter := procstat.Start(b)
	for b.Loop() {
		// Written as a caller writes files: through a buffer, here one for all.
		bw := bufio.NewWriterSize(io.Discard, 64<<10)
		write := func(c *SignedCRL) error {
			if _, err := c.WriteTo(bw); err != nil {
				return err
			}
			return bw.Flush()
		}
		spool, err := os.CreateTemp(b.TempDir(), "spool-")
		if err != nil {
			b.Fatal(err)
		}
		set, _, err := SignCRLSet(CRL{Number: big.NewInt(1), ThisUpdate: fleetThisUpdate, NextUpdate: fleetThisUpdate.AddDate(0, 1, 0), MaxNextUpdate: DefaultMaxNextUpdate, Revoked: fleet(1_000_000)}, shards, issuer,
			CRLSetWriter{Spool: spool, Full: write, Shard: func(_ int, c *SignedCRL) error { return write(c) }})
		spool.Close()
		if err != nil {
			b.Fatal(err)
		}
		if over := set.OverBudget(DefaultShardBudget); len(over) > 0 {
			b.Fatalf("%d shards pass %d bytes, such as shard %d", len(over), DefaultShardBudget, over[0])
		}
		_, largest = set.Largest()
	}
	b.ReportMetric(float64(largest)/1024, "shard-max-KiB")
	meter.Report(b)
}

// BenchmarkCRL1MCreateRevocationList is Go's x509.CreateRevocationList on the same entries
// and key, for comparison (building its template is not timed).
func BenchmarkCRL1MCreateRevocationList(b *testing.B) {
	entries := collect(fleet(1_000_000))
	issuer := benchIssuer(b)
	tmpl := goTemplate(b, entries, fleetThisUpdate, 1)
	b.ReportAllocs()
	var size int
	for b.Loop() {
		der, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer.Certificate, issuer.Signer)
		if err != nil {
			b.Fatal(err)
		}
		size = len(der)
	}
	b.ReportMetric(float64(size)/1e6, "MB-DER")
}

// BenchmarkCRL1MOpenSSL is `openssl ca -gencrl` signing the same 1,000,000 entries with
// the same kind of key, for comparison with BenchmarkCRL1M and BenchmarkCRLSet1M
// (TestOpenSSLIndexMatches checks that it makes the same entries). peak-MB is openssl's
// maximum resident memory.
func BenchmarkCRL1MOpenSSL(b *testing.B) {
	if _, err := exec.LookPath("openssl"); err != nil {
		b.Skip("openssl not installed")
	}
	dir := b.TempDir()
	writeOpenSSLCA(b, dir, fleet(1_000_000), benchIssuer(b))
	var openssl procstat.Children
	for b.Loop() {
		openssl.Run(b, exec.Command("openssl", "ca", "-config", filepath.Join(dir, "openssl.cnf"), "-gencrl", "-out", filepath.Join(dir, "crl.pem")))
	}
	openssl.Report(b)
}

// writeOpenSSLCA writes, into dir, what `openssl ca -gencrl` needs to sign a CRL of the same
// entries with the same kind of key: index.txt, crlnumber, the CA key and certificate, and
// openssl.cnf.
func writeOpenSSLCA(t testing.TB, dir string, entries iter.Seq2[Revocation, error], issuer Issuer) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "index.txt"))
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for e := range entries {
		rev := e.RevokedAt.UTC().Format("060102150405Z")
		switch {
		case e.Reason == ReasonKeyCompromise && !e.InvalidityDate.IsZero():
			rev += ",keyTime," + e.InvalidityDate.UTC().Format("20060102150405Z")
		case e.Reason == ReasonCACompromise:
			rev += ",CACompromise"
		case e.Reason != ReasonUnspecified:
			rev += "," + e.Reason.String()
		}
		s := SerialHex(e.Serial)
		fmt.Fprintf(w, "R\t%s\t%s\t%s\tunknown\t/CN=%s\n", "361231235959Z", rev, s, s)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	key, err := x509.MarshalPKCS8PrivateKey(issuer.Signer)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, dir, "ca.key", "PRIVATE KEY", key)
	writeCert(t, dir, "ca.pem", issuer.Certificate)
	os.WriteFile(filepath.Join(dir, "crlnumber"), []byte("01\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "index.txt.attr"), []byte("unique_subject = no\n"), 0o644)
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	cnf := `[ ca ]
default_ca = CA_default

[ CA_default ]
dir              = ` + abs + `
database         = $dir/index.txt
crlnumber        = $dir/crlnumber
certificate      = $dir/ca.pem
private_key      = $dir/ca.key
default_md       = sha384
default_crl_days = 31
crl_extensions   = crl_ext

[ crl_ext ]
authorityKeyIdentifier = keyid:always
`
	os.WriteFile(filepath.Join(dir, "openssl.cnf"), []byte(cnf), 0o644)
	script := fmt.Sprintf("#!/bin/sh\n# Times openssl signing the same CRL as BenchmarkCRL1M.\n/usr/bin/time -v openssl ca -config %s -gencrl -out %s\n",
		filepath.Join(abs, "openssl.cnf"), filepath.Join(abs, "crl.pem"))
	os.WriteFile(filepath.Join(dir, "gencrl.sh"), []byte(script), 0o755)
}

// TestOpenSSLIndexMatches writes fleet entries as an openssl CA database, has `openssl ca
// -gencrl` sign it, and checks that openssl's CRL lists exactly the entries Custos's does:
// the index really is the same CRL for timing openssl beside BenchmarkCRL1M.
//
// Set CUSTOS_OPENSSL_INDEX=DIR to also write the full 1,000,000-entry set there, then run
// DIR/gencrl.sh to time openssl.
func TestOpenSSLIndexMatches(t *testing.T) {
	issuer := benchIssuer(t)
	dir := t.TempDir()
	writeOpenSSLCA(t, dir, fleet(400), issuer)
	cmd := []string{"ca", "-config", filepath.Join(dir, "openssl.cnf"), "-gencrl", "-out", filepath.Join(dir, "crl.pem")}
	out, err := opensslResult(cmd...)
	if err != nil {
		t.Fatalf("openssl ca -gencrl: %v\n%s", err, out)
	}
	pemBytes, err := os.ReadFile(filepath.Join(dir, "crl.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	theirs, err := x509.ParseRevocationList(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	crl, _, err := SignCRL(CRL{Number: big.NewInt(1), ThisUpdate: fleetThisUpdate, MaxNextUpdate: DefaultMaxNextUpdate, NextUpdate: fleetThisUpdate.AddDate(0, 1, 0), Revoked: fleet(400)}, issuer)
	if err != nil {
		t.Fatal(err)
	}
	if crl.Entries() != 400 {
		t.Fatalf("%d entries", crl.Entries())
	}
	ours, err := x509.ParseRevocationList(crl.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(theirs.RevokedCertificateEntries) != len(ours.RevokedCertificateEntries) {
		t.Fatalf("openssl lists %d entries, Custos %d", len(theirs.RevokedCertificateEntries), len(ours.RevokedCertificateEntries))
	}
	// openssl keeps the index's order, which is serial order here; compare entry by entry,
	// extensions included (openssl also writes reason code before invalidity date).
	for i, o := range ours.RevokedCertificateEntries {
		th := theirs.RevokedCertificateEntries[i]
		if !bytes.Equal(o.Raw, th.Raw) {
			t.Errorf("entry %d differs:\n ours    %x\n openssl %x", i, o.Raw, th.Raw)
		}
	}

	if big := os.Getenv("CUSTOS_OPENSSL_INDEX"); big != "" {
		if err := os.MkdirAll(big, 0o755); err != nil {
			t.Fatal(err)
		}
		writeOpenSSLCA(t, big, fleet(1_000_000), benchIssuer(t))
		t.Logf("wrote the 1,000,000-entry openssl CA to %s: run %s", big, filepath.Join(big, "gencrl.sh"))
	}
}
