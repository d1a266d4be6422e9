package run

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
)

// Step is one step of a run as the people at the workstation see it.
type Step struct {
	ID     string // the journal's step name, e.g. "root.generate-key", "erase"
	Title  string // e.g. "Generate the root key", "Erase the device's keys"
	Script string // the ceremony script part people read for it (assets/scripts), if any
	// Confirmer is the role the script names to confirm the step ("witness", "administrator"),
	// if any: a front end asks that person by default.
	Confirmer string
}

// Event is a step of a run beginning, ending or failing, or a fleet's count of devices moving:
// the one thing every front end hears, for ceremonies, quorum operations, single devices and
// fleets alike.
type Event struct {
	Run    string // the run id
	Step   Step
	Status record.Status // begin, done, failed; note for a fleet's count
	Detail string        // what the step made, when it says (e.g. the record's path)
	Err    error         // why it failed
	Result any           // what a step that is done made: its journal payload
	Done   int           // a fleet's devices handled so far
	Total  int           // a fleet's devices in its manifest
}

// Run is one run in progress: its id, its journal and the Env it works in. A workflow starts
// it (Start), or takes up a stopped one (Continue), runs its steps (Step, Note) and ends it
// (Finish).
type Run struct {
	ID      string
	Env     Env
	Journal *record.Journal
	log     *record.LogProof // the run's place in the record log, once entered
}

// NewID names a new run: what it acts on, the operation, the time and a random suffix, so ids
// sort by subject and time and two runs in the same second still differ. Characters a file
// name cannot hold are replaced.
func NewID(env Env, op, subject string) string {
	var b [3]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s-%s-%s-%x", fileSafe(subject), op, env.Clock().Format("20060102T150405Z"), b)
}

// DerivedID names a run that is the same run whenever it is started from the same input: op
// and the first six bytes of the input's digest (a fleet's manifest).
func DerivedID(op string, digest []byte) string {
	return op + "-" + hex.EncodeToString(digest[:min(6, len(digest))])
}

// fileSafe keeps a subject usable in a file name.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

// Start begins the run id: it checks the workspace can take the run's files, creates its
// journal and has register record the run in the registry (with the journal's path), before
// anything on a token changes. A journal left by a run of the same id killed before it was
// registered (a derived id) is taken up instead. When register fails, the new journal is
// removed.
func Start(ctx context.Context, env Env, id string, register func(journalPath string) error) (*Run, error) {
	if err := env.Workspace.CheckWritable(); err != nil {
		return nil, err
	}
	path := env.JournalPath(id)
	j, err := record.CreateJournal(path, id)
	created := err == nil
	if errors.Is(err, fs.ErrExist) {
		if _, rerr := env.Registry.Run(ctx, id); errors.Is(rerr, registry.ErrNotFound) {
			j, err = record.OpenJournal(path, id)
		}
	}
	if err != nil {
		return nil, err
	}
	if err := register(path); err != nil {
		j.Close()
		if created {
			os.Remove(path)
		}
		return nil, err
	}
	return &Run{ID: id, Env: env, Journal: j}, nil
}

// StartRun begins a run the registry records as a plain registry.Run (ceremonies and quorum
// operations): see Start.
func StartRun(ctx context.Context, env Env, rr registry.Run) (*Run, error) {
	return Start(ctx, env, rr.ID, func(path string) error {
		rr.JournalPath = path
		_, err := env.Registry.StartRun(ctx, rr)
		return err
	})
}

// Continue takes up the stopped run rr: its journal is reopened (and checked) and, when the
// registry has it as failed, it is marked running again.
func Continue(ctx context.Context, env Env, rr registry.Run) (*Run, error) {
	j, err := record.OpenJournal(rr.JournalPath, rr.ID)
	if err != nil {
		return nil, err
	}
	if rr.Status == registry.RunFailed {
		if err := env.Registry.ResumeRun(ctx, rr.ID); err != nil {
			j.Close()
			return nil, err
		}
	}
	return &Run{ID: rr.ID, Env: env, Journal: j}, nil
}

