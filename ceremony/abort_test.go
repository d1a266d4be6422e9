package ceremony

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/testhsm"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
	"github.com/custos-pki/custos/workspace"
)

// dieAt is a participant that kills its process when asked to confirm one step: the state a
// power cut or kill -9 leaves (the journal is synced, nothing else runs).
type dieAt struct {
	people
	step string
}

func (d *dieAt) Confirm(ctx context.Context, st run.Step) (record.Actor, error) {
	if st.ID == d.step {
		os.Exit(3)
	}
	return d.people.Confirm(ctx, st)
}

func (d *dieAt) AcknowledgeHorizon(ctx context.Context, h Horizon) (record.Actor, error) {
	if d.step == "root.horizon" {
		os.Exit(3)
	}
	return d.people.AcknowledgeHorizon(ctx, h)
}

// TestKilledRootHelper is the child process of TestAbortKilledRootCeremony.
func TestKilledRootHelper(t *testing.T) {
	dir := os.Getenv("CUSTOS_TEST_KILLED_ROOT")
	if dir == "" {
		t.Skip("child process of TestAbortKilledRootCeremony")
	}
	ws, _ := workspace.Open(filepath.Join(dir, "ws"))
	reg, _ := registry.Open(context.Background(), ws.DBPath())
	plan, err := ParsePlan([]byte(os.Getenv("CUSTOS_TEST_PLAN")))
	if err != nil {
		t.Fatal(err)
	}
	step := os.Getenv("CUSTOS_TEST_DIE_AT")
	if step == "" {
		step = "root.split"
	}
	_, err = Root(context.Background(), run.Env{Workspace: ws, Registry: reg}, plan, []byte("ops-pin-1234"), &dieAt{step: step})
	t.Fatalf("the ceremony was meant to die at %s: %v", step, err)
}

func TestAbortKilledRootCeremony(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, goodPlan)
	f.env.Workspace.Close() // the child takes the workspace lock
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledRootHelper$")
	cmd.Env = append(os.Environ(), "CUSTOS_TEST_KILLED_ROOT="+f.dir,
		"CUSTOS_TEST_PLAN="+strings.Replace(goodPlan, "/usr/lib/softhsm/libsofthsm2.so", f.hsm.ModulePath, 1))
	if out, err := cmd.CombinedOutput(); err == nil || cmd.ProcessState.ExitCode() != 3 {
		t.Fatalf("child: %v\n%s", err, out)
	}
	ws, err := workspace.Open(filepath.Join(f.dir, "ws"))
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	f.env.Workspace = ws

	stopped, err := handlers.Stopped(ctx, f.env)
	if err != nil || len(stopped) != 1 || stopped[0].Subject != f.plan.ID || stopped[0].Operation != "root" {
		t.Fatalf("stopped runs = %+v, %v", stopped, err)
	}
	id := stopped[0].ID
	if s := stopped[0]; s.CanResume || !strings.Contains(s.CannotResume, "quorum secret") || !s.Asks.OpsPIN ||
		s.Where() != "stopped after step Create the record signer" {
		t.Errorf("stopped run = %+v, where %q", s, s.Where())
	}
	if _, err := handlers.Resume(ctx, f.env, id, run.PINs{}); !errors.Is(err, run.ErrCannotResume) {
		t.Errorf("resume: %v", err)
	}
	if _, err := handlers.Abort(ctx, f.env, id, run.PINs{}); run.FieldOf(err) != "OpsPIN" || strings.Contains(err.Error(), "--") {
		t.Errorf("abort without the operator PIN: %v", err)
	}
	res, err := handlers.Abort(ctx, f.env, id, run.PINs{Ops: []byte("ops-pin-1234")})
	if err != nil {
		t.Fatal(err)
	}
	// The record-signer key it was making is destroyed, the root token re-initialised empty
	// with the SO PIN the run kept on the operations token, and that kept PIN destroyed; the
	// operations token it initialised is named for a person to clear.
	// The certificates it wrote are removed.
	if len(res.Done) != 5 || !strings.Contains(res.Done[0], "none remain") ||
		!strings.Contains(res.Done[1], `root token "acme-root-2026" re-initialised empty as "void-acme-root-2026"`) ||
		!strings.Contains(res.Done[2], "kept the root token's temporary SO PIN") ||
		!strings.HasSuffix(res.Done[3], "acme-root-2026-root.pem") || !strings.HasSuffix(res.Done[4], "acme-root-2026-record-signer.pem") ||
		len(res.Remaining) != 1 ||
		!strings.Contains(res.Remaining[0], `operations token "acme-ops" was initialised by this run`) {
		t.Errorf("abort = %+v", res)
	}
	checkNoRootToken(t, f)
	m, _ := hsm.Open(f.hsm.ModulePath)
	defer m.Close()
	s, _ := m.OpenSession(ctx, f.plan.OperationsToken)
	defer s.Close()
	s.Login(ctx, hsm.User, []byte("ops-pin-1234"))
	if objs, _ := s.Objects(ctx); len(objs) != 0 {
		t.Errorf("operations token keeps %v after abort", objs)
	}
	rr, _ := f.env.Registry.Run(ctx, id)
	if rr.Status != registry.RunAborted {
		t.Errorf("run status %s", rr.Status)
	}
	jf, err := record.ReadJournalFile(rr.JournalPath)
	if err != nil {
		t.Fatal(err)
	}
	last := jf.Entries[len(jf.Entries)-1]
	if p, err := record.Decode[run.Aborted](last); last.Step != run.StepAbort || err != nil || len(p.Done) != 5 || len(p.Remaining) != 1 {
		t.Errorf("the journal's last entry = %+v (%+v, %v)", last, p, err)
	}
}

