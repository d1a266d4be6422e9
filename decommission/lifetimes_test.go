package decommission

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/run"
)

// policyOID is the manufacturer's device PKI policy in the tests.
const policyOID = "1.3.6.1.4.1.55555.1.1"

// shardedCA makes an issuing CA that allows client and server authentication, asserts a
// policy, names where the root is published and splits its device CRL into shards.
func shardedCA(t testing.TB, f *fixture, name string, shards int) *ceremony.IssueCAResult {
	t.Helper()
	eku, err := pki.ParseExtKeyUsages("clientAuth,serverAuth")
	if err != nil {
		t.Fatal(err)
	}
	pol, err := pki.ParsePolicy(policyOID)
	if err != nil {
		t.Fatal(err)
	}
	return f.issueCA(t, ceremony.IssueCARequest{CommonName: name, ExtKeyUsages: eku, Policies: []x509.OID{pol},
		CAIssuersURL: "http://pki.acme.example/root.crt", CRLBaseURL: "http://pki.acme.example/crl", CRLShards: shards})
}

// writePEM writes a certificate where openssl can read it.
func writePEM(t testing.TB, dir string, c *x509.Certificate) string {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("%x.pem", c.SerialNumber))
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// zlintClean runs zlint's own default lints on a certificate, as an outsider would, and fails
// on any error or fatal but those of the Web PKI's rules that README and pki/lint.go say do
// not apply to a private device PKI (a Baseline Requirements policy OID, a distribution point
// for an offline root's CRL that may travel by hand).
func zlintClean(t testing.TB, c *x509.Certificate) {
	t.Helper()
	zc, err := zx509.ParseCertificate(c.Raw)
	if err != nil {
		t.Fatal(err)
	}
	notForPrivatePKI := []string{"e_invalid_ca_certificate_policies", "e_sub_ca_certificate_policies_missing",
		"e_sub_ca_crl_distribution_points_missing", "e_sub_ca_aia_missing"}
	for name, r := range zlint.LintCertificate(zc).Results {
		if slices.Contains(notForPrivatePKI, name) {
			continue
		}
		if r.Status == lint.Error || r.Status == lint.Fatal {
			t.Errorf("zlint %s on %q: %s %s", name, c.Subject.CommonName, r.Status, r.Details)
		}
	}
}

// An issuing CA made with extended key usages, a policy, a caIssuers URL and CRL shards carries
// them (openssl x509 -text), the registry keeps its shards, and every device certificate it
// issues afterwards names its own shard's CRL and the CA's policy; zlint finds nothing wrong.
func TestIssuingCAProfileAndShardedDevices(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	ica := shardedCA(t, f, "Acme Sharded CA", 4)
	ca := command(t, "openssl", "x509", "-in", ica.Path, "-noout", "-text")
	for _, want := range []string{"TLS Web Client Authentication, TLS Web Server Authentication", "Policy: " + policyOID,
		"CA Issuers - URI:http://pki.acme.example/root.crt", "CA:TRUE, pathlen:0"} {
		if !strings.Contains(ca, want) {
			t.Errorf("the issuing CA lacks %q:\n%s", want, ca)
		}
	}
	zlintClean(t, ica.Certificate)
	iss, err := f.env.Registry.Issuer(ctx, ica.IssuerID)
	if err != nil || iss.CRLBaseURL != "http://pki.acme.example/crl" || iss.CRLShards != 4 {
		t.Fatalf("registry: %+v %v", iss, err)
	}

	f.issuer = ica.IssuerID
	seen := map[int]bool{}
	for i := range 8 {
		p := f.provision(t, fmt.Sprintf("SH-%d", i))
		shard := pki.ShardOf(p.Certificate.SerialNumber, 4)
		seen[shard] = true
		want := fmt.Sprintf("http://pki.acme.example/crl/%s/%d.crl", ica.IssuerID, shard)
		if len(p.Certificate.CRLDistributionPoints) != 1 || p.Certificate.CRLDistributionPoints[0] != want {
			t.Errorf("%s names %v, want its shard %s", p.Serial, p.Certificate.CRLDistributionPoints, want)
		}
		text := command(t, "openssl", "x509", "-in", writePEM(t, f.dir, p.Certificate), "-noout", "-text")
		for _, w := range []string{"X509v3 CRL Distribution Points", "URI:" + want, "Policy: " + policyOID, "TLS Web Client Authentication"} {
			if !strings.Contains(text, w) {
				t.Errorf("%s lacks %q:\n%s", p.Serial, w, text)
			}
		}
		zlintClean(t, p.Certificate)
	}
	if len(seen) < 2 {
		t.Errorf("8 devices all fell in one of 4 shards: %v", seen)
	}

	// A CA without shards gives its devices no CRL distribution point, as before.
	f.issuer = f.issueCA(t, ceremony.IssueCARequest{CommonName: "Acme Plain CA"}).IssuerID
	if p := f.provision(t, "PLAIN-1"); len(p.Certificate.CRLDistributionPoints) != 0 || len(p.Certificate.Policies) != 0 {
		t.Errorf("a device of a CA without shards or policies names %v, %v", p.Certificate.CRLDistributionPoints, p.Certificate.Policies)
	}
}

