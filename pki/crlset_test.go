package pki

import (
	"bytes"
	"crypto"
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
	"runtime"
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
			set, report, err := signSet(t, crl, shards, h.issuingIssuer())
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
			full, err := x509.ParseRevocationList(set.full)
			if err != nil || a == nil || !bytes.Equal(full.RawTBSRevocationList, a.RawTBSRevocationList) {
				t.Fatalf("the set's full CRL differs from SignCRL's: %v", err)
			}
			if err := full.CheckSignatureFrom(h.issuing); err != nil || set.Entries != len(entries) {
				t.Fatalf("full CRL: %v, %d entries", err, set.Entries)
			}
			if slices.ContainsFunc(full.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(oidIDP) }) {
				t.Error("the full CRL has an issuingDistributionPoint")
			}

			// Each shard lists exactly the entries of its shard, in order, under the same number.
			total := 0
			rootPEM := writeCert(t, dir, "root.pem", h.root)
			issuingPEM := writeCert(t, dir, "issuing.pem", h.issuing)
			for i, der := range set.shards {
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
				if set.ShardEntries[i] != len(want) || len(rl.RevokedCertificateEntries) != len(want) {
					t.Fatalf("shard %d: %d entries, want %d", i, len(rl.RevokedCertificateEntries), len(want))
				}
				for j, got := range rl.RevokedCertificateEntries {
					if got.SerialNumber.Cmp(want[j].Serial) != 0 {
						t.Errorf("shard %d entry %d: serial %s, want %s", i, j, SerialHex(got.SerialNumber), SerialHex(want[j].Serial))
					}
				}
				total += set.ShardEntries[i]
				checkIDP(t, rl, shards.URL(i))
				if _, err := lintCRL(der); err != nil {
					t.Errorf("shard %d, linted whole: %v", i, err)
				}

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

			pemOf := func(der []byte, name string) string {
				p := filepath.Join(dir, name)
				os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o644)
				return p
			}
			at := "-attime=" + itoa(thisUpdate.Add(time.Hour).Unix())
			verify := func(cert *x509.Certificate, crlFile string) (string, error) {
				return opensslResult("verify", at, "-crl_check", "-CRLfile", crlFile, "-CAfile", rootPEM, "-untrusted", issuingPEM, writeCert(t, dir, cert.Subject.CommonName+".pem", cert))
			}
			shard1, shard2, fullPEM := pemOf(set.shards[1], "1.pem"), pemOf(set.shards[2], "2.pem"), pemOf(set.full, "full.pem")
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

// checkWriters: WriteTo, Bytes, Len and WritePEM agree; it returns the DER.
func checkWriters(t testing.TB, c *SignedCRL) []byte {
	t.Helper()
	der := c.Bytes()
	var buf bytes.Buffer
	if n, err := c.WriteTo(&buf); err != nil || int(n) != len(der) || !bytes.Equal(buf.Bytes(), der) || c.Len() != len(der) {
		t.Fatalf("WriteTo wrote %d bytes (%v), Bytes has %d, Len says %d", n, err, len(der), c.Len())
	}
	var p bytes.Buffer
	if err := c.WritePEM(&p); err != nil {
		t.Fatal(err)
	}
	if block, rest := pem.Decode(p.Bytes()); block == nil || block.Type != "X509 CRL" || !bytes.Equal(block.Bytes, der) || len(rest) != 0 {
		t.Fatal("PEM does not hold the DER")
	}
	return der
}

// keptSet is a CRL set as a test keeps it: what SignCRLSet returned, and a copy of each CRL
// it handed over.
type keptSet struct {
	*CRLSet
	full   []byte
	shards [][]byte
}

