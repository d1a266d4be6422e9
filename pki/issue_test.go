package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zmap/zlint/v3/lint"

	"github.com/custos-pki/custos/keyalg"
)

// TestIssueEveryProfileAndAlgorithm issues the whole hierarchy with each key algorithm and
// has openssl verify the chains and show the extensions each profile promises.
func TestIssueEveryProfileAndAlgorithm(t *testing.T) {
	for _, alg := range keyalg.All() {
		t.Run(string(alg), func(t *testing.T) {
			dir := t.TempDir()
			h := newHierarchy(t, alg)
			signerKey, deviceKey := newKey(t, alg), newKey(t, alg)

			signer, signerLints, err := Issue(RecordSigner{CommonName: "Acme Medical Ceremony Records", Organization: "Acme Medical", Country: "US",
				NotBefore: testNow, ValidityYears: 10}, newSerial(t), signerKey.Public(), h.rootIssuer())
			if err != nil {
				t.Fatalf("record signer: %v", err)
			}
			device, deviceLints, err := Issue(DeviceIdentity{SerialNumber: "SN-0042", Manufacturer: "Acme Medical", Model: "Infusion Pump X200",
				NotBefore: testNow, ValidityYears: 15, ServerAuth: true, CRLDistributionPoint: "http://pki.acme.example/devices-1.crl"},
				newSerial(t), deviceKey.Public(), h.issuingIssuer())
			if err != nil {
				t.Fatalf("device: %v", err)
			}
			for name, report := range map[string]LintReport{"signer": signerLints, "device": deviceLints} {
				if len(report) < 50 || len(report.Failures()) != 0 {
					t.Errorf("%s lint report has %d results and %d failures", name, len(report), len(report.Failures()))
				}
			}

			rootPEM := writeCert(t, dir, "root.pem", h.root)
			issuingPEM := writeCert(t, dir, "issuing.pem", h.issuing)
			signerPEM := writeCert(t, dir, "signer.pem", signer)
			devicePEM := writeCert(t, dir, "device.pem", device)
			// Verify as of a time inside every validity period, not the wall clock.
			at := "-attime=" + itoa(testNow.Add(time.Hour).Unix())
			openssl(t, "verify", at, "-x509_strict", "-CAfile", rootPEM, issuingPEM)
			openssl(t, "verify", at, "-x509_strict", "-CAfile", rootPEM, "-untrusted", issuingPEM, "-purpose", "sslclient", devicePEM)
			openssl(t, "verify", at, "-x509_strict", "-CAfile", rootPEM, "-untrusted", issuingPEM, "-purpose", "sslserver", devicePEM)
			openssl(t, "verify", at, "-x509_strict", "-CAfile", rootPEM, signerPEM)

			tests := []struct {
				file string
				want []string
			}{
				{rootPEM, []string{"CA:TRUE, pathlen:1", "X509v3 Basic Constraints: critical", "X509v3 Key Usage: critical", "Certificate Sign, CRL Sign",
					"X509v3 Subject Key Identifier", "Subject: C = US, O = Acme Medical, CN = Acme Medical Root CA 2026", "Not Before: Mar  1 12:00:00 2026 GMT",
					"Not After : Mar  1 11:59:59 2051 GMT"}},
				{issuingPEM, []string{"CA:TRUE, pathlen:0", "X509v3 Key Usage: critical", "Certificate Sign, CRL Sign", "X509v3 Authority Key Identifier",
					"URI:http://pki.acme.example/root.crl", "Issuer: C = US, O = Acme Medical, CN = Acme Medical Root CA 2026"}},
				{signerPEM, []string{"CA:FALSE", "Digital Signature, Non Repudiation", "X509v3 Extended Key Usage", "X509v3 Authority Key Identifier"}},
				{devicePEM, []string{"CA:FALSE", "X509v3 Key Usage: critical", "Digital Signature\n", "TLS Web Client Authentication, TLS Web Server Authentication",
					"Subject: O = Acme Medical, OU = Infusion Pump X200, CN = SN-0042, serialNumber = SN-0042", "URI:http://pki.acme.example/devices-1.crl",
					"X509v3 Authority Key Identifier"}},
			}
			for _, tt := range tests {
				text := openssl(t, "x509", "-noout", "-text", "-in", tt.file)
				for _, w := range tt.want {
					if !strings.Contains(text, w) {
						t.Errorf("%s: openssl x509 -text lacks %q:\n%s", tt.file, w, text)
					}
				}
			}
			// OpenSSL 3.2 and later name id-kp-documentSigning; 3.0 prints the OID.
			text := openssl(t, "x509", "-noout", "-text", "-in", signerPEM)
			if !strings.Contains(text, "1.3.6.1.5.5.7.3.36") && !strings.Contains(text, "Document Signing") {
				t.Errorf("record signer lacks id-kp-documentSigning:\n%s", text)
			}
			if strings.Contains(text, "TLS Web") || strings.Contains(text, "E-mail Protection") {
				t.Errorf("record signer has an extended key usage besides documentSigning:\n%s", text)
			}

			// The signature algorithm follows the issuer's key.
			wantSig := map[keyalg.Algorithm]x509.SignatureAlgorithm{keyalg.ECDSAP256: x509.ECDSAWithSHA256, keyalg.ECDSAP384: x509.ECDSAWithSHA384,
				keyalg.RSA3072: x509.SHA256WithRSA, keyalg.RSA4096: x509.SHA384WithRSA, keyalg.Ed25519: x509.PureEd25519}[alg]
			for _, c := range []*x509.Certificate{h.root, h.issuing, signer, device} {
				if c.SignatureAlgorithm != wantSig {
					t.Errorf("%s signed with %v, want %v", c.Subject.CommonName, c.SignatureAlgorithm, wantSig)
				}
				if !bytes.Equal(c.AuthorityKeyId, map[bool][]byte{true: h.root.SubjectKeyId, false: h.issuing.SubjectKeyId}[c != device]) {
					t.Errorf("%s: authority key id %x is not its issuer's subject key id", c.Subject.CommonName, c.AuthorityKeyId)
				}
				if len(c.SubjectKeyId) != 20 {
					t.Errorf("%s: subject key id %x", c.Subject.CommonName, c.SubjectKeyId)
				}
			}
		})
	}
}

