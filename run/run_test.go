package run

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
)

// testEnv is a fresh workspace with its registry, closed when the test ends.
func testEnv(t *testing.T) Env {
	t.Helper()
	env, err := Open(context.Background(), filepath.Join(t.TempDir(), "ws"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	return env
}

func startTestRun(t *testing.T, env Env, id string) *Run {
	t.Helper()
	r, err := StartRun(context.Background(), env, registry.Run{ID: id, Kind: registry.RunCeremony, Operation: "crl", Subject: "acme-root"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type signed struct {
	Number int    `json:"number"`
	File   string `json:"file"`
}

// A step is journaled begun, then done with its payload or failed with its error, and the
// Progress sink hears each with the run id and the step's title.
func TestStepJournalsAndTells(t *testing.T) {
	env := testEnv(t)
	var events []Event
	env.Progress = func(e Event) { events = append(events, e) }
	r := startTestRun(t, env, "acme-root-crl-1")
	st := Step{ID: "crl.sign", Title: "Sign the root CRL"}
	who := record.Actor{Name: "Ada Admin", Role: "administrator"}
	if err := r.Step(st, who, func() (any, error) { return signed{Number: 7, File: "crl/x.crl"}, nil }); err != nil {
		t.Fatal(err)
	}
	bad := Step{ID: "crl.publish", Title: "Publish the CRL"}
	err := r.Step(bad, who, func() (any, error) { return nil, errors.New("the share is offline") })
	if err == nil || err.Error() != "Publish the CRL: the share is offline" {
		t.Errorf("failed step: %v", err)
	}
	if err := r.Finish(context.Background(), err, ""); err == nil {
		t.Error("Finish dropped the run's error")
	}
	jf, err := record.ReadJournalFile(env.JournalPath("acme-root-crl-1"))
	if err != nil {
		t.Fatal(err)
	}
	if jf.Entries[0].Step != record.StepStart {
		t.Fatalf("the journal does not start with the build: %+v", jf.Entries[0])
	}
	// The registry's changes are journaled as its facts: the run's start and failure.
	var got, facts []string
	var steps []record.Entry
	for _, e := range jf.Entries[1:] {
		if strings.HasPrefix(e.Step, registry.FactPrefix) {
			facts = append(facts, e.Step)
			continue
		}
		got = append(got, e.Step+" "+string(e.Status))
		steps = append(steps, e)
	}
	jf.Entries = steps
	if strings.Join(got, ", ") != "crl.sign begin, crl.sign done, crl.publish begin, crl.publish failed" {
		t.Errorf("journal: %s", strings.Join(got, ", "))
	}
	if strings.Join(facts, ", ") != "registry.start-run, registry.fail-run" {
		t.Errorf("registry facts: %s", strings.Join(facts, ", "))
	}
	if p, err := record.Decode[signed](jf.Entries[1]); err != nil || p.Number != 7 || jf.Entries[1].Actor != "Ada Admin" {
		t.Errorf("done payload %+v, %v", p, err)
	}
	if f, err := record.Decode[record.Failure](jf.Entries[3]); err != nil || f.Error != "the share is offline" {
		t.Errorf("failure payload %+v, %v", f, err)
	}
	var seen []string
	for _, e := range events {
		if e.Run != "acme-root-crl-1" {
			t.Errorf("event of run %q", e.Run)
		}
		seen = append(seen, e.Step.Title+" "+string(e.Status))
	}
	if strings.Join(seen, ", ") != "Sign the root CRL begin, Sign the root CRL done, Publish the CRL begin, Publish the CRL failed" {
		t.Errorf("events: %s", strings.Join(seen, ", "))
	}
	rr, _ := env.Registry.Run(context.Background(), "acme-root-crl-1")
	if rr.Status != registry.RunFailed || !strings.Contains(rr.Note, "the share is offline") {
		t.Errorf("registry: %+v", rr)
	}
}

// A step whose journal entry cannot be written fails, though its work ran, and says so; every
// later step fails with the same cause and does not run.
func TestStepFailsWhenItsEntryCannotBeWritten(t *testing.T) {
	env := testEnv(t)
	r := startTestRun(t, env, "acme-root-crl-2")
	// The journal's file is closed under it: its next write fails.
	r.Journal.Close()
	ran := false
	err := r.Step(Step{ID: "crl.sign", Title: "Sign the root CRL"}, record.System, func() (any, error) { ran = true; return nil, nil })
	if err == nil || ran {
		t.Fatalf("a step whose begin entry failed: ran %v, %v", ran, err)
	}
}

func TestStepDoneEntryFailure(t *testing.T) {
	env := testEnv(t)
	r := startTestRun(t, env, "acme-root-crl-3")
	// A payload the journal cannot encode stands for a done entry that cannot be written.
	err := r.Step(Step{ID: "crl.sign", Title: "Sign the root CRL"}, record.System, func() (any, error) {
		return map[string]string{"not": "a struct"}, nil
	})
	if err == nil || !strings.Contains(err.Error(), "it was done, but the journal could not record it") {
		t.Errorf("a step whose done entry failed: %v", err)
	}
}

func TestIDs(t *testing.T) {
	env := Env{Now: func() time.Time { return time.Date(2026, 11, 30, 9, 5, 0, 0, time.UTC) }}
	a, b := NewID(env, "decommission", "SN 1/2"), NewID(env, "decommission", "SN 1/2")
	if !strings.HasPrefix(a, "SN_1_2-decommission-20261130T090500Z-") || a == b {
		t.Errorf("NewID = %q, %q", a, b)
	}
	if got := DerivedID("fleet", []byte{0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3}); got != "fleet-deadbeef0001" {
		t.Errorf("DerivedID = %q", got)
	}
}

// The module comes from Env.Module, else what the run knows (a plan or quorum), else the
// workspace's saved one; with none, a field error names the module.
func TestModulePath(t *testing.T) {
	ctx := context.Background()
	env := testEnv(t)
	if _, err := env.ModulePath(ctx, ""); FieldOf(err) != "Module" {
		t.Errorf("no module anywhere: %v", err)
	}
	if err := SaveModule(ctx, env, "/saved.so"); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ override, known, want string }{
		{"", "", "/saved.so"},
		{"", "/plan.so", "/plan.so"},
		{"/flag.so", "/plan.so", "/flag.so"},
	}
	for _, tt := range tests {
		e := env
		e.Module = tt.override
		if got, err := e.ModulePath(ctx, tt.known); err != nil || got != tt.want {
			t.Errorf("override %q, known %q: %q, %v; want %q", tt.override, tt.known, got, err, tt.want)
		}
	}
}

// A journal left by a run of the same id that was killed before it was registered is taken
// up; a journal of a registered run is never overwritten.
func TestStartTakesUpAnUnregisteredJournal(t *testing.T) {
	ctx := context.Background()
	env := testEnv(t)
	id := "fleet-0011223344aa"
	if err := os.WriteFile(env.JournalPath(id), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	register := func(reg *registry.Registry, path string) error {
		_, err := reg.StartRun(ctx, registry.Run{ID: id, Kind: registry.RunCeremony, Operation: "crl", Subject: "x", JournalPath: path})
		return err
	}
	r, err := Start(ctx, env, id, register)
	if err != nil {
		t.Fatal(err)
	}
	r.Journal.Close()
	if _, err := Start(ctx, env, id, register); err == nil {
		t.Error("a second start of a registered run succeeded")
	}
	if _, err := os.Stat(env.JournalPath(id)); err != nil {
		t.Errorf("the journal of the registered run: %v", err)
	}
}

// stub is a workflow's handler for tests of Handlers: it says what it was asked.
type stub struct{ resumed, aborted []string }

func (s *stub) handler() Handler {
	return Handler{
		Kind:  registry.RunDecommission,
		Title: func(id string) string { return map[string]string{"erase": "Erase the device's keys"}[id] },
		Resume: func(ctx context.Context, env Env, rr registry.Run, pins PINs) (Outcome, error) {
			if len(pins.Ops) == 0 {
				return Outcome{}, NewFieldError("OpsPIN", "the operator PIN is needed")
			}
			s.resumed = append(s.resumed, rr.ID)
			return Outcome{Summary: "finished"}, nil
		},
		Abort: func(ctx context.Context, r *Run, pins PINs) (Outcome, error) {
			s.aborted = append(s.aborted, r.ID)
			return Outcome{Summary: "aborted", Done: []string{"cleaned"}, Remaining: []string{"clear token X"}}, nil
		},
		Asks: Asks{OpsPIN: true},
	}
}

// Handlers list each stopped run with where it stopped (by title) and whether it resumes,
// hand resume and abort to the run kind's handler, journal an abort and mark it, and refuse
// runs no handler takes or that did not stop.
func TestHandlers(t *testing.T) {
	ctx := context.Background()
	env := testEnv(t)
	// A decommission run stopped in erase, and a ceremony run, which no handler here takes.
	dec := "SN-1-decommission-1"
	r, err := Start(ctx, env, dec, func(reg *registry.Registry, path string) error {
		_, err := reg.StartDecommissionRun(ctx, registry.DecommissionRun{Run: registry.Run{ID: dec, Kind: registry.RunDecommission,
			Operation: "single", Subject: "SN-1", JournalPath: path}, Technician: "Tess"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	r.Journal.Begin("identify", record.System, nil)
	r.Journal.Done("identify", record.System, nil)
	r.Journal.Begin("erase", record.System, nil)
	r.Journal.Close()
	cer := startTestRun(t, env, "acme-root-crl-9")
	cer.Journal.Close()

	s := &stub{}
	h := Handlers{s.handler()}
	stopped, err := h.Stopped(ctx, env)
	if err != nil || len(stopped) != 2 {
		t.Fatalf("stopped = %+v, %v", stopped, err)
	}
	byID := map[string]Stopped{}
	for _, x := range stopped {
		byID[x.ID] = x
	}
	if d := byID[dec]; !d.CanResume || d.Where() != "stopped in step Erase the device's keys" || d.Last.Step.ID != "identify" || !d.Asks.OpsPIN {
		t.Errorf("decommission run: %+v, where %q", d, d.Where())
	}
	if c := byID["acme-root-crl-9"]; c.CanResume || !strings.Contains(c.CannotResume, "does not handle ceremony runs") || c.Where() != "stopped before its first step" {
		t.Errorf("ceremony run: %+v", c)
	}

	if _, err := h.Resume(ctx, env, dec, PINs{}); FieldOf(err) != "OpsPIN" {
		t.Errorf("resume without the PIN: %v", err)
	}
	if out, err := h.Resume(ctx, env, dec, PINs{Ops: []byte("1234")}); err != nil || out.Summary != "finished" {
		t.Errorf("resume: %+v, %v", out, err)
	}
	if _, err := h.Abort(ctx, env, "acme-root-crl-9", PINs{}); err == nil || !strings.Contains(err.Error(), "does not handle") {
		t.Errorf("abort of a kind no handler takes: %v", err)
	}
	out, err := h.Abort(ctx, env, dec, PINs{})
	if err != nil || out.Summary != "aborted" {
		t.Fatalf("abort: %+v, %v", out, err)
	}
	rr, _ := env.Registry.Run(ctx, dec)
	if rr.Status != registry.RunAborted || rr.Note != "aborted; cleaned; clear token X" {
		t.Errorf("registry after abort: %+v", rr)
	}
	jf, err := record.ReadJournalFile(rr.JournalPath)
	if err != nil {
		t.Fatal(err)
	}
	if fact := jf.Entries[len(jf.Entries)-2]; fact.Step != "registry.abort-run" {
		t.Errorf("the abort's entry follows %s, not the registry's fact of the abort", fact.Step)
	}
	last := jf.Entries[len(jf.Entries)-1]
	if p, err := record.Decode[Aborted](last); last.Step != StepAbort || err != nil || p.Done[0] != "cleaned" || p.Remaining[0] != "clear token X" {
		t.Errorf("abort entry %+v: %+v, %v", last, p, err)
	}
	if _, err := h.Abort(ctx, env, dec, PINs{}); err == nil || !strings.Contains(err.Error(), "is aborted") {
		t.Errorf("abort of an aborted run: %v", err)
	}
	if len(s.resumed) != 1 || len(s.aborted) != 1 {
		t.Errorf("handler saw resumes %v, aborts %v", s.resumed, s.aborted)
	}
	// A kind that cannot resume says why, and what to do.
	noResume := Handlers{{Kind: registry.RunCeremony, CannotResume: "its secret died with it; abort it"}}
	if _, err := noResume.Resume(ctx, env, "acme-root-crl-9", PINs{}); !errors.Is(err, ErrCannotResume) || !strings.Contains(err.Error(), "abort it") {
		t.Errorf("resume of a kind that cannot: %v", err)
	}
}

func TestFieldError(t *testing.T) {
	err := errors.Join(errors.New("other"), NewFieldError("Witness", "method %s needs a witness", "physical"))
	if FieldOf(err) != "Witness" || strings.Contains(err.Error(), "--") {
		t.Errorf("FieldOf = %q for %v", FieldOf(err), err)
	}
	if FieldOf(errors.New("plain")) != "" {
		t.Error("a plain error has a field")
	}
}
