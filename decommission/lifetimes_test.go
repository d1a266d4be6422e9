package decommission

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/pki"
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
