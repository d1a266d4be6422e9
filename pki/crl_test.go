package pki

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"iter"
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

// opensslReason is how `openssl crl -text` names each reason.
var opensslReason = map[Reason]string{
	ReasonKeyCompromise:        "Key Compromise",
	ReasonCACompromise:         "CA Compromise",
	ReasonAffiliationChanged:   "Affiliation Changed",
	ReasonSuperseded:           "Superseded",
	ReasonCessationOfOperation: "Cessation Of Operation",
	ReasonPrivilegeWithdrawn:   "Privilege Withdrawn",
}

func hexSerial(t testing.TB, h string) *big.Int {
	t.Helper()
	n, ok := new(big.Int).SetString(h, 16)
	if !ok {
		t.Fatalf("bad hex %q", h)
	}
	return n
}

// edgeRevocations covers every reason with and without an invalidity date, and serials at
// the edges of their encoding: 1, a top bit that needs a leading zero, 20 octets exactly.
func edgeRevocations(t testing.TB) []Revocation {
	revoked := testNow.Add(24 * time.Hour)
	invalid := testNow.Add(12 * time.Hour)
	rs := []Revocation{
		{Serial: big.NewInt(1), RevokedAt: revoked},
		{Serial: hexSerial(t, "80"), RevokedAt: revoked, Reason: ReasonSuperseded},
		{Serial: hexSerial(t, "FF00FF00FF00FF00FF00FF00FF00FF00"), RevokedAt: revoked, Reason: ReasonKeyCompromise, InvalidityDate: invalid},
		{Serial: hexSerial(t, strings.Repeat("7F", 20)), RevokedAt: revoked, Reason: ReasonCessationOfOperation},
		{Serial: hexSerial(t, "7FFFFF"), RevokedAt: revoked, InvalidityDate: invalid},
	}
	for i, r := range Reasons() {
		for _, inv := range []bool{false, true} {
			e := Revocation{Serial: big.NewInt(int64(0x1000 + 2*i + boolInt(inv))), RevokedAt: revoked.Add(time.Duration(i) * time.Minute), Reason: r}
			if inv {
				e.InvalidityDate = invalid
			}
			rs = append(rs, e)
		}
	}
	return rs
}

// TestCRLWithOpenSSL signs a CRL of the issuing CA with each key algorithm and has openssl
// verify it, list it, and use it to reject a revoked device while accepting another.
func TestCRLWithOpenSSL(t *testing.T) {
	for _, alg := range keyalg.All() {
		t.Run(string(alg), func(t *testing.T) {
			dir := t.TempDir()
			h := newHierarchy(t, alg)
			revokedDevice := mustIssue(t, DeviceIdentity{SerialNumber: "LOST-1", Manufacturer: "Acme", NotBefore: testNow, ValidityYears: 5}, newKey(t, alg).Public(), h.issuingIssuer())
			goodDevice := mustIssue(t, DeviceIdentity{SerialNumber: "GOOD-1", Manufacturer: "Acme", NotBefore: testNow, ValidityYears: 5}, newKey(t, alg).Public(), h.issuingIssuer())

			entries := append(edgeRevocations(t), Revocation{
				Serial: revokedDevice.SerialNumber, RevokedAt: testNow.Add(2 * time.Hour), Reason: ReasonKeyCompromise, InvalidityDate: testNow.Add(time.Hour)})
			thisUpdate := testNow.Add(48 * time.Hour)
			crl, report, err := SignCRL(CRL{Number: big.NewInt(7), ThisUpdate: thisUpdate, MaxNextUpdate: DefaultMaxNextUpdate, NextUpdate: thisUpdate.AddDate(0, 6, 0), Revoked: Revocations(entries...)}, h.issuingIssuer())
			if err != nil {
				t.Fatal(err)
			}
			if len(report) < 15 || len(report.Failures()) != 0 || len(report.Warnings()) != 0 {
				t.Errorf("lint report: %d results, failures %v, warnings %v", len(report), report.Failures(), report.Warnings())
			}
			if crl.Entries() != len(entries) {
				t.Errorf("Entries() = %d, want %d", crl.Entries(), len(entries))
			}
			der := crl.Bytes()
			checkWriters(t, crl)
			var pemBuf bytes.Buffer
			crl.WritePEM(&pemBuf)

			derPath := filepath.Join(dir, "crl.der")
			pemPath := filepath.Join(dir, "crl.pem")
			os.WriteFile(derPath, der, 0o644)
			os.WriteFile(pemPath, pemBuf.Bytes(), 0o644)
			rootPEM := writeCert(t, dir, "root.pem", h.root)
			issuingPEM := writeCert(t, dir, "issuing.pem", h.issuing)
			out := openssl(t, "crl", "-inform", "DER", "-in", derPath, "-CAfile", issuingPEM, "-noout", "-verify")
			if !strings.Contains(out, "verify OK") {
				t.Errorf("openssl crl -verify: %s", out)
			}

			checkOpenSSLText(t, openssl(t, "crl", "-inform", "DER", "-in", derPath, "-noout", "-text"), entries, h.issuing)

			at := "-attime=" + itoa(thisUpdate.Add(time.Hour).Unix())
			out, err = opensslResult("verify", at, "-crl_check", "-CRLfile", pemPath, "-CAfile", rootPEM, "-untrusted", issuingPEM, writeCert(t, dir, "lost.pem", revokedDevice))
			if err == nil || !strings.Contains(out, "certificate revoked") {
				t.Errorf("openssl verify -crl_check accepted the revoked device: %v\n%s", err, out)
			}
			openssl(t, "verify", at, "-crl_check", "-CRLfile", pemPath, "-CAfile", rootPEM, "-untrusted", issuingPEM, writeCert(t, dir, "good.pem", goodDevice))

			checkGoParse(t, der, h.issuing, entries, 7, thisUpdate)
		})
	}
}

