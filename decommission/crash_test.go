package decommission

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// TestDecommissionCrashHelper is the child of TestDecommissionSurvivesKills: it erases one
// device and is killed somewhere along the way.
func TestDecommissionCrashHelper(t *testing.T) {
	dir, serial := os.Getenv("CUSTOS_TEST_CRASH_DIR"), os.Getenv("CUSTOS_TEST_CRASH_SERIAL")
	if dir == "" {
		t.Skip("child process of TestDecommissionSurvivesKills")
	}
	env, done := openEnv(t, dir)
	defer done()
	if _, err := Decommission(context.Background(), env, Request{Serial: serial, Method: Erase, Technician: "Tess Tech", Validator: "Vic Validator",
		OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)}); err != nil {
		t.Fatal(err)
	}
}

// killSpread runs child for the first device whole, to time a run, then for each other
// device starts child and kills it (SIGKILL) at a moment spread over that time: device i of n
// at i/n of it, plus up to 1/n more. after is called after each kill, with whether the kill
// caught the run before it ended. killSpread returns how long the whole run took.
func killSpread(t *testing.T, provisioned []*Provisioned, child func(serial string) *exec.Cmd, after func(p *Provisioned, caught bool)) time.Duration {
	t.Helper()
	n := len(provisioned)
	start := time.Now()
	if out, err := child(provisioned[0].Serial).CombinedOutput(); err != nil {
		t.Fatalf("an uninterrupted run: %v\n%s", err, out)
	}
	whole := time.Since(start)
	for i, p := range provisioned[1:] {
		cmd := child(p.Serial)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		at := whole * time.Duration(i) / time.Duration(n-1)
		time.Sleep(at + time.Duration(rand.Int64N(int64(whole)/int64(n))))
		cmd.Process.Kill()
		after(p, cmd.Wait() != nil)
	}
	return whole
}

// checkNothingHalfWritten fails the test if the workspace, opened again after the kills,
// still holds a file or folder a killed write left (a partial output or a record's spool).
func checkNothingHalfWritten(t *testing.T, f *fixture) {
	t.Helper()
	filepath.WalkDir(filepath.Join(f.dir, "ws"), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".") && (strings.Contains(d.Name(), ".partial-") || strings.Contains(d.Name(), "spool")) {
			t.Errorf("left half written: %s", p)
		}
		return nil
	})
}

// checkRecordsAndJournals verifies every record of the workspace matching glob under the
// root, and reads back every journal; it returns how many records matched. It also checks
// that nothing is left half written.
func checkRecordsAndJournals(t *testing.T, f *fixture, glob string) int {
	t.Helper()
	checkNothingHalfWritten(t, f)
	roots := f.root(t)
	records, _ := filepath.Glob(filepath.Join(f.dir, "ws", "records", glob))
	for _, r := range records {
		b, _ := os.ReadFile(r)
		if rep := record.Verify(b, roots); !rep.OK() {
			t.Errorf("%s does not verify: %+v", r, rep.Checks)
		}
	}
	journals, _ := filepath.Glob(filepath.Join(f.dir, "ws", "journal", "*.jsonl"))
	for _, j := range journals {
		if _, err := record.ReadJournalFile(j); err != nil {
			t.Errorf("journal %s: %v", j, err)
		}
	}
	return len(records)
}

