package registry

import (
	"context"
	"testing"
	"time"
)

func TestRunLifecycle(t *testing.T) {
	ctx := context.Background()
	r := openTemp(t)
	start := func(id string, at time.Time) {
		t.Helper()
		run, err := r.StartRun(ctx, Run{ID: id, Kind: RunCeremony, Operation: "issue-ca", Subject: "acme-root-2026",
			JournalPath: "journal/" + id + ".jsonl", StartedAt: at, Status: RunCompleted})
		if err != nil {
			t.Fatal(err)
		}
		if run.Status != RunRunning {
			t.Fatalf("a new run is %s", run.Status)
		}
	}
	start("c1", t0)
	start("c2", t0.Add(time.Minute))
	start("c3", t0.Add(2*time.Minute))

	steps := []struct {
		name   string
		do     func() error
		target error
		want   []string
	}{
		{"fail c1", func() error { return r.FailRun(ctx, "c1", "token removed at step 4") }, nil, nil},
		{"fail c1 twice", func() error { return r.FailRun(ctx, "c1", "again") }, ErrConflict, []string{`"c1"`, "failed"}},
		{"complete a failed run", func() error { return r.CompleteRun(ctx, "c1", "x.pdf", time.Time{}) }, ErrConflict, []string{`"c1"`, "failed"}},
		{"resume c1", func() error { return r.ResumeRun(ctx, "c1") }, nil, nil},
		{"complete c1", func() error { return r.CompleteRun(ctx, "c1", "records/c1.pdf", time.Time{}) }, nil, nil},
		{"abort a completed run", func() error { return r.AbortRun(ctx, "c1", "no") }, ErrConflict, []string{`"c1"`, "completed"}},
		{"resume a completed run", func() error { return r.ResumeRun(ctx, "c1") }, ErrConflict, []string{`"c1"`, "completed"}},
		{"abort c2", func() error { return r.AbortRun(ctx, "c2", "half-made root key removed") }, nil, nil},
		{"unknown run", func() error { return r.CompleteRun(ctx, "c9", "", time.Time{}) }, ErrNotFound, []string{`"c9"`}},
		{"duplicate id", func() error {
			_, err := r.StartRun(ctx, Run{ID: "c3", Kind: RunCeremony, Operation: "crl", JournalPath: "j"})
			return err
		}, ErrExists, []string{`"c3"`}},
		{"decommission through StartRun", func() error {
			_, err := r.StartRun(ctx, Run{ID: "d1", Kind: RunDecommission, Operation: "single", JournalPath: "j"})
			return err
		}, ErrInvalid, []string{`"d1"`, "StartDecommissionRun"}},
		{"unknown kind", func() error {
			_, err := r.StartRun(ctx, Run{ID: "x1", Kind: "backup", Operation: "x", JournalPath: "j"})
			return err
		}, ErrInvalid, []string{`"x1"`, `"backup"`}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) { wantErr(t, s.do(), s.target, s.want...) })
	}

	c1, _ := r.Run(ctx, "c1")
	if c1.Status != RunCompleted || c1.RecordPath != "records/c1.pdf" || c1.FinishedAt.IsZero() || c1.Subject != "acme-root-2026" {
		t.Errorf("c1 %+v", c1)
	}
	c2, _ := r.Run(ctx, "c2")
	if c2.Status != RunAborted || c2.Note != "half-made root key removed" || c2.FinishedAt.IsZero() {
		t.Errorf("c2 %+v", c2)
	}
	unfinished, err := r.UnfinishedRuns(ctx)
	if err != nil || len(unfinished) != 1 || unfinished[0].ID != "c3" {
		t.Errorf("unfinished %+v %v", unfinished, err)
	}
	if err := r.FailRun(ctx, "c3", "HSM error"); err != nil {
		t.Fatal(err)
	}
	if unfinished, _ := r.UnfinishedRuns(ctx); len(unfinished) != 1 || unfinished[0].Status != RunFailed || unfinished[0].Note != "HSM error" {
		t.Errorf("a failed run is unfinished: %+v", unfinished)
	}
	_, err = r.Run(ctx, "c9")
	wantErr(t, err, ErrNotFound, `"c9"`)
}
