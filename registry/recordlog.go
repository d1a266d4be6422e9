package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// The record log is an append-only Merkle tree of every run that ended in a record: RFC 6962
// hashing through golang.org/x/mod/sumdb/tlog, which says which hashes to store as leaves are
// added and proves from them. The registry keeps the leaves, the stored hashes and the signed
// checkpoints; what a leaf says (record.LogEntry) and how checkpoints are signed is the record
// package's. Leaves are only ever added, one write transaction each, at the next index.

// LogLeaf is one leaf of the record log.
type LogLeaf struct {
	Index         int64
	RunID         string
	Kind          string
	JournalSHA256 string
	Leaf          []byte // the exact bytes hashed into the tree
	LoggedAt      time.Time
}

// LogCheckpoint is a signed checkpoint of the record log.
type LogCheckpoint struct {
	Size       int64
	RootHash   tlog.Hash
	Note       []byte // the signed note, as signed
	RunID      string // the run whose end it was signed at
	RootSigned bool   // the root signed it too (a quorum operation)
	SignedAt   time.Time
}

// settingLogOrigin keeps the log's origin line, fixed when the first leaf is added.
const settingLogOrigin = "record_log.origin"

// LogOrigin is the record log's origin line; ok is false while the log is empty.
func (r *Registry) LogOrigin(ctx context.Context) (origin string, ok bool, err error) {
	return r.Setting(ctx, settingLogOrigin)
}

// hashReader reads stored hashes inside one transaction.
type hashReader struct {
	ctx context.Context
	q   interface {
		QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	}
}

func (h hashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		var b []byte
		if err := h.q.QueryRowContext(h.ctx, `SELECT hash FROM record_log_hashes WHERE idx = ?`, idx).Scan(&b); err != nil {
			return nil, fmt.Errorf("read stored hash %d: %w", idx, err)
		}
		copy(out[i][:], b)
	}
	return out, nil
}

// AppendLog adds leaf as the next leaf of the record log and returns it with the tree after
// it. origin is the log's origin line, kept from the first leaf on; a later call naming
// another origin is refused. A run is logged once: logging a run again returns its leaf as it
// was added, with existed set, and adds nothing (a run resumed after a crash that followed its
// logging).
func (r *Registry) AppendLog(ctx context.Context, origin string, leaf LogLeaf) (got LogLeaf, tree tlog.Tree, existed bool, err error) {
	at := nowOr(leaf.LoggedAt)
	fact := &LogAppended{Origin: origin, RunID: leaf.RunID, Kind: leaf.Kind, JournalSHA256: leaf.JournalSHA256, Leaf: string(leaf.Leaf), LoggedAt: at}
	err = r.write(ctx, fact, func(tx *sql.Tx) error {
		if leaf.RunID == "" || leaf.Kind == "" || len(leaf.Leaf) == 0 || origin == "" {
			return fmt.Errorf("%w: a log leaf needs a run, a kind, its bytes and the log's origin", ErrInvalid)
		}
		var have string
		switch err := tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, settingLogOrigin).Scan(&have); {
		case errors.Is(err, sql.ErrNoRows):
			if _, err := tx.ExecContext(ctx, `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)`, settingLogOrigin, origin, unix(at)); err != nil {
				return err
			}
		case err != nil:
			return err
		case have != origin:
			return fmt.Errorf("%w: the record log's origin is %q, not %q", ErrConflict, have, origin)
		}
		old, err := scanLeaf(tx.QueryRowContext(ctx, `SELECT idx, run_id, kind, journal_sha256, leaf, logged_at FROM record_log WHERE run_id = ?`, leaf.RunID))
		switch {
		case err == nil:
			got, existed = old, true
		case !errors.Is(err, sql.ErrNoRows):
			return err
		default:
			var n int64
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM record_log`).Scan(&n); err != nil {
				return err
			}
			hr := hashReader{ctx, tx}
			hashes, err := tlog.StoredHashes(n, leaf.Leaf, hr)
			if err != nil {
				return fmt.Errorf("hash leaf %d: %w", n, err)
			}
			base := tlog.StoredHashCount(n)
			for i, h := range hashes {
				if _, err := tx.ExecContext(ctx, `INSERT INTO record_log_hashes (idx, hash) VALUES (?, ?)`, base+int64(i), h[:]); err != nil {
					return err
				}
			}
			got = leaf
			got.Index = n
			got.LoggedAt = at
			if _, err := tx.ExecContext(ctx, `INSERT INTO record_log (idx, run_id, kind, journal_sha256, leaf, logged_at) VALUES (?, ?, ?, ?, ?, ?)`,
				got.Index, got.RunID, got.Kind, got.JournalSHA256, got.Leaf, got.LoggedAt.Unix()); err != nil {
				return err
			}
		}
		fact.Index = got.Index
		tree, err = treeIn(ctx, tx)
		return err
	})
	if err != nil {
		return LogLeaf{}, tlog.Tree{}, false, fmt.Errorf("append run %s to the record log: %w", leaf.RunID, err)
	}
	return got, tree, existed, nil
}

func treeIn(ctx context.Context, tx *sql.Tx) (tlog.Tree, error) {
	var n int64
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM record_log`).Scan(&n); err != nil {
		return tlog.Tree{}, err
	}
	if n == 0 {
		return tlog.Tree{}, nil
	}
	h, err := tlog.TreeHash(n, hashReader{ctx, tx})
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("tree hash of %d leaves: %w", n, err)
	}
	return tlog.Tree{N: n, Hash: h}, nil
}