// Kill -9 a single-device erase at a random moment, for one device after another; then do
// what the person would (resume the run, or abort it and decommission again). Every device
// ends decommissioned once, nothing of its identity left on its token, on the newest CRL,
// and every journal verifies.
func TestDecommissionSurvivesKills(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a child process per device")
	}
	const devices = 20
	ctx := context.Background()
	f := newFixture(t)
	var provisioned []*Provisioned
	for i := range devices {
		provisioned = append(provisioned, f.provision(t, "K-"+string(rune('A'+i))))
	}
	f.env.Workspace.Close()
	f.env.Registry.Close()
	tokens := f.hsm.SaveTokenFiles(t)
	child := func(serial string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestDecommissionCrashHelper$")
		cmd.Env = append(os.Environ(), "CUSTOS_TEST_CRASH_DIR="+f.dir, "CUSTOS_TEST_CRASH_SERIAL="+serial)
		return cmd
	}
	killed, resumed, aborted, torn := 0, 0, 0, 0
	whole := killSpread(t, provisioned, child, func(p *Provisioned, caught bool) {
		torn += tokens.RestoreTorn(t)
		if caught {
			killed++
		}
		env, done := openEnv(t, f.dir)
		runs, _ := env.Registry.UnfinishedRuns(ctx)
		for _, r := range runs {
			if _, err := handlers.Resume(ctx, env, r.ID, run.PINs{Ops: []byte(opsPIN), Device: []byte(devPIN)}); err == nil {
				resumed++
				continue
			}
			if _, err := handlers.Abort(ctx, env, r.ID, run.PINs{}); err != nil {
				t.Fatalf("%s: abort %s: %v", p.Serial, r.ID, err)
			}
			aborted++
		}
		if d, _ := env.Registry.Device(ctx, p.Serial); d.Status != registry.DeviceDecommissioned {
			if _, err := Decommission(ctx, env, Request{Serial: p.Serial, Method: Erase, Technician: "Tess Tech", Validator: "Vic Validator",
				OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)}); err != nil {
				t.Fatalf("%s: decommission again after the kill: %v", p.Serial, err)
			}
		}
		done()
	})

	env, done := openEnv(t, f.dir)
	defer done()
	if runs, _ := env.Registry.UnfinishedRuns(ctx); len(runs) != 0 {
		t.Errorf("unfinished runs remain: %+v", runs)
	}
	checkAllErased(t, f, env, provisioned)
	// One signed record per device, each of which verifies.
	f.env = env
	if n := checkRecordsAndJournals(t, f, "*-decommission-*.pdf"); n != devices {
		t.Errorf("%d records, want one per device (%d)", n, devices)
	}
	t.Logf("a run takes %v; %d devices, %d killed mid-run: %d resumed, %d aborted and done again; SoftHSM tore %d token files", whole.Round(time.Millisecond), devices, killed, resumed, aborted, torn)
}

// TestDecommissionDiesAtHelper is the child of TestResumeAfterEachStep: it decommissions one
// device and dies the moment a given step is done.
func TestDecommissionDiesAtHelper(t *testing.T) {
	dir, serial, at := os.Getenv("CUSTOS_TEST_DIE_DIR"), os.Getenv("CUSTOS_TEST_DIE_SERIAL"), os.Getenv("CUSTOS_TEST_DIE_AT")
	if dir == "" {
		t.Skip("child process of TestResumeAfterEachStep")
	}
	env, done := openEnv(t, dir)
	defer done()
	env.Progress = func(p run.Event) {
		if p.Step.ID == at && p.Status == record.StatusDone {
			os.Exit(3)
		}
	}
	Decommission(context.Background(), env, Request{Serial: serial, Method: Erase, Technician: "Tess Tech", Validator: "Vic Validator",
		OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)})
	t.Fatal("the run was meant to die")
}

// A single-device run that dies right after each of its steps is finished by resume: the
// device is decommissioned once, its certificate is on the newest CRL once, and the signed
// record verifies.
func TestResumeAfterEachStep(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	steps := []string{"identify", "erase", "verify", "revoke", "crl", "record"}
	for _, st := range steps {
		f.provision(t, "D-"+st)
	}
	f.env.Workspace.Close()
	f.env.Registry.Close()
	for _, st := range steps {
		cmd := exec.Command(os.Args[0], "-test.run=^TestDecommissionDiesAtHelper$")
		cmd.Env = append(os.Environ(), "CUSTOS_TEST_DIE_DIR="+f.dir, "CUSTOS_TEST_DIE_SERIAL=D-"+st, "CUSTOS_TEST_DIE_AT="+st)
		if out, err := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != 3 {
			t.Fatalf("%s: child: %v\n%s", st, err, out)
		}
		env, done := openEnv(t, f.dir)
		runs, _ := env.Registry.UnfinishedRuns(ctx)
		if len(runs) != 1 {
			t.Fatalf("after dying at %s: unfinished runs %+v", st, runs)
		}
		msg, err := handlers.Resume(ctx, env, runs[0].ID, run.PINs{Ops: []byte(opsPIN), Device: []byte(devPIN)})
		if err != nil {
			t.Fatalf("resume after dying at %s: %v", st, err)
		}
		rr, _ := env.Registry.Run(ctx, runs[0].ID)
		if rr.Status != registry.RunCompleted {
			t.Errorf("after dying at %s and resuming: run is %s (%s)", st, rr.Status, msg)
		}
		f.env = env
		b, err := os.ReadFile(rr.RecordPath)
		if err != nil {
			t.Fatalf("after dying at %s: the record: %v", st, err)
		}
		if rep := record.Verify(b, f.root(t)); !rep.OK() {
			t.Errorf("after dying at %s: the record does not verify: %+v", st, rep.Checks)
		}
		done()
	}
	env, done := openEnv(t, f.dir)
	defer done()
	latest, _ := env.Registry.LatestCRL(ctx, f.issuer)
	if latest.Entries != int64(len(steps)) {
		t.Errorf("newest CRL lists %d, want %d", latest.Entries, len(steps))
	}
}

