// Package rebuild makes a workspace's registry again from its journals, the source of truth:
// every change to the registry is journaled as a registry.Fact before it is committed, so
// replaying the facts of every journal in the order they were written makes the same registry.
//
// Rebuild reads every journal of the workspace (a torn last line, left by a run killed while
// writing it, is left out and said; a journal that does not verify is named and left out),
// checks the signed records against them (each record's embedded journal must equal the
// journal of its run, byte for byte, and its signature verify against a root the journals
// registered; a record no journal accounts for is named), derives each completed run's
// completion from its record (a record cannot hold its own path, nor may anything be journaled
// after it: see registry.RunCompletion), and replays every fact into a new registry file
// beside the live one, which it never touches. It then compares the two table by table
// (registry.Compare). Replace puts the rebuilt registry in place, keeping the old one beside
// it.
package rebuild

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/custos-pki/custos/internal/version"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/workspace"
)

// Report is what a rebuild found and made.
type Report struct {
	Rebuilt  string // the rebuilt registry: custos-rebuilt-<time>.db, or custos.db once replaced
	Live     string // the live registry compared with, "" when the workspace has none
	Journals int    // journals read
	Facts    int    // facts replayed
	Records  int    // records checked
	// Problems keep the rebuilt registry from holding everything: a journal that cannot be
	// read or replayed, a fact the replay refused, a record that does not match its journal or
	// that no journal accounts for. Replace refuses while there are any.
	Problems []string
	// Notes are what a person should know that loses nothing (a torn last line left out).
	Notes []string
	// Diffs are the tables in which the live registry (first) and the rebuilt one (second)
	// differ; empty when they are the same or there is no live registry.
	Diffs []registry.TableDiff
	// Replaced is where the old registry was moved when the rebuilt one was put in its place.
	Replaced string
}

// Complete says whether the rebuilt registry holds every journaled fact and every record is
// accounted for.
func (r *Report) Complete() bool { return len(r.Problems) == 0 }

func (r *Report) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// ErrIncomplete is Replace's refusal while a rebuild has problems.
var ErrIncomplete = errors.New("the rebuilt registry does not hold everything the workspace's journals and records say")

// journal is one journal of the workspace as the rebuild reads it.
type journal struct {
	path    string
	id      string
	raw     []byte // the file's bytes, without a torn last line
	entries []record.Entry
	facts   []fact
	run     bool // it registers a run (start-run or start-decommission-run)
}

// fact is a registry fact at its place in a journal.
type fact struct {
	f    registry.Fact
	seq  int64
	time time.Time
}

// Rebuild rebuilds the registry of ws (opened for writing: its lock keeps every other Custos
// out) into a new file beside the live one, checks it against the records, and compares it
// with the live registry. now names the new file. The returned Report says what it found;
// the error is for a rebuild that could not be made at all.
func Rebuild(ctx context.Context, ws *workspace.Workspace, now time.Time) (*Report, error) {
	rep := &Report{Rebuilt: ws.Path("custos-rebuilt-" + now.UTC().Format("20060102T150405Z") + ".db")}
	journals, err := readJournals(ws, rep)
	if err != nil {
		return nil, err
	}
	completions := checkRecords(ws, journals, rep)
	if err := replay(ctx, rep, journals, completions); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(ws.DBPath()); err == nil {
		rep.Live = ws.DBPath()
		if rep.Diffs, err = registry.Compare(ctx, rep.Live, rep.Rebuilt); err != nil {
			return rep, fmt.Errorf("compare the rebuilt registry with %s: %w", rep.Live, err)
		}
	}
	return rep, nil
}

// readJournals reads and checks every journal of the workspace and picks out its facts.
func readJournals(ws *workspace.Workspace, rep *Report) ([]*journal, error) {
	paths, err := filepath.Glob(ws.Path(workspace.JournalDir, "*.jsonl"))
	if err != nil {
		return nil, err
	}
	slices.Sort(paths)
	var out []*journal
	for _, p := range paths {
		rep.Journals++
		j, err := readJournal(p, rep)
		if err != nil {
			rep.problem("journal %s: %v; nothing of it is replayed", filepath.Base(p), err)
			continue
		}
		out = append(out, j)
	}
	return out, nil
}

