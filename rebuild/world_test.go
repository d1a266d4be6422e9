package rebuild

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/decommission"
	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/testhsm"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/quorum"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
	"github.com/custos-pki/custos/workspace"
)

const (
	opsPIN = "ops-pin-1234"
	devPIN = "device-pin-1234"
)

const plan = `id: acme-root
module: MODULE
operations_token: acme-ops
administrator: Ada Admin
witnesses: [Wes Witness]
custodians: [Cara Cruz, Cody Chen, Zoë Ångström]
threshold: 2
key: {algorithm: ecdsa-p256}
certificate: {common_name: Acme Medical Root CA, organization: Acme Medical, country: US, validity_years: 20}
backup: true
`

// people confirms every step and keeps each custodian's share in memory.
type people struct{ shares map[int]string }

func (p *people) Confirm(ctx context.Context, st run.Step) (record.Actor, error) {
	return record.Actor{Name: "Ada Admin", Role: "administrator"}, nil
}
func (p *people) AcknowledgeHorizon(ctx context.Context, h ceremony.Horizon) (record.Actor, error) {
	return record.Actor{Name: "Ada Admin", Role: "administrator"}, nil
}
func (p *people) DeliverShare(ctx context.Context, d ceremony.ShareDelivery) (string, error) {
	p.shares[d.Number] = d.Text
	return "memory", nil
}
func (p *people) ReadBackShare(ctx context.Context, d ceremony.ShareDelivery) (string, error) {
	return p.shares[d.Number], nil
}

// world is a workspace made by a real root ceremony on SoftHSM2, with one issuing CA.
type world struct {
	dir    string // the workspace
	hsm    *testhsm.Env
	env    run.Env
	people *people
	root   *ceremony.RootResult
	issuer string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{dir: filepath.Join(t.TempDir(), "ws"), hsm: testhsm.New(t), people: &people{shares: map[int]string{}}}
	w.open(t)
	p, err := ceremony.ParsePlan([]byte(strings.Replace(plan, "MODULE", w.hsm.ModulePath, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if w.root, err = ceremony.Root(ctx, w.env, p, []byte(opsPIN), w.people); err != nil {
		t.Fatal(err)
	}
	ica, err := ceremony.IssueCA(ctx, w.env, w.quorum(t, 1, 2), ceremony.IssueCARequest{CommonName: "Acme Devices CA 1", OpsPIN: []byte(opsPIN)})
	if err != nil {
		t.Fatal(err)
	}
	w.issuer = ica.IssuerID
	return w
}

// open opens the workspace and its registry as a command does.
func (w *world) open(t *testing.T) {
	t.Helper()
	env, err := run.Open(context.Background(), w.dir)
	if err != nil {
		t.Fatal(err)
	}
	w.env = env
	t.Cleanup(func() { w.close() })
}

func (w *world) close() {
	if w.env.Registry != nil {
		w.env.Close()
		w.env = run.Env{}
	}
}

// quorum is a collector holding the shares with the numbers given.
func (w *world) quorum(t *testing.T, numbers ...int) *quorum.Collector {
	t.Helper()
	q, err := ceremony.LoadQuorum(context.Background(), w.env.Registry, "acme-root")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range numbers {
		if _, err := q.Add(w.people.shares[n]); err != nil {
			t.Fatal(err)
		}
	}
	return q
}

func (w *world) provision(t *testing.T, serial string) {
	t.Helper()
	if _, err := decommission.Provision(context.Background(), w.env, decommission.ProvisionRequest{Issuer: w.issuer, Serial: serial,
		Model: "Infusion Pump X2", Token: "dev-" + serial, OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)}); err != nil {
		t.Fatal(err)
	}
}

// certificates issues device certificates from the issuing CA, as another system would have,
// and writes them into one PEM file to import.
func (w *world) certificates(t *testing.T, serials ...string) string {
	t.Helper()
	ctx := context.Background()
	mod, err := hsm.Open(w.hsm.ModulePath)
	if err != nil {
		t.Fatal(err)
	}
	defer mod.Close()
	iss, err := run.OpenIssuer(ctx, w.env.Registry, mod, w.issuer, []byte(opsPIN), run.SignCertificates)
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	// One key for all: a fleet of certificates is signed quickly, without pki's lint, by the
	// issuing CA's key on the operations token.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var out []byte
	for _, s := range serials {
		serial, err := pki.NewSerial(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: s, SerialNumber: s, Organization: []string{"Acme Medical"},
			OrganizationalUnit: []string{"Monitor M1"}}, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().AddDate(5, 0, 0),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, iss.Certificate, key.Public(), iss.Key)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	path := filepath.Join(filepath.Dir(w.dir), "import.pem")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// manifest writes a fleet manifest.
func (w *world) manifest(t *testing.T, name string, rows ...string) *decommission.Manifest {
	t.Helper()
	path := filepath.Join(filepath.Dir(w.dir), name)
	if err := os.WriteFile(path, []byte("serial,method,reason,note\n"+strings.Join(rows, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := decommission.LoadManifest(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (w *world) fleet(ctx context.Context, m *decommission.Manifest, name string) (*decommission.FleetResult, error) {
	return decommission.Fleet(ctx, w.env, m, decommission.FleetRequest{ManifestPath: filepath.Join(filepath.Dir(w.dir), name),
		Technician: "Tess Tech", Validator: "Vic Validator", Witness: "Wes Witness", OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)})
}

// rebuildAndCompare closes the workspace, rebuilds its registry, and reopens it.
func (w *world) rebuild(t *testing.T) *Report {
	t.Helper()
	w.close()
	ws, err := workspace.Open(w.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	rep, err := Rebuild(context.Background(), ws, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// handlers are the stopped-run handlers a front end offers.
var handlers = run.Handlers{ceremony.Handler(), decommission.Handler(), decommission.RekeyHandler()}

func statusOf(t *testing.T, reg *registry.Registry, id string) registry.RunStatus {
	t.Helper()
	rr, err := reg.Run(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return rr.Status
}