// TestFleetEraseCrashHelper is the child of TestFleetOfErasuresSurvivesKills.
func TestFleetEraseCrashHelper(t *testing.T) {
	dir := os.Getenv("CUSTOS_TEST_FLEET_ERASE_DIR")
	if dir == "" {
		t.Skip("child process of TestFleetOfErasuresSurvivesKills")
	}
	env, done := openEnv(t, dir)
	defer done()
	text, _ := os.ReadFile(filepath.Join(dir, "fleet.csv"))
	m, err := ParseManifest(strings.NewReader(string(text)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Fleet(context.Background(), env, m, FleetRequest{ManifestPath: filepath.Join(dir, "fleet.csv"), Technician: "T", Validator: "Vic Validator",
		OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)}); err != nil {
		t.Fatal(err)
	}
}

// A fleet that erases its devices on their tokens, killed again and again at growing delays
// and re-run each time: every device ends decommissioned once with nothing of its identity on
// its token, all on the newest CRL, and the fleet record verifies.
func TestFleetOfErasuresSurvivesKills(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a child process many times")
	}
	const devices = 40
	ctx := context.Background()
	f := newFixture(t)
	var provisioned []*Provisioned
	var manifest strings.Builder
	manifest.WriteString("serial,method,reason,note\n")
	for i := range devices {
		p := f.provision(t, fmt.Sprintf("FE-%02d", i))
		provisioned = append(provisioned, p)
		fmt.Fprintf(&manifest, "%s,erase,,\n", p.Serial)
	}
	writeFile(t, filepath.Join(f.dir, "fleet.csv"), manifest.String())
	f.env.Workspace.Close()
	f.env.Registry.Close()
	tokens := f.hsm.SaveTokenFiles(t)
	kills, torn := 0, 0
	for i := 0; i < 40; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFleetEraseCrashHelper$")
		cmd.Env = append(os.Environ(), "CUSTOS_TEST_FLEET_ERASE_DIR="+f.dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(40+i*8+rand.IntN(20)) * time.Millisecond)
		cmd.Process.Kill()
		err := cmd.Wait()
		torn += tokens.RestoreTorn(t)
		if err == nil {
			break // it finished before the kill
		}
		kills++
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFleetEraseCrashHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "CUSTOS_TEST_FLEET_ERASE_DIR="+f.dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}

	env, done := openEnv(t, f.dir)
	defer done()
	f.env = env
	m, _ := ParseManifest(strings.NewReader(manifest.String()))
	rr, err := env.Registry.Run(ctx, FleetRunID(m))
	if err != nil || rr.Status != registry.RunCompleted {
		t.Fatalf("run %+v %v", rr, err)
	}
	b, _ := os.ReadFile(rr.RecordPath)
	if rep := record.Verify(b, f.root(t)); !rep.OK() {
		t.Errorf("fleet record: %+v", rep.Checks)
	}
	checkAllErased(t, f, env, provisioned)
	checkNothingHalfWritten(t, f)
	t.Logf("killed the fleet %d times; SoftHSM tore %d token files", kills, torn)
}

// checkAllErased fails the test unless every device is decommissioned, nothing of its
// identity is left on its token, and the issuer's newest CRL lists them all.
func checkAllErased(t *testing.T, f *fixture, env run.Env, provisioned []*Provisioned) {
	t.Helper()
	ctx := context.Background()
	latest, err := env.Registry.LatestCRL(ctx, f.issuer)
	if err != nil {
		t.Fatal(err)
	}
	if latest.Entries != int64(len(provisioned)) {
		t.Errorf("newest CRL lists %d, want %d", latest.Entries, len(provisioned))
	}
	m, err := hsm.Open(f.hsm.ModulePath)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, p := range provisioned {
		if d, _ := env.Registry.Device(ctx, p.Serial); d.Status != registry.DeviceDecommissioned {
			t.Errorf("%s is %s", p.Serial, d.Status)
		}
		s, err := m.OpenSession(ctx, p.Token)
		if err != nil {
			t.Fatalf("%s: %v", p.Token, err)
		}
		s.Login(ctx, hsm.User, []byte(devPIN))
		if left, _ := s.Remaining(ctx, p.KeyID, ""); len(left) > 0 {
			t.Errorf("%s: left on the token: %v", p.Serial, left)
		}
		s.Logout(ctx)
		s.Close()
	}
}
