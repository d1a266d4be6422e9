package pki

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custos-pki/custos/keyalg"
)

var oidIDP = asn1.ObjectIdentifier{2, 5, 29, 28}

// serialInShard returns a random serial, as NewSerial makes them, whose shard is shard.
func serialInShard(t *testing.T, count, shard int) *big.Int {
	t.Helper()
	for {
		if s := newSerial(t); ShardOf(s, count) == shard {
			return s
		}
	}
}

// TestCRLSetWithOpenSSL signs a set of four shards and the full CRL and has openssl verify
// each, list each shard's entries and scope, and check devices against their shards: a
// revoked device is revoked by its own shard, a good device in another shard verifies
// against its own, and a shard is no proof for a device it does not cover.
func TestCRLSetWithOpenSSL(t *testing.T) {
	for _, alg := range []keyalg.Algorithm{keyalg.ECDSAP384, keyalg.Ed25519} {
		t.Run(string(alg), func(t *testing.T) {
			dir := t.TempDir()
			h := newHierarchy(t, alg)
			shards := CRLShards{BaseURL: "http://pki.acme.example/crl", IssuerID: "ica-test", Count: 4}
			device := func(name string, shard int) *x509.Certificate {
				c, _, err := Issue(DeviceIdentity{SerialNumber: name, Manufacturer: "Acme", NotBefore: testNow, ValidityYears: 10, CRLShards: shards},
					serialInShard(t, 4, shard), newKey(t, alg).Public(), h.issuingIssuer())
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			lost, good, neighbour := device("LOST-1", 1), device("GOOD-2", 2), device("GOOD-1", 1)

			entries := append(edgeRevocations(t), Revocation{Serial: lost.SerialNumber, RevokedAt: testNow.Add(2 * time.Hour), Reason: ReasonKeyCompromise, InvalidityDate: testNow.Add(time.Hour)})
			thisUpdate := testNow.Add(48 * time.Hour)
			crl := CRL{Number: big.NewInt(9), ThisUpdate: thisUpdate, NextUpdate: thisUpdate.AddDate(0, 0, 30), MaxNextUpdate: DefaultMaxNextUpdate, Revoked: Revocations(entries...)}
			set, report, err := SignCRLSet(crl, shards, h.issuingIssuer())
			if err != nil {
				t.Fatal(err)
			}
			if len(report) < 15 || len(report.Failures()) != 0 || len(report.Warnings()) != 0 {
				t.Errorf("lint report: %d results, failures %v, warnings %v", len(report), report.Failures(), report.Warnings())
			}

			// The full CRL is exactly what SignCRL makes, signature aside.
			alone, _, err := SignCRL(crl, h.issuingIssuer())
			if err != nil {
				t.Fatal(err)
			}
			a, _ := x509.ParseRevocationList(alone.Bytes())
			full, err := x509.ParseRevocationList(set.Full.Bytes())
			if err != nil || a == nil || !bytes.Equal(full.RawTBSRevocationList, a.RawTBSRevocationList) {
				t.Fatalf("the set's full CRL differs from SignCRL's: %v", err)
			}
			if err := full.CheckSignatureFrom(h.issuing); err != nil || set.Full.Entries() != len(entries) {
				t.Fatalf("full CRL: %v, %d entries", err, set.Full.Entries())
			}
			if slices.ContainsFunc(full.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(oidIDP) }) {
				t.Error("the full CRL has an issuingDistributionPoint")
			}

			// Each shard lists exactly the entries of its shard, in order, under the same number.
			total := 0
			rootPEM := writeCert(t, dir, "root.pem", h.root)
			issuingPEM := writeCert(t, dir, "issuing.pem", h.issuing)
			for i, shard := range set.Shards {
				der := shard.Bytes()
				rl, err := x509.ParseRevocationList(der)
				if err != nil {
					t.Fatalf("shard %d: %v", i, err)
				}
				if err := rl.CheckSignatureFrom(h.issuing); err != nil || rl.Number.Int64() != 9 || !rl.ThisUpdate.Equal(full.ThisUpdate) || !rl.NextUpdate.Equal(full.NextUpdate) {
					t.Errorf("shard %d: signature %v, number %v, this %v, next %v", i, err, rl.Number, rl.ThisUpdate, rl.NextUpdate)
				}
				var want []Revocation
				for _, e := range entries {
					if ShardOf(e.Serial, 4) == i {
						want = append(want, e)
					}
				}
				slices.SortFunc(want, func(a, b Revocation) int { return a.Serial.Cmp(b.Serial) })
				if shard.Entries() != len(want) || len(rl.RevokedCertificateEntries) != len(want) {
					t.Fatalf("shard %d: %d entries, want %d", i, len(rl.RevokedCertificateEntries), len(want))
				}
				for j, got := range rl.RevokedCertificateEntries {
					if got.SerialNumber.Cmp(want[j].Serial) != 0 {
						t.Errorf("shard %d entry %d: serial %s, want %s", i, j, SerialHex(got.SerialNumber), SerialHex(want[j].Serial))
					}
				}
				total += shard.Entries()
				checkIDP(t, rl, shards.URL(i))
				if _, err := lintCRL(der); err != nil {
					t.Errorf("shard %d, linted whole: %v", i, err)
				}
				checkWriters(t, shard)

				path := filepath.Join(dir, "shard-"+itoa(int64(i))+".crl")
				os.WriteFile(path, der, 0o644)
				out := openssl(t, "crl", "-inform", "DER", "-in", path, "-CAfile", issuingPEM, "-noout", "-verify", "-text")
				for _, w := range []string{"verify OK", "X509v3 Issuing Distribution Point: critical", "Full Name:\n                  URI:" + shards.URL(i), "Only User Certificates",
					"X509v3 CRL Number: \n                9\n"} {
					if !strings.Contains(out, w) {
						t.Errorf("shard %d: openssl crl -text lacks %q:\n%s", i, w, out)
					}
				}
				listed := regexp.MustCompile(`Serial Number: ([0-9A-F]+)\n`).FindAllStringSubmatch(out, -1)
				if len(listed) != len(want) {
					t.Errorf("shard %d: openssl lists %d serials, want %d", i, len(listed), len(want))
				}
				for j, m := range listed {
					if j < len(want) && m[1] != SerialHex(want[j].Serial) {
						t.Errorf("shard %d: openssl lists %s at %d, want %s", i, m[1], j, SerialHex(want[j].Serial))
					}
				}
			}
			if total != len(entries) {
				t.Errorf("the shards list %d entries, the full CRL %d", total, len(entries))
			}

			pemOf := func(c *SignedCRL, name string) string {
				var b bytes.Buffer
				if err := c.WritePEM(&b); err != nil {
					t.Fatal(err)
				}
				p := filepath.Join(dir, name)
				os.WriteFile(p, b.Bytes(), 0o644)
				return p
			}
			at := "-attime=" + itoa(thisUpdate.Add(time.Hour).Unix())
			verify := func(cert *x509.Certificate, crlFile string) (string, error) {
				return opensslResult("verify", at, "-crl_check", "-CRLfile", crlFile, "-CAfile", rootPEM, "-untrusted", issuingPEM, writeCert(t, dir, cert.Subject.CommonName+".pem", cert))
			}
			shard1, shard2, fullPEM := pemOf(set.Shards[1], "1.pem"), pemOf(set.Shards[2], "2.pem"), pemOf(set.Full, "full.pem")
			if out, err := verify(lost, shard1); err == nil || !strings.Contains(out, "certificate revoked") {
				t.Errorf("the lost device verified against its own shard: %v\n%s", err, out)
			}
			if out, err := verify(lost, fullPEM); err == nil || !strings.Contains(out, "certificate revoked") {
				t.Errorf("the lost device verified against the full CRL: %v\n%s", err, out)
			}
			if out, err := verify(good, shard2); err != nil {
				t.Errorf("a good device in shard 2 does not verify against its shard: %v\n%s", err, out)
			}
			if out, err := verify(neighbour, shard1); err != nil {
				t.Errorf("a good device in the lost device's shard does not verify: %v\n%s", err, out)
			}
			// Shard 2 does not cover the lost device: openssl refuses it as a CRL of another
			// scope rather than taking the absence of its serial for good news.
			if out, err := verify(lost, shard2); err == nil || !strings.Contains(out, "different CRL scope") {
				t.Errorf("shard 2 was taken as revocation data for a device of shard 1: %v\n%s", err, out)
			}
		})
	}
}

