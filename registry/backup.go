package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
)

// Backup writes a consistent copy of the registry to the file dst, which must not exist, and
// checks it: SQLite's VACUUM INTO copies one snapshot of the database (a write committed
// meanwhile is either wholly in the copy or not at all), then the copy is opened read-only and
// must pass SQLite's integrity check, have this Custos's schema, carry the registry's identity,
// and hold the same rows as the registry, table by table (Compare), unless a writer may have
// changed the registry since (noWriter false): then only that it is whole is checked. A copy
// that fails a check is removed.
func (r *Registry) Backup(ctx context.Context, dst string, noWriter bool) error {
	abs, err := filepath.Abs(dst)
	if err != nil {
		return fmt.Errorf("back up the registry: %w", err)
	}
	if _, err := os.Lstat(abs); err == nil {
		return fmt.Errorf("back up the registry to %s: %w: the file exists", abs, ErrExists)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("back up the registry to %s: %w", abs, err)
	}
	// A connection of its own: the registry's may be query-only, which SQLite takes to forbid
	// writing even another file.
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: r.path}).String()+"?mode=ro")
	if err != nil {
		return fmt.Errorf("back up the registry: %w", err)
	}
	_, err = db.ExecContext(ctx, `VACUUM INTO ?`, abs)
	db.Close()
	if err != nil {
		os.Remove(abs)
		return fmt.Errorf("back up the registry to %s: %w", abs, err)
	}
	if err := r.checkBackup(ctx, abs, noWriter); err != nil {
		os.Remove(abs)
		return fmt.Errorf("back up the registry to %s: the copy failed its check and was removed: %w", abs, err)
	}
	return nil
}

func (r *Registry) checkBackup(ctx context.Context, path string, compare bool) error {
	c, err := OpenReadOnly(ctx, path, true)
	if err != nil {
		return err
	}
	defer c.Close()
	var ok string
	if err := c.db.QueryRowContext(ctx, `PRAGMA integrity_check(1)`).Scan(&ok); err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	if ok != "ok" {
		return fmt.Errorf("integrity check: %s", ok)
	}
	var identity uint32
	if err := c.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&identity); err != nil {
		return err
	}
	if want := r.Identity(); want != 0 && identity != want {
		return fmt.Errorf("the copy's identity is %d, the registry's %d", identity, want)
	}
	if !compare {
		return nil
	}
	diffs, err := Compare(ctx, r.path, path)
	if err != nil {
		return err
	}
	if len(diffs) > 0 {
		return fmt.Errorf("the copy differs from the registry: %s", diffs[0])
	}
	return nil
}