// TestMixedAlgorithms issues under an issuer whose key differs from the subject's: the
// signature follows the issuer, and the Ed25519 exclusions apply when either side is Ed25519.
func TestMixedAlgorithms(t *testing.T) {
	h := newHierarchy(t, keyalg.ECDSAP384)
	for _, alg := range []keyalg.Algorithm{keyalg.Ed25519, keyalg.ECDSAP256} {
		c, _, err := Issue(DeviceIdentity{SerialNumber: "MIX-1", Manufacturer: "Acme", NotBefore: testNow, ValidityYears: 5}, newSerial(t), newKey(t, alg).Public(), h.issuingIssuer())
		if err != nil {
			t.Fatalf("%s device under P-384 CA: %v", alg, err)
		}
		if c.SignatureAlgorithm != x509.ECDSAWithSHA384 {
			t.Errorf("signature algorithm %v", c.SignatureAlgorithm)
		}
		if err := CheckPublicKey(c.PublicKey, alg); err != nil {
			t.Error(err)
		}
	}
}

func itoa(n int64) string {
	var b [20]byte
	i := len(b)
	for n >= 10 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	i--
	b[i] = byte('0' + n)
	return string(b[i:])
}

// TestBadProfilesAreRefused checks that a bad profile is an error naming the field, and that
// the issuer's key is never used for it.
func TestBadProfilesAreRefused(t *testing.T) {
	h := newHierarchy(t, keyalg.ECDSAP256)
	counting := &countingSigner{Signer: h.rootKey}
	root := Issuer{Certificate: h.root, Signer: counting}
	pub := newKey(t, keyalg.ECDSAP256).Public()
	long := strings.Repeat("x", 65)
	tests := []struct {
		name    string
		profile Profile
		want    string
	}{
		{"empty CN", IssuingCA{Organization: "Acme", Country: "US", ValidityYears: 5}, "IssuingCA.CommonName is empty"},
		{"no organization", IssuingCA{CommonName: "CA", Country: "US", ValidityYears: 5}, "IssuingCA.Organization is empty"},
		{"lowercase country", IssuingCA{CommonName: "CA", Organization: "Acme", Country: "us", ValidityYears: 5}, "IssuingCA.Country"},
		{"zero validity", IssuingCA{CommonName: "CA", Organization: "Acme", Country: "US"}, "IssuingCA.ValidityYears is 0"},
		{"negative validity", RecordSigner{CommonName: "R", ValidityYears: -1}, "RecordSigner.ValidityYears is -1"},
		{"validity past issuer", RecordSigner{CommonName: "R", NotBefore: testNow, ValidityYears: 26}, "the certificate's notAfter would be 2052-03-01 11:59:59 UTC, after the notAfter of issuer \"Acme Medical Root CA 2026\" (2051-03-01 11:59:59 UTC): choose a shorter ValidityYears"},
		{"starts before issuer", RecordSigner{CommonName: "R", NotBefore: testNow.Add(-time.Hour), ValidityYears: 2}, "NotBefore 2026-03-01 11:00:00 UTC is before issuer"},
		{"long CN", RecordSigner{CommonName: long, ValidityYears: 1}, "RecordSigner.CommonName is 65 characters long"},
		{"CN with spaces", RecordSigner{CommonName: " R", ValidityYears: 1}, "starts or ends with white space"},
		{"CN with control", RecordSigner{CommonName: "R\x00", ValidityYears: 1}, "control character"},
		{"device serial empty", DeviceIdentity{Manufacturer: "Acme", ValidityYears: 1}, "DeviceIdentity.SerialNumber is empty"},
		{"device serial underscore", DeviceIdentity{SerialNumber: "SN_1", Manufacturer: "Acme", ValidityYears: 1}, `DeviceIdentity.SerialNumber "SN_1" contains '_'`},
		{"device no manufacturer", DeviceIdentity{SerialNumber: "SN1", ValidityYears: 1}, "DeviceIdentity.Manufacturer is empty"},
		{"ftp CRL", DeviceIdentity{SerialNumber: "SN1", Manufacturer: "Acme", ValidityYears: 1, CRLDistributionPoint: "ftp://x/y.crl"}, "must be an http, https or ldap URL"},
		{"CRL without host", IssuingCA{CommonName: "CA", Organization: "Acme", Country: "US", ValidityYears: 5, CRLDistributionPoint: "http:///x.crl"}, "has no host"},
		{"root via Issue", RootCA{CommonName: "R", Organization: "A", Country: "US", ValidityYears: 1}, "use IssueRoot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := Issue(tt.profile, newSerial(t), pub, root)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			if c != nil {
				t.Fatal("a certificate was returned with the error")
			}
		})
	}
	if counting.n != 0 {
		t.Errorf("the issuer key signed %d times for refused profiles", counting.n)
	}

	// Issuer problems.
	ok := RecordSigner{CommonName: "R", NotBefore: testNow, ValidityYears: 1}
	otherKey := newKey(t, keyalg.ECDSAP256)
	issuerTests := []struct {
		name    string
		profile Profile
		serial  *big.Int
		pub     crypto.PublicKey
		issuer  Issuer
		want    string
	}{
		{"wrong signer key", ok, newSerial(t), pub, Issuer{Certificate: h.root, Signer: otherKey}, "the signing key is not the key of issuer"},
		{"no signer", ok, newSerial(t), pub, Issuer{Certificate: h.root}, "no signer for issuer"},
		{"end entity issuer", ok, newSerial(t), pub, Issuer{Certificate: mustIssue(t, ok, pub, h.rootIssuer()), Signer: otherKey}, "is not a CA"},
		{"CA under pathlen 0", IssuingCA{CommonName: "Sub", Organization: "A", Country: "US", NotBefore: testNow, ValidityYears: 1}, newSerial(t), pub, h.issuingIssuer(), "may not sign another CA"},
		{"zero serial", ok, big.NewInt(0), pub, h.rootIssuer(), "serial number 0 is not positive"},
		{"negative serial", ok, big.NewInt(-5), pub, h.rootIssuer(), "serial number -5 is not positive"},
		{"21-octet serial", ok, new(big.Int).Lsh(big.NewInt(1), 160), pub, h.rootIssuer(), "takes 21 octets"},
		{"no serial", ok, nil, pub, h.rootIssuer(), "serial number is missing"},
		{"P-521 subject", ok, newSerial(t), mustP521(t), h.rootIssuer(), "curve P-521 is not supported"},
		{"no subject key", ok, newSerial(t), nil, h.rootIssuer(), "subject public key is missing"},
	}
	for _, tt := range issuerTests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := Issue(tt.profile, tt.serial, tt.pub, tt.issuer)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			if c != nil {
				t.Fatal("a certificate was returned with the error")
			}
		})
	}
}