func readJournal(path string, rep *Report) (*journal, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	jf, err := record.ReadJournal(bytes.NewReader(raw))
	var je *record.JournalError
	if errors.As(err, &je) && je.Truncated {
		cut := bytes.LastIndexByte(raw, '\n') + 1
		rep.Notes = append(rep.Notes, fmt.Sprintf("journal %s: its last line (%d bytes) is incomplete, left by a run stopped while writing it; it is left out, as resuming the run would cut it off",
			filepath.Base(path), len(raw)-cut))
		raw = raw[:cut]
		jf, err = record.ReadJournal(bytes.NewReader(raw))
	}
	if err != nil {
		return nil, err
	}
	j := &journal{path: path, id: strings.TrimSuffix(filepath.Base(path), ".jsonl"), raw: raw, entries: jf.Entries}
	if len(jf.Entries) == 0 {
		return j, nil
	}
	if err := typed(jf.Entries[0]); err != nil {
		return nil, err
	}
	skip := map[int64]bool{}
	for _, e := range jf.Entries {
		f, ok, err := registry.DecodeFact(e.Step, e.Data)
		if !ok {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", e.Seq, err)
		}
		switch x := f.(type) {
		case *registry.Uncommitted:
			for _, s := range x.Seqs {
				skip[s] = true
			}
			continue
		case *registry.RunStarted:
			x.SetJournalPath(path)
			j.run = true
		case *registry.DecommissionRunStarted:
			x.SetJournalPath(path)
			j.run = true
		}
		j.facts = append(j.facts, fact{f: f, seq: e.Seq, time: e.Time})
	}
	j.facts = slices.DeleteFunc(j.facts, func(f fact) bool { return skip[f.seq] })
	return j, nil
}

// typed refuses a journal written before journal payloads were typed (its data were strings),
// which this Custos cannot read facts from: its first entry must name the build that wrote it.
func typed(first record.Entry) error {
	if first.Step != record.StepStart {
		return fmt.Errorf("it does not begin with the build that wrote it (%s), so it was written by a Custos from before journals carried typed payloads and registry facts: this Custos cannot replay it", record.StepStart)
	}
	if _, err := record.Decode[version.JournalBuild](first); err != nil {
		return fmt.Errorf("its payloads are strings (%v): it was written by a Custos from before journals carried typed payloads and registry facts, and this Custos cannot replay it", err)
	}
	return nil
}

// checkRecords holds every record of the workspace against the journal of its run, and
// returns the completions the records prove, by journal.
func checkRecords(ws *workspace.Workspace, journals []*journal, rep *Report) map[*journal]registry.Fact {
	byID := map[string]*journal{}
	var roots []*x509.Certificate
	for _, j := range journals {
		byID[j.id] = j
		for _, f := range j.facts {
			if ia, ok := f.f.(*registry.IssuerAdded); ok && ia.Kind == registry.IssuerRoot {
				if c, err := x509.ParseCertificate(ia.Certificate); err == nil {
					roots = append(roots, c)
				}
			}
		}
	}
	out := map[*journal]registry.Fact{}
	paths, _ := filepath.Glob(ws.Path(workspace.RecordsDir, "*.pdf"))
	slices.Sort(paths)
	for _, p := range paths {
		rep.Records++
		name := filepath.Base(p)
		j := byID[strings.TrimSuffix(name, ".pdf")]
		if j == nil {
			rep.problem("record %s: no journal of the workspace is its run's (journal/%s.jsonl is missing): it is not accounted for", name, strings.TrimSuffix(name, ".pdf"))
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			rep.problem("record %s: %v", name, err)
			continue
		}
		embedded, err := record.EmbeddedJournal(b)
		if err != nil {
			rep.problem("record %s: %v", name, err)
			continue
		}
		if !bytes.Equal(embedded, j.raw) {
			switch {
			case bytes.HasPrefix(j.raw, embedded):
				rep.problem("record %s carries the first %d bytes of journal %s, which has %d more after it: nothing may be journaled after a run's record",
					name, len(embedded), filepath.Base(j.path), len(j.raw)-len(embedded))
			default:
				rep.problem("record %s carries a journal that is not journal %s", name, filepath.Base(j.path))
			}
			continue
		}
		if v := record.Verify(b, roots); !v.OK() {
			rep.problem("record %s does not verify against the roots the journals registered: %s", name, failed(v))
			continue
		}
		if j.run {
			last := j.entries[len(j.entries)-1]
			out[j] = &registry.RunCompletion{ID: j.id, RecordPath: p, At: last.Time}
		}
	}
	return out
}