// checkIDP checks a shard's issuingDistributionPoint by decoding it with encoding/asn1.
func checkIDP(t *testing.T, rl *x509.RevocationList, url string) {
	t.Helper()
	i := slices.IndexFunc(rl.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(oidIDP) })
	if i < 0 {
		t.Fatalf("no issuingDistributionPoint")
	}
	ext := rl.Extensions[i]
	// IssuingDistributionPoint ::= SEQUENCE { distributionPoint [0] { fullName [0] { URI [6] } },
	// onlyContainsUserCerts [1] BOOLEAN }, read element by element.
	next := func(b []byte) (asn1.RawValue, []byte) {
		var v asn1.RawValue
		rest, err := asn1.Unmarshal(b, &v)
		if err != nil {
			t.Fatalf("issuingDistributionPoint %x: %v", ext.Value, err)
		}
		return v, rest
	}
	seq, rest := next(ext.Value)
	point, fields := next(seq.Bytes)
	fullName, _ := next(point.Bytes)
	uri, more := next(fullName.Bytes)
	onlyUser, end := next(fields)
	if !ext.Critical || len(rest) != 0 || seq.Tag != asn1.TagSequence || point.Class != asn1.ClassContextSpecific || point.Tag != 0 || fullName.Tag != 0 ||
		uri.Class != asn1.ClassContextSpecific || uri.Tag != 6 || string(uri.Bytes) != url || len(more) != 0 ||
		onlyUser.Tag != 1 || !bytes.Equal(onlyUser.Bytes, []byte{0xFF}) || len(end) != 0 {
		t.Errorf("issuingDistributionPoint: critical %v, %x; want %s and onlyContainsUserCerts", ext.Critical, ext.Value, url)
	}
}