// checkOpenSSLText checks that openssl lists every serial with its revocation date, reason
// and invalidity date, and the CRL's own fields.
func checkOpenSSLText(t *testing.T, text string, entries []Revocation, issuer *x509.Certificate) {
	t.Helper()
	for _, want := range []string{"Version 2 (0x1)", "X509v3 CRL Number: \n                7", "X509v3 Authority Key Identifier", "Issuer: C = US, O = Acme Medical, CN = Acme Medical Devices CA 1"} {
		if !strings.Contains(text, want) {
			t.Errorf("openssl crl -text lacks %q", want)
		}
	}
	blocks := map[string]string{}
	parts := regexp.MustCompile(`Serial Number: ([0-9A-F]+)\n`).Split(text, -1)
	serials := regexp.MustCompile(`Serial Number: ([0-9A-F]+)\n`).FindAllStringSubmatch(text, -1)
	for i, m := range serials {
		blocks[m[1]] = parts[i+1]
	}
	if len(blocks) != len(entries) {
		t.Errorf("openssl lists %d serials, want %d", len(blocks), len(entries))
	}
	for _, e := range entries {
		b, ok := blocks[SerialHex(e.Serial)]
		if !ok {
			t.Errorf("serial %s missing from openssl's listing", SerialHex(e.Serial))
			continue
		}
		if !strings.Contains(b, "Revocation Date: "+opensslDate(e.RevokedAt)) {
			t.Errorf("serial %s: revocation date %s not shown:\n%s", SerialHex(e.Serial), opensslDate(e.RevokedAt), b)
		}
		if name, ok := opensslReason[e.Reason]; ok {
			if !strings.Contains(b, "X509v3 CRL Reason Code: \n                "+name+"\n") {
				t.Errorf("serial %s: reason %s not shown:\n%s", SerialHex(e.Serial), name, b)
			}
		} else if strings.Contains(b, "Reason Code") {
			t.Errorf("serial %s: reason code shown for %s:\n%s", SerialHex(e.Serial), e.Reason, b)
		}
		if !e.InvalidityDate.IsZero() {
			if !strings.Contains(b, "Invalidity Date: \n                "+opensslDate(e.InvalidityDate)) {
				t.Errorf("serial %s: invalidity date not shown:\n%s", SerialHex(e.Serial), b)
			}
		} else if strings.Contains(b, "Invalidity Date") {
			t.Errorf("serial %s: invalidity date shown though none was given", SerialHex(e.Serial))
		}
	}
}

func opensslDate(t time.Time) string { return t.UTC().Format("Jan _2 15:04:05 2006 GMT") }

