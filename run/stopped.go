package run

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
)

// PINs are the secrets a person gives to resume or abort a stopped run; either may be nil.
// They stay the caller's, who zeroes them after.
type PINs struct {
	Ops    []byte // the operations token's operator PIN
	Device []byte // the device tokens' PIN
}

// Asks says which PINs resuming or aborting a kind of run may need, so a screen offers those
// fields. The workflow still refuses, with a FieldError, a PIN it needs and did not get.
type Asks struct {
	OpsPIN, DevicePIN bool
}

// Outcome is what resuming or aborting a stopped run did, for a person to read.
type Outcome struct {
	Summary   string   // one line
	Done      []string // what was finished or cleaned away
	Remaining []string // what a person must still deal with, and how
}

// Handler is what a workflow knows of its runs that stopped half way: how their steps are
// titled, whether and how they resume, and how they are aborted. Each workflow exports the
// handlers of its run kinds; a front end lists those it offers in Handlers.
type Handler struct {
	Kind registry.RunKind
	// Title names a step of this kind's runs for a person; "" leaves the step's id.
	Title func(stepID string) string
	// Resume continues the stopped run rr. Nil when runs of this kind cannot resume; then
	// CannotResume says why, and what to do instead.
	Resume       func(ctx context.Context, env Env, rr registry.Run, pins PINs) (Outcome, error)
	CannotResume string
	// Resumable, when set, says from its journal's entries why a stopped run of this kind
	// cannot resume, or "" when it can: for a kind whose runs resume only in some states (a
	// ceremony whose signed record alone is missing).
	Resumable func(rr registry.Run, entries []record.Entry) string
	// Made, when set, says what a stopped run made (tokens, keys, certificates, files), from
	// its journal's entries, for a person deciding to resume or abort it.
	Made func(entries []record.Entry) []string
	// Abort cleans up after the stopped run r (its journal open) and says what it removed and
	// what is left. Handlers.Abort then journals that and marks the run aborted.
	Abort func(ctx context.Context, r *Run, pins PINs) (Outcome, error)
	// Asks are the PINs Resume and Abort may need.
	Asks Asks
}

// ErrCannotResume says a stopped run cannot continue where it stopped; abort it instead.
var ErrCannotResume = errors.New("the run cannot be resumed")

// Handlers are the run kinds a front end offers to resume and abort. They hold no state: the
// front end makes them from the workflows' handlers, e.g.
//
//	run.Handlers{ceremony.Handler(), decommission.Handler()}
type Handlers []Handler

// Stopped is a run that stopped half way (killed, or failed with an error), as a person
// deciding to resume or abort it needs to see it.
type Stopped struct {
	registry.Run
	// Open are the steps its journal shows as begun and never ended: where it stopped.
	Open []OpenStep
	// Last is the last step its journal shows as done, if any: where it stopped when no step
	// is open.
	Last *OpenStep
	// JournalErr says why its journal could not be read; Open is empty then.
	JournalErr error
	// CanResume says whether Resume can continue it; CannotResume says why not.
	CanResume    bool
	CannotResume string
	Asks         Asks
	// Made is what it made, as its workflow reads its journal (Handler.Made).
	Made []string
}

// OpenStep is a step a stopped run was in.
type OpenStep struct {
	Step Step
	Seq  int64 // its begin entry's line in the journal
	Time time.Time
}

// Where says in a few words where the run stopped.
func (s Stopped) Where() string {
	switch {
	case s.JournalErr != nil:
		return "its journal cannot be read: " + s.JournalErr.Error()
	case len(s.Open) > 0:
		return "stopped in step " + s.Open[len(s.Open)-1].Step.Title
	case s.Last != nil:
		return "stopped after step " + s.Last.Step.Title
	}
	return "stopped before its first step"
}

func (h Handlers) handler(kind registry.RunKind) (Handler, bool) {
	for _, x := range h {
		if x.Kind == kind {
			return x, true
		}
	}
	return Handler{}, false
}