// refuseAt is a participant who refuses to confirm one step.
type refuseAt struct {
	people
	step string
}

func (r *refuseAt) Confirm(ctx context.Context, st run.Step) (record.Actor, error) {
	if st.ID == r.step {
		return record.Actor{}, errors.New("the witness stopped the ceremony")
	}
	return r.people.Confirm(ctx, st)
}

// A root ceremony's run has an id of its own, not the plan's: the same reviewed plan runs
// again after a failed run, and both runs keep their journals.
func TestRootPlanRunsAgainAfterAFailedRun(t *testing.T) {
	ctx := context.Background()
	plan := strings.NewReplacer("ecdsa-p384", "ecdsa-p256", "backup: true", "backup: false").Replace(goodPlan)
	f := newFixture(t, plan)
	_, err := Root(ctx, f.env, f.plan, []byte("ops-pin-1234"), &refuseAt{step: "root.verify-shares"})
	if err == nil || !strings.Contains(err.Error(), "the witness stopped the ceremony") {
		t.Fatalf("first run: %v", err)
	}
	res, err := Root(ctx, f.env, f.plan, []byte("ops-pin-1234"), &people{})
	if err != nil {
		t.Fatalf("the plan again after a failed run: %v", err)
	}
	runs, err := f.env.Registry.RunsOf(ctx, f.plan.ID)
	if err != nil || len(runs) != 2 || runs[0].Status != registry.RunFailed || runs[1].ID != res.RunID ||
		runs[1].Status != registry.RunCompleted || runs[0].ID == runs[1].ID || res.RunID == f.plan.ID {
		t.Fatalf("runs of %s: %+v, %v", f.plan.ID, runs, err)
	}
	for _, rr := range runs {
		if _, err := record.ReadJournalFile(rr.JournalPath); err != nil {
			t.Errorf("journal of %s: %v", rr.ID, err)
		}
	}
	if res.RecordPath != f.env.RecordPath(res.RunID) {
		t.Errorf("record %s", res.RecordPath)
	}
	// The record names the run and the root apart.
	if out, err := exec.Command("pdftotext", res.RecordPath, "-").Output(); err != nil || !strings.Contains(string(out), "Record "+res.RunID+" of root "+f.plan.ID) {
		t.Errorf("pdftotext: %v\n%s", err, out)
	}
}

// A run that stopped after registering what it made (here, a key the registry owns as the
// record signer) keeps it; abort says so, and that the run's record was not written.
func TestAbortReportsWhatARunRegistered(t *testing.T) {
	ctx := context.Background()
	plan := strings.NewReplacer("ecdsa-p384", "ecdsa-p256", "backup: true", "backup: false").Replace(goodPlan)
	f := newFixture(t, plan)
	if _, err := Root(ctx, f.env, f.plan, []byte("ops-pin-1234"), &people{}); err != nil {
		t.Fatal(err)
	}
	roles, err := f.env.Registry.RoleCerts(ctx)
	if err != nil || len(roles) == 0 {
		t.Fatalf("role certificates: %v %v", roles, err)
	}
	jpath := f.env.Workspace.Path("journal", "stopped-issue-ca.jsonl")
	j, err := record.CreateJournal(jpath, "stopped-issue-ca")
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Note(run.StepKeyIntent, record.System, run.KeyIntent{Token: f.plan.OperationsToken, KeyID: roles[0].Key.KeyID}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.env.Registry.Journaled(run.JournalFacts(j)).StartRun(ctx, registry.Run{ID: "stopped-issue-ca", Kind: registry.RunCeremony,
		Operation: "issue-ca", Subject: f.plan.ID, JournalPath: jpath}); err != nil {
		t.Fatal(err)
	}
	j.Close()
	res, err := handlers.Abort(ctx, f.env, "stopped-issue-ca", run.PINs{Ops: []byte("ops-pin-1234")})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Done) != 0 || len(res.Remaining) != 1 || !strings.Contains(res.Remaining[0], "was made and registered before the run stopped") {
		t.Errorf("abort = %+v", res)
	}
	m, _ := hsm.Open(f.hsm.ModulePath)
	defer m.Close()
	s, _ := m.OpenSession(ctx, f.plan.OperationsToken)
	defer s.Close()
	s.Login(ctx, hsm.User, []byte("ops-pin-1234"))
	if left, _ := s.Remaining(ctx, roles[0].Key.KeyID, ""); len(left) == 0 {
		t.Error("abort destroyed a key the registry owns")
	}
}