// What an issuing CA cannot carry is refused, naming the request field, before the quorum is
// used or any key made.
func TestIssueCARefusesBadProfiles(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	pol, _ := pki.ParsePolicy(policyOID)
	for _, c := range []struct {
		req   ceremony.IssueCARequest
		field string
		want  string
	}{
		{ceremony.IssueCARequest{CRLShards: 4}, "CRLShards", "need the base URL"},
		{ceremony.IssueCARequest{CRLBaseURL: "http://pki.acme.example/crl", CRLShards: 70000}, "CRLShards", "give 1 to 65536"},
		{ceremony.IssueCARequest{CRLBaseURL: "http://pki.acme.example/crl/"}, "CRLBaseURL", "ends with /"},
		{ceremony.IssueCARequest{CRLBaseURL: "ftp://pki.acme.example/crl"}, "CRLBaseURL", "http or https"},
		{ceremony.IssueCARequest{CRLBaseURL: "http://pki.acme.example/crl?x=1"}, "CRLBaseURL", "query"},
		{ceremony.IssueCARequest{ExtKeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}, "ExtKeyUsages", "never allowed"},
		{ceremony.IssueCARequest{ExtKeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}, "ExtKeyUsages", "not a purpose"},
		{ceremony.IssueCARequest{Policies: []x509.OID{pol, pol}}, "Policies", "listed twice"},
		{ceremony.IssueCARequest{CAIssuersURL: "https://pki.acme.example/root.crt"}, "CAIssuersURL", "http URL"},
	} {
		c.req.CommonName, c.req.OpsPIN = "Refused CA", []byte(opsPIN)
		q, _ := ceremony.LoadQuorum(ctx, f.env.Registry, "acme-root")
		q.Add(f.shares[1])
		q.Add(f.shares[2])
		_, err := ceremony.IssueCA(ctx, f.env, q, c.req)
		if run.FieldOf(err) != c.field || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v (field %q), want field %s saying %q", c.req, err, run.FieldOf(err), c.field, c.want)
		}
	}
	issuers, _ := f.env.Registry.Issuers(ctx)
	if len(issuers) != 2 {
		t.Errorf("%d issuers after the refusals, want the root and the fixture's CA", len(issuers))
	}
	runs, _ := f.env.Registry.UnfinishedRuns(ctx)
	if len(runs) != 0 {
		t.Errorf("a refused request started a run: %+v", runs)
	}
}

// pemOf converts a DER CRL to PEM with openssl, for openssl verify -CRLfile.
func pemOf(t testing.TB, der string) string {
	t.Helper()
	out := strings.TrimSuffix(der, ".crl") + ".pem"
	command(t, "openssl", "crl", "-inform", "DER", "-in", der, "-out", out)
	return out
}

// chainFile writes the root and issuing CA certificates into one file for openssl -CAfile.
func chainFile(t testing.TB, f *fixture, issuerID string) string {
	t.Helper()
	ctx := context.Background()
	var b []byte
	for _, id := range []string{"acme-root", issuerID} {
		iss, err := f.env.Registry.Issuer(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: iss.Certificate})...)
	}
	path := filepath.Join(f.dir, "chain-"+issuerID+".pem")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// A decommission of a device of a CA with shards publishes the whole set under one CRL