// checkGoParse checks the CRL with Go's own parser: every field and entry, and the signature.
func checkGoParse(t *testing.T, der []byte, issuer *x509.Certificate, entries []Revocation, number int64, thisUpdate time.Time) {
	t.Helper()
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("x509.ParseRevocationList: %v", err)
	}
	if err := rl.CheckSignatureFrom(issuer); err != nil {
		t.Errorf("CheckSignatureFrom: %v", err)
	}
	if rl.Number.Int64() != number || !rl.ThisUpdate.Equal(thisUpdate.Truncate(time.Second)) || !bytes.Equal(rl.AuthorityKeyId, issuer.SubjectKeyId) || !bytes.Equal(rl.RawIssuer, issuer.RawSubject) {
		t.Errorf("header: number %v, thisUpdate %v, AKI %x", rl.Number, rl.ThisUpdate, rl.AuthorityKeyId)
	}
	want := map[string]Revocation{}
	for _, e := range entries {
		want[e.Serial.String()] = e
	}
	if len(rl.RevokedCertificateEntries) != len(entries) {
		t.Errorf("Go parses %d entries, want %d", len(rl.RevokedCertificateEntries), len(entries))
	}
	for _, got := range rl.RevokedCertificateEntries {
		e, ok := want[got.SerialNumber.String()]
		if !ok {
			t.Errorf("unexpected serial %x", got.SerialNumber)
			continue
		}
		if !got.RevocationTime.Equal(e.RevokedAt.Truncate(time.Second)) || got.ReasonCode != int(e.Reason) {
			t.Errorf("serial %x: time %v reason %d, want %v %d", got.SerialNumber, got.RevocationTime, got.ReasonCode, e.RevokedAt, e.Reason)
		}
		var inv time.Time
		for _, ext := range got.Extensions {
			if ext.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 24}) {
				if _, err := asn1.UnmarshalWithParams(ext.Value, &inv, "generalized"); err != nil {
					t.Errorf("serial %x: invalidity date: %v", got.SerialNumber, err)
				}
			}
		}
		if !inv.Equal(e.InvalidityDate) {
			t.Errorf("serial %x: invalidity date %v, want %v", got.SerialNumber, inv, e.InvalidityDate)
		}
	}
}

// TestEmptyCRL: a CRL with no entries leaves out revokedCertificates, verifies and parses.
func TestEmptyCRL(t *testing.T) {
	for _, alg := range []keyalg.Algorithm{keyalg.ECDSAP384, keyalg.Ed25519} {
		h := newHierarchy(t, alg)
		for name, src := range map[string]iter.Seq2[Revocation, error]{"nil": nil, "empty": Revocations()} {
			crl, _, err := SignCRL(CRL{Number: big.NewInt(1), ThisUpdate: testNow, MaxNextUpdate: DefaultMaxNextUpdate, NextUpdate: testNow.AddDate(1, 0, 0), Revoked: src}, h.rootIssuer())
			if err != nil {
				t.Fatalf("%s %s: %v", alg, name, err)
			}
			der := crl.Bytes()
			checkGoParse(t, der, h.root, nil, 1, testNow)
			dir := t.TempDir()
			path := filepath.Join(dir, "empty.crl")
			os.WriteFile(path, der, 0o644)
			out := openssl(t, "crl", "-inform", "DER", "-in", path, "-CAfile", writeCert(t, dir, "root.pem", h.root), "-noout", "-verify", "-text")
			if !strings.Contains(out, "verify OK") || !strings.Contains(out, "No Revoked Certificates.") {
				t.Errorf("%s %s: %s", alg, name, out)
			}
		}
	}
}

