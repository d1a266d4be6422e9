package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// RunKind is what a run does.
type RunKind string

const (
	RunCeremony     RunKind = "ceremony"     // a root ceremony or an operation under quorum
	RunDecommission RunKind = "decommission" // one device or a fleet
	// RunRekey (rekey.go): a device's new key.
)

// RunStatus is where a run stands. A run that stopped half way (killed, or failed with an
// error) is running or failed: both can be resumed or aborted.
type RunStatus string

const (
	RunRunning   RunStatus = "running"
	RunCompleted RunStatus = "completed"
	RunFailed    RunStatus = "failed"
	RunAborted   RunStatus = "aborted"
)

// Run is one ceremony or decommission run, the registry's index to its journal.
type Run struct {
	ID          string    // chosen by the workflow; names its journal
	Kind        RunKind   //
	Operation   string    // ceremony: root, issue-ca, crl, reshare, restore, destroy; decommission: single, fleet
	Subject     string    // what it acts on: the ceremony id, the device serial or the manifest file
	Status      RunStatus // set by the registry
	JournalPath string    // the run's journal file
	RecordPath  string    // the signed record, once written
	Note        string    // why it failed or was aborted
	StartedAt   time.Time
	FinishedAt  time.Time // zero until completed or aborted
}

func (run Run) check() error {
	if err := checkID("run id", run.ID); err != nil {
		return err
	}
	if run.Kind != RunCeremony && run.Kind != RunDecommission && run.Kind != RunRekey {
		return fmt.Errorf("%w: run kind %q (want ceremony, decommission or rekey)", ErrInvalid, run.Kind)
	}
	if run.Kind == RunRekey && run.Operation != rekeyOperation {
		return fmt.Errorf("%w: a rekey run's operation is %q", ErrInvalid, rekeyOperation)
	}
	if run.Operation == "" || run.JournalPath == "" {
		return fmt.Errorf("%w: a run needs its operation and journal path", ErrInvalid)
	}
	if run.Kind == RunDecommission && run.Operation != "single" && run.Operation != "fleet" {
		return fmt.Errorf("%w: decommission operation %q (want single or fleet)", ErrInvalid, run.Operation)
	}
	return nil
}

func insertRun(ctx context.Context, tx *sql.Tx, run Run) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO runs (id, kind, operation, subject, status, journal_path, started_at)
		VALUES (?, ?, ?, ?, 'running', ?, ?)`, run.ID, storedKind(run.Kind), run.Operation, run.Subject, run.JournalPath, unix(run.StartedAt))
	if isUnique(err) {
		return fmt.Errorf("%w: a run with that id exists", ErrExists)
	}
	return err
}

// StartRun records a ceremony run as running, before it changes anything. It returns the run
// as stored.
func (r *Registry) StartRun(ctx context.Context, run Run) (Run, error) {
	run.Status, run.StartedAt, run.FinishedAt, run.RecordPath, run.Note = RunRunning, nowOr(run.StartedAt), time.Time{}, "", ""
	if run.Kind == RunDecommission {
		return Run{}, fmt.Errorf("start run %q: %w: a decommission run starts with StartDecommissionRun", run.ID, ErrInvalid)
	}
	if err := run.check(); err != nil {
		return Run{}, fmt.Errorf("start run %q: %w", run.ID, err)
	}
	fact := &RunStarted{ID: run.ID, Kind: run.Kind, Operation: run.Operation, Subject: run.Subject, JournalPath: run.JournalPath,
		StartedAt: run.StartedAt}
	if err := r.write(ctx, fact, func(tx *sql.Tx) error { return insertRun(ctx, tx, run) }); err != nil {
		return Run{}, fmt.Errorf("start run %q: %w", run.ID, err)
	}
	return run, nil
}

const runColumns = `id, kind, operation, subject, status, journal_path, record_path, note, started_at, finished_at FROM runs `

func scanRun(s rowScanner) (Run, error) {
	var run Run
	var kind, status string
	var started int64
	if err := s.Scan(&run.ID, &kind, &run.Operation, &run.Subject, &status, &run.JournalPath, &run.RecordPath, &run.Note,
		&started, nullTime{&run.FinishedAt}); err != nil {
		return Run{}, err
	}
	run.Kind, run.Status, run.StartedAt = readKind(kind, run.Operation), RunStatus(status), fromUnix(started)
	return run, nil
}

// Run finds a run by id.
func (r *Registry) Run(ctx context.Context, id string) (Run, error) {
	run, err := scanRun(r.db.QueryRowContext(ctx, `SELECT `+runColumns+`WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = fmt.Errorf("%w: no run has that id", ErrNotFound)
	}
	if err != nil {
		return Run{}, fmt.Errorf("find run %q: %w", id, err)
	}
	return run, nil
}

