package run

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/custos-pki/custos/internal/version"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/workspace"
)

// StaleClockGap is how far past the newest entry of a run that is resumed the clock may be
// before resuming warns that it may be wrong.
const StaleClockGap = 24 * time.Hour

// ClockReading is the workstation's clock as a ceremony's preflight shows it, for the witness to
// confirm against a reference time they brought, and what Custos checked it against: it is
// never earlier than the newest entry of any journal in the workspace, nor than this build of
// Custos.
type ClockReading struct {
	UTC   time.Time `json:"utc"`
	Local string    `json:"local"` // the same instant in the workstation's time zone
	// NewestEntry is the newest journal entry in the workspace before this run, and
	// NewestJournal the journal's file name; zero and empty in a workspace with no journal.
	NewestEntry   time.Time `json:"newest_journal_entry,omitzero"`
	NewestJournal string    `json:"newest_journal,omitempty"`
	// Built is when the commit this Custos was built from was made; zero when the build does
	// not say (a development build).
	Built time.Time `json:"built,omitzero"`
}

// Text is the reading as the witness reads it.
func (c ClockReading) Text() string {
	return fmt.Sprintf("%s UTC (%s local)", c.UTC.Format("2006-01-02 15:04:05"), c.Local)
}

// Detail is the reading as the witness reads it, for Progress.
func (c ClockReading) Detail() string { return "the workstation's clock: " + c.Text() }

// Against says what the clock was checked against, for a record.
func (c ClockReading) Against() string {
	var parts []string
	if !c.NewestEntry.IsZero() {
		parts = append(parts, fmt.Sprintf("newest journal entry %s (%s)", c.NewestEntry.UTC().Format(time.RFC3339), c.NewestJournal))
	}
	if !c.Built.IsZero() {
		parts = append(parts, "build time "+c.Built.UTC().Format(time.RFC3339))
	}
	if len(parts) == 0 {
		return "nothing earlier known (no journal in the workspace, a build that does not say when)"
	}
	return strings.Join(parts, "; ")
}

// ClockBehindError says the workstation's clock is earlier than a time Custos knows has
// passed: every record's dates and every certificate's validity would be wrong.
type ClockBehindError struct {
	Now  time.Time // the workstation's clock
	Than time.Time // the time known to have passed
	What string    // what that time is, e.g. "the newest entry of journal X"
}

func (e *ClockBehindError) Error() string {
	return fmt.Sprintf("the workstation's clock says %s, earlier than %s (%s): set the clock from a reference time, then start again; nothing was changed",
		e.Now.UTC().Format(time.RFC3339), e.Than.UTC().Format(time.RFC3339), e.What)
}

// ReadClock reads the clock and refuses it, with a ClockBehindError naming both times, when
// it is earlier than the newest entry of any journal in the workspace or than the time this
// Custos was built. Every run and operation starts with it.
func (e Env) ReadClock() (ClockReading, error) {
	return e.readClock(version.Current().Time)
}

func (e Env) readClock(built time.Time) (ClockReading, error) {
	now := time.Now()
	if e.Now != nil {
		now = e.Now()
	}
	c := ClockReading{UTC: now.UTC().Truncate(time.Second), Local: now.Local().Format("2006-01-02 15:04:05 MST (-07:00)"), Built: built.UTC()}
	newest, name, err := newestEntry(e.Workspace.Path(workspace.JournalDir))
	if err != nil {
		return c, err
	}
	c.NewestEntry, c.NewestJournal = newest, name
	switch {
	case now.Before(newest):
		return c, &ClockBehindError{Now: now, Than: newest, What: "the newest entry of journal " + name}
	case now.Before(built):
		return c, &ClockBehindError{Now: now, Than: built, What: "the time this Custos was built from its commit"}
	}
	return c, nil
}

// newestEntry is the time of the newest entry of the journals in dir, and its journal's name.
// A journal whose end cannot be read is passed over: a rebuild names it.
func newestEntry(dir string) (time.Time, string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		return time.Time{}, "", err
	}
	var newest time.Time
	var name string
	for _, p := range paths {
		t, err := record.LastEntryTime(p)
		if err == nil && t.After(newest) {
			newest, name = t, filepath.Base(p)
		}
	}
	return newest, name, nil
}

// StaleClockWarning is the warning resuming the run whose journal has entries gives when the
// clock is more than StaleClockGap past its last entry, and whether there is one.
func (e Env) StaleClockWarning(entries []record.Entry) (string, bool) {
	return staleClock(e.Clock(), entries)
}

// staleClock says, for a run resumed whose journal ends with entries, when the clock is more
// than StaleClockGap past its newest entry: the clock may have been set wrong since.
func staleClock(now time.Time, entries []record.Entry) (string, bool) {
	i := len(entries) - 1
	for i >= 0 && entries[i].Step == record.StepTornTail {
		i-- // noted by reopening the journal just now
	}
	if i < 0 {
		return "", false
	}
	last := entries[i].Time
	if gap := now.Sub(last); gap > StaleClockGap {
		return fmt.Sprintf("the workstation's clock says %s, %s after the run's last entry (%s): check the clock against a reference time; the record dates what is done now by it",
			now.UTC().Format(time.RFC3339), gap.Round(time.Minute), last.UTC().Format(time.RFC3339)), true
	}
	return "", false
}
