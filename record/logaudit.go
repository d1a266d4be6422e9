package record

import (
	"crypto/x509"
	"errors"
	"fmt"
	"sort"

	"golang.org/x/mod/sumdb/tlog"
)

// LogAudit is the record log as an auditor checks it: rebuilt from its leaves alone (the
// stored hashes are not trusted), then held against every checkpoint the root signed.
type LogAudit struct {
	Origin string
	Tree   tlog.Tree
	// Entries are the leaves, parsed.
	Entries []LogEntry
	// RootCheckpoints are the distinct checkpoints the root signed that were found, smallest
	// first, each with whether the log agrees with it.
	RootCheckpoints []RootCheckpoint
	hashes          memHashes
}

// RootCheckpoint is a checkpoint signed by the root, where it was found, and whether the log
// agrees with it (nil) or not.
type RootCheckpoint struct {
	Checkpoint
	Source string // where it was found: the registry, a record's file name
	Err    error
}

// memHashes is a record log's stored hashes in memory (golang.org/x/mod/sumdb/tlog's layout).
type memHashes []tlog.Hash

func (m memHashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= int64(len(m)) {
			return nil, fmt.Errorf("no stored hash %d", x)
		}
		out[i] = m[x]
	}
	return out, nil
}

// SignedNote is a signed checkpoint and where it was found.
type SignedNote struct {
	Note   []byte
	Source string
}

// AuditLog rebuilds the log of origin from its leaves, in order, and checks every note that
// the root signed against it: a checkpoint of the same origin, no larger than the log, whose
// root hash is the log's at its size. Notes the root did not sign are passed over. A leaf that
// is not a record log entry, or a run logged twice, is an error.
func AuditLog(origin string, leaves [][]byte, notes []SignedNote, root *x509.Certificate) (*LogAudit, error) {
	a := &LogAudit{Origin: origin}
	seen := map[string]int{}
	for i, leaf := range leaves {
		e, err := ParseLogEntry(leaf)
		if err != nil {
			return nil, fmt.Errorf("record log entry %d: %w", i, err)
		}
		if j, dup := seen[e.Run]; dup {
			return nil, fmt.Errorf("record log entries %d and %d are both of run %s", j, i, e.Run)
		}
		seen[e.Run] = i
		hs, err := tlog.StoredHashes(int64(i), leaf, a.hashes)
		if err != nil {
			return nil, err
		}
		a.hashes = append(a.hashes, hs...)
		a.Entries = append(a.Entries, e)
	}
	a.Tree.N = int64(len(leaves))
	if a.Tree.N > 0 {
		h, err := tlog.TreeHash(a.Tree.N, a.hashes)
		if err != nil {
			return nil, err
		}
		a.Tree.Hash = h
	}
	v, err := NoteVerifier(RoleRoot, root)
	if err != nil {
		return nil, err
	}
	have := map[Checkpoint]bool{}
	for _, n := range notes {
		text, _, err := OpenNote(n.Note, v)
		if err != nil {
			continue // not signed by this root
		}
		cp, err := ParseCheckpoint(text)
		if err != nil || have[cp] {
			continue
		}
		have[cp] = true
		a.RootCheckpoints = append(a.RootCheckpoints, RootCheckpoint{Checkpoint: cp, Source: n.Source, Err: a.agrees(cp)})
	}
	sort.SliceStable(a.RootCheckpoints, func(i, j int) bool { return a.RootCheckpoints[i].Size < a.RootCheckpoints[j].Size })
	return a, nil
}

// agrees says whether the log is consistent with checkpoint cp: the same origin, and the
// log's first cp.Size leaves hash to cp's root hash.
func (a *LogAudit) agrees(cp Checkpoint) error {
	switch {
	case cp.Origin != a.Origin:
		return fmt.Errorf("the checkpoint is of the log %q, not of %q", cp.Origin, a.Origin)
	case cp.Size > a.Tree.N:
		return fmt.Errorf("the root signed a log of %d entries; the log now has %d: entries were removed", cp.Size, a.Tree.N)
	case cp.Size == 0:
		return nil
	}
	h, err := tlog.TreeHash(cp.Size, a.hashes)
	if err != nil {
		return err
	}
	if h != cp.Hash {
		return fmt.Errorf("the log's first %d entries are not those the root signed: an entry was added, removed or changed before entry %d", cp.Size, cp.Size)
	}
	return nil
}

// Consistent is nil when the log agrees with every checkpoint the root signed, else the first
// disagreement.
func (a *LogAudit) Consistent() error {
	for _, c := range a.RootCheckpoints {
		if c.Err != nil {
			return fmt.Errorf("the root-signed checkpoint of %d entries (from %s): %w", c.Size, c.Source, c.Err)
		}
	}
	return nil
}

// CoveredBy is the size of the smallest checkpoint the root signed, and the log agrees with,
// that holds entry index; 0 when none does yet.
func (a *LogAudit) CoveredBy(index int64) int64 {
	for _, c := range a.RootCheckpoints {
		if c.Err == nil && c.Size > index {
			return c.Size
		}
	}
	return 0
}

// ErrNotInLog: a record's entry is not the log's entry at its index.
var ErrNotInLog = errors.New("not in the record log")

// Holds checks that the log holds a record's entry where its proof says, and agrees with the
// checkpoint the record carries.
func (a *LogAudit) Holds(p *LogProof, cp Checkpoint) error {
	if p.Index < 0 || p.Index >= a.Tree.N {
		return fmt.Errorf("%w: its entry %d is past the log's %d entries", ErrNotInLog, p.Index, a.Tree.N)
	}
	if got := a.Entries[p.Index]; got != p.Entry {
		for i, e := range a.Entries {
			if e.Run == p.Entry.Run {
				return fmt.Errorf("%w as the record says: the log's entry of run %s is entry %d, for journal hash %s", ErrNotInLog, e.Run, i, e.JournalSHA256)
			}
		}
		return fmt.Errorf("%w: entry %d of the log is run %s; no entry is of run %s", ErrNotInLog, p.Index, got.Run, p.Entry.Run)
	}
	if err := a.agrees(cp); err != nil {
		return fmt.Errorf("the checkpoint the record carries: %w", err)
	}
	return nil
}