func mustIssue(t *testing.T, p Profile, pub crypto.PublicKey, issuer Issuer) *x509.Certificate {
	t.Helper()
	c, _, err := Issue(p, newSerial(t), pub, issuer)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// countingSigner counts how often the real key is asked to sign.
type countingSigner struct {
	crypto.Signer
	n int
}

func (s *countingSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	s.n++
	return s.Signer.Sign(r, digest, opts)
}

// lyingSigner claims one key and signs with another: a confused or hostile HSM layer.
type lyingSigner struct {
	claimed crypto.PublicKey
	real    crypto.Signer
}

func (s lyingSigner) Public() crypto.PublicKey { return s.claimed }
func (s lyingSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.real.Sign(r, digest, opts)
}

// TestLintRefusesBeforeSigning hands lint-then-sign templates that zlint rejects and checks
// that the error names each failing lint and that the real key never signed.
func TestLintRefusesBeforeSigning(t *testing.T) {
	h := newHierarchy(t, keyalg.ECDSAP256)
	pub := newKey(t, keyalg.ECDSAP256).Public()
	tests := []struct {
		name  string
		edit  func(*x509.Certificate)
		lints []string
	}{
		{"CA without keyCertSign", func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageCRLSign }, []string{"e_ca_key_cert_sign_not_set"}},
		{"zero serial", func(c *x509.Certificate) { c.SerialNumber = big.NewInt(0) }, []string{"e_serial_number_not_positive"}},
		{"CA with empty subject", func(c *x509.Certificate) { c.Subject = pkix.Name{} }, []string{"e_ca_subject_field_empty"}},
		{"CA with EKU-less key usage digitalSignature only", func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageDigitalSignature },
			[]string{"e_ca_key_cert_sign_not_set", "e_ca_crl_sign_not_set"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, err := IssuingCA{CommonName: "Sub", Organization: "Acme", Country: "US", NotBefore: testNow, ValidityYears: 2}.template(newSerial(t), pub)
			if err != nil {
				t.Fatal(err)
			}
			tt.edit(tmpl)
			counting := &countingSigner{Signer: h.rootKey}
			c, report, err := signCertificate(tmpl, pub, Issuer{Certificate: h.root, Signer: counting})
			var lintErr *LintError
			if !errors.As(err, &lintErr) {
				t.Fatalf("error = %v, want a *LintError", err)
			}
			for _, l := range tt.lints {
				if !strings.Contains(err.Error(), l) {
					t.Errorf("error does not name lint %s: %v", l, err)
				}
				found := false
				for _, f := range lintErr.Failures {
					found = found || f.Lint == l
				}
				if !found {
					t.Errorf("Failures lacks %s", l)
				}
			}
			if c != nil || counting.n != 0 {
				t.Errorf("certificate %v returned, issuer key signed %d times", c != nil, counting.n)
			}
			if len(report.Failures()) == 0 {
				t.Error("the report returned with the error has no failures")
			}
		})
	}
}

