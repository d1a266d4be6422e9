package registry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Replay is a registry being rebuilt from journals: a new database file to which the facts of
// every journal are applied in the order they were journaled. A fact applied here is not
// journaled again.
type Replay struct {
	reg *Registry
}

// NewReplay creates the database at path, which must not exist yet, to rebuild a registry
// into. Its identity is its own: a rebuilt registry is never taken for the one it replaces.
func NewReplay(ctx context.Context, path string) (*Replay, error) {
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("rebuild the registry into %s: %w: the file exists", path, ErrExists)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("rebuild the registry into %s: %w", path, err)
	}
	r, err := open(ctx, path, nil)
	if err != nil {
		return nil, fmt.Errorf("rebuild the registry: %w", err)
	}
	r.replay = true
	return &Replay{reg: r}, nil
}

// Apply makes the change f records.
func (p *Replay) Apply(ctx context.Context, f Fact) error {
	if f == nil {
		return fmt.Errorf("%w: no fact", ErrInvalid)
	}
	return f.apply(ctx, p.reg)
}

// Registry is the registry being rebuilt, to read.
func (p *Replay) Registry() *Registry { return p.reg }

// Close writes everything into the database file itself (its write-ahead log checkpointed and
// removed, so the file can be moved into place alone) and closes it.
func (p *Replay) Close(ctx context.Context) error {
	_, cerr := p.reg.db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	// The last connection to close removes the emptied log.
	if err := p.reg.Close(); err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("close the rebuilt registry %s: %w", p.reg.path, cerr)
	}
	return nil
}
