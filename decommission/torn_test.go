package decommission

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// TestReinitDiesHelper is the child of TestTornTokenDuringReinit: it re-initialises a
// device's token and dies as the erasure begins.
func TestReinitDiesHelper(t *testing.T) {
	dir, serial := os.Getenv("CUSTOS_TEST_REINIT_DIR"), os.Getenv("CUSTOS_TEST_REINIT_SERIAL")
	if dir == "" {
		t.Skip("child process of TestTornTokenDuringReinit")
	}
	env, done := openEnv(t, dir)
	defer done()
	env.Progress = func(p run.Event) {
		if p.Step.ID == stepErase.ID && p.Status == record.StatusBegin {
			os.Exit(3)
		}
	}
	Decommission(context.Background(), env, Request{Serial: serial, Method: Reinit, Technician: "Tess Tech", Validator: "Vic Validator",
		OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)})
	t.Fatal("the run was meant to die")
}

// tokenDirs are the SoftHSM token folders of the fixture's HSM.
func (f *fixture) tokenDirs() []string {
	dirs, _ := filepath.Glob(filepath.Join(f.hsm.Dir, "tokens", "*"))
	return dirs
}

// A kill during a device token's re-initialisation that tears the token (SoftHSM2 rewrites
// token.object in place): resume names the token as unreadable and the way forward, and
// journals its attempt as failed, after it; the device is then decommissioned as physical
// with a witness.
func TestTornTokenDuringReinit(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	before := f.tokenDirs()
	p := f.provision(t, "T-1")
	var tokenDir string
	for _, d := range f.tokenDirs() {
		if !slices.Contains(before, d) {
			tokenDir = d
		}
	}
	if tokenDir == "" {
		t.Fatal("no token folder for the device")
	}
	f.env.Workspace.Close()
	f.env.Registry.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestReinitDiesHelper$")
	cmd.Env = append(os.Environ(), "CUSTOS_TEST_REINIT_DIR="+f.dir, "CUSTOS_TEST_REINIT_SERIAL="+p.Serial)
	if out, err := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != 3 {
		t.Fatalf("child: %v\n%s", err, out)
	}
	// SoftHSM rewrites token.object in place: a kill during C_InitToken leaves it cut short.
	obj := filepath.Join(tokenDir, "token.object")
	b, err := os.ReadFile(obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(obj, b[:len(b)/3], 0o600); err != nil {
		t.Fatal(err)
	}
	env, done := openEnv(t, f.dir)
	defer done()
	runs, _ := env.Registry.UnfinishedRuns(ctx)
	if len(runs) != 1 {
		t.Fatalf("unfinished runs %+v", runs)
	}
	id := runs[0].ID
	// Resume names the token as unreadable and the way forward, and journals the attempt as
	// failed after it was made; nothing says the erasure was finished or verified.
	_, err = handlers.Resume(ctx, env, id, run.PINs{Ops: []byte(opsPIN), Device: []byte(devPIN)})
	var tu *TokenUnreadableError
	if !errors.As(err, &tu) || tu.Token != p.Token || tu.Serial != p.Serial {
		t.Fatalf("resume with a torn token: %v", err)
	}
	for _, want := range []string{"cannot be read", p.Token, "abort run " + id, "method physical", "witness"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	jf, err := record.ReadJournalFile(env.JournalPath(id))
	if err != nil {
		t.Fatal(err)
	}
	var after []string // what the journal says from the resume on
	resumed := false
	for _, e := range jf.Entries {
		resumed = resumed || e.Step == run.StepResume
		if resumed && !strings.HasPrefix(e.Step, "registry.") {
			after = append(after, e.Step+" "+string(e.Status))
		}
		if e.Step == stepVerify.ID && e.Status == record.StatusDone || e.Step == stepErase.ID && e.Status == record.StatusDone {
			t.Errorf("the journal says %s %s", e.Step, e.Status)
		}
	}
	if got := strings.Join(after, ", "); got != "run.resume note, erase failed" {
		t.Errorf("after the resume the journal says: %s", got)
	}
	if rr, _ := env.Registry.Run(ctx, id); rr.Status != registry.RunFailed {
		t.Errorf("the run is %s", rr.Status)
	}

	// The way forward: the torn token taken off the module, the run aborted, the device
	// decommissioned as physically destroyed, with a witness.
	if err := os.RemoveAll(tokenDir); err != nil {
		t.Fatal(err)
	}
	if _, err := handlers.Abort(ctx, env, id, run.PINs{}); err != nil {
		t.Fatal(err)
	}
	res, err := Decommission(ctx, env, Request{Serial: p.Serial, Method: Physical, Witness: "Wes Witness", Technician: "Tess Tech", Validator: "Vic Validator",
		OpsPIN: []byte(opsPIN)})
	if err != nil {
		t.Fatalf("decommission as physical: %v", err)
	}
	if d, _ := env.Registry.Device(ctx, p.Serial); d.Status != registry.DeviceDecommissioned {
		t.Errorf("device is %s", d.Status)
	}
	f.env = env
	b, _ = os.ReadFile(res.RecordPath)
	if rep := record.Verify(b, f.root(t)); !rep.OK() {
		t.Errorf("the record does not verify: %+v", rep.Checks)
	}
}

// TestFleetReinitDiesHelper is the child of TestTornTokenDuringAFleetReinit: a fleet that dies
// as its second device's erasure (a re-initialisation) begins.
func TestFleetReinitDiesHelper(t *testing.T) {
	dir := os.Getenv("CUSTOS_TEST_FLEET_REINIT_DIR")
	if dir == "" {
		t.Skip("child process of TestTornTokenDuringAFleetReinit")
	}
	env, done := openEnv(t, dir)
	defer done()
	erasures := 0
	env.Progress = func(p run.Event) {
		if p.Step.ID == stepErase.ID && p.Status == record.StatusBegin {
			if erasures++; erasures == 2 {
				os.Exit(3)
			}
		}
	}
	text, _ := os.ReadFile(filepath.Join(dir, "fleet.csv"))
	m, err := ParseManifest(strings.NewReader(string(text)))
	if err != nil {
		t.Fatal(err)
	}
	Fleet(context.Background(), env, m, FleetRequest{ManifestPath: filepath.Join(dir, "fleet.csv"), Technician: "Tess Tech", Validator: "Vic Validator",
		OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)})
	t.Fatal("the fleet was meant to die")
}

// The same in a fleet: running the manifest again names the torn token and how to go on, and
// journals the attempt as failed; once the device is decommissioned on its own as physical
// with a witness, the manifest runs to the end, passing it over as already decommissioned.
func TestTornTokenDuringAFleetReinit(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.provision(t, "F-1")
	before := f.tokenDirs()
	p := f.provision(t, "F-2")
	var tokenDir string
	for _, d := range f.tokenDirs() {
		if !slices.Contains(before, d) {
			tokenDir = d
		}
	}
	manifest := writeFile(t, filepath.Join(f.dir, "fleet.csv"), "serial,method,reason,note\nF-1,erase,,\nF-2,reinit,,\n")
	f.env.Workspace.Close()
	f.env.Registry.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFleetReinitDiesHelper$")
	cmd.Env = append(os.Environ(), "CUSTOS_TEST_FLEET_REINIT_DIR="+f.dir)
	if out, err := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != 3 {
		t.Fatalf("child: %v\n%s", err, out)
	}
	obj := filepath.Join(tokenDir, "token.object")
	b, err := os.ReadFile(obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(obj, b[:len(b)/3], 0o600); err != nil {
		t.Fatal(err)
	}
	env, done := openEnv(t, f.dir)
	defer done()
	text, _ := os.ReadFile(manifest)
	m, err := ParseManifest(strings.NewReader(string(text)))
	if err != nil {
		t.Fatal(err)
	}
	req := FleetRequest{ManifestPath: manifest, Technician: "Tess Tech", Validator: "Vic Validator", Witness: "Wes Witness", OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)}
	_, err = Fleet(ctx, env, m, req)
	var tu *TokenUnreadableError
	if !errors.As(err, &tu) || tu.Serial != p.Serial || !strings.Contains(err.Error(), "decommission F-2 on its own with method physical") ||
		strings.Contains(err.Error(), "abort run") {
		t.Fatalf("the fleet again with a torn token: %v", err)
	}
	jf, err := record.ReadJournalFile(env.JournalPath(FleetRunID(m)))
	if err != nil {
		t.Fatal(err)
	}
	var resumes []string
	for _, e := range jf.Entries {
		if e.Step == stepDeviceResume {
			resumes = append(resumes, string(e.Status))
		}
	}
	if strings.Join(resumes, ",") != "failed" {
		t.Errorf("the journal's device.resume entries: %v", resumes)
	}

	if err := os.RemoveAll(tokenDir); err != nil {
		t.Fatal(err)
	}
	if _, err := Decommission(ctx, env, Request{Serial: p.Serial, Method: Physical, Witness: "Wes Witness", Technician: "Tess Tech", Validator: "Vic Validator",
		OpsPIN: []byte(opsPIN)}); err != nil {
		t.Fatalf("decommission F-2 as physical: %v", err)
	}
	res, err := Fleet(ctx, env, m, req)
	if err != nil {
		t.Fatalf("the manifest again: %v", err)
	}
	if res.Decommissioned != 1 || res.AlreadyDone != 1 || res.Failed != 0 || res.RecordPath == "" {
		t.Errorf("fleet: %+v", res)
	}
	f.env = env
	b, _ = os.ReadFile(res.RecordPath)
	if rep := record.Verify(b, f.root(t)); !rep.OK() {
		t.Errorf("the fleet record does not verify: %+v", rep.Checks)
	}
}