// TestSignerThatLiesIsRefused: a signer that signs with another key than it claims, or than
// the issuer certificate holds, yields no certificate.
func TestSignerThatLiesIsRefused(t *testing.T) {
	for _, alg := range []keyalg.Algorithm{keyalg.ECDSAP256, keyalg.Ed25519, keyalg.RSA3072} {
		t.Run(string(alg), func(t *testing.T) {
			h := newHierarchy(t, alg)
			other := newKey(t, alg)
			pub := newKey(t, alg).Public()
			p := DeviceIdentity{SerialNumber: "LIE-1", Manufacturer: "Acme", NotBefore: testNow, ValidityYears: 2}

			// Claims the issuing CA's key, signs with another.
			c, _, err := Issue(p, newSerial(t), pub, Issuer{Certificate: h.issuing, Signer: lyingSigner{claimed: h.issuingKey.Public(), real: other}})
			if err == nil || c != nil {
				t.Fatalf("lying signer: certificate %v, error %v", c != nil, err)
			}
			if !strings.Contains(err.Error(), "signature") {
				t.Errorf("error does not say the signature is bad: %v", err)
			}

			// A root whose signer claims one key and signs with another.
			c, _, err = IssueRoot(RootCA{CommonName: "R", Organization: "A", Country: "US", NotBefore: testNow, ValidityYears: 1}, newSerial(t),
				lyingSigner{claimed: h.rootKey.Public(), real: other})
			if err == nil || c != nil {
				t.Fatalf("lying root signer: certificate %v, error %v", c != nil, err)
			}
		})
	}
}