func failed(v *record.Report) string {
	var out []string
	for _, c := range v.Checks {
		if !c.OK {
			out = append(out, c.Name+": "+c.Detail)
		}
	}
	return strings.Join(out, "; ")
}

// replay applies every journal's facts, and the completions the records prove, to a new
// registry, in the order they were journaled: each journal's in its own order, the journals'
// interleaved by the time of their entries (one Custos writes a workspace at a time, so their
// changes were made in that order).
func replay(ctx context.Context, rep *Report, journals []*journal, completions map[*journal]registry.Fact) error {
	p, err := registry.NewReplay(ctx, rep.Rebuilt)
	if err != nil {
		return err
	}
	queues := make([][]fact, len(journals))
	for i, j := range journals {
		queues[i] = j.facts
		if c := completions[j]; c != nil {
			queues[i] = append(slices.Clone(j.facts), fact{f: c, seq: int64(len(j.entries)) + 1, time: j.entries[len(j.entries)-1].Time})
		}
	}
	for {
		next := -1
		for i, q := range queues {
			if len(q) == 0 {
				continue
			}
			if next < 0 || q[0].time.Before(queues[next][0].time) {
				next = i
			}
		}
		if next < 0 {
			break
		}
		f := queues[next][0]
		queues[next] = queues[next][1:]
		rep.Facts++
		if err := p.Apply(ctx, f.f); err != nil {
			rep.problem("journal %s line %d (%s): %v", filepath.Base(journals[next].path), f.seq, registry.FactStep(f.f), err)
		}
	}
	return p.Close(ctx)
}

// Replace puts the rebuilt registry of rep in place of the workspace's live one, which is
// moved beside it as custos-replaced-<time>.db (with its write-ahead log and index, if any,
// so SQLite never applies an old log to the new file). It refuses a rebuild with problems.
func Replace(ws *workspace.Workspace, rep *Report, now time.Time) error {
	if !rep.Complete() {
		return fmt.Errorf("%w: %s", ErrIncomplete, strings.Join(rep.Problems, "; "))
	}
	live := ws.DBPath()
	aside := ws.Path("custos-replaced-" + now.UTC().Format("20060102T150405Z") + ".db")
	moved := false
	for _, suffix := range []string{"", "-wal", "-shm"} {
		err := os.Rename(live+suffix, aside+suffix)
		switch {
		case err == nil:
			moved = moved || suffix == ""
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("move the old registry aside: %w", err)
		}
	}
	if err := os.Rename(rep.Rebuilt, live); err != nil {
		return fmt.Errorf("put the rebuilt registry in place: %w", err)
	}
	if err := workspace.SyncDir(ws.Dir); err != nil {
		return err
	}
	rep.Rebuilt = live
	if moved {
		rep.Replaced = aside
	}
	return nil
}

// Summary is the report's first line, for a person.
func (r *Report) Summary() string {
	s := fmt.Sprintf("%d journals, %d facts replayed, %d records checked", r.Journals, r.Facts, r.Records)
	switch {
	case !r.Complete():
		s += fmt.Sprintf("; %d problems", len(r.Problems))
	case r.Live == "":
		s += "; there was no registry to compare it with"
	case len(r.Diffs) == 0:
		s += "; it equals the live registry, table by table"
	default:
		s += fmt.Sprintf("; %d tables differ from the live registry", len(r.Diffs))
	}
	return s
}