// checkWriters: WriteTo, Bytes, Len, Fingerprint and WritePEM agree.
func checkWriters(t *testing.T, c *SignedCRL) {
	t.Helper()
	der := c.Bytes()
	var buf bytes.Buffer
	if n, err := c.WriteTo(&buf); err != nil || int(n) != len(der) || !bytes.Equal(buf.Bytes(), der) || c.Len() != len(der) {
		t.Fatalf("WriteTo wrote %d bytes (%v), Bytes has %d, Len says %d", n, err, len(der), c.Len())
	}
	if c.Fingerprint() != sha256.Sum256(der) {
		t.Error("Fingerprint is not the SHA-256 of the DER")
	}
	var p bytes.Buffer
	if err := c.WritePEM(&p); err != nil {
		t.Fatal(err)
	}
	if block, rest := pem.Decode(p.Bytes()); block == nil || block.Type != "X509 CRL" || !bytes.Equal(block.Bytes, der) || len(rest) != 0 {
		t.Fatal("PEM does not hold the DER")
	}
}

// TestShardMatchesOpenSSL has `openssl ca -gencrl` sign one shard's entries with an
// issuingDistributionPoint from its configuration, and requires the same entries and the
// same extension, byte for byte.
func TestShardMatchesOpenSSL(t *testing.T) {
	issuer := benchIssuer(t)
	shards := CRLShards{BaseURL: "http://pki.acme.example/crl", IssuerID: "ica-bench", Count: 4}
	set, _, err := SignCRLSet(CRL{Number: big.NewInt(1), ThisUpdate: fleetThisUpdate, NextUpdate: fleetThisUpdate.AddDate(0, 1, 0), MaxNextUpdate: DefaultMaxNextUpdate, Revoked: fleet(400)}, shards, issuer)
	if err != nil {
		t.Fatal(err)
	}
	var shard1 []Revocation
	for _, r := range collect(fleet(400)) {
		if ShardOf(r.Serial, 4) == 1 {
			shard1 = append(shard1, r)
		}
	}
	dir := t.TempDir()
	writeOpenSSLCA(t, dir, Revocations(shard1...), issuer)
	cnf := filepath.Join(dir, "openssl.cnf")
	f, err := os.OpenFile(cnf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(f, "issuingDistributionPoint = critical, @idp\n\n[ idp ]\nfullname = URI:"+shards.URL(1)+"\nonlyuser = TRUE\n")
	f.Close()
	openssl(t, "ca", "-config", cnf, "-gencrl", "-out", filepath.Join(dir, "crl.pem"))
	pemBytes, _ := os.ReadFile(filepath.Join(dir, "crl.pem"))
	block, _ := pem.Decode(pemBytes)
	theirs, err := x509.ParseRevocationList(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := x509.ParseRevocationList(set.Shards[1].Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(ours.RevokedCertificateEntries) != len(shard1) || len(theirs.RevokedCertificateEntries) != len(shard1) || len(shard1) < 50 {
		t.Fatalf("Custos lists %d, openssl %d, want %d", len(ours.RevokedCertificateEntries), len(theirs.RevokedCertificateEntries), len(shard1))
	}
	for i, o := range ours.RevokedCertificateEntries {
		if !bytes.Equal(o.Raw, theirs.RevokedCertificateEntries[i].Raw) {
			t.Errorf("entry %d differs:\n ours    %x\n openssl %x", i, o.Raw, theirs.RevokedCertificateEntries[i].Raw)
		}
	}
	ext := func(rl *x509.RevocationList) pkix.Extension {
		i := slices.IndexFunc(rl.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(oidIDP) })
		if i < 0 {
			t.Fatal("no issuingDistributionPoint")
		}
		return rl.Extensions[i]
	}
	if o, th := ext(ours), ext(theirs); o.Critical != th.Critical || !bytes.Equal(o.Value, th.Value) {
		t.Errorf("issuingDistributionPoint differs:\n ours    %v %x\n openssl %v %x", o.Critical, o.Value, th.Critical, th.Value)
	}
}

// TestCRLSetSizes: Largest and OverBudget, and a single shard that holds everything.
func TestCRLSetSizes(t *testing.T) {
	issuer := benchIssuer(t)
	sign := func(count int) *CRLSet {
		set, _, err := SignCRLSet(CRL{Number: big.NewInt(2), ThisUpdate: fleetThisUpdate, NextUpdate: fleetThisUpdate.AddDate(0, 0, 7), MaxNextUpdate: DefaultMaxNextUpdate, Revoked: fleet(3000)},
			CRLShards{BaseURL: "https://pki.acme.example", IssuerID: "ica-bench", Count: count}, issuer)
		if err != nil {
			t.Fatal(err)
		}
		return set
	}
	set := sign(10)
	shard, size := set.Largest()
	for i, s := range set.Shards {
		if s.Len() > size || s.Len() == size && i < shard {
			t.Errorf("shard %d has %d bytes, Largest says shard %d with %d", i, s.Len(), shard, size)
		}
	}
	if got := set.OverBudget(size); len(got) != 0 {
		t.Errorf("OverBudget(largest) = %v", got)
	}
	if got := set.OverBudget(size - 1); !slices.Contains(got, shard) {
		t.Errorf("OverBudget(largest-1) = %v, lacks %d", got, shard)
	}
	if got := set.OverBudget(0); len(got) != 10 {
		t.Errorf("OverBudget(0) = %v", got)
	}
	one := sign(1)
	if one.Shards[0].Entries() != 3000 || one.Full.Entries() != 3000 {
		t.Errorf("one shard: %d entries, full %d", one.Shards[0].Entries(), one.Full.Entries())
	}
}

// failingSigner signs correctly n times, then with another key or not at all.
type failingSigner struct {
	crypto.Signer
	other crypto.Signer // nil: fail with an error
	n     int
}

func (s *failingSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	s.n--
	switch {
	case s.n >= 0:
		return s.Signer.Sign(r, digest, opts)
	case s.other != nil:
		return s.other.Sign(r, digest, opts)
	}
	return nil, errors.New("token removed")
}

// TestCRLSetRefusals: a signature that fails or does not verify for any member of the set
// returns no set at all, naming the member.
func TestCRLSetRefusals(t *testing.T) {
	h := newHierarchy(t, keyalg.ECDSAP256)
	crl := func() CRL {
		return CRL{Number: big.NewInt(3), ThisUpdate: testNow.Add(48 * time.Hour), NextUpdate: testNow.AddDate(0, 1, 0), MaxNextUpdate: DefaultMaxNextUpdate, Revoked: Revocations(edgeRevocations(t)...)}
	}
	shards := CRLShards{BaseURL: "http://pki.acme.example/crl", IssuerID: "ica-1", Count: 5}
	tests := []struct {
		name   string
		signer crypto.Signer
		shards CRLShards
		want   string
	}{
		{"wrong key for shard 2", &failingSigner{Signer: h.issuingKey, other: h.rootKey, n: 3}, shards, "sign CRL set: shard 2: the signature does not verify under the issuer's key"},
		{"wrong key for the full CRL", &failingSigner{Signer: h.issuingKey, other: h.rootKey, n: 0}, shards, "sign CRL set: full CRL: the signature does not verify"},
		{"token gone at shard 4", &failingSigner{Signer: h.issuingKey, n: 5}, shards, "sign CRL set: shard 4: sign: token removed"},
		{"bad shards", h.issuingKey, CRLShards{BaseURL: "http://pki.acme.example/crl/", IssuerID: "ica-1", Count: 5}, "sign CRL set: CRLShards.BaseURL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, _, err := SignCRLSet(crl(), tt.shards, Issuer{Certificate: h.issuing, Signer: tt.signer})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
			if set != nil {
				t.Fatal("a set was returned with the error")
			}
		})
	}
	// Entry errors are SignCRL's, with the same words.
	bad := crl()
	bad.Revoked = seq([]Revocation{{Serial: big.NewInt(5), RevokedAt: testNow.Add(time.Hour)}, {Serial: big.NewInt(4), RevokedAt: testNow.Add(time.Hour)}}, nil)
	if _, _, err := SignCRLSet(bad, shards, h.issuingIssuer()); err == nil || !strings.Contains(err.Error(), "revoked serial 04 comes after 05") {
		t.Errorf("out of order: %v", err)
	}
}

// TestCRLSetDoesNotCopyEntries: the shards share the full CRL's encoded entries, so the set
// allocates no more per entry than the full CRL alone.
func TestCRLSetDoesNotCopyEntries(t *testing.T) {
	issuer := benchIssuer(t)
	shards := CRLShards{BaseURL: "http://pki.acme.example/crl", IssuerID: "ica-bench", Count: 50}
	allocs := func(n int) float64 {
		return testing.AllocsPerRun(2, func() {
			_, _, err := SignCRLSet(CRL{Number: big.NewInt(1), ThisUpdate: fleetThisUpdate, NextUpdate: fleetThisUpdate.AddDate(0, 1, 0), MaxNextUpdate: DefaultMaxNextUpdate, Revoked: fleet(n)}, shards, issuer)
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	small, large := allocs(10_000), allocs(60_000)
	t.Logf("allocations: %.0f for 10,000 entries, %.0f for 60,000", small, large)
	// Each shard's list of positions grows by doubling: a few more allocations per shard.
	if large-small > 50*5 {
		t.Errorf("50,000 more entries cost %.0f more allocations", large-small)
	}
}

// TestShardSorterLintsAheadTheFinalSamples: the sorter lints shards ahead while entries
// still come, and a shard whose sample gains an entry afterwards (a shape first seen late)
// is left marked for linting again, so that every shard's lint is of its final sample.
func TestShardSorterLintsAheadTheFinalSamples(t *testing.T) {
	issuer := benchIssuer(t)
	const n, count = 3 * sortBatchSize, 4
	// The second half brings a shape the first has not: superseded.
	var rs []Revocation
	for i := range n {
		r := Revocation{Serial: big.NewInt(int64(1000 + i)), RevokedAt: fleetThisUpdate.AddDate(0, -1, 0), Reason: ReasonCessationOfOperation}
		if i >= n/2 {
			r.Reason = ReasonSuperseded
		}
		rs = append(rs, r)
	}
	crl := CRL{Number: big.NewInt(1), ThisUpdate: fleetThisUpdate, NextUpdate: fleetThisUpdate.AddDate(0, 1, 0), MaxNextUpdate: DefaultMaxNextUpdate, Revoked: Revocations(rs...)}
	h, err := newCRLHeader(crl, issuer)
	if err != nil {
		t.Fatal(err)
	}
	linted := make([][][]byte, count) // the sample each shard was last linted with
	sorter := newShardSorter(count, func(i int, samples [][]byte) (LintReport, error) {
		linted[i] = samples
		return nil, nil
	})
	enc := newCRLEncoder(h, issuer.Certificate)
	if err := enc.read(crl.Revoked, sorter.add); err != nil {
		t.Fatal(err)
	}
	parts := sorter.finish()
	ahead, again := 0, 0
	for i := range parts {
		final := enc.samples(&parts[i].shapes)
		if len(final) != 2 {
			t.Errorf("shard %d: final sample of %d entries, want one of each reason", i, len(final))
		}
		if linted[i] != nil {
			ahead++
		}
		switch {
		case sorter.linted[i] && !slices.EqualFunc(linted[i], final, bytes.Equal):
			t.Errorf("shard %d is marked linted, but its lint was of %d entries, not its final %d", i, len(linted[i]), len(final))
		case !sorter.linted[i]:
			again++
		}
	}
	if ahead != count || again != count {
		t.Errorf("%d shards linted ahead, %d left to lint again; want %d and %d", ahead, again, count, count)
	}
}