// UnfinishedRuns lists the runs that stopped half way, running or failed, oldest first: what
// Custos offers to resume or abort on start.
func (r *Registry) UnfinishedRuns(ctx context.Context) ([]Run, error) {
	return r.runs(ctx, "list unfinished runs", `status IN ('running', 'failed')`)
}

// RunsOf lists the runs that acted on subject (a ceremony id, a device serial, a manifest),
// oldest first.
func (r *Registry) RunsOf(ctx context.Context, subject string) ([]Run, error) {
	return r.runs(ctx, fmt.Sprintf("list the runs of %q", subject), `subject = ?`, subject)
}

// runs lists the runs matching where, oldest first; op names the listing in errors.
func (r *Registry) runs(ctx context.Context, op, where string, args ...any) ([]Run, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT `+runColumns+`WHERE `+where+` ORDER BY started_at, rowid`, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		run, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		out = append(out, run)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return out, nil
}

// RecordedRuns lists the runs that wrote a signed record, by the record's path: what the
// records screen says of each file.
func (r *Registry) RecordedRuns(ctx context.Context) (map[string]Run, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT `+runColumns+`WHERE record_path <> ''`)
	if err != nil {
		return nil, fmt.Errorf("list recorded runs: %w", err)
	}
	defer rows.Close()
	out := map[string]Run{}
	for rows.Next() {
		run, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list recorded runs: %w", err)
		}
		out[run.RecordPath] = run
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list recorded runs: %w", err)
	}
	return out, nil
}

// setRunStatus moves a run to status if it is in one of from, finished at finished (zero:
// not finished); otherwise ErrConflict naming the status it is in.
func setRunStatus(ctx context.Context, tx *sql.Tx, id string, status RunStatus, finished time.Time, note string, from ...RunStatus) error {
	var cur string
	err := tx.QueryRowContext(ctx, `SELECT status FROM runs WHERE id = ?`, id).Scan(&cur)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: no run has that id", ErrNotFound)
	}
	if err != nil {
		return err
	}
	ok := false
	for _, f := range from {
		ok = ok || RunStatus(cur) == f
	}
	if !ok {
		return fmt.Errorf("%w: the run is %s", ErrConflict, cur)
	}
	_, err = tx.ExecContext(ctx, `UPDATE runs SET status = ?, note = ?, finished_at = ? WHERE id = ?`, string(status), note, unixOrNil(finished), id)
	return err
}

// ResumeRun marks a run that stopped half way as running again.
func (r *Registry) ResumeRun(ctx context.Context, id string) error {
	err := r.write(ctx, &RunResumed{ID: id}, func(tx *sql.Tx) error {
		return setRunStatus(ctx, tx, id, RunRunning, time.Time{}, "", RunRunning, RunFailed)
	})
	if err != nil {
		return fmt.Errorf("resume run %q: %w", id, err)
	}
	return nil
}

// FailRun records that a run stopped with an error (note says which); it can be resumed or
// aborted later.
func (r *Registry) FailRun(ctx context.Context, id, note string) error {
	err := r.write(ctx, &RunFailure{ID: id, Note: note}, func(tx *sql.Tx) error {
		return setRunStatus(ctx, tx, id, RunFailed, time.Time{}, note, RunRunning)
	})
	if err != nil {
		return fmt.Errorf("record failure of run %q: %w", id, err)
	}
	return nil
}

// AbortRun records that a run was given up and what it left was cleaned away (note says why).
func (r *Registry) AbortRun(ctx context.Context, id, note string) error {
	return r.abortRun(ctx, id, note, time.Now())
}

func (r *Registry) abortRun(ctx context.Context, id, note string, at time.Time) error {
	at = nowOr(at)
	err := r.write(ctx, &RunAbort{ID: id, Note: note, At: at}, func(tx *sql.Tx) error {
		return setRunStatus(ctx, tx, id, RunAborted, at, note, RunRunning, RunFailed)
	})
	if err != nil {
		return fmt.Errorf("abort run %q: %w", id, err)
	}
	return nil
}

// CompleteRun records that a run finished at at, with its signed record ("" for none). For a
// decommission run the record path is also set on each device's result that has none. A run
// with a record is not journaled as completed, since its record carries the journal and nothing
// may follow it: at is then the time of the journal's last entry, and a rebuild derives the
// completion from the record (see RunCompletion).
func (r *Registry) CompleteRun(ctx context.Context, id, recordPath string, at time.Time) error {
	at = nowOr(at)
	err := r.write(ctx, &RunCompletion{ID: id, RecordPath: recordPath, At: at}, func(tx *sql.Tx) error {
		if err := setRunStatus(ctx, tx, id, RunCompleted, at, "", RunRunning); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE runs SET record_path = ? WHERE id = ?`, recordPath, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE decommission_results SET record_path = ? WHERE run_id = ? AND record_path = ''`, recordPath, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("complete run %q: %w", id, err)
	}
	return nil
}