// TestRootCRLRevokesIssuingCA: the root's CRL revokes the issuing CA for cACompromise, and
// openssl checking the whole chain then rejects a device under it.
func TestRootCRLRevokesIssuingCA(t *testing.T) {
	h := newHierarchy(t, keyalg.ECDSAP384)
	device := mustIssue(t, DeviceIdentity{SerialNumber: "D1", Manufacturer: "Acme", NotBefore: testNow, ValidityYears: 5}, newKey(t, keyalg.ECDSAP384).Public(), h.issuingIssuer())
	next := testNow.AddDate(1, 0, 0)
	rootCRL, _, err := SignCRL(CRL{Number: big.NewInt(2), ThisUpdate: testNow.Add(time.Hour), MaxNextUpdate: DefaultMaxNextUpdate, NextUpdate: next,
		Revoked: Revocations(Revocation{Serial: h.issuing.SerialNumber, RevokedAt: testNow.Add(time.Hour), Reason: ReasonCACompromise, InvalidityDate: testNow})}, h.rootIssuer())
	if err != nil {
		t.Fatal(err)
	}
	deviceCRL, _, err := SignCRL(CRL{Number: big.NewInt(1), ThisUpdate: testNow.Add(time.Hour), MaxNextUpdate: DefaultMaxNextUpdate, NextUpdate: next}, h.issuingIssuer())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	crls := filepath.Join(dir, "crls.pem")
	var all bytes.Buffer
	rootCRL.WritePEM(&all)
	deviceCRL.WritePEM(&all)
	os.WriteFile(crls, all.Bytes(), 0o644)
	at := "-attime=" + itoa(testNow.Add(2*time.Hour).Unix())
	args := []string{"verify", at, "-CAfile", writeCert(t, dir, "root.pem", h.root), "-untrusted", writeCert(t, dir, "issuing.pem", h.issuing), "-CRLfile", crls}
	openssl(t, append(args, "-crl_check", writeCert(t, dir, "device.pem", device))...) // the device itself is not revoked
	out, err := opensslResult(append(args, "-crl_check_all", filepath.Join(dir, "device.pem"))...)
	if err == nil || !strings.Contains(out, "certificate revoked") {
		t.Errorf("openssl accepted a device under a revoked issuing CA: %v\n%s", err, out)
	}
	if text := openssl(t, "crl", "-in", crls, "-noout", "-text"); !strings.Contains(text, "CA Compromise") {
		t.Errorf("root CRL does not show CA Compromise:\n%s", text)
	}
}

// TestCRLMatchesGo builds the same CRL with Go's x509.CreateRevocationList, an independent
// encoder, and requires the to-be-signed bytes to be identical.
func TestCRLMatchesGo(t *testing.T) {
	for _, alg := range keyalg.All() {
		h := newHierarchy(t, alg)
		entries := edgeRevocations(t)
		// Times from 2050 on are GeneralizedTime; check that rule for entries and header too.
		late := time.Date(2050, 6, 1, 0, 0, 0, 0, time.UTC)
		entries = append(entries, Revocation{Serial: big.NewInt(0x7777), RevokedAt: late, Reason: ReasonSuperseded},
			Revocation{Serial: big.NewInt(0x7778), RevokedAt: late, InvalidityDate: late.Add(-time.Hour)})
		for _, thisUpdate := range []time.Time{testNow.Add(48 * time.Hour), late.Add(time.Hour)} {
			var list []Revocation
			for _, e := range entries {
				// Go writes an entry's reason code after its other extensions, where Custos
				// (like openssl ca) writes it first: both are valid, so only entries with at
				// most one extension can be compared byte for byte.
				both := e.Reason != ReasonUnspecified && !e.InvalidityDate.IsZero()
				if !e.RevokedAt.After(thisUpdate) && !both {
					list = append(list, e)
				}
			}
			ours, _, err := SignCRL(CRL{Number: big.NewInt(0x0102030405), ThisUpdate: thisUpdate, MaxNextUpdate: DefaultMaxNextUpdate, NextUpdate: thisUpdate.AddDate(0, 1, 0), Revoked: Revocations(list...)}, h.rootIssuer())
			if err != nil {
				t.Fatal(err)
			}
			slices.SortFunc(list, func(a, b Revocation) int { return a.Serial.Cmp(b.Serial) })
			tmpl := goTemplate(t, list, thisUpdate, 0x0102030405)
			tmpl.SignatureAlgorithm = signatureAlgorithm(alg)
			goDER, err := x509.CreateRevocationList(rand.Reader, tmpl, h.root, h.rootKey)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := x509.ParseRevocationList(ours.Bytes())
			b, _ := x509.ParseRevocationList(goDER)
			if a == nil || b == nil || !bytes.Equal(a.RawTBSRevocationList, b.RawTBSRevocationList) {
				t.Errorf("%s at %v: our TBS differs from Go's:\n%x\n%x", alg, thisUpdate, a.RawTBSRevocationList, b.RawTBSRevocationList)
			}
		}
	}
}