func scanLeaf(row rowScanner) (LogLeaf, error) {
	var l LogLeaf
	var at int64
	if err := row.Scan(&l.Index, &l.RunID, &l.Kind, &l.JournalSHA256, &l.Leaf, &at); err != nil {
		return LogLeaf{}, err
	}
	l.LoggedAt = time.Unix(at, 0).UTC()
	return l, nil
}

// LogTree is the record log's current size and root hash (N 0 for an empty log).
func (r *Registry) LogTree(ctx context.Context) (tlog.Tree, error) {
	var t tlog.Tree
	err := r.read(ctx, func(tx *sql.Tx) (err error) {
		t, err = treeIn(ctx, tx)
		return err
	})
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("read the record log: %w", err)
	}
	return t, nil
}

// LogLeaves lists the record log's leaves in order.
func (r *Registry) LogLeaves(ctx context.Context) ([]LogLeaf, error) {
	var out []LogLeaf
	err := r.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT idx, run_id, kind, journal_sha256, leaf, logged_at FROM record_log ORDER BY idx`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			l, err := scanLeaf(rows)
			if err != nil {
				return err
			}
			if l.Index != int64(len(out)) {
				return fmt.Errorf("leaf %d is missing", len(out))
			}
			out = append(out, l)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read the record log: %w", err)
	}
	return out, nil
}

// LogLeafOf is the leaf of run, or ErrNotFound.
func (r *Registry) LogLeafOf(ctx context.Context, runID string) (LogLeaf, error) {
	l, err := scanLeaf(r.db.QueryRowContext(ctx, `SELECT idx, run_id, kind, journal_sha256, leaf, logged_at FROM record_log WHERE run_id = ?`, runID))
	if errors.Is(err, sql.ErrNoRows) {
		return LogLeaf{}, fmt.Errorf("record log entry of run %s: %w", runID, ErrNotFound)
	}
	if err != nil {
		return LogLeaf{}, fmt.Errorf("record log entry of run %s: %w", runID, err)
	}
	return l, nil
}

// ProveLeaf proves that leaf index is in the tree of the first size leaves.
func (r *Registry) ProveLeaf(ctx context.Context, index, size int64) (tlog.RecordProof, error) {
	var p tlog.RecordProof
	err := r.read(ctx, func(tx *sql.Tx) (err error) {
		p, err = tlog.ProveRecord(size, index, hashReader{ctx, tx})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("prove leaf %d in the record log of %d: %w", index, size, err)
	}
	return p, nil
}

// ProveLog proves that the tree of the first oldSize leaves is a prefix of the tree of newSize.
func (r *Registry) ProveLog(ctx context.Context, oldSize, newSize int64) (tlog.TreeProof, error) {
	var p tlog.TreeProof
	err := r.read(ctx, func(tx *sql.Tx) (err error) {
		p, err = tlog.ProveTree(newSize, oldSize, hashReader{ctx, tx})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("prove the record log of %d extends that of %d: %w", newSize, oldSize, err)
	}
	return p, nil
}

// AddLogCheckpoint keeps a signed checkpoint. The same note twice is kept once.
func (r *Registry) AddLogCheckpoint(ctx context.Context, c LogCheckpoint) error {
	c.SignedAt = nowOr(c.SignedAt)
	fact := &LogCheckpointAdded{Size: c.Size, RootHash: c.RootHash[:], Note: string(c.Note), RunID: c.RunID, RootSigned: c.RootSigned, SignedAt: c.SignedAt}
	err := r.write(ctx, fact, func(tx *sql.Tx) error {
		if c.Size <= 0 || len(c.Note) == 0 || c.RunID == "" {
			return fmt.Errorf("%w: a checkpoint needs a size, its signed note and its run", ErrInvalid)
		}
		t, err := treeIn(ctx, tx)
		if err != nil {
			return err
		}
		if c.Size > t.N {
			return fmt.Errorf("%w: a checkpoint of %d leaves for a log of %d", ErrConflict, c.Size, t.N)
		}
		h, err := tlog.TreeHash(c.Size, hashReader{ctx, tx})
		if err != nil {
			return err
		}
		if h != c.RootHash {
			return fmt.Errorf("%w: the checkpoint's root hash is not the log's at %d leaves", ErrConflict, c.Size)
		}
		at := c.SignedAt
		_, err = tx.ExecContext(ctx, `INSERT INTO record_log_checkpoints (size, root_hash, note, run_id, root_signed, signed_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (note) DO NOTHING`, c.Size, c.RootHash[:], string(c.Note), c.RunID, c.RootSigned, at.Unix())
		return err
	})
	if err != nil {
		return fmt.Errorf("keep the record log's checkpoint at %d: %w", c.Size, err)
	}
	return nil
}

// LogCheckpoints lists the kept checkpoints, oldest first; rootSigned lists only those the
// root signed.
func (r *Registry) LogCheckpoints(ctx context.Context, rootSigned bool) ([]LogCheckpoint, error) {
	q := `SELECT size, root_hash, note, run_id, root_signed, signed_at FROM record_log_checkpoints`
	if rootSigned {
		q += ` WHERE root_signed = 1`
	}
	rows, err := r.db.QueryContext(ctx, q+` ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read the record log's checkpoints: %w", err)
	}
	defer rows.Close()
	var out []LogCheckpoint
	for rows.Next() {
		var c LogCheckpoint
		var h []byte
		var note string
		var at int64
		if err := rows.Scan(&c.Size, &h, &note, &c.RunID, &c.RootSigned, &at); err != nil {
			return nil, fmt.Errorf("read the record log's checkpoints: %w", err)
		}
		copy(c.RootHash[:], h)
		c.Note, c.SignedAt = []byte(note), time.Unix(at, 0).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the record log's checkpoints: %w", err)
	}
	return out, nil
}
