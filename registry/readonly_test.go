package registry

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/custos-pki/custos/internal/readonlytest"
)

// writeSettings makes a registry at path holding the settings given, and closes it: SQLite
// checkpoints its log into the database and removes the -wal and -shm files.
func writeSettings(t *testing.T, path string, kv ...string) {
	t.Helper()
	r, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	r = journaled(r)
	defer r.Close()
	for i := 0; i+1 < len(kv); i += 2 {
		if err := r.SetSetting(context.Background(), kv[i], kv[i+1]); err != nil {
			t.Fatal(err)
		}
	}
}

func wantSetting(t *testing.T, r *Registry, key, want string) {
	t.Helper()
	got, ok, err := r.Setting(context.Background(), key)
	if err != nil || !ok || got != want {
		t.Errorf("setting %s = %q, %v, %v; want %q", key, got, ok, err, want)
	}
}

// TestOpenReadOnlyOnReadOnlyMedia reads a registry in a folder no one can write: nothing is
// created (no -wal or -shm file), and a write is refused.
func TestOpenReadOnlyOnReadOnlyMedia(t *testing.T) {
	readonlytest.Run(t, func(t *testing.T) string {
		dir := t.TempDir()
		writeSettings(t, filepath.Join(dir, "custos.db"), "module", "/usr/lib/softhsm/libsofthsm2.so")
		return dir
	}, func(t *testing.T, dir string) {
		r, err := OpenReadOnly(context.Background(), filepath.Join(dir, "custos.db"), true)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		wantSetting(t, r, "module", "/usr/lib/softhsm/libsofthsm2.so")
		if err := r.SetSetting(context.Background(), "module", "/tmp/evil.so"); err == nil {
			t.Error("a write through a read-only registry succeeded")
		}
	})
}

// TestOpenReadOnlyReadsAKilledWritersLog: a writer killed with changes still in its
// write-ahead log left custos.db-wal and -shm; a read-only open sees those changes, on
// read-only media too.
func TestOpenReadOnlyReadsAKilledWritersLog(t *testing.T) {
	readonlytest.Run(t, func(t *testing.T) string {
		return killedWriter(t, true)
	}, func(t *testing.T, dir string) {
		if syscall.Access(dir, 2 /* W_OK */) == nil {
			t.Skip("root may write this folder whatever its mode (SQLite would update the -shm index in place): the read-only mount checks this case")
		}
		r, err := OpenReadOnly(context.Background(), filepath.Join(dir, "custos.db"), true)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		wantSetting(t, r, "module", "/usr/lib/softhsm/libsofthsm2.so")
		wantSetting(t, r, "in-the-log", "yes")
	})
}

// TestOpenReadOnlyNamesAMissingSHM: a killed writer's log without its -shm file cannot be read
// where no file can be made; the error says so and what to do.
func TestOpenReadOnlyNamesAMissingSHM(t *testing.T) {
	readonlytest.Run(t, func(t *testing.T) string {
		return killedWriter(t, false)
	}, func(t *testing.T, dir string) {
		if syscall.Access(dir, 2 /* W_OK */) == nil {
			t.Skip("root may write this folder whatever its mode (SQLite would make the -shm file): the read-only mount checks this case")
		}
		_, err := OpenReadOnly(context.Background(), filepath.Join(dir, "custos.db"), true)
		if err == nil || !strings.Contains(err.Error(), "custos.db-wal, which SQLite reads only with a custos.db-shm file") ||
			!strings.Contains(err.Error(), "copy the workspace to a writable folder") {
			t.Fatalf("error = %v", err)
		}
	})
}

// killedWriter leaves in a new folder what a writer killed mid-work leaves: custos.db with a
// setting, and custos.db-wal holding another not yet checkpointed, with its -shm file if shm.
func killedWriter(t *testing.T, shm bool) string {
	t.Helper()
	ctx := context.Background()
	live := t.TempDir()
	writeSettings(t, filepath.Join(live, "custos.db"), "module", "/usr/lib/softhsm/libsofthsm2.so")
	w, err := Open(ctx, filepath.Join(live, "custos.db"))
	if err != nil {
		t.Fatal(err)
	}
	w = journaled(w)
	defer w.Close()
	if err := w.SetSetting(ctx, "in-the-log", "yes"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := []string{"custos.db", "custos.db-wal"}
	if shm {
		files = append(files, "custos.db-shm")
	}
	for _, name := range files {
		copyFile(t, filepath.Join(live, name), filepath.Join(dir, name))
	}
	return dir
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
}

// TestOpenReadOnlyBesideAWriter: with a writer at work (noWriter false), a read-only open
// reads through the writer's log and sees each change once it is committed.
func TestOpenReadOnlyBesideAWriter(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "custos.db")
	w, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	w = journaled(w)
	defer w.Close()
	w.SetSetting(ctx, "a", "1")
	r, err := OpenReadOnly(ctx, path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	wantSetting(t, r, "a", "1")
	w.SetSetting(ctx, "a", "2")
	wantSetting(t, r, "a", "2")
}

func TestOpenReadOnlyRefuses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := OpenReadOnly(ctx, filepath.Join(dir, "custos.db"), true); !errors.Is(err, ErrNoRegistry) {
		t.Errorf("missing database: %v", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("opening a missing database made %v", left)
	}
	older := filepath.Join(t.TempDir(), "custos.db")
	writeSettings(t, older)
	setVersion(t, older, SchemaVersion()-1)
	if _, err := OpenReadOnly(ctx, older, true); err == nil || !strings.Contains(err.Error(), "is older than this Custos's") {
		t.Errorf("older schema: %v", err)
	}
	newer := filepath.Join(t.TempDir(), "custos.db")
	writeSettings(t, newer)
	setVersion(t, newer, SchemaVersion()+1)
	if _, err := OpenReadOnly(ctx, newer, true); !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("newer schema: %v", err)
	}
}

// setVersion makes the database at path say it has schema version v.
func setVersion(t *testing.T, path string, v int) {
	t.Helper()
	r, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	r = journaled(r)
	defer r.Close()
	if _, err := r.db.Exec(`DELETE FROM schema_version WHERE version > ?`, v); err != nil {
		t.Fatal(err)
	}
	if _, err := r.db.Exec(`INSERT OR IGNORE INTO schema_version (version, name, applied_at) VALUES (?, 'test', 0)`, v); err != nil {
		t.Fatal(err)
	}
}
