package pki

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custos-pki/custos/keyalg"
)

var testPolicy = mustOID("1.3.6.1.4.1.55555.1.1")

// TestIssuingCAProfileOptions issues an issuing CA with the default extended key usage, a
// policy and a caIssuers URL, and a device under it that names its CRL shard, and has
// openssl show and verify what each promises.
func TestIssuingCAProfileOptions(t *testing.T) {
	for _, alg := range []keyalg.Algorithm{keyalg.ECDSAP384, keyalg.Ed25519} {
		t.Run(string(alg), func(t *testing.T) {
			dir := t.TempDir()
			h := newHierarchy(t, alg)
			caKey := newKey(t, alg)
			ca, caLints, err := Issue(IssuingCA{CommonName: "Acme Medical Devices CA 2", Organization: "Acme Medical", Country: "US", NotBefore: testNow, ValidityYears: 15,
				CRLDistributionPoint: "http://pki.acme.example/root.crl", Policies: []x509.OID{testPolicy}, CAIssuersURL: "http://pki.acme.example/root.cer"},
				newSerial(t), caKey.Public(), h.rootIssuer())
			if err != nil {
				t.Fatal(err)
			}
			if f, w := caLints.Failures(), caLints.Warnings(); len(f) != 0 || len(w) != 0 {
				t.Errorf("issuing CA lints: failures %v, warnings %v", f, w)
			}
			// The Baseline Requirements lints on CAs run although the CA lacks serverAuth.
			for _, name := range []string{"e_ca_key_cert_sign_not_set", "w_sub_ca_eku_critical", "n_sub_ca_eku_not_technically_constrained", "e_ca_aia_non_http_url", "e_sub_ca_aia_marked_critical"} {
				if i := slices.IndexFunc(caLints, func(r LintResult) bool { return r.Lint == name }); i < 0 || caLints[i].Status != "pass" {
					t.Errorf("lint %s did not pass on the issuing CA", name)
				}
			}
			issuer := Issuer{Certificate: ca, Signer: caKey}
			shards := CRLShards{BaseURL: "http://pki.acme.example/crl", IssuerID: "ica-0a1b2c3d4e", Count: 16}
			serial := newSerial(t)
			device, deviceLints, err := Issue(DeviceIdentity{SerialNumber: "SN-7", Manufacturer: "Acme Medical", NotBefore: testNow, ValidityYears: 12,
				CRLShards: shards, Policies: []x509.OID{testPolicy}}, serial, newKey(t, alg).Public(), issuer)
			if err != nil {
				t.Fatal(err)
			}
			if len(deviceLints.Failures()) != 0 {
				t.Errorf("device lints: %v", deviceLints.Failures())
			}
			wantDP := shards.URL(ShardOf(serial, 16))
			if !slices.Equal(device.CRLDistributionPoints, []string{wantDP}) {
				t.Errorf("device CRL distribution points %v, want %s", device.CRLDistributionPoints, wantDP)
			}

			rootPEM := writeCert(t, dir, "root.pem", h.root)
			caPEM := writeCert(t, dir, "ca.pem", ca)
			devicePEM := writeCert(t, dir, "device.pem", device)
			for file, want := range map[string][]string{
				caPEM: {"X509v3 Extended Key Usage: \n                TLS Web Client Authentication\n", "X509v3 Certificate Policies: \n                Policy: 1.3.6.1.4.1.55555.1.1\n",
					"Authority Information Access: \n                CA Issuers - URI:http://pki.acme.example/root.cer\n", "URI:http://pki.acme.example/root.crl", "CA:TRUE, pathlen:0"},
				devicePEM: {"X509v3 CRL Distribution Points: \n                Full Name:\n                  URI:" + wantDP + "\n", "TLS Web Client Authentication\n",
					"Policy: 1.3.6.1.4.1.55555.1.1"},
			} {
				text := openssl(t, "x509", "-noout", "-text", "-in", file)
				for _, w := range want {
					if !strings.Contains(text, w) {
						t.Errorf("%s: openssl x509 -text lacks %q:\n%s", file, w, text)
					}
				}
				if strings.Contains(text, "Server Authentication") {
					t.Errorf("%s has serverAuth:\n%s", file, text)
				}
			}
			at := "-attime=" + itoa(testNow.Add(time.Hour).Unix())
			openssl(t, "verify", at, "-x509_strict", "-CAfile", rootPEM, "-untrusted", caPEM, "-purpose", "sslclient", "-policy", testPolicy.String(), "-explicit_policy", devicePEM)

			// A server certificate under it is refused by Custos, and openssl would refuse it
			// too: made here with Go alone, it does not verify as a TLS server.
			_, _, err = Issue(DeviceIdentity{SerialNumber: "SN-8", Manufacturer: "Acme Medical", NotBefore: testNow, ValidityYears: 1, ServerAuth: true},
				newSerial(t), newKey(t, alg).Public(), issuer)
			if err == nil || !strings.Contains(err.Error(), `issuer "Acme Medical Devices CA 2" allows only the extended key usage clientAuth, not serverAuth`) {
				t.Errorf("serverAuth device under a clientAuth CA: %v", err)
			}
			rogueKey := newKey(t, alg)
			rogueDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(99), Subject: pkix.Name{CommonName: "bank.example"}, DNSNames: []string{"bank.example"},
				NotBefore: testNow, NotAfter: testNow.AddDate(1, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
				ca, rogueKey.Public(), caKey)
			if err != nil {
				t.Fatal(err)
			}
			rogue, _ := x509.ParseCertificate(rogueDER)
			out, err := opensslResult("verify", at, "-CAfile", rootPEM, "-untrusted", caPEM, "-purpose", "sslserver", writeCert(t, dir, "rogue.pem", rogue))
			if err == nil || !strings.Contains(out, "unsuitable certificate purpose") {
				t.Errorf("openssl accepted a TLS server certificate under a clientAuth issuing CA: %v\n%s", err, out)
			}
		})
	}
}

