// Package demo prepares a throwaway workspace and SoftHSM2 token folder for trying Custos:
// `custos demo` opens the window on it. Nothing outside the demo folder is touched, and the
// demo never opens a real HSM.
package demo

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/decommission"
	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/softhsm"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/run"
)

// Demo PINs: printed on screen and written to PIN files in the demo folder, because they
// guard nothing but SoftHSM2 tokens in a temporary folder.
const (
	OpsToken = "demo-ops"
	OpsPIN   = "ops-pin-1234"
	OpsSOPIN = "ops-so-pin-1234"
	// DevicePIN is every demo device token's PIN.
	DevicePIN = "device-pin-1234"
)

// Setup is a prepared demo.
type Setup struct {
	Dir        string // the demo folder holding everything below
	Workspace  string
	Module     string // libsofthsm2.so, with SOFTHSM2_CONF set to the demo's token folder
	OpsPINFile string
	SharesDir  string // the demo root's custodians' shares, one file each
	IssuerID   string // the demo's issuing CA
	Banner     string // what was prepared, for the home screen
}

// Prepare makes a demo folder under the system's temporary folder, points SoftHSM2 at a token
// folder inside it (by setting SOFTHSM2_CONF for this process, before any module is opened),
// creates the workspace with the module remembered, and an operations token. log receives
// progress lines.
func Prepare(ctx context.Context, log io.Writer) (*Setup, error) {
	module, err := softhsm.LibraryPath()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "custos-demo-")
	if err != nil {
		return nil, fmt.Errorf("demo: make a temporary folder: %w", err)
	}
	conf, err := softhsm.WriteConfig(filepath.Join(dir, "softhsm"))
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if err := os.Setenv("SOFTHSM2_CONF", conf); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	d := &Setup{Dir: dir, Workspace: filepath.Join(dir, "workspace"), Module: module,
		OpsPINFile: filepath.Join(dir, "ops.pin")}
	fmt.Fprintf(log, "demo folder: %s\n", dir)
	if err := os.WriteFile(d.OpsPINFile, []byte(OpsPIN+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("demo: write the operator PIN file: %w", err)
	}
	env, err := run.Open(ctx, d.Workspace)
	if err != nil {
		return nil, err
	}
	defer env.Close()
	if err := run.SaveModule(ctx, env, module); err != nil {
		return nil, err
	}
	if err := initToken(ctx, module, OpsToken, OpsSOPIN, OpsPIN); err != nil {
		return nil, err
	}
	if err := d.writePlan("plan-new-root.yaml", "demo-root-2", module); err != nil {
		return nil, err
	}
	fmt.Fprintln(log, "demo: running a root key ceremony for demo-root…")
	if err := d.rootAndIssuingCA(ctx, env, module); err != nil {
		return nil, err
	}
	d.Banner = strings.Join([]string{
		"A demo workspace in " + dir + ", with SoftHSM2 tokens standing in for the HSM and the devices.",
		fmt.Sprintf("Root %q exists, with an issuing CA; its custodians' shares are in %s.", "demo-root", d.SharesDir),
		fmt.Sprintf("Operations token %q, operator PIN %s (also in %s). Device tokens DEMO-0001 to DEMO-0005, device PIN %s.", OpsToken, OpsPIN, d.OpsPINFile, DevicePIN),
		"A fleet manifest to try, with one bad line: " + filepath.Join(dir, "fleet.csv") + ".",
		"To try a root key ceremony yourself, load " + filepath.Join(dir, "plan-new-root.yaml") + ".",
		"Nothing here is real: close the window and the folder can be deleted.",
	}, "\n")
	return d, nil
}

// demoPlan is the plan of the demo's roots: names from several scripts, as real teams have.
const demoPlan = `id: ID
module: MODULE
operations_token: demo-ops
administrator: Ada Admin
witnesses: [Wes Witness]
custodians: [Cara Cruz, Cody Chen, Zoë Ångström, 李雷, Cole Carter]
threshold: 3
key: {algorithm: ecdsa-p384}
certificate: {common_name: Demo Medical Root CA, organization: Demo Medical, country: US, validity_years: 20}
backup: true
`

func (d *Setup) writePlan(name, id, module string) error {
	text := strings.NewReplacer("ID", id, "MODULE", module).Replace(demoPlan)
	return os.WriteFile(filepath.Join(d.Dir, name), []byte(text), 0o644)
}