// checkNoRootToken checks with pkcs11-tool that no token has the root's label and that the
// operations token keeps no key and no data object of a stopped run.
func checkNoRootToken(t *testing.T, f *fixture) {
	t.Helper()
	out, err := exec.Command("pkcs11-tool", "--module", f.hsm.ModulePath, "-L").CombinedOutput()
	if err != nil || strings.Contains(string(out), "token label        : "+f.plan.ID+"\n") {
		t.Errorf("pkcs11-tool -L: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "token label        : void-"+f.plan.ID) {
		if objs := tokenObjects(t, f, "void-"+f.plan.ID, ""); strings.Contains(objs, "Object") {
			t.Errorf("the re-initialised root token keeps objects:\n%s", objs)
		}
	}
	if strings.Contains(string(out), "token label        : "+f.plan.OperationsToken) {
		if objs := tokenObjects(t, f, f.plan.OperationsToken, "ops-pin-1234"); strings.Contains(objs, "Object") {
			t.Errorf("the operations token keeps objects:\n%s", objs)
		}
	}
}

// A root ceremony killed before each of its steps (after the one before is done) is aborted
// with the operator PIN; then no token has the root's label (pkcs11-tool), the operations
// token keeps nothing of the run, and the same plan runs again.
func TestAbortAfterAKillAtEachStep(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a child process at each step")
	}
	ctx := context.Background()
	plan := strings.Replace(goodPlan, "ecdsa-p384", "ecdsa-p256", 1)
	for _, st := range RootSteps[1:] {
		t.Run(st.ID, func(t *testing.T) {
			f := newFixture(t, plan)
			f.env.Workspace.Close() // the child takes the workspace lock
			cmd := exec.Command(os.Args[0], "-test.run=^TestKilledRootHelper$")
			cmd.Env = append(os.Environ(), "CUSTOS_TEST_KILLED_ROOT="+f.dir, "CUSTOS_TEST_DIE_AT="+st.ID,
				"CUSTOS_TEST_PLAN="+strings.Replace(plan, "/usr/lib/softhsm/libsofthsm2.so", f.hsm.ModulePath, 1))
			if out, err := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != 3 {
				t.Fatalf("child: %v\n%s", err, out)
			}
			ws, err := workspace.Open(filepath.Join(f.dir, "ws"))
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			f.env.Workspace = ws
			stopped, err := handlers.Stopped(ctx, f.env)
			if err != nil || len(stopped) != 1 {
				t.Fatalf("stopped runs = %+v, %v", stopped, err)
			}
			res, err := handlers.Abort(ctx, f.env, stopped[0].ID, run.PINs{Ops: []byte("ops-pin-1234")})
			if err != nil {
				t.Fatal(err)
			}
			for _, rem := range res.Remaining {
				if strings.Contains(rem, "root token") {
					t.Errorf("abort leaves the root token to a person: %+v", res)
				}
			}
			checkNoRootToken(t, f)
			if _, err := Root(ctx, f.env, f.plan, []byte("ops-pin-1234"), &people{}); err != nil {
				t.Fatalf("the plan again after the abort: %v", err)
			}
		})
	}
}

// A root ceremony killed in its close step, after the root token's SO PIN became the quorum's
// and before the temporary one it kept was destroyed: abort cannot re-initialise the token
// with the kept PIN, says so and why, destroys the useless object, and does not fail.
func TestAbortAfterTheCloseStepChangedTheSOPIN(t *testing.T) {
	ctx := context.Background()
	h := testhsm.New(t)
	h.InitToken(t, "acme-ops", "ops-so-pin-1234", "ops-pin-1234")
	h.InitToken(t, "acme-root-x", "the-quorums-so-pin", "user-pin-1234")
	mod := h.Open(t)
	defer mod.Close()
	undo := UndoKept{Token: "acme-ops", Label: undoLabel("acme-root-x-root-1"), Root: "acme-root-x"}
	s, err := mod.OpenSession(ctx, "acme-ops")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Login(ctx, hsm.User, []byte("ops-pin-1234")); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreData(ctx, hsm.DataObject{Application: "custos", Label: undo.Label, Value: []byte("the-temporary-so-pin"), Private: true}); err != nil {
		t.Fatal(err)
	}
	done, left, err := voidFromUndo(ctx, mod, undo, []byte("ops-pin-1234"))
	if err != nil {
		t.Fatalf("abort: %v", err)
	}
	if len(left) != 1 || !strings.Contains(left[0], `root token "acme-root-x": the run stopped in its close step`) || !strings.Contains(left[0], "vendor's tools") {
		t.Errorf("remaining: %q", left)
	}
	if len(done) != 1 || !strings.Contains(done[0], "destroyed") {
		t.Errorf("done: %q", done)
	}
	if _, err := s.Data(ctx, "custos", undo.Label); !errors.Is(err, hsm.ErrObjectNotFound) {
		t.Errorf("the kept PIN after the abort: %v", err)
	}
	if _, err := mod.TokenByLabel(ctx, "acme-root-x"); err != nil {
		t.Errorf("the root token after the abort: %v", err)
	}
	s.Logout(ctx)
	s.Close()
}