// TestIssuingCAServerAuth: with clientAuth and serverAuth, the issuing CA may certify
// devices that serve TLS, and openssl verifies them as servers.
func TestIssuingCAServerAuth(t *testing.T) {
	h := newHierarchy(t, keyalg.ECDSAP256)
	usages, err := ParseExtKeyUsages("serverAuth, clientAuth")
	if err != nil {
		t.Fatal(err)
	}
	caKey := newKey(t, keyalg.ECDSAP256)
	ca := mustIssue(t, IssuingCA{CommonName: "CA S", Organization: "Acme", Country: "US", NotBefore: testNow, ValidityYears: 5, ExtKeyUsages: usages}, caKey.Public(), h.rootIssuer())
	if !slices.Equal(ca.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}) {
		t.Errorf("extended key usage %v", ca.ExtKeyUsage)
	}
	device := mustIssue(t, DeviceIdentity{SerialNumber: "SRV-1", Manufacturer: "Acme", NotBefore: testNow, ValidityYears: 2, ServerAuth: true}, newKey(t, keyalg.ECDSAP256).Public(), Issuer{Certificate: ca, Signer: caKey})
	dir := t.TempDir()
	openssl(t, "verify", "-attime="+itoa(testNow.Add(time.Hour).Unix()), "-CAfile", writeCert(t, dir, "root.pem", h.root), "-untrusted", writeCert(t, dir, "ca.pem", ca),
		"-purpose", "sslserver", writeCert(t, dir, "device.pem", device))
}

