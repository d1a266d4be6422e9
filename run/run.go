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
	// Clock is the clock as the run read it when it started or was taken up (Env.ReadClock),
	// for a ceremony's preflight to show the witness.
	Clock ClockReading
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
// journal and has register record the run in the registry (reg, which journals that fact in
// the new journal; the run's journal path is given), before anything on a token changes. A
// journal left by a run of the same id killed before it was registered (a derived id) is
// taken up instead. When register fails, the new journal is removed.
func Start(ctx context.Context, env Env, id string, register func(reg *registry.Registry, journalPath string) error) (*Run, error) {
	if err := env.Workspace.CheckWritable(); err != nil {
		return nil, err
	}
	clock, err := env.ReadClock()
	if err != nil {
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
	r := &Run{ID: id, Env: env, Journal: j, Clock: clock}
	if err := register(r.Registry(), path); err != nil {
		j.Close()
		if created {
			os.Remove(path)
		}
		return nil, err
	}
	return r, nil
}

// StartRun begins a run the registry records as a plain registry.Run (ceremonies and quorum
// operations): see Start.
func StartRun(ctx context.Context, env Env, rr registry.Run) (*Run, error) {
	return Start(ctx, env, rr.ID, func(reg *registry.Registry, path string) error {
		rr.JournalPath = path
		_, err := reg.StartRun(ctx, rr)
		return err
	})
}

// StartOperation begins an operation that changes the registry but is not a run the registry
// lists (provisioning or importing devices, publishing a CRL, choosing the module): it gets a
// journal of its own, named like a run's, so every fact it adds to the registry is journaled;
// it is not resumed or aborted. End it with Close.
func StartOperation(ctx context.Context, env Env, op, subject string) (*Run, error) {
	if err := env.Workspace.CheckWritable(); err != nil {
		return nil, err
	}
	id := NewID(env, op, subject)
	j, err := record.CreateJournal(env.JournalPath(id), id)
	if err != nil {
		return nil, err
	}
	return &Run{ID: id, Env: env, Journal: j}, nil
}

// Close closes the journal of an operation (StartOperation); a run ends with Finish.
func (r *Run) Close() error { return r.Journal.Close() }

// Continue takes up the stopped run rr: its journal is reopened (and checked) and, when the
// registry has it as failed, it is marked running again.
func Continue(ctx context.Context, env Env, rr registry.Run) (*Run, error) {
	clock, err := env.ReadClock()
	if err != nil {
		return nil, err
	}
	j, err := record.OpenJournal(rr.JournalPath, rr.ID)
	if err != nil {
		return nil, err
	}
	r := &Run{ID: rr.ID, Env: env, Journal: j, Clock: clock}
	if warning, stale := staleClock(env.Clock(), j.Entries()); stale {
		if err := r.Note(StepStaleClock, record.System, StaleClock{Clock: clock, Warning: warning}); err != nil {
			j.Close()
			return nil, err
		}
	}
	if rr.Status == registry.RunFailed {
		if err := r.Registry().ResumeRun(ctx, rr.ID); err != nil {
			j.Close()
			return nil, err
		}
	}
	return r, nil
}

// Registry is the workspace's registry writing every change the run makes to the run's
// journal first (see registry.Journal): the registry a run changes things through.
func (r *Run) Registry() *registry.Registry {
	return r.Env.Registry.Journaled(JournalFacts(r.Journal))
}

// JournalFacts is j as the journal a registry writes its facts to: each a note of Custos
// itself, whose step is registry.FactStep.
func JournalFacts(j *record.Journal) registry.Journal { return factJournal{j} }

// factJournal writes registry facts into a run's journal, as notes of Custos itself.
type factJournal struct{ j *record.Journal }

func (f factJournal) JournalFact(fact registry.Fact) (int64, error) {
	data, err := record.Encode(fact)
	if err != nil {
		return 0, err
	}
	e, err := f.j.Append(record.Entry{Step: registry.FactStep(fact), Status: record.StatusNote,
		Actor: record.System.Name, Role: record.System.Role, Data: data})
	return e.Seq, err
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
	done := Event{Step: st, Status: record.StatusDone, Result: payload}
	if d, ok := payload.(Detailer); ok {
		done.Detail = d.Detail()
	}
	r.Progress(done)
	return nil
}

// Detailer is a step's payload that says in a line what a person at the workstation must see
// when the step is done (the clock the witness confirms): Step gives it to Progress as the
// event's Detail.
type Detailer interface{ Detail() string }

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
	if r.Env.RecordFault != nil {
		if err := r.Env.RecordFault(path); err != nil {
			return "", fmt.Errorf("write record: write %s: %w", path, err)
		}
	}
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
// registry's failure to record the completion. A completion with a record is dated by the
// journal's last entry (the record carries the journal: nothing is journaled after it, and a
// rebuild derives the completion from it); one without a record is journaled.
func (r *Run) Finish(ctx context.Context, err error, recordPath string) error {
	defer r.Journal.Close()
	ctx = context.WithoutCancel(ctx) // a cancelled run is still recorded as stopped
	if err != nil {
		if ferr := r.Registry().FailRun(ctx, r.ID, err.Error()); ferr != nil {
			return fmt.Errorf("%w; and the registry could not record the failure: %w", err, ferr)
		}
		return err
	}
	at := r.Env.Clock()
	if recordPath != "" {
		if entries := r.Journal.Entries(); len(entries) > 0 {
			at = entries[len(entries)-1].Time
		}
	}
	return r.Registry().CompleteRun(ctx, r.ID, recordPath, at)
}