func goTemplate(t testing.TB, entries []Revocation, thisUpdate time.Time, number int64) *x509.RevocationList {
	tmpl := &x509.RevocationList{Number: big.NewInt(number), ThisUpdate: thisUpdate, NextUpdate: thisUpdate.AddDate(0, 1, 0)}
	for _, e := range entries {
		g := x509.RevocationListEntry{SerialNumber: e.Serial, RevocationTime: e.RevokedAt, ReasonCode: int(e.Reason)}
		if !e.InvalidityDate.IsZero() {
			v, err := asn1.MarshalWithParams(e.InvalidityDate.UTC(), "generalized")
			if err != nil {
				t.Fatal(err)
			}
			g.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 24}, Value: v}}
		}
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, g)
	}
	return tmpl
}

// seq turns entries into a source without sorting them, as a database cursor would.
func seq(rs []Revocation, fail error) iter.Seq2[Revocation, error] {
	return func(yield func(Revocation, error) bool) {
		for _, r := range rs {
			if !yield(r, nil) {
				return
			}
		}
		if fail != nil {
			yield(Revocation{}, fail)
		}
	}
}

func TestCRLRefusals(t *testing.T) {
	h := newHierarchy(t, keyalg.ECDSAP256)
	at := testNow.Add(time.Hour)
	r := func(serial int64) Revocation { return Revocation{Serial: big.NewInt(serial), RevokedAt: at} }
	ok := CRL{Number: big.NewInt(3), ThisUpdate: at, MaxNextUpdate: DefaultMaxNextUpdate, NextUpdate: at.AddDate(0, 0, 30)}
	with := func(rs ...Revocation) CRL { c := ok; c.Revoked = seq(rs, nil); return c }
	endEntity := mustIssue(t, RecordSigner{CommonName: "R", NotBefore: testNow, ValidityYears: 1}, h.issuingKey.Public(), h.rootIssuer())
	tests := []struct {
		name   string
		crl    CRL
		issuer Issuer
		want   string
	}{
		{"out of order", with(r(5), r(4)), h.issuingIssuer(), "revoked serial 04 comes after 05: entries must come in strictly increasing serial order"},
		{"duplicate", with(r(5), r(5)), h.issuingIssuer(), "revoked serial 05 comes after 05"},
		{"zero serial", with(r(0)), h.issuingIssuer(), "serial number 0 is not positive"},
		{"nil serial", with(Revocation{RevokedAt: at}), h.issuingIssuer(), "serial number is missing"},
		{"21-octet serial", with(Revocation{Serial: hexSerial(t, strings.Repeat("80", 20)), RevokedAt: at}), h.issuingIssuer(), "takes 21 octets"},
		{"revoked after thisUpdate", with(Revocation{Serial: big.NewInt(1), RevokedAt: at.Add(time.Second)}), h.issuingIssuer(), "after the CRL's thisUpdate"},
		{"revoked before issuer", with(Revocation{Serial: big.NewInt(1), RevokedAt: testNow.Add(-time.Second)}), h.issuingIssuer(), "before its issuer became valid"},
		{"no revocation time", with(Revocation{Serial: big.NewInt(1)}), h.issuingIssuer(), "has no revocation time"},
		{"certificateHold", with(Revocation{Serial: big.NewInt(1), RevokedAt: at, Reason: 6}), h.issuingIssuer(), "has reason Reason(6), which Custos does not write"},
		{"removeFromCRL", with(Revocation{Serial: big.NewInt(1), RevokedAt: at, Reason: 8}), h.issuingIssuer(), "Reason(8)"},
		{"invalid after revoked", with(Revocation{Serial: big.NewInt(1), RevokedAt: at, InvalidityDate: at.Add(time.Hour)}), h.issuingIssuer(), "invalidity date 2026-03-01 14:00:00 UTC after its revocation"},
		{"source fails", CRL{Number: ok.Number, ThisUpdate: ok.ThisUpdate, MaxNextUpdate: DefaultMaxNextUpdate, NextUpdate: ok.NextUpdate, Revoked: seq([]Revocation{r(1)}, errors.New("database is locked"))}, h.issuingIssuer(), "read revoked certificates: database is locked"},
		{"no number", CRL{ThisUpdate: at, MaxNextUpdate: DefaultMaxNextUpdate, NextUpdate: at.Add(time.Hour)}, h.issuingIssuer(), "CRL.Number must be present"},
		{"negative number", CRL{Number: big.NewInt(-1), ThisUpdate: at, MaxNextUpdate: DefaultMaxNextUpdate, NextUpdate: at.Add(time.Hour)}, h.issuingIssuer(), "CRL.Number must be present and not negative"},
		{"huge number", CRL{Number: new(big.Int).Lsh(big.NewInt(1), 160), ThisUpdate: at, MaxNextUpdate: DefaultMaxNextUpdate, NextUpdate: at.Add(time.Hour)}, h.issuingIssuer(), "longer than the 20 octets"},
		{"no thisUpdate", CRL{Number: big.NewInt(1), NextUpdate: at, MaxNextUpdate: DefaultMaxNextUpdate}, h.issuingIssuer(), "CRL.ThisUpdate is missing"},
		{"nextUpdate not after", CRL{Number: big.NewInt(1), ThisUpdate: at, MaxNextUpdate: DefaultMaxNextUpdate, NextUpdate: at}, h.issuingIssuer(), "CRL.NextUpdate (2026-03-01 13:00:00 UTC) must be after CRL.ThisUpdate"},
		{"not a CA", ok, Issuer{Certificate: endEntity, Signer: h.issuingKey}, "may not sign CRLs"},
		{"wrong key", ok, Issuer{Certificate: h.issuing, Signer: h.rootKey}, "the signing key is not the key of issuer"},
		{"lying signer", ok, Issuer{Certificate: h.issuing, Signer: lyingSigner{claimed: h.issuingKey.Public(), real: h.rootKey}}, "the signature does not verify under the issuer's key"},
		{"no issuer", ok, Issuer{Signer: h.issuingKey}, "the issuer certificate is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			crl, _, err := SignCRL(tt.crl, tt.issuer)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			if crl != nil {
				t.Fatal("a CRL was returned with the error")
			}
		})
	}
}

