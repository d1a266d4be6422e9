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
		err = ws.CheckWritable()
		if err == nil || !strings.Contains(err.Error(), "not writable") {
			t.Fatalf("CheckWritable on a read-only folder = %v", err)
		}
		checkFolderField(t, err)
		return
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	_, err := Open(dir)
	if err == nil || !strings.Contains(err.Error(), "not writable") {
		t.Fatalf("Open on a read-only folder = %v", err)
	}
	checkFolderField(t, err)
}

// checkFolderField: an unwritable folder is an error about the Workspace field, so the command
// line adds its flag and the window its chooser; the message itself names no flag.
func checkFolderField(t *testing.T, err error) {
	t.Helper()
	var fe interface{ Field() string }
	if !errors.As(err, &fe) || fe.Field() != "Workspace" {
		t.Errorf("%v: not an error about the Workspace field", err)
	}
	if strings.Contains(err.Error(), "--") {
		t.Errorf("%v names a flag", err)
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

// TestLockIsNeverFollowed: a custos.lock that is a symbolic link, a hard link, a FIFO, a
// socket or a folder is refused at once, naming it, and what it leads to is left as it was.
func TestLockIsNeverFollowed(t *testing.T) {
	const kept = "the custodians' contact list: must survive\n"
	tests := []struct {
		name string
		make func(t *testing.T, lock, target string)
		want string
	}{
		{"symbolic link", func(t *testing.T, lock, target string) { must(t, os.Symlink(target, lock)) }, "is a symbolic link: Custos never follows it"},
		{"dangling symbolic link", func(t *testing.T, lock, target string) { must(t, os.Symlink(target+".new", lock)) }, "is a symbolic link"},
		{"hard link", func(t *testing.T, lock, target string) { must(t, os.Link(target, lock)) }, "has 2 names (hard links)"},
		{"FIFO", func(t *testing.T, lock, target string) { must(t, syscall.Mkfifo(lock, 0o600)) }, "is a FIFO (named pipe), not a regular file"},
		{"folder", func(t *testing.T, lock, target string) { must(t, os.Mkdir(lock, 0o700)) }, "is a folder, not a regular file"},
		{"socket", func(t *testing.T, lock, target string) {
			fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
			must(t, err)
			t.Cleanup(func() { syscall.Close(fd) })
			must(t, syscall.Bind(fd, &syscall.SockaddrUnix{Name: lock}))
		}, "is a socket, not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A socket's path must fit in 108 bytes.
			dir, err := os.MkdirTemp("", "ws")
			must(t, err)
			t.Cleanup(func() { os.RemoveAll(dir) })
			target := filepath.Join(dir, "contacts.txt")
			must(t, os.WriteFile(target, []byte(kept), 0o600))
			lock := filepath.Join(dir, lockFile)
			tt.make(t, lock, target)
			start := time.Now()
			ws, err := Open(dir)
			if err == nil {
				ws.Close()
				t.Fatal("Open accepted it")
			}
			if !strings.Contains(err.Error(), lock+" "+tt.want) {
				t.Errorf("error %q, want it to name %s and say %q", err, lock, tt.want)
			}
			if took := time.Since(start); took > time.Second {
				t.Errorf("refused in %v", took)
			}
			if got, _ := os.ReadFile(target); string(got) != kept {
				t.Errorf("the file the lock leads to now holds %q", got)
			}
			if _, err := os.Lstat(target + ".new"); err == nil {
				t.Error("a dangling link's target was created")
			}
		})
	}
}

// TestWriterWaitsForReaders: a read-only command's shared lock keeps a writer from starting
// until it is released; the writer then takes the workspace.
func TestWriterWaitsForReaders(t *testing.T) {
	dir := t.TempDir()
	ws, err := Open(dir)
	must(t, err)
	ws.Close()
	r, err := os.Open(filepath.Join(dir, lockFile))
	must(t, err)
	defer r.Close()
	must(t, syscall.Flock(int(r.Fd()), syscall.LOCK_SH))
	time.AfterFunc(300*time.Millisecond, func() { syscall.Flock(int(r.Fd()), syscall.LOCK_UN) })
	start := time.Now()
	ws, err = Open(dir)
	if err != nil {
		t.Fatalf("Open while a reader held the lock: %v", err)
	}
	ws.Close()
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Errorf("the writer took the workspace after %v, while the reader still held it", took)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A folder of files appears whole, with its subfolders, or not at all; it never replaces a
// folder or file already there, empty or not, and a name outside it is refused.
func TestWriteDirExclusiveWholeOrNothing(t *testing.T) {
	dir := t.TempDir()
	text := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	set := filepath.Join(dir, "ica-1-000002")
	err := WriteDirExclusive(set, func(add FileWriter) error {
		if err := add("full.crl", 0o644, text("full")); err != nil {
			return err
		}
		for _, n := range []string{"0", "1", "2"} {
			if err := add(filepath.Join("ica-1", n+".crl"), 0o644, text("shard "+n)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(set, "ica-1", "2.crl")); string(b) != "shard 2" {
		t.Errorf("shard 2 holds %q", b)
	}
	if fi, _ := os.Stat(set); fi.Mode().Perm() != 0o755 {
		t.Errorf("the folder is %v", fi.Mode())
	}

	// Never over what exists: a full folder, an empty one, a file.
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("keep"), 0o644)
	for _, p := range []string{set, empty, file} {
		if err := WriteDirExclusive(p, func(add FileWriter) error { return add("x", 0o644, text("new")) }); err == nil || !strings.Contains(err.Error(), "never overwrites") {
			t.Errorf("%s: %v", p, err)
		}
	}
	if b, _ := os.ReadFile(file); string(b) != "keep" {
		t.Error("the file was replaced")
	}

	// A failure half way, or a name that leaves the folder, leaves nothing behind.
	boom := errors.New("disk on fire")
	for _, fill := range []func(add FileWriter) error{
		func(add FileWriter) error { add("a", 0o644, text("a")); return boom },
		func(add FileWriter) error { return add("../escape", 0o644, text("x")) },
		func(add FileWriter) error { return add("b", 0o644, func(io.Writer) error { return boom }) },
	} {
		if err := WriteDirExclusive(filepath.Join(dir, "failed"), fill); err == nil {
			t.Error("a failed fill succeeded")
		}
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "empty file ica-1-000002" {
		t.Errorf("the folder holds %v after the failures", names)
	}
}

// DestroyFile leaves nothing under the name, and the blocks it wrote over held zeros last.
func TestDestroyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "blob.wrapped")
	secret := bytes.Repeat([]byte("wrapped root key "), 10000)
	if err := os.WriteFile(path, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	// A second name for the same file sees what the overwrite left before the removal.
	other := filepath.Join(dir, "other-name")
	if err := os.Link(path, other); err != nil {
		t.Fatal(err)
	}
	if err := DestroyFile(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the file is still there: %v", err)
	}
	left, _ := os.ReadFile(other)
	if len(left) != len(secret) || !bytes.Equal(left, make([]byte, len(secret))) {
		t.Errorf("the overwritten blocks do not hold zeros: %q...", left[:32])
	}
	if err := os.Symlink(other, path); err != nil {
		t.Fatal(err)
	}
	if err := DestroyFile(path); err == nil {
		t.Error("a symbolic link was followed")
	}
	if err := DestroyFile(dir); err == nil {
		t.Error("a folder was destroyed")
	}
}

// TestDiesMidWriteHelper is the child of TestOpenSweepsWhatInterruptedWritesLeft: it holds the
// workspace and dies in the middle of writing both a CRL set's folder and a record.
func TestDiesMidWriteHelper(t *testing.T) {
	dir := os.Getenv("CUSTOS_TEST_SWEEP_DIR")
	if dir == "" {
		t.Skip("child process of TestOpenSweepsWhatInterruptedWritesLeft")
	}
	ws, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	die := func(w io.Writer) error {
		w.Write(bytes.Repeat([]byte("%PDF"), 1<<20)) // past the buffer: the partial file holds bytes
		os.Exit(3)
		return nil
	}
	WriteDirExclusive(ws.Path(CRLDir, "ica-1-000007"), func(add FileWriter) error {
		add("full.crl", 0o644, func(w io.Writer) error { _, err := w.Write([]byte("crl")); return err })
		return add(filepath.Join("ica-1", "0.crl"), 0o644, func(w io.Writer) error {
			w.Write([]byte("shard"))
			return WriteExclusive(ws.Path(RecordsDir, "run-1.pdf"), 0o644, die)
		})
	})
	t.Fatal("the child was meant to die")
}

// A process killed while it writes an output leaves a hidden partial file or folder; the next
// writer to open the workspace removes them, and names them, and nothing else: not an output,
// not another hidden file, not what a link of a partial's name points to. A reader removes
// nothing.
func TestOpenSweepsWhatInterruptedWritesLeft(t *testing.T) {
	dir := t.TempDir()
	ws, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ws.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDiesMidWriteHelper$")
	cmd.Env = append(os.Environ(), "CUSTOS_TEST_SWEEP_DIR="+dir)
	if out, _ := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != 3 {
		t.Fatalf("child: %s", out)
	}
	outside := filepath.Join(t.TempDir(), "precious")
	must(t, os.WriteFile(outside, []byte("keep"), 0o600))
	must(t, os.Symlink(outside, filepath.Join(dir, CertsDir, ".root.pem.partial-1")))
	must(t, os.WriteFile(filepath.Join(dir, RecordsDir, ".custos-spool-2"), nil, 0o600))
	must(t, os.WriteFile(filepath.Join(dir, ".probe-77"), nil, 0o600))
	kept := []string{filepath.Join(RecordsDir, "run-0.pdf"), filepath.Join(RecordsDir, ".keep"), filepath.Join(CRLDir, "partial-notes.txt")}
	for _, k := range kept {
		must(t, os.WriteFile(filepath.Join(dir, k), []byte("x"), 0o600))
	}
	left := func() []string {
		var names []string
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && leftover(d.Name()) {
				rel, _ := filepath.Rel(dir, p)
				names = append(names, rel)
			}
			return nil
		})
		return names
	}
	before := left()
	if len(before) != 5 {
		t.Fatalf("leftovers before opening: %v, want the record's and the CRL set's partials and the three planted", before)
	}

	ro, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	ro.Close()
	if got := left(); len(got) != len(before) {
		t.Fatalf("a read-only open removed %v", before)
	}

	ws, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if got := left(); len(got) != 0 {
		t.Errorf("after opening, still left: %v", got)
	}
	swept := strings.Join(ws.Swept(), " ")
	for _, want := range []string{".probe-77", "records/.run-1.pdf.partial-", "records/.custos-spool-2", "certs/.root.pem.partial-1", "crl/.ica-1-000007.partial-"} {
		if !strings.Contains(swept, want) {
			t.Errorf("Swept() = %q, missing %s", swept, want)
		}
	}
	if len(ws.Swept()) != 5 {
		t.Errorf("Swept() = %q, want five names", ws.Swept())
	}
	for _, k := range kept {
		if _, err := os.Stat(filepath.Join(dir, k)); err != nil {
			t.Errorf("%s was removed: %v", k, err)
		}
	}
	if b, err := os.ReadFile(outside); err != nil || string(b) != "keep" {
		t.Errorf("the link's target: %q, %v", b, err)
	}
	ws.Close()
	if ws, err = Open(dir); err != nil || len(ws.Swept()) != 0 {
		t.Errorf("opening again swept %v (%v)", ws.Swept(), err)
	}
}

// A leftover that cannot be removed (here made immutable, where the filesystem and the user
// allow it) does not stop the work: the others are removed, and Stuck says which one is left
// and why, for the person to remove by hand.
func TestOpenSaysWhichLeftoverItCannotRemove(t *testing.T) {
	dir := t.TempDir()
	ws, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ws.Close()
	stuck := filepath.Join(dir, RecordsDir, ".run-1.pdf.partial-7")
	must(t, os.WriteFile(stuck, []byte("%PDF"), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, CRLDir, ".ica-1.crl.partial-8"), nil, 0o600))
	if out, err := exec.Command("chattr", "+i", stuck).CombinedOutput(); err != nil {
		t.Skipf("cannot make a file undeletable here (chattr +i: %v %s)", err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", stuck).Run() })
	ws, err = Open(dir)
	if err != nil {
		t.Fatalf("a leftover that cannot be removed stopped the opening: %v", err)
	}
	defer ws.Close()
	if got := ws.Swept(); len(got) != 1 || got[0] != filepath.Join(CRLDir, ".ica-1.crl.partial-8") {
		t.Errorf("Swept() = %q, want the CRL's partial file alone", got)
	}
	want := "cannot remove records/.run-1.pdf.partial-7, which an interrupted run left (operation not permitted): remove it by hand"
	if got := ws.Stuck(); len(got) != 1 || got[0].Error() != want {
		t.Errorf("Stuck() = %v, want %q", got, want)
	}
}

// A spool has no name in its folder at any moment, so a crash while a fleet's record or a CRL
// set is made leaves nothing there; it holds what is written to it until closed.
func TestSpoolHasNoName(t *testing.T) {
	dir := t.TempDir()
	f, err := Spool(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("the spool is named in its folder: %v", left)
	}
	if _, err := f.Write([]byte("4 0 obj")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 7)
	if _, err := f.ReadAt(b, 0); err != nil || string(b) != "4 0 obj" {
		t.Errorf("read back %q, %v", b, err)
	}
}