// Stopped lists the runs of env's workspace that stopped half way, oldest first, each with the
// steps it stopped in and whether it can resume.
func (h Handlers) Stopped(ctx context.Context, env Env) ([]Stopped, error) {
	runs, err := env.Registry.UnfinishedRuns(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Stopped, 0, len(runs))
	for _, rr := range runs {
		s := Stopped{Run: rr}
		x, known := h.handler(rr.Kind)
		switch {
		case !known:
			s.CannotResume = fmt.Sprintf("this Custos does not handle %s runs", rr.Kind)
		case x.Resume == nil:
			s.CannotResume = x.CannotResume
		default:
			s.CanResume = true
		}
		s.Asks = x.Asks
		jf, err := record.ReadJournalFile(rr.JournalPath)
		if err != nil {
			s.JournalErr = err
			out = append(out, s)
			continue
		}
		if s.CanResume && x.Resumable != nil {
			if why := x.Resumable(rr, jf.Entries); why != "" {
				s.CanResume, s.CannotResume = false, why
			}
		}
		if known && x.Made != nil {
			s.Made = x.Made(jf.Entries)
		}
		step := func(e record.Entry) OpenStep {
			st := Step{ID: e.Step, Title: e.Step}
			if known && x.Title != nil {
				if t := x.Title(e.Step); t != "" {
					st.Title = t
				}
			}
			return OpenStep{Step: st, Seq: e.Seq, Time: e.Time}
		}
		for _, e := range record.OpenSteps(jf.Entries) {
			s.Open = append(s.Open, step(e))
		}
		for i := len(jf.Entries) - 1; i >= 0; i-- {
			if e := jf.Entries[i]; e.Status == record.StatusDone {
				last := step(e)
				s.Last = &last
				break
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// stopped finds the stopped run id and its kind's handler.
func (h Handlers) stopped(ctx context.Context, env Env, id string) (registry.Run, Handler, error) {
	rr, err := env.Registry.Run(ctx, id)
	if err != nil {
		return registry.Run{}, Handler{}, err
	}
	if rr.Status != registry.RunRunning && rr.Status != registry.RunFailed {
		return registry.Run{}, Handler{}, fmt.Errorf("run %s is %s; only a run that stopped half way can be resumed or aborted", id, rr.Status)
	}
	x, ok := h.handler(rr.Kind)
	if !ok {
		return registry.Run{}, Handler{}, fmt.Errorf("run %s is a %s run, which this Custos does not handle", id, rr.Kind)
	}
	return rr, x, nil
}

// Resume continues the stopped run id with the PINs given, or says why it cannot.
func (h Handlers) Resume(ctx context.Context, env Env, id string, pins PINs) (Outcome, error) {
	rr, x, err := h.stopped(ctx, env, id)
	if err != nil {
		return Outcome{}, err
	}
	if x.Resume == nil {
		return Outcome{}, fmt.Errorf("%w: %s %s: %s", ErrCannotResume, rr.Operation, id, x.CannotResume)
	}
	var warning string
	jf, err := record.ReadJournalFile(rr.JournalPath)
	if err != nil {
		return Outcome{}, fmt.Errorf("resume %s: %w", id, err)
	}
	if x.Resumable != nil {
		if why := x.Resumable(rr, jf.Entries); why != "" {
			return Outcome{}, fmt.Errorf("%w: %s %s: %s", ErrCannotResume, rr.Operation, id, why)
		}
	}
	warning, _ = env.StaleClockWarning(jf.Entries) // Continue journals it too
	out, err := x.Resume(ctx, env, rr, pins)
	if err == nil && warning != "" {
		out.Remaining = append([]string{warning}, out.Remaining...)
	}
	return out, err
}

// Abort ends the stopped run id without finishing it: its workflow cleans up what it can
// (with the PINs given), then the journal records what was cleaned away and what is left, and
// the registry marks the run aborted.
func (h Handlers) Abort(ctx context.Context, env Env, id string, pins PINs) (Outcome, error) {
	rr, x, err := h.stopped(ctx, env, id)
	if err != nil {
		return Outcome{}, err
	}
	j, err := record.OpenJournal(rr.JournalPath, rr.ID)
	if err != nil {
		return Outcome{}, fmt.Errorf("abort %s: %w", id, err)
	}
	defer j.Close()
	r := &Run{ID: rr.ID, Env: env, Journal: j}
	out, err := x.Abort(ctx, r, pins)
	if err != nil {
		return Outcome{}, fmt.Errorf("abort %s: %w", id, err)
	}
	// The registry's fact first, so the abort's own entry is the journal's last.
	note := strings.Join(append([]string{out.Summary}, append(out.Done, out.Remaining...)...), "; ")
	if err := r.Registry().AbortRun(ctx, id, note); err != nil {
		return Outcome{}, err
	}
	if err := r.Note(StepAbort, record.System, Aborted(out)); err != nil {
		return Outcome{}, fmt.Errorf("abort %s: %w", id, err)
	}
	return out, nil
}