// Step journals st as begun, runs fn, and journals it done with fn's payload (a struct: see
// record.Encode) or failed with its error, telling Env.Progress each time. The begin entry is
// written before fn acts, so a run killed inside fn shows the step as open. A step whose
// journal entry cannot be written fails, and its error says so.
func (r *Run) Step(st Step, who record.Actor, fn func() (any, error)) error {
	if err := r.Journal.Begin(st.ID, who, nil); err != nil {
		r.Progress(Event{Step: st, Status: record.StatusFailed, Err: err})
		return fmt.Errorf("%s: %w", st.Title, err)
	}
	r.Progress(Event{Step: st, Status: record.StatusBegin})
	payload, err := fn()
	if err != nil {
		err = r.journalFailure(st.ID, who, err)
		r.Progress(Event{Step: st, Status: record.StatusFailed, Err: err})
		return fmt.Errorf("%s: %w", st.Title, err)
	}
	if err := r.Journal.Done(st.ID, who, payload); err != nil {
		err = fmt.Errorf("it was done, but the journal could not record it: %w", err)
		r.Progress(Event{Step: st, Status: record.StatusFailed, Err: err})
		return fmt.Errorf("%s: %w", st.Title, err)
	}
	r.Progress(Event{Step: st, Status: record.StatusDone, Result: payload})
	return nil
}

// Note journals a fact that is not a step of its own (a request, an intent, an attestation).
func (r *Run) Note(step string, who record.Actor, payload any) error {
	return r.Journal.Note(step, who, payload)
}

// Fail journals that step failed with err outside Step (writing the record, which nothing can
// journal as begun since the record holds the journal), and returns err, joined with the
// journal's own failure if it could not record it.
func (r *Run) Fail(step string, who record.Actor, err error) error {
	return r.journalFailure(step, who, err)
}

func (r *Run) journalFailure(step string, who record.Actor, err error) error {
	if jerr := r.Journal.Fail(step, who, err); jerr != nil {
		return fmt.Errorf("%w; and the journal could not record the failure: %w", err, jerr)
	}
	return err
}

// Progress tells Env.Progress of e, for this run.
func (r *Run) Progress(e Event) {
	if r.Env.Progress != nil {
		e.Run = r.ID
		r.Env.Progress(e)
	}
}

// RecordPath is where this run's signed record is written.
func (r *Run) RecordPath() string { return r.Env.RecordPath(r.ID) }

// WriteRecord enters the run in the record log (EnterLog: the checkpoint after it signed by
// the record signer, and by the root as seal says) and writes the run's signed record at
// RecordPath with write, which is given the journal as it stands to attach (nothing is
// journaled after: the record carries the journal) and the run's place in the log, then
// tells Progress that step is done. It returns the record's path.
func (r *Run) WriteRecord(ctx context.Context, step Step, seal LogSeal, signer record.Signer, write func(path string, journal []byte, log *record.LogProof) error) (string, error) {
	log, err := r.EnterLog(ctx, seal, signer)
	if err != nil {
		return "", err
	}
	jb, err := r.Journal.Bytes()
	if err != nil {
		return "", err
	}
	path := r.RecordPath()
	if err := write(path, jb, log); err != nil {
		return "", err
	}
	r.Progress(Event{Step: step, Status: record.StatusDone, Detail: path})
	return path, nil
}

// EnterLog enters the run in the record log (see the function EnterLog) once: a run whose
// root key will be gone by the time its record is written (the end of a root) enters before,
// and WriteRecord then carries that entry.
func (r *Run) EnterLog(ctx context.Context, seal LogSeal, signer record.Signer) (*record.LogProof, error) {
	if r.log != nil {
		return r.log, nil
	}
	p, err := EnterLog(ctx, r.Env, r.Journal, seal, signer)
	if err != nil {
		return nil, err
	}
	r.log = p
	return p, nil
}

// Finish ends the run in the registry, completed with its record or failed with err (a
// failed run can be resumed or aborted), and closes the journal. It returns err, or the
// registry's failure to record the completion.
func (r *Run) Finish(ctx context.Context, err error, recordPath string) error {
	defer r.Journal.Close()
	ctx = context.WithoutCancel(ctx) // a cancelled run is still recorded as stopped
	if err != nil {
		if ferr := r.Env.Registry.FailRun(ctx, r.ID, err.Error()); ferr != nil {
			return fmt.Errorf("%w; and the registry could not record the failure: %w", err, ferr)
		}
		return err
	}
	return r.Env.Registry.CompleteRun(ctx, r.ID, recordPath)
}
