package workspace

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestOpenCreatesLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ws")
	ws, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	for _, sub := range []string{JournalDir, RecordsDir, CertsDir, CRLDir, BackupDir} {
		if fi, err := os.Stat(filepath.Join(dir, sub)); err != nil || !fi.IsDir() {
			t.Errorf("%s missing: %v", sub, err)
		}
	}
	if err := ws.CheckWritable(); err != nil {
		t.Fatal(err)
	}
}

func TestSecondWriterRefused(t *testing.T) {
	dir := t.TempDir()
	ws, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to open file descriptions, so a second Open in this process is
	// refused exactly as a second process would be.
	_, err = Open(dir)
	if err == nil || !strings.Contains(err.Error(), "in use by another Custos (pid ") {
		t.Fatalf("second Open error = %v, want an in-use error naming the holder", err)
	}
	ws.Close()
	ws2, err := Open(dir)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	ws2.Close()
}

// TestLockReleasedWhenHolderKilled shows a kill -9'd Custos does not leave the workspace locked.
func TestLockReleasedWhenHolderKilled(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("flock", "-x", "-o", filepath.Join(dir, lockFile), "sleep", "60") // -o: sleep does not inherit the lock
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}                                 // so the kill reaches sleep too
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the child holds the lock.
	for i := 0; ; i++ {
		ws, err := Open(dir)
		if err != nil {
			break
		}
		ws.Close()
		if i > 1000 {
			t.Fatal("child never took the lock")
		}
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	// The kernel drops the lock as the holder's files close; give it a moment under load.
	var err error
	for i := 0; i < 100; i++ {
		var ws *Workspace
		if ws, err = Open(dir); err == nil {
			ws.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("Open after the holder was killed: %v", err)
}

func TestReadOnlyWorkspace(t *testing.T) {
	if os.Geteuid() == 0 {
		// root ignores permission bits; a read-only bind mount would be needed instead.
		dir := t.TempDir()
		ws, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		ws.Dir = "/proc/self" // not writable even for root
		if err := ws.CheckWritable(); err == nil || !strings.Contains(err.Error(), "not writable") {
			t.Fatalf("CheckWritable on a read-only folder = %v", err)
		}
		return
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "not writable") {
		t.Fatalf("Open on a read-only folder = %v", err)
	}
}

func TestCreateExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "root.pem")
	if err := CreateExclusive(path, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := CreateExclusive(path, []byte("two"), 0o644)
	if err == nil || !strings.Contains(err.Error(), "never overwrites") {
		t.Fatalf("second CreateExclusive = %v", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "one" {
		t.Fatalf("file content = %q, want the first write kept", got)
	}
}

// A write that fails half way leaves nothing under the file's name, nor a partial file
// beside it; one that succeeds has the mode asked for.
func TestWriteExclusiveWholeOrNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ica-1.crl")
	err := WriteExclusive(path, 0o644, func(w io.Writer) error {
		w.Write(bytes.Repeat([]byte("x"), 3<<20)) // past the write buffer: bytes reach the disk
		return errors.New("the HSM went away")
	})
	if err == nil || !strings.Contains(err.Error(), "the HSM went away") {
		t.Fatalf("WriteExclusive = %v", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("a failed write left %v", left)
	}
	if err := CreateExclusive(path, []byte("crl"), 0o640); err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", info.Mode().Perm())
	}
	if left, _ := os.ReadDir(dir); len(left) != 1 {
		t.Errorf("the folder holds %v, want the one file", left)
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv("CUSTOS_WORKSPACE", "/srv/custos")
	if d, _ := DefaultDir(); d != "/srv/custos" {
		t.Fatalf("DefaultDir = %q", d)
	}
	t.Setenv("CUSTOS_WORKSPACE", "")
	t.Setenv("XDG_DATA_HOME", "/home/u/.data")
	if d, _ := DefaultDir(); d != "/home/u/.data/custos" {
		t.Fatalf("DefaultDir = %q", d)
	}
}