// TestCRLSampleShapes: the linted sample holds exactly one entry per distinct shape.
func TestCRLSampleShapes(t *testing.T) {
	h := newHierarchy(t, keyalg.ECDSAP256)
	hdr, err := newCRLHeader(CRL{Number: big.NewInt(1), ThisUpdate: testNow.AddDate(0, 0, 2), NextUpdate: testNow.AddDate(0, 0, 9), MaxNextUpdate: DefaultMaxNextUpdate}, h.issuingIssuer())
	if err != nil {
		t.Fatal(err)
	}
	enc := newCRLEncoder(hdr, h.issuing)
	entries := edgeRevocations(t)
	// Many more of the shapes already seen.
	for i := range 1000 {
		entries = append(entries, Revocation{Serial: big.NewInt(int64(0x100000 + i)), RevokedAt: testNow.Add(time.Hour), Reason: ReasonCessationOfOperation})
	}
	if err := enc.read(Revocations(entries...), nil); err != nil {
		t.Fatal(err)
	}
	samples := enc.samples(&enc.shapes)
	// 7 reasons x with/without invalidity date, plus padded serials (0x80 superseded,
	// 0xFF00... keyCompromise with invalidity date).
	if len(samples) != 16 {
		t.Errorf("%d samples, want 16", len(samples))
	}
	type shape struct {
		reason             Reason
		invalidity, padded bool
	}
	seen := map[shape]bool{}
	var prev *big.Int
	for _, der := range samples {
		s := decodeEntry(t, der)
		if prev != nil && s.Serial.Cmp(prev) <= 0 {
			t.Errorf("sample %s comes after %s", SerialHex(s.Serial), SerialHex(prev))
		}
		prev = s.Serial
		shape := shape{s.Reason, !s.InvalidityDate.IsZero(), s.Serial.BitLen()%8 == 0}
		if seen[shape] {
			t.Errorf("shape %+v sampled twice", shape)
		}
		seen[shape] = true
	}
}

// decodeEntry reads one encoded revokedCertificates element back with encoding/asn1.
func decodeEntry(t *testing.T, der []byte) Revocation {
	t.Helper()
	var e struct {
		Serial     *big.Int
		Time       time.Time
		Extensions []pkix.Extension `asn1:"optional"`
	}
	if rest, err := asn1.Unmarshal(der, &e); err != nil || len(rest) != 0 {
		t.Fatalf("entry %x: %v", der, err)
	}
	r := Revocation{Serial: e.Serial, RevokedAt: e.Time}
	for _, x := range e.Extensions {
		switch {
		case x.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 21}):
			var code asn1.Enumerated
			asn1.Unmarshal(x.Value, &code)
			r.Reason = Reason(code)
		case x.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 24}):
			asn1.UnmarshalWithParams(x.Value, &r.InvalidityDate, "generalized")
		}
	}
	return r
}