// keepSet returns a writer for a CRL set that spools to a file of its own and keeps a copy of
// each CRL handed over, after checkWriters; it checks the order they come in.
func keepSet(t testing.TB, kept *keptSet) CRLSetWriter {
	t.Helper()
	spool, err := os.CreateTemp(t.TempDir(), "spool-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { spool.Close() })
	return CRLSetWriter{Spool: spool,
		Full: func(c *SignedCRL) error {
			if kept.full != nil || kept.shards != nil {
				t.Error("the full CRL was handed over twice, or after a shard")
			}
			kept.full = checkWriters(t, c)
			return nil
		},
		Shard: func(i int, c *SignedCRL) error {
			if kept.full == nil || i != len(kept.shards) {
				t.Errorf("shard %d handed over after %d shards, full CRL %t", i, len(kept.shards), kept.full != nil)
			}
			kept.shards = append(kept.shards, checkWriters(t, c))
			return nil
		}}
}

// signSet signs a CRL set, keeping it (see keepSet); the set is nil with an error.
func signSet(t testing.TB, crl CRL, shards CRLShards, issuer Issuer) (*keptSet, LintReport, error) {
	return signSetInGroups(t, crl, shards, issuer, shardGroupBytes)
}

// signSetInGroups is signSet with the shards gathered in groups of about groupBytes.
func signSetInGroups(t testing.TB, crl CRL, shards CRLShards, issuer Issuer, groupBytes int) (*keptSet, LintReport, error) {
	t.Helper()
	kept := &keptSet{}
	set, report, err := signCRLSet(crl, shards, issuer, keepSet(t, kept), groupBytes)
	if err != nil {
		if set != nil {
			t.Error("a set was returned with the error")
		}
		return nil, report, err
	}
	kept.CRLSet = set
	if len(kept.shards) != shards.Count || len(set.ShardSizes) != shards.Count || len(set.ShardEntries) != shards.Count {
		t.Fatalf("%d shards handed over, %d sizes, %d counts; want %d", len(kept.shards), len(set.ShardSizes), len(set.ShardEntries), shards.Count)
	}
	for i, der := range kept.shards {
		if set.ShardSizes[i] != len(der) {
			t.Errorf("shard %d: %d bytes, ShardSizes says %d", i, len(der), set.ShardSizes[i])
		}
	}
	return kept, report, nil
}

// TestShardMatchesOpenSSL has `openssl ca -gencrl` sign one shard's entries with an
// issuingDistributionPoint from its configuration, and requires the same entries and the
// same extension, byte for byte.
func TestShardMatchesOpenSSL(t *testing.T) {
	issuer := benchIssuer(t)
	shards := CRLShards{BaseURL: "http://pki.acme.example/crl", IssuerID: "ica-bench", Count: 4}
	set, _, err := signSet(t, CRL{Number: big.NewInt(1), ThisUpdate: fleetThisUpdate, NextUpdate: fleetThisUpdate.AddDate(0, 1, 0), MaxNextUpdate: DefaultMaxNextUpdate, Revoked: fleet(400)}, shards, issuer)
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
	ours, err := x509.ParseRevocationList(set.shards[1])
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
	sign := func(count int) *keptSet {
		set, _, err := signSet(t, CRL{Number: big.NewInt(2), ThisUpdate: fleetThisUpdate, NextUpdate: fleetThisUpdate.AddDate(0, 0, 7), MaxNextUpdate: DefaultMaxNextUpdate, Revoked: fleet(3000)},
			CRLShards{BaseURL: "https://pki.acme.example", IssuerID: "ica-bench", Count: count}, issuer)
		if err != nil {
			t.Fatal(err)
		}
		return set
	}
	set := sign(10)
	shard, size := set.Largest()
	for i, der := range set.shards {
		if len(der) > size || len(der) == size && i < shard {
			t.Errorf("shard %d has %d bytes, Largest says shard %d with %d", i, len(der), shard, size)
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
	if one.ShardEntries[0] != 3000 || one.Entries != 3000 {
		t.Errorf("one shard: %d entries, full %d", one.ShardEntries[0], one.Entries)
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
			_, _, err := signSet(t, crl(), tt.shards, Issuer{Certificate: h.issuing, Signer: tt.signer})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
	// Entry errors are SignCRL's, with the same words.
	bad := crl()
	bad.Revoked = seq([]Revocation{{Serial: big.NewInt(5), RevokedAt: testNow.Add(time.Hour)}, {Serial: big.NewInt(4), RevokedAt: testNow.Add(time.Hour)}}, nil)
	if _, _, err := signSet(t, bad, shards, h.issuingIssuer()); err == nil || !strings.Contains(err.Error(), "revoked serial 04 comes after 05") {
		t.Errorf("out of order: %v", err)
	}
}

// TestCRLSetHoldsNoEntries: a set's entries wait in its spool, not in memory. While its last
// shard is handed over, what is live on the heap beyond what was before is a fraction of the
// entries' size: their positions and one group of shards.
func TestCRLSetHoldsNoEntries(t *testing.T) {
	issuer := benchIssuer(t)
	shards := CRLShards{BaseURL: "http://pki.acme.example/crl", IssuerID: "ica-bench", Count: 50}
	crl := func(n int) CRL {
		return CRL{Number: big.NewInt(1), ThisUpdate: fleetThisUpdate, NextUpdate: fleetThisUpdate.AddDate(0, 1, 0), MaxNextUpdate: DefaultMaxNextUpdate, Revoked: fleet(n)}
	}
	if _, _, err := signSet(t, crl(1000), shards, issuer); err != nil { // the linter's registry, made once
		t.Fatal(err)
	}
	var before, during runtime.MemStats
	var entries int
	spool, err := os.CreateTemp(t.TempDir(), "spool-")
	if err != nil {
		t.Fatal(err)
	}
	defer spool.Close()
	out := CRLSetWriter{Spool: spool,
		Full: func(c *SignedCRL) error {
			entries = c.Len()
			_, err := c.WriteTo(io.Discard)
			return err
		},
		Shard: func(i int, c *SignedCRL) error {
			if i == shards.Count-1 {
				runtime.GC()
				runtime.ReadMemStats(&during)
			}
			_, err := c.WriteTo(io.Discard)
			return err
		}}
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, _, err := signCRLSet(crl(400_000), shards, issuer, out, 1<<20); err != nil {
		t.Fatal(err)
	}
	live := int(during.HeapAlloc) - int(before.HeapAlloc)
	t.Logf("%d bytes of CRL; %d bytes live beyond what was before, while the last shard is handed over", entries, live)
	if live > entries/4 {
		t.Errorf("%d bytes live while the last shard is handed over, for a CRL of %d bytes", live, entries)
	}
}

// TestCRLSetGroupsChangeNothing: however many shards are gathered at once, the set is the same
// bytes (Ed25519 signs deterministically), and so is what SignCRL makes of the full CRL.
func TestCRLSetGroupsChangeNothing(t *testing.T) {
	h := newHierarchy(t, keyalg.Ed25519)
	shards := CRLShards{BaseURL: "http://pki.acme.example/crl", IssuerID: "ica-1", Count: 7}
	crl := CRL{Number: big.NewInt(5), ThisUpdate: fleetThisUpdate, NextUpdate: fleetThisUpdate.AddDate(0, 1, 0), MaxNextUpdate: DefaultMaxNextUpdate}
	var rs []Revocation
	for r, err := range fleet(5000) {
		if err != nil {
			t.Fatal(err)
		}
		r.Serial = new(big.Int).Set(r.Serial)
		r.RevokedAt = testNow.Add(time.Hour)
		rs = append(rs, r)
	}
	crl.ThisUpdate, crl.NextUpdate = testNow.Add(48*time.Hour), testNow.AddDate(0, 1, 0)
	crl.Revoked = Revocations(rs...)
	alone, _, err := SignCRL(crl, h.issuingIssuer())
	if err != nil {
		t.Fatal(err)
	}
	var first *keptSet
	for _, group := range []int{1, 20_000, shardGroupBytes} {
		set, _, err := signSetInGroups(t, crl, shards, h.issuingIssuer(), group)
		if err != nil {
			t.Fatalf("groups of %d bytes: %v", group, err)
		}
		if !bytes.Equal(set.full, alone.Bytes()) {
			t.Errorf("groups of %d bytes: the full CRL differs from SignCRL's", group)
		}
		if first == nil {
			first = set
			continue
		}
		for i := range set.shards {
			if !bytes.Equal(set.shards[i], first.shards[i]) {
				t.Errorf("groups of %d bytes: shard %d differs from groups of 1", group, i)
			}
		}
	}
}

// failingSpool fails its reads after n bytes, or its writes.
type failingSpool struct {
	*os.File
	readable  int64 // reads past this offset fail
	failWrite bool
}

func (f *failingSpool) ReadAt(b []byte, off int64) (int, error) {
	if off+int64(len(b)) > f.readable {
		return 0, errors.New("input/output error")
	}
	return f.File.ReadAt(b, off)
}

func (f *failingSpool) WriteAt(b []byte, off int64) (int, error) {
	if f.failWrite {
		return 0, errors.New("no space left on device")
	}
	return f.File.WriteAt(b, off)
}

// TestCRLSetSpoolAndWriterFailures: a spool that cannot be written or read back, and a writer
// that fails, return no set, name what failed, and sign nothing more after it.
func TestCRLSetSpoolAndWriterFailures(t *testing.T) {
	issuer := benchIssuer(t)
	shards := CRLShards{BaseURL: "http://pki.acme.example/crl", IssuerID: "ica-bench", Count: 5}
	crl := CRL{Number: big.NewInt(1), ThisUpdate: fleetThisUpdate, NextUpdate: fleetThisUpdate.AddDate(0, 1, 0), MaxNextUpdate: DefaultMaxNextUpdate}
	tests := []struct {
		name   string
		spool  func(*os.File) Spool
		fail   int // the member whose hand-over fails: 0 the full CRL, i+1 shard i; -1 none
		want   string
		signed int
		handed int
	}{
		{"spool full", func(f *os.File) Spool { return &failingSpool{File: f, readable: 1 << 40, failWrite: true} }, -1, "sign CRL set: spool the CRL's entries: no space left on device", 0, 0},
		{"spool unreadable", func(f *os.File) Spool { return &failingSpool{File: f} }, -1, "sign CRL set: read the CRL's spooled entries: input/output error", 0, 0},
		{"spool unreadable past 1 MiB", func(f *os.File) Spool { return &failingSpool{File: f, readable: entryChunk} }, -1, "read the CRL's spooled entries: input/output error", 0, 0},
		{"full CRL not written", func(f *os.File) Spool { return f }, 0, "sign CRL set: full CRL: disk full", 1, 0},
		{"shard 3 not written", func(f *os.File) Spool { return f }, 4, "sign CRL set: shard 3: disk full", 5, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.CreateTemp(t.TempDir(), "spool-")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			counting := &countingSigner{Signer: issuer.Signer}
			handed := 0
			hand := func(member int, c *SignedCRL) error {
				if member == tt.fail {
					return errors.New("disk full")
				}
				handed++
				_, err := c.WriteTo(io.Discard)
				return err
			}
			crl.Revoked = fleet(60_000) // three chunks
			set, _, err := SignCRLSet(crl, shards, Issuer{Certificate: issuer.Certificate, Signer: counting}, CRLSetWriter{Spool: tt.spool(f),
				Full: func(c *SignedCRL) error { return hand(0, c) }, Shard: func(i int, c *SignedCRL) error { return hand(i+1, c) }})
			if err == nil || !strings.Contains(err.Error(), tt.want) || set != nil {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
			if counting.n != tt.signed || handed != tt.handed {
				t.Errorf("%d signatures, %d CRLs handed over; want %d and %d", counting.n, handed, tt.signed, tt.handed)
			}
		})
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
	spool, err := os.CreateTemp(t.TempDir(), "spool-")
	if err != nil {
		t.Fatal(err)
	}
	defer spool.Close()
	sorter := newShardSorter(count, func(i int, samples [][]byte) (LintReport, error) {
		linted[i] = samples
		return nil, nil
	}, &entrySpool{f: spool})
	enc := newCRLEncoder(h, issuer.Certificate)
	if err := enc.read(crl.Revoked, sorter.add); err != nil {
		t.Fatal(err)
	}
	parts, err := sorter.finish()
	if err != nil {
		t.Fatal(err)
	}
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
