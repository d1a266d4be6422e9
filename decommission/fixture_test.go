package decommission

import (
	"context"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/internal/testhsm"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
	"github.com/custos-pki/custos/workspace"
)

const opsPIN = "ops-pin-1234"
const devPIN = "device-pin-1234"

// fixture is a workspace with a root, an issuing CA on the operations token and its record
// signer, made by a real root ceremony and issue-ca on SoftHSM2.
type fixture struct {
	env    run.Env
	hsm    *testhsm.Env
	issuer string
	dir    string
	shares map[int]string // the custodians' shares, for more quorum operations
}

type everyone struct{ shares map[int]string }

func (e *everyone) Confirm(ctx context.Context, st run.Step) (record.Actor, error) {
	return record.Actor{Name: "Ada Admin", Role: "administrator"}, nil
}
func (e *everyone) AcknowledgeHorizon(ctx context.Context, h ceremony.Horizon) (record.Actor, error) {
	return record.Actor{Name: "Ada Admin", Role: "administrator"}, nil
}
func (e *everyone) DeliverShare(ctx context.Context, d ceremony.ShareDelivery) (string, error) {
	e.shares[d.Number] = d.Text
	return "memory", nil
}
func (e *everyone) ReadBackShare(ctx context.Context, d ceremony.ShareDelivery) (string, error) {
	return e.shares[d.Number], nil
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	h := testhsm.New(t)
	dir := t.TempDir()
	ws, err := workspace.Open(filepath.Join(dir, "ws"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	reg, err := registry.Open(ctx, ws.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	plan, err := ceremony.ParsePlan([]byte(`id: acme-root
module: ` + h.ModulePath + `
operations_token: acme-ops
administrator: Ada Admin
witnesses: [Wes Witness]
custodians: [Cara Cruz, Zoë Ångström]
threshold: 2
key: {algorithm: ecdsa-p256}
certificate: {common_name: Acme Medical Root CA, organization: Acme Medical, country: US, validity_years: 20}
backup: false
`))
	if err != nil {
		t.Fatal(err)
	}
	cenv := run.Env{Workspace: ws, Registry: reg}
	people := &everyone{shares: map[int]string{}}
	if _, err := ceremony.Root(ctx, cenv, plan, []byte(opsPIN), people); err != nil {
		t.Fatal(err)
	}
	f := &fixture{env: run.Env{Workspace: ws, Registry: reg}, hsm: h, dir: dir, shares: people.shares}
	f.issuer = f.issueCA(t, ceremony.IssueCARequest{CommonName: "Acme Devices CA"}).IssuerID
	return f
}

// issueCA makes another issuing CA under the fixture's root, under quorum.
func (f *fixture) issueCA(t testing.TB, req ceremony.IssueCARequest) *ceremony.IssueCAResult {
	t.Helper()
	ctx := context.Background()
	q, err := ceremony.LoadQuorum(ctx, f.env.Registry, "acme-root")
	if err != nil {
		t.Fatal(err)
	}
	q.Add(f.shares[1])
	q.Add(f.shares[2])
	req.OpsPIN = []byte(opsPIN)
	ica, err := ceremony.IssueCA(ctx, f.env, q, req)
	if err != nil {
		t.Fatal(err)
	}
	return ica
}

func (f *fixture) provision(t testing.TB, serial string) *Provisioned {
	t.Helper()
	p, err := Provision(context.Background(), f.env, ProvisionRequest{Issuer: f.issuer, Serial: serial, Model: "Infusion Pump X2",
		Token: "dev-" + serial, OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func command(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func writeFile(t testing.TB, path, text string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func execOut(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

func (f *fixture) root(t testing.TB) []*x509.Certificate {
	iss, err := f.env.Registry.Issuer(context.Background(), "acme-root")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(iss.Certificate)
	return []*x509.Certificate{c}
}

var workspaceOpen = workspace.Open

// handlers are the stopped-run handlers a front end offers for decommissioning.
var handlers = run.Handlers{Handler()}
