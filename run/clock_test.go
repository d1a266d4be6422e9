package run

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
)

// A run refuses to start with a clock earlier than the newest entry of any journal in the
// workspace, naming both times and the journal, and changes nothing; a clock after it starts
// the run and says what it was checked against.
func TestClockBeforeTheNewestJournalEntryIsRefused(t *testing.T) {
	ctx := context.Background()
	env := testEnv(t)
	first := startTestRun(t, env, "acme-root-crl-1")
	first.Journal.Close()
	newest, err := record.LastEntryTime(env.JournalPath(first.ID))
	if err != nil || newest.IsZero() {
		t.Fatalf("newest entry %v, %v", newest, err)
	}

	early := env
	behind := newest.Add(-time.Hour)
	early.Now = func() time.Time { return behind }
	_, err = StartRun(ctx, early, registry.Run{ID: "acme-root-crl-2", Kind: registry.RunCeremony, Operation: "crl", Subject: "acme-root"})
	var cb *ClockBehindError
	if !errors.As(err, &cb) {
		t.Fatalf("a clock an hour behind the newest journal entry: %v", err)
	}
	for _, want := range []string{behind.UTC().Format(time.RFC3339), newest.UTC().Format(time.RFC3339), "acme-root-crl-1.jsonl", "set the clock"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not say %q: %v", want, err)
		}
	}
	if _, err := os.Stat(env.JournalPath("acme-root-crl-2")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused run left a journal: %v", err)
	}
	if _, err := env.Registry.Run(ctx, "acme-root-crl-2"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("a refused run is in the registry: %v", err)
	}

	late := env
	at := newest.Add(time.Minute)
	late.Now = func() time.Time { return at }
	r := startTestRun(t, late, "acme-root-crl-3")
	defer r.Journal.Close()
	c := r.Clock
	if !c.UTC.Equal(at.Truncate(time.Second)) || c.NewestJournal != "acme-root-crl-1.jsonl" || !c.NewestEntry.Equal(newest) || c.Local == "" {
		t.Errorf("clock reading %+v", c)
	}
	if !strings.Contains(c.Against(), "acme-root-crl-1.jsonl") || !strings.Contains(c.Text(), "UTC") {
		t.Errorf("reading says %q, %q", c.Text(), c.Against())
	}
	// A step whose payload is the reading shows it to whoever watches the run.
	var details []string
	r.Env.Progress = func(e Event) {
		if e.Status == record.StatusDone {
			details = append(details, e.Detail)
		}
	}
	if err := r.Step(Step{ID: "crl.clock", Title: "Confirm the workstation's clock"}, record.System, func() (any, error) { return r.Clock, nil }); err != nil {
		t.Fatal(err)
	}
	if len(details) != 1 || !strings.Contains(details[0], c.UTC.Format("2006-01-02 15:04:05")+" UTC") || !strings.Contains(details[0], "local") {
		t.Errorf("progress heard %q", details)
	}
}

// A clock earlier than the time the binary was built from its commit is refused, naming both.
func TestClockBeforeTheBuildIsRefused(t *testing.T) {
	env := testEnv(t)
	built := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	env.Now = func() time.Time { return built.Add(-24 * time.Hour) }
	_, err := env.readClock(built)
	var cb *ClockBehindError
	if !errors.As(err, &cb) || !cb.Than.Equal(built) || !strings.Contains(err.Error(), "2026-11-29T12:00:00Z") ||
		!strings.Contains(err.Error(), "2026-11-30T12:00:00Z") || !strings.Contains(err.Error(), "built") {
		t.Errorf("a clock a day before the build: %v", err)
	}
	env.Now = func() time.Time { return built.Add(time.Second) }
	if c, err := env.readClock(built); err != nil || !c.Built.Equal(built) || !strings.Contains(c.Against(), "build time 2026-11-30T12:00:00Z") {
		t.Errorf("a clock after the build: %+v, %v", c, err)
	}
	// An empty workspace and a build that does not say when: nothing to check against, and the
	// reading says so.
	if c, err := env.readClock(time.Time{}); err != nil || !strings.Contains(c.Against(), "nothing earlier known") {
		t.Errorf("nothing to check against: %+v, %v", c, err)
	}
}