// TestLintCRLRefuses hands the CRL linter a CRL with a reason code RFC 5280 does not define,
// made by Go's encoder since Custos's own cannot make one.
func TestLintCRLRefuses(t *testing.T) {
	h := newHierarchy(t, keyalg.ECDSAP256)
	tmpl := goTemplate(t, []Revocation{{Serial: big.NewInt(9), RevokedAt: testNow.Add(time.Hour), Reason: 7}}, testNow.Add(2*time.Hour), 1)
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, h.root, h.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lintCRL(der)
	var lintErr *LintError
	if !errors.As(err, &lintErr) || !strings.Contains(err.Error(), "e_crl_has_valid_reason_code") {
		t.Fatalf("error = %v, want a lint error naming e_crl_has_valid_reason_code", err)
	}
}

func TestParseReason(t *testing.T) {
	tests := []struct {
		in   string
		want Reason
		err  string
	}{
		{"keyCompromise", ReasonKeyCompromise, ""},
		{"KEYCOMPROMISE", ReasonKeyCompromise, ""},
		{"cACompromise", ReasonCACompromise, ""},
		{"affiliationChanged", ReasonAffiliationChanged, ""},
		{"superseded", ReasonSuperseded, ""},
		{"cessationOfOperation", ReasonCessationOfOperation, ""},
		{"privilegeWithdrawn", ReasonPrivilegeWithdrawn, ""},
		{"none", ReasonUnspecified, ""},
		{"unspecified", ReasonUnspecified, ""},
		{"", ReasonUnspecified, ""},
		{"certificateHold", 0, "certificateHold is not supported"},
		{"stolen", 0, `unknown revocation reason "stolen": use one of none, keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn`},
	}
	for _, tt := range tests {
		got, err := ParseReason(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseReason(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseReason(%q) = %v, %v", tt.in, got, err)
		}
	}
	for _, r := range Reasons() {
		back, err := ParseReason(r.String())
		if err != nil || back != r {
			t.Errorf("%v does not round trip: %v, %v", r, back, err)
		}
	}
}

// TestCRLWithHSMLikeSigner signs through a signer that only implements crypto.Signer (no
// concrete key type), as an HSM-backed one does.
func TestCRLWithHSMLikeSigner(t *testing.T) {
	for _, alg := range []keyalg.Algorithm{keyalg.RSA3072, keyalg.Ed25519} {
		h := newHierarchy(t, alg)
		opaque := &countingSigner{Signer: h.issuingKey}
		crl, _, err := SignCRL(CRL{Number: big.NewInt(1), ThisUpdate: testNow.Add(72 * time.Hour), MaxNextUpdate: DefaultMaxNextUpdate, NextUpdate: testNow.AddDate(0, 1, 0),
			Revoked: Revocations(edgeRevocations(t)...)}, Issuer{Certificate: h.issuing, Signer: opaque})
		if err != nil {
			t.Fatal(err)
		}
		if opaque.n != 1 {
			t.Errorf("%s: the issuer key signed %d times, want once", alg, opaque.n)
		}
		rl, err := x509.ParseRevocationList(crl.Bytes())
		if err != nil || rl.CheckSignatureFrom(h.issuing) != nil {
			t.Errorf("%s: %v", alg, err)
		}
	}
}

// TestCRLEntriesDoNotAllocate checks that the encoder's allocations do not grow with the
// number of entries, beyond one buffer per megabyte of DER.
func TestCRLEntriesDoNotAllocate(t *testing.T) {
	issuer := benchIssuer(t) // valid over the fleet's revocation dates
	allocs := func(n int) float64 {
		return testing.AllocsPerRun(3, func() {
			_, _, err := SignCRL(CRL{Number: big.NewInt(1), ThisUpdate: fleetThisUpdate, MaxNextUpdate: DefaultMaxNextUpdate, NextUpdate: fleetThisUpdate.AddDate(0, 1, 0), Revoked: fleet(n)}, issuer)
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	small, large := allocs(10_000), allocs(60_000)
	t.Logf("allocations: %.0f for 10,000 entries, %.0f for 60,000", small, large)
	if large-small > 10 {
		t.Errorf("50,000 more entries cost %.0f more allocations", large-small)
	}
}
