package ceremony

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/workspace"
)

// dieAt is a participant that kills its process when asked to confirm one step: the state a
// power cut or kill -9 leaves (the journal is synced, nothing else runs).
type dieAt struct {
	people
	step string
}

func (d *dieAt) Confirm(ctx context.Context, st Step) (record.Actor, error) {
	if st.ID == d.step {
		os.Exit(3)
	}
	return d.people.Confirm(ctx, st)
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
	Root(context.Background(), Env{Workspace: ws, Registry: reg}, plan, []byte("ops-pin-1234"), &dieAt{step: "root.split"})
	t.Fatal("the ceremony was meant to die at the split")
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

	runs, _ := f.env.Registry.UnfinishedRuns(ctx)
	if len(runs) != 1 || runs[0].ID != f.plan.ID {
		t.Fatalf("unfinished runs = %+v", runs)
	}
	if err := Resume(ctx, f.env, f.plan.ID); !errors.Is(err, ErrCannotResume) {
		t.Errorf("resume: %v", err)
	}
	if _, err := Abort(ctx, f.env, f.plan.ID, nil); err == nil || !strings.Contains(err.Error(), "--ops-pin-file") {
		t.Errorf("abort without the operator PIN: %v", err)
	}
	res, err := Abort(ctx, f.env, f.plan.ID, []byte("ops-pin-1234"))
	if err != nil {
		t.Fatal(err)
	}
	// The record-signer key it was making is destroyed; the root token and the operations
	// token it initialised are named for a person to clear.
	if len(res.Destroyed) != 1 || !strings.Contains(res.Destroyed[0], "none remain") || len(res.Remaining) != 2 ||
		!strings.Contains(res.Remaining[0], `operations token "acme-ops" was initialised by this run`) ||
		!strings.Contains(res.Remaining[1], `root token "acme-root-2026" was initialised by this run`) {
		t.Errorf("abort = %+v", res)
	}
	m, _ := hsm.Open(f.hsm.ModulePath)
	defer m.Close()
	s, _ := m.OpenSession(ctx, f.plan.OperationsToken)
	defer s.Close()
	s.Login(ctx, hsm.User, []byte("ops-pin-1234"))
	if objs, _ := s.Objects(ctx); len(objs) != 0 {
		t.Errorf("operations token keeps %v after abort", objs)
	}
	run, _ := f.env.Registry.Run(ctx, f.plan.ID)
	if run.Status != registry.RunAborted {
		t.Errorf("run status %s", run.Status)
	}
	if _, err := record.ReadJournalFile(run.JournalPath); err != nil {
		t.Error(err)
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
	j.Note(stepKeyIntent, record.System, map[string]string{"token": f.plan.OperationsToken, "key_id": hex.EncodeToString(roles[0].Key.KeyID)})
	j.Close()
	if _, err := f.env.Registry.StartRun(ctx, registry.Run{ID: "stopped-issue-ca", Kind: registry.RunCeremony,
		Operation: "issue-ca", Subject: f.plan.ID, JournalPath: jpath}); err != nil {
		t.Fatal(err)
	}
	res, err := Abort(ctx, f.env, "stopped-issue-ca", []byte("ops-pin-1234"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Destroyed) != 0 || len(res.Remaining) != 1 || !strings.Contains(res.Remaining[0], "was made and registered before the run stopped") {
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