// LastEntryTime reads a journal's end only, passes over a torn last line, and finds an entry
// longer than the first tail it reads.
func TestLastEntryTime(t *testing.T) {
	env := testEnv(t)
	r := startTestRun(t, env, "acme-root-crl-1")
	big := strings.Repeat("x", 300<<10) // longer than the 64 KiB tail read first
	if err := r.Note("test.big", record.System, struct {
		Blob string `json:"blob"`
	}{big}); err != nil {
		t.Fatal(err)
	}
	r.Journal.Close()
	entries := r.Journal.Entries()
	want := entries[len(entries)-1].Time
	path := env.JournalPath(r.ID)
	if got, err := record.LastEntryTime(path); err != nil || !got.Equal(want) {
		t.Errorf("last entry %v, %v; want %v", got, err, want)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":99,"time":"2099-01-01T00:00:00Z","ste`) // a kill mid-line
	f.Close()
	if got, err := record.LastEntryTime(path); err != nil || !got.Equal(want) {
		t.Errorf("with a torn last line: %v, %v; want %v", got, err, want)
	}
}

// Resuming a run more than a day after its last entry warns (in the outcome and the journal);
// within a day it does not. A clock behind the run's entries is refused.
func TestResumeWarnsOfAStaleClock(t *testing.T) {
	ctx := context.Background()
	env := testEnv(t)
	dec := "SN-1-decommission-1"
	r, err := Start(ctx, env, dec, func(reg *registry.Registry, path string) error {
		_, err := reg.StartDecommissionRun(ctx, registry.DecommissionRun{Run: registry.Run{ID: dec, Kind: registry.RunDecommission,
			Operation: "single", Subject: "SN-1", JournalPath: path}, Technician: "Tess"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	r.Journal.Begin("erase", record.System, nil)
	r.Journal.Close()
	entries := r.Journal.Entries()
	last := entries[len(entries)-1].Time

	var continued []*Run
	h := Handlers{{Kind: registry.RunDecommission, Asks: Asks{},
		Resume: func(ctx context.Context, env Env, rr registry.Run, pins PINs) (Outcome, error) {
			r, err := Continue(ctx, env, rr)
			if err != nil {
				return Outcome{}, err
			}
			r.Journal.Close()
			continued = append(continued, r)
			return Outcome{Summary: "finished", Remaining: []string{"file the record"}}, nil
		}}}

	behind := env
	behind.Now = func() time.Time { return last.Add(-time.Minute) }
	var cb *ClockBehindError
	if _, err := h.Resume(ctx, behind, dec, PINs{}); !errors.As(err, &cb) {
		t.Errorf("resume with a clock behind the run: %v", err)
	}

	soon := env
	soon.Now = func() time.Time { return last.Add(23 * time.Hour) }
	out, err := h.Resume(ctx, soon, dec, PINs{})
	if err != nil || len(out.Remaining) != 1 {
		t.Errorf("resume within a day: %+v, %v", out, err)
	}

	later := env
	now := last.Add(50 * time.Hour)
	later.Now = func() time.Time { return now }
	out, err = h.Resume(ctx, later, dec, PINs{})
	if err != nil || len(out.Remaining) != 2 || !strings.Contains(out.Remaining[0], "50h0m0s after the run's last entry") ||
		!strings.Contains(out.Remaining[0], now.UTC().Format(time.RFC3339)) {
		t.Fatalf("resume two days later: %+v, %v", out, err)
	}
	jf, err := record.ReadJournalFile(env.JournalPath(dec))
	if err != nil {
		t.Fatal(err)
	}
	var stale []StaleClock
	for _, e := range jf.Entries {
		if e.Step == StepStaleClock {
			p, err := record.Decode[StaleClock](e)
			if err != nil {
				t.Fatal(err)
			}
			stale = append(stale, p)
		}
	}
	if len(stale) != 1 || !stale[0].Clock.UTC.Equal(now.Truncate(time.Second)) || stale[0].Warning != out.Remaining[0] {
		t.Errorf("stale-clock notes %+v", stale)
	}
}