// TestSignedTBSMustEqualLinted checks the comparison itself: a certificate whose TBS differs
// from the linted one is refused even though its signature verifies.
func TestSignedTBSMustEqualLinted(t *testing.T) {
	h := newHierarchy(t, keyalg.ECDSAP256)
	c := mustIssue(t, RecordSigner{CommonName: "R1", NotBefore: testNow, ValidityYears: 1}, newKey(t, keyalg.ECDSAP256).Public(), h.rootIssuer())
	other := mustIssue(t, RecordSigner{CommonName: "R2", NotBefore: testNow, ValidityYears: 1}, newKey(t, keyalg.ECDSAP256).Public(), h.rootIssuer())
	if _, err := checkSigned(c.Raw, c.RawTBSCertificate, h.root); err != nil {
		t.Fatalf("the same TBS is refused: %v", err)
	}
	got, err := checkSigned(c.Raw, other.RawTBSCertificate, h.root)
	if err == nil || got != nil || !strings.Contains(err.Error(), "differs from the linted one") {
		t.Fatalf("a different TBS: certificate %v, error %v", got != nil, err)
	}
	// A signature that verifies, but not under the issuer certificate it claims.
	h2 := newHierarchy(t, keyalg.ECDSAP256)
	got, err = checkSigned(c.Raw, c.RawTBSCertificate, h2.root)
	if err == nil || got != nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("foreign issuer: certificate %v, error %v", got != nil, err)
	}
}

// TestLintPolicyNamesExist fails when a zlint upgrade renames a lint that Custos includes
// or excludes by name, which would otherwise silently change what is checked.
func TestLintPolicyNamesExist(t *testing.T) {
	reg, err := certificateRegistry(true, false)
	if err != nil {
		t.Fatal(err)
	}
	names := append([]string{}, encodingLints...)
	for n := range caExclusions {
		names = append(names, n)
	}
	for n := range ed25519Exclusions {
		names = append(names, n)
	}
	global := lintGlobalCertificateNames()
	for _, n := range names {
		if !global[n] {
			t.Errorf("lint %s is not in zlint's registry", n)
		}
	}
	for n := range crlExclusions {
		if !lintGlobalCRLNames()[n] {
			t.Errorf("CRL lint %s is not in zlint's registry", n)
		}
	}
	caNames := map[string]bool{}
	for _, n := range reg.Names() {
		caNames[n] = true
	}
	for n := range caExclusions {
		if caNames[n] {
			t.Errorf("excluded lint %s runs on CA certificates", n)
		}
	}
	for _, n := range []string{"e_ca_key_cert_sign_not_set", "e_ext_authority_key_identifier_no_key_identifier", "e_ecdsa_allowed_ku", "e_rsa_allowed_ku_ca", "e_root_ca_key_usage_must_be_critical"} {
		if !caNames[n] {
			t.Errorf("lint %s does not run on CA certificates", n)
		}
	}
}