// rootAndIssuingCA runs the demo's root ceremony and an issue-ca, as custodians would on the
// day, so that quorum operations and decommissioning can be tried at once.
func (d *Setup) rootAndIssuingCA(ctx context.Context, env run.Env, module string) error {
	plan, err := ceremony.ParsePlan([]byte(strings.NewReplacer("ID", "demo-root", "MODULE", module).Replace(demoPlan)))
	if err != nil {
		return err
	}
	d.SharesDir = filepath.Join(d.Dir, "shares")
	if err := os.Mkdir(d.SharesDir, 0o700); err != nil {
		return err
	}
	people := &shareFolder{dir: d.SharesDir}
	if _, err := ceremony.Root(ctx, env, plan, []byte(OpsPIN), people); err != nil {
		return fmt.Errorf("demo root ceremony: %w", err)
	}
	q, err := ceremony.LoadQuorum(ctx, env.Registry, plan.ID)
	if err != nil {
		return err
	}
	for n := 1; n <= plan.Threshold; n++ {
		text, err := os.ReadFile(people.path(n))
		if err != nil {
			return err
		}
		if _, err := q.Add(string(text)); err != nil {
			return err
		}
	}
	ica, err := ceremony.IssueCA(ctx, env, q, ceremony.IssueCARequest{CommonName: "Demo Devices CA 1", OpsPIN: []byte(OpsPIN)})
	if err != nil {
		return fmt.Errorf("demo issue-ca: %w", err)
	}
	d.IssuerID = ica.IssuerID
	var manifest strings.Builder
	manifest.WriteString("serial,method,reason,note\n")
	for i, model := range []string{"Infusion Pump X2", "Infusion Pump X2", "Patient Monitor M7", "Ventilator V3", "Patient Monitor M7"} {
		serial := fmt.Sprintf("DEMO-%04d", i+1)
		if _, err := decommission.Provision(ctx, env, decommission.ProvisionRequest{Issuer: ica.IssuerID, Serial: serial, Model: model,
			Token: "device-" + serial, OpsPIN: []byte(OpsPIN), DevicePIN: []byte(DevicePIN)}); err != nil {
			return fmt.Errorf("demo device %s: %w", serial, err)
		}
		if i >= 3 {
			fmt.Fprintf(&manifest, "%s,unreachable,,lost in transit\n", serial)
		}
	}
	fmt.Fprintf(&manifest, "DEMO-9999,unreachable,,this line names a device that does not exist\n")
	return os.WriteFile(filepath.Join(d.Dir, "fleet.csv"), []byte(manifest.String()), 0o644)
}

// shareFolder hands demo shares out as files, one per custodian, and reads them back.
type shareFolder struct{ dir string }

func (f *shareFolder) path(n int) string { return filepath.Join(f.dir, fmt.Sprintf("%d.share", n)) }

func (f *shareFolder) Confirm(ctx context.Context, st run.Step) (record.Actor, error) {
	return record.Actor{Name: "Ada Admin", Role: "administrator"}, ctx.Err()
}

func (f *shareFolder) AcknowledgeHorizon(ctx context.Context, h ceremony.Horizon) (record.Actor, error) {
	return record.Actor{Name: "Ada Admin", Role: "administrator"}, ctx.Err()
}

func (f *shareFolder) DeliverShare(ctx context.Context, s ceremony.ShareDelivery) (string, error) {
	return "file " + f.path(s.Number), os.WriteFile(f.path(s.Number), []byte(s.Text+"\n"), 0o600)
}

func (f *shareFolder) ReadBackShare(ctx context.Context, s ceremony.ShareDelivery) (string, error) {
	b, err := os.ReadFile(f.path(s.Number))
	return string(b), err
}

// initToken initialises a SoftHSM2 token on a free slot.
func initToken(ctx context.Context, module, label, soPIN, userPIN string) error {
	m, err := hsm.Open(module)
	if err != nil {
		return err
	}
	defer m.Close()
	slot, err := m.FreeSlot(ctx)
	if err != nil {
		return err
	}
	if _, err := m.InitToken(ctx, slot.ID, label, []byte(soPIN), []byte(userPIN)); err != nil {
		return fmt.Errorf("demo: initialise token %q: %w", label, err)
	}
	return nil
}