func TestProfileOptionRefusals(t *testing.T) {
	h := newHierarchy(t, keyalg.ECDSAP256)
	counting := &countingSigner{Signer: h.rootKey}
	root := Issuer{Certificate: h.root, Signer: counting}
	pub := newKey(t, keyalg.ECDSAP256).Public()
	ca := func(edit func(*IssuingCA)) IssuingCA {
		p := IssuingCA{CommonName: "CA", Organization: "Acme", Country: "US", NotBefore: testNow, ValidityYears: 5}
		edit(&p)
		return p
	}
	device := func(edit func(*DeviceIdentity)) DeviceIdentity {
		p := DeviceIdentity{SerialNumber: "SN1", Manufacturer: "Acme", NotBefore: testNow, ValidityYears: 1}
		edit(&p)
		return p
	}
	shards := CRLShards{BaseURL: "http://pki.acme.example/crl", IssuerID: "ica-1", Count: 8}
	policyCAKey := newKey(t, keyalg.ECDSAP256)
	policyCA := Issuer{Certificate: mustIssue(t, ca(func(p *IssuingCA) { p.Policies = []x509.OID{testPolicy} }), policyCAKey.Public(), h.rootIssuer()), Signer: policyCAKey}
	other := mustOID("1.3.6.1.4.1.55555.1.2")
	tests := []struct {
		name    string
		profile Profile
		issuer  Issuer
		want    string
	}{
		{"anyExtendedKeyUsage", ca(func(p *IssuingCA) { p.ExtKeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageAny} }), root, "IssuingCA.ExtKeyUsages: anyExtendedKeyUsage is never allowed"},
		{"any beside clientAuth", ca(func(p *IssuingCA) {
			p.ExtKeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageAny}
		}), root, "anyExtendedKeyUsage is never allowed"},
		{"codeSigning", ca(func(p *IssuingCA) { p.ExtKeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning} }), root, "IssuingCA.ExtKeyUsages: codeSigning is not a purpose of device identities"},
		{"clientAuth twice", ca(func(p *IssuingCA) {
			p.ExtKeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageClientAuth}
		}), root, "clientAuth is listed twice"},
		{"anyPolicy", ca(func(p *IssuingCA) { p.Policies = []x509.OID{anyPolicy} }), root, "IssuingCA.Policies: anyPolicy (2.5.29.32.0) asserts nothing"},
		{"policy twice", ca(func(p *IssuingCA) { p.Policies = []x509.OID{testPolicy, testPolicy} }), root, "policy 1.3.6.1.4.1.55555.1.1 is listed twice"},
		{"empty policy", ca(func(p *IssuingCA) { p.Policies = []x509.OID{{}} }), root, "IssuingCA.Policies: policy 1 is empty"},
		{"https caIssuers", ca(func(p *IssuingCA) { p.CAIssuersURL = "https://pki.acme.example/root.cer" }), root, `IssuingCA.CAIssuersURL "https://pki.acme.example/root.cer" must be an http URL`},
		{"caIssuers without host", ca(func(p *IssuingCA) { p.CAIssuersURL = "http:///root.cer" }), root, "has no host"},
		{"device with two CRLs", device(func(p *DeviceIdentity) { p.CRLShards, p.CRLDistributionPoint = shards, "http://x.example/a.crl" }), policyCA,
			"DeviceIdentity has both CRLDistributionPoint"},
		{"device with bad shards", device(func(p *DeviceIdentity) { p.CRLShards = CRLShards{BaseURL: "http://x.example", IssuerID: "ica-1"} }), policyCA,
			"DeviceIdentity.CRLShards.Count is 0"},
		{"device policy the CA lacks", device(func(p *DeviceIdentity) { p.Policies = []x509.OID{other} }), policyCA,
			`issuer "CA" does not assert certificate policy 1.3.6.1.4.1.55555.1.2 (it asserts 1.3.6.1.4.1.55555.1.1)`},
		{"device policy under a CA with none", device(func(p *DeviceIdentity) { p.Policies = []x509.OID{testPolicy} }), h.issuingIssuer(),
			`issuer "Acme Medical Devices CA 1" asserts no certificate policy, so a certificate below it cannot assert 1.3.6.1.4.1.55555.1.1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := Issue(tt.profile, newSerial(t), pub, tt.issuer)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			if c != nil {
				t.Fatal("a certificate was returned with the error")
			}
		})
	}
	if counting.n != 0 {
		t.Errorf("the root key signed %d times for refused profiles", counting.n)
	}
}

func TestParseExtKeyUsages(t *testing.T) {
	client, server := x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth
	tests := []struct {
		in   string
		want []x509.ExtKeyUsage
		err  string
	}{
		{"", nil, ""},
		{"clientAuth", []x509.ExtKeyUsage{client}, ""},
		{"CLIENTAUTH", []x509.ExtKeyUsage{client}, ""},
		{"clientAuth,serverAuth", []x509.ExtKeyUsage{client, server}, ""},
		{" serverAuth , clientAuth ", []x509.ExtKeyUsage{client, server}, ""},
		{"serverAuth", []x509.ExtKeyUsage{server}, ""},
		{"anyExtendedKeyUsage", nil, "anyExtendedKeyUsage is never allowed"},
		{"clientAuth,any", nil, "anyExtendedKeyUsage is never allowed"},
		{"emailProtection", nil, "emailProtection is not a purpose of device identities"},
		{"clientAuth,clientAuth", nil, "clientAuth is listed twice"},
		{"tls", nil, `unknown extended key usage "tls": use clientAuth, or clientAuth,serverAuth`},
		{"clientAuth,", nil, `unknown extended key usage ""`},
	}
	for _, tt := range tests {
		got, err := ParseExtKeyUsages(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseExtKeyUsages(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseExtKeyUsages(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParsePolicy(t *testing.T) {
	got, err := ParsePolicy(" 1.3.6.1.4.1.55555.1.1 ")
	if err != nil || !got.Equal(testPolicy) {
		t.Errorf("ParsePolicy = %v, %v", got, err)
	}
	for in, want := range map[string]string{
		"2.5.29.32.0":   "certificate policy 2.5.29.32.0 is anyPolicy, which asserts nothing",
		"1.3.6.x":       `certificate policy "1.3.6.x" is not an OID: write it in dotted form`,
		"":              `certificate policy "" is not an OID`,
		"acme-policy-1": `"acme-policy-1" is not an OID`,
	} {
		if _, err := ParsePolicy(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePolicy(%q) error = %v, want %q", in, err, want)
		}
	}
}