func mustP521(t *testing.T) crypto.PublicKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}

func lintGlobalCertificateNames() map[string]bool {
	out := map[string]bool{}
	g := lint.GlobalRegistry()
	for _, n := range g.Names() {
		if g.CertificateLints().ByName(n) != nil {
			out[n] = true
		}
	}
	return out
}

func lintGlobalCRLNames() map[string]bool {
	out := map[string]bool{}
	g := lint.GlobalRegistry()
	for _, n := range g.Names() {
		if g.RevocationListLints().ByName(n) != nil {
			out[n] = true
		}
	}
	return out
}

// TestRecordSignerWithNSS asks NSS (what poppler's pdfsig validates PDF signers with)
// whether the record signer may sign as an e-mail signer, the usage it checks: not with
// id-kp-documentSigning alone, yes with EmailProtection.
func TestRecordSignerWithNSS(t *testing.T) {
	h := newHierarchy(t, keyalg.ECDSAP256)
	for _, email := range []bool{false, true} {
		c := mustIssue(t, RecordSigner{CommonName: "Acme Medical Records", NotBefore: testNow, ValidityYears: 2, EmailProtection: email}, newKey(t, keyalg.ECDSAP256).Public(), h.rootIssuer())
		hasEmail := slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageEmailProtection)
		hasDoc := len(c.UnknownExtKeyUsage) == 1 && c.UnknownExtKeyUsage[0].Equal(oidDocumentSigning)
		if hasEmail != email || !hasDoc {
			t.Fatalf("EmailProtection %v: extended key usages %v %v", email, c.ExtKeyUsage, c.UnknownExtKeyUsage)
		}
		dir := t.TempDir()
		db := "sql:" + filepath.Join(dir, "db")
		os.Mkdir(filepath.Join(dir, "db"), 0o700)
		run(t, "certutil", "-N", "-d", db, "--empty-password")
		run(t, "certutil", "-A", "-d", db, "-n", "root", "-t", "CT,C,C", "-a", "-i", writeCert(t, dir, "root.pem", h.root))
		run(t, "certutil", "-A", "-d", db, "-n", "signer", "-t", ",,", "-a", "-i", writeCert(t, dir, "signer.pem", c))
		out, err := exec.Command("certutil", "-V", "-d", db, "-n", "signer", "-u", "S", "-b", testNow.Add(time.Hour).Format("060102150405Z")).CombinedOutput()
		valid := err == nil && strings.Contains(string(out), "certificate is valid")
		if valid != email {
			t.Errorf("EmailProtection %v: NSS says %q (%v)", email, out, err)
		}
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// TestCertificateSerialEdges issues with serials at the edges of their DER encoding and has
// openssl show each.
func TestCertificateSerialEdges(t *testing.T) {
	h := newHierarchy(t, keyalg.ECDSAP256)
	dir := t.TempDir()
	for _, hexSerial := range []string{"01", "80", strings.Repeat("7F", 20), strings.Repeat("80", 19)} {
		serial, err := ParseSerial(hexSerial)
		if err != nil {
			t.Fatal(err)
		}
		c, _, err := Issue(DeviceIdentity{SerialNumber: "E-" + hexSerial[:2], Manufacturer: "Acme", NotBefore: testNow, ValidityYears: 1}, serial, newKey(t, keyalg.ECDSAP256).Public(), h.issuingIssuer())
		if err != nil {
			t.Fatalf("serial %s: %v", hexSerial, err)
		}
		out := openssl(t, "x509", "-noout", "-serial", "-in", writeCert(t, dir, "c.pem", c))
		if got := strings.TrimSpace(strings.TrimPrefix(out, "serial=")); got != hexSerial {
			t.Errorf("openssl shows serial %s, want %s", got, hexSerial)
		}
	}
}
