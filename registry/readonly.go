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

// ErrNoRegistry is OpenReadOnly's error for a database file that does not exist.
var ErrNoRegistry = errors.New("no registry")

// OpenReadOnly opens an existing database to read it only, as the commands that only list or
// show do: it never creates, changes or migrates anything, so it works on write-protected
// media where SQLite cannot make its -wal and -shm files.
//
// noWriter says that no process can write the database while it is open (the caller holds
// the workspace's lock shared). Then a database with no pending write-ahead log is opened
// immutable, which needs neither -wal nor -shm file and creates neither. Otherwise (a writer
// may be at work, or one was killed and left its log) it is opened read-only in WAL mode,
// which reads the log through its -shm file, creating that only where it can.
func OpenReadOnly(ctx context.Context, path string, noWriter bool) (*Registry, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open registry %s: %w", path, err)
	}
	info, err := os.Stat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open registry %s: %w", abs, ErrNoRegistry)
	}
	if err != nil {
		return nil, fmt.Errorf("open registry %s: %w", abs, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("open registry %s: it is not a regular file", abs)
	}
	wal, err := os.Stat(abs + "-wal")
	pending := err == nil && wal.Size() > 0
	_, err = os.Stat(abs + "-shm")
	shm := err == nil
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "query_only(1)")
	q.Set("mode", "ro")
	if noWriter && !pending {
		q.Set("immutable", "1")
	}
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: abs}).String()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open registry %s: %w", abs, err)
	}
	db.SetMaxIdleConns(4)
	r := &Registry{db: db, path: abs}
	v, err := r.currentVersion(ctx, db)
	if err != nil {
		db.Close()
		if pending && !shm {
			return nil, fmt.Errorf("open registry %s: its last changes are in %s-wal, which SQLite reads only with a %s-shm file this folder lacks and cannot take (it is read-only): copy the workspace to a writable folder and run the command there: %w",
				abs, filepath.Base(abs), filepath.Base(abs), err)
		}
		return nil, fmt.Errorf("open registry %s read-only: %w", abs, err)
	}
	if want := SchemaVersion(); v != want {
		db.Close()
		if v > want {
			return nil, fmt.Errorf("open registry %s: %w: it has schema version %d, this Custos knows up to %d; open it with a newer Custos", abs, ErrSchemaTooNew, v, want)
		}
		return nil, fmt.Errorf("open registry %s: its schema version %d is older than this Custos's %d, and it cannot be upgraded while only read: run a command that changes the workspace once, where it is writable", abs, v, want)
	}
	return r, nil
}