// number, and so does crl publish: the full CRL and every shard in one folder, each shard
// listing only its own revoked devices behind a critical issuingDistributionPoint naming its
// URL. openssl verify -crl_check finds a revoked device revoked by its own shard, and a device
// of another shard good by its own.
func TestCRLSetsPublished(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	ica := shardedCA(t, f, "Acme Sharded CA", 4)
	f.issuer = ica.IssuerID
	var devs []*Provisioned
	for i := range 6 {
		devs = append(devs, f.provision(t, fmt.Sprintf("SET-%d", i)))
	}
	revoked := devs[0]
	res, err := Decommission(ctx, f.env, Request{Serial: revoked.Serial, Method: Erase, Technician: "Tess Tech", Validator: "Vic Validator",
		OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)})
	if err != nil {
		t.Fatal(err)
	}
	if res.CRL.Shards != 4 || res.CRL.SetDir == "" {
		t.Fatalf("the decommission's CRL is not a set: %+v", res.CRL)
	}
	c, err := PublishCRL(ctx, f.env, PublishRequest{Issuer: ica.IssuerID, OpsPIN: []byte(opsPIN), CRL: run.CRLRequest{NextUpdate: 7 * 24 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Number != res.CRL.Number+1 || c.Shards != 4 || c.Entries != 1 {
		t.Fatalf("publish: %+v after %d", c, res.CRL.Number)
	}
	want := []string{"full.crl", "full.pem"}
	for i := range 4 {
		want = append(want, filepath.Join(ica.IssuerID, fmt.Sprintf("%d.crl", i)))
	}
	for _, name := range want {
		if _, err := os.Stat(filepath.Join(c.SetDir, name)); err != nil {
			t.Errorf("the set lacks %s: %v", name, err)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(c.SetDir, ica.IssuerID)); len(entries) != 4 {
		t.Errorf("%d files in the shard folder, want 4", len(entries))
	}
	if latest, _ := f.env.Registry.LatestCRL(ctx, ica.IssuerID); latest.Number != c.Number || latest.Path != c.DERPath {
		t.Errorf("the registry's latest CRL is %+v", latest)
	}

	chain := chainFile(t, f, ica.IssuerID)
	full := command(t, "openssl", "crl", "-in", c.PEMPath, "-noout", "-text")
	if strings.Contains(full, "Issuing Distribution Point") || !strings.Contains(full, "X509v3 CRL Number: \n                "+fmt.Sprint(c.Number)) {
		t.Errorf("full CRL:\n%s", full)
	}
	mine := pki.ShardOf(revoked.Certificate.SerialNumber, 4)
	for i := range 4 {
		shard := pemOf(t, filepath.Join(c.ShardDir, fmt.Sprintf("%d.crl", i)))
		text := command(t, "openssl", "crl", "-in", shard, "-noout", "-text", "-CAfile", chain)
		url := fmt.Sprintf("http://pki.acme.example/crl/%s/%d.crl", ica.IssuerID, i)
		for _, w := range []string{"X509v3 Issuing Distribution Point: critical", "URI:" + url, "Only User Certificates", "verify OK"} {
			if !strings.Contains(text, w) {
				t.Errorf("shard %d lacks %q:\n%s", i, w, text)
			}
		}
		if listed := strings.Contains(text, strings.ToUpper(pki.SerialHex(revoked.Certificate.SerialNumber))); listed != (i == mine) {
			t.Errorf("shard %d lists the revoked device: %v; its shard is %d", i, listed, mine)
		}
	}
	// The revoked device against its own shard; every other device against its own.
	for _, d := range devs {
		shard := pemOf(t, filepath.Join(c.ShardDir, fmt.Sprintf("%d.crl", pki.ShardOf(d.Certificate.SerialNumber, 4))))
		out, err := execOut("openssl", "verify", "-crl_check", "-CAfile", chain, "-CRLfile", shard, writePEM(t, f.dir, d.Certificate))
		switch {
		case d == revoked && (err == nil || !strings.Contains(out, "certificate revoked")):
			t.Errorf("the revoked %s against its shard: %v\n%s", d.Serial, err, out)
		case d != revoked && err != nil:
			t.Errorf("%s against its shard: %v\n%s", d.Serial, err, out)
		}
	}
	checkSetRecord(t, f, c)
}

// checkSetRecord checks the record of a CRL set's publication as an auditor would: it
// verifies, names the full CRL and every shard with its SHA-256 (pdftotext), and the list it
// attaches (pdfdetach) checks every file of the set with sha256sum -c in the set's folder.
func checkSetRecord(t *testing.T, f *fixture, c *Published) {
	t.Helper()
	file, err := os.ReadFile(c.RecordPath)
	if err != nil {
		t.Fatal(err)
	}
	if rep := record.Verify(file, f.root(t)); !rep.OK() || rep.Kind != "crl-publish" {
		t.Errorf("the set's record of kind %q does not verify: %+v", rep.Kind, rep.Checks)
	}
	txt := strings.Join(strings.Fields(command(t, "pdftotext", c.RecordPath, "-")), "")
	want := []string{"CRLset", c.Fingerprint.String()}
	for i, h := range c.ShardSHA256 {
		want = append(want, fmt.Sprintf("%d.crl", i), h.String())
	}
	for _, w := range want {
		if !strings.Contains(strings.ToLower(txt), strings.ToLower(w)) {
			t.Errorf("the record lacks %q", w)
		}
	}
	dir := t.TempDir()
	command(t, "pdfdetach", "-saveall", "-o", dir, c.RecordPath)
	sums, err := os.ReadFile(filepath.Join(dir, "crl-set.sha256"))
	if err != nil {
		t.Fatalf("the record attaches no crl-set.sha256: %v", err)
	}
	if n := strings.Count(string(sums), "\n"); n != c.Shards+1 {
		t.Errorf("crl-set.sha256 lists %d files, want %d", n, c.Shards+1)
	}
	check := exec.Command("sha256sum", "-c", filepath.Join(dir, "crl-set.sha256"))
	check.Dir = c.SetDir
	if out, err := check.CombinedOutput(); err != nil || strings.Count(string(out), ": OK") != c.Shards+1 {
		t.Errorf("sha256sum -c in %s: %v\n%s", c.SetDir, err, out)
	}
}

// A CRL that would stay current past the policy's bound (366 days for an issuing CA) or past
// its CA's notAfter is refused with a *pki.LimitError naming the limit, before a CRL number is
// allocated or the token opened.
func TestCRLLimits(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	short := f.issueCA(t, ceremony.IssueCARequest{CommonName: "Acme One-Year CA", ValidityYears: 1})
	for _, c := range []struct {
		issuer string
		days   int
		bound  string
	}{
		{f.issuer, 100000, "the policy's maximum of 366 days after thisUpdate"},
		{f.issuer, 4000, "the policy's maximum of 366 days after thisUpdate"},
		{f.issuer, 367, "the policy's maximum of 366 days after thisUpdate"},
		{short.IssuerID, 366, `the notAfter of issuer "Acme One-Year CA"`},
	} {
		before, _ := f.env.Registry.Issuer(ctx, c.issuer)
		_, err := PublishCRL(ctx, f.env, PublishRequest{Issuer: c.issuer, OpsPIN: []byte("not the PIN"), CRL: run.CRLRequest{NextUpdate: time.Duration(c.days) * 24 * time.Hour}})
		var le *pki.LimitError
		if !errors.As(err, &le) || !strings.Contains(err.Error(), c.bound) {
			t.Errorf("%s, %d days: %v, want a limit error naming %s", c.issuer, c.days, err, c.bound)
		}
		if after, _ := f.env.Registry.Issuer(ctx, c.issuer); after.LastCRLNumber != before.LastCRLNumber {
			t.Errorf("%s, %d days: CRL number %d allocated", c.issuer, c.days, after.LastCRLNumber)
		}
	}
	// Within the limits, the same CAs sign.
	if _, err := PublishCRL(ctx, f.env, PublishRequest{Issuer: f.issuer, OpsPIN: []byte(opsPIN), CRL: run.CRLRequest{NextUpdate: 366 * 24 * time.Hour}}); err != nil {
		t.Error(err)
	}
	if _, err := PublishCRL(ctx, f.env, PublishRequest{Issuer: short.IssuerID, OpsPIN: []byte(opsPIN), CRL: run.CRLRequest{NextUpdate: 300 * 24 * time.Hour}}); err != nil {
		t.Error(err)
	}
	// A device certificate never outlives its issuer: an hour later, the one-year CA refuses
	// a device of a year.
	f.env.Now = func() time.Time { return short.Certificate.NotBefore.Add(time.Hour) }
	_, err := Provision(ctx, f.env, ProvisionRequest{Issuer: short.IssuerID, Serial: "LONG-1", Model: "Pump", Token: "dev-LONG-1",
		OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN), ValidityYears: 10})
	if le := new(pki.LimitError); !errors.As(err, &le) {
		t.Errorf("ten years from a one-year CA: %v", err)
	}
}
