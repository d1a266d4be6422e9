// Package workspace is the folder one Custos installation keeps its state in (database,
// journals, records, certificates, CRLs, backups) and the lock that makes one Custos process
// its only writer. Nothing secret is ever written here.
package workspace

import (
	"bufio"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/custos-pki/custos/internal/inputfile"
)

// Folders inside a workspace.
const (
	JournalDir = "journal"
	RecordsDir = "records"
	CertsDir   = "certs"
	CRLDir     = "crl"
	BackupDir  = "backup"
	dbFile     = "custos.db"
	lockFile   = "custos.lock"
)

// MinFreeBytes is the free space a run needs before it touches a token: enough for its
// journal, record and CRL, so a full disk stops the run before anything irreversible.
const MinFreeBytes = 64 << 20

// Workspace is an open workspace folder: locked for its one writer (Open), or opened to be
// read only (OpenReadOnly).
type Workspace struct {
	Dir      string
	lock     *os.File
	readOnly bool
	noWriter bool     // read-only, and no writer can start while it is open
	swept    []string // what Open removed that interrupted writes had left
	stuck    []error  // what Open found of them but could not remove
}

// folderError is an error the choice of workspace folder can fix. Its Field names the
// request field, so the command line adds its flag and the window its folder chooser; the
// package itself never names a front end's control.
type folderError struct{ err error }

func (e *folderError) Error() string { return e.err.Error() }
func (e *folderError) Unwrap() error { return e.err }

// Field is the request field that chooses the workspace folder.
func (e *folderError) Field() string { return "Workspace" }

// ErrNoWorkspace is OpenReadOnly's error for a folder that does not exist.
var ErrNoWorkspace = errors.New("no workspace")

// DefaultDir is $CUSTOS_WORKSPACE, else "custos" in the user's data folder
// ($XDG_DATA_HOME or ~/.local/share on Linux, ~/Library/Application Support on macOS).
func DefaultDir() (string, error) {
	if d := os.Getenv("CUSTOS_WORKSPACE"); d != "" {
		return d, nil
	}
	if runtime.GOOS == "linux" || runtime.GOOS == "freebsd" || runtime.GOOS == "openbsd" {
		if d := os.Getenv("XDG_DATA_HOME"); d != "" {
			return filepath.Join(d, "custos"), nil
		}
		home, err := os.UserHomeDir()
		if err != nil {
			return "", &folderError{fmt.Errorf("find the default workspace: %w: choose a workspace folder or set CUSTOS_WORKSPACE", err)}
		}
		return filepath.Join(home, ".local", "share", "custos"), nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", &folderError{fmt.Errorf("find the default workspace: %w: choose a workspace folder or set CUSTOS_WORKSPACE", err)}
	}
	return filepath.Join(d, "Custos"), nil
}

// Open creates the workspace folders if needed and takes the writer's lock. A second Custos on
// the same workspace gets an error naming the process that holds it; the lock is the kernel's,
// so it is released even when the holder is killed.
func Open(dir string) (*Workspace, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open workspace: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open workspace %s: %w", dir, err)
	}
	lock, err := acquireLock(filepath.Join(dir, lockFile))
	if err != nil {
		return nil, fmt.Errorf("open workspace %s: %w", dir, err)
	}
	ws := &Workspace{Dir: dir, lock: lock}
	for _, sub := range []string{JournalDir, RecordsDir, CertsDir, CRLDir, BackupDir} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			ws.Close()
			return nil, fmt.Errorf("open workspace %s: %w", dir, err)
		}
	}
	ws.swept, ws.stuck = sweep(dir)
	return ws, nil
}

// Swept names, relative to the workspace folder, what Open removed: the unfinished files and
// folders that writes interrupted by a crash or a kill had left (see leftover). A front end
// says so, since the person may wonder where the space went.
func (w *Workspace) Swept() []string { return w.swept }

// Stuck says why Open could not remove each leftover it could not: the work goes on, since
// nothing reads them, and a front end asks the person to remove them by hand.
func (w *Workspace) Stuck() []error { return w.stuck }

// leftover reports whether a name in the workspace is what an interrupted write leaves
// behind and nothing ever reads: a hidden ".NAME.partial-*" file or folder of WriteExclusive,
// WriteDirExclusive or the settings, a Spool's ".custos-spool-*" (where the filesystem has
// no unnamed files), or CheckWritable's ".probe-*". Only the writer, holding the lock, writes
// them, so once it holds the lock every one it finds belongs to a process that is gone.
func leftover(name string) bool {
	return strings.HasPrefix(name, ".") && (strings.Contains(name, ".partial-") ||
		strings.HasPrefix(name, ".custos-spool-") || strings.HasPrefix(name, ".probe-"))
}

// sweep removes the leftovers of interrupted writes from the workspace folder and the folders
// in it where outputs are written, which is where they are made (a CRL set's files are written
// inside its own partial folder), and returns what it removed and why it could not remove the
// rest. A crash while a fleet's record or CRL set was being written leaves some 50 MB each time,
// and repeated crashes would fill the disk a run needs (CheckWritable). A link with such a name
// is removed, never followed.
func sweep(dir string) (swept []string, stuck []error) {
	for _, sub := range []string{".", JournalDir, RecordsDir, CertsDir, CRLDir, BackupDir} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			stuck = append(stuck, fmt.Errorf("cannot look for unfinished files in %s: %w", filepath.Join(dir, sub), err))
			continue
		}
		for _, e := range entries {
			if !leftover(e.Name()) {
				continue
			}
			name := filepath.Join(sub, e.Name())
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				var pe *fs.PathError
				if errors.As(err, &pe) { // the path is said already, relative to the workspace
					err = pe.Err
				}
				stuck = append(stuck, fmt.Errorf("cannot remove %s, which an interrupted run left (%w): remove it by hand", name, err))
				continue
			}
			swept = append(swept, name)
		}
	}
	return swept, stuck
}

// OpenReadOnly opens an existing workspace for the commands that only read it (runs, device
// list and show, verify). It creates nothing and writes nothing, so it works on
// write-protected media. It takes custos.lock shared when it can: then no writer can start
// until Close (a writer that tries waits for it), and NoWriter says so. A writer already at
// work is not waited for: readers see the registry through SQLite's snapshots, never a
// change half made.
func OpenReadOnly(dir string) (*Workspace, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open workspace: %w", err)
	}
	info, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s", ErrNoWorkspace, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("open workspace %s: %w", dir, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("open workspace %s: it is %s, not a folder", dir, inputfile.Describe(info.Mode()))
	}
	ws := &Workspace{Dir: dir, readOnly: true}
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDONLY|lockFlags, 0)
	switch {
	case err == nil && checkLockFile(f.Name(), f) == nil && syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB) == nil:
		ws.lock, ws.noWriter = f, true
	case err == nil:
		f.Close() // a writer holds it, or it is not a lock file a writer would take: it may be at work
	case errors.Is(err, fs.ErrNotExist):
		// No writer ever worked here, or the media was copied without it: none can start
		// unless the folder can take a new file.
		ws.noWriter = syscall.Access(dir, 2 /* W_OK */) != nil
	}
	return ws, nil
}

// ReadOnly reports whether the workspace was opened to be read only.
func (w *Workspace) ReadOnly() bool { return w.readOnly }

// NoWriter reports whether no process can write the workspace while it stays open: it was
// opened read-only, and its lock is held shared (or it has none and the folder is not
// writable).
func (w *Workspace) NoWriter() bool { return w.noWriter }

// lockFlags open custos.lock: never through a symbolic link (its target would be truncated),
// never waiting (a FIFO put in its place), never as a controlling terminal.
const lockFlags = syscall.O_NOFOLLOW | syscall.O_NONBLOCK | syscall.O_NOCTTY | syscall.O_CLOEXEC

// readerWait is how long a writer waits for read-only commands holding the lock shared (a
// `device list` of a large fleet) before it refuses.
const readerWait = 10 * time.Second

func acquireLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|lockFlags, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EROFS) {
			return nil, &folderError{fmt.Errorf("the workspace is not writable (%w): choose a writable workspace folder", err)}
		}
		return nil, lockFileError(path, err)
	}
	if err := checkLockFile(path, f); err != nil {
		f.Close()
		return nil, err
	}
	deadline := time.Now().Add(readerWait)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EWOULDBLOCK) || !onlyReaders(f) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			if onlyReaders(f) {
				return nil, fmt.Errorf("a Custos that only reads it (runs, device list or show, verify) has held it for more than %v: let it finish, then try again", readerWait)
			}
			holder := make([]byte, 256)
			n, _ := f.ReadAt(holder, 0)
			who := strings.TrimSpace(string(holder[:n]))
			if who == "" {
				who = "another process"
			}
			return nil, fmt.Errorf("it is in use by another Custos (%s): close that one first, or choose another workspace", who)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	host, _ := os.Hostname()
	holder := fmt.Sprintf("pid %d on %s since %s", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(holder+"\n"), 0)
	}
	return f, nil
}

// onlyReaders reports whether the lock that f could not take exclusively is held shared, by
// read-only commands, rather than by a writer.
func onlyReaders(f *os.File) bool {
	if syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB) != nil {
		return false
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return true
}

// checkLockFile refuses a custos.lock that is not a regular file of its own: a FIFO, device or
// socket, or a file with other names (a hard link to a file someone keeps) whose content the
// holder's line would replace.
func checkLockFile(path string, f *os.File) error {
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%s is %s, not a regular file: remove it (Custos makes its lock file anew)", path, inputfile.Describe(info.Mode()))
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
		return fmt.Errorf("%s has %d names (hard links): it may be another file's content; remove it (Custos makes its lock file anew)", path, st.Nlink)
	}
	return nil
}

// lockFileError explains why custos.lock could not be opened.
func lockFileError(path string, err error) error {
	if info, lerr := os.Lstat(path); lerr == nil {
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s is a symbolic link: Custos never follows it (the file it points to would be overwritten); remove it", path)
		case !info.Mode().IsRegular():
			return fmt.Errorf("%s is %s, not a regular file: remove it (Custos makes its lock file anew)", path, inputfile.Describe(info.Mode()))
		}
	}
	return fmt.Errorf("lock %s: %w", path, err)
}

// Close releases the lock, the writer's or a reader's.
func (w *Workspace) Close() error {
	if w.lock == nil {
		return nil
	}
	err := w.lock.Close()
	w.lock = nil
	return err
}

// DBPath is the registry database.
func (w *Workspace) DBPath() string { return filepath.Join(w.Dir, dbFile) }

// Path joins names under the workspace folder, e.g. ws.Path(workspace.CertsDir, "root.pem").
func (w *Workspace) Path(elem ...string) string {
	return filepath.Join(append([]string{w.Dir}, elem...)...)
}

// CheckWritable proves the workspace can take a run's output: it writes, syncs and removes a
// probe file and checks that at least MinFreeBytes are free. Workflows call it before they
// change any token, so a full disk or a read-only folder stops the run while nothing is lost.
func (w *Workspace) CheckWritable() error {
	probe := filepath.Join(w.Dir, ".probe-"+strconv.Itoa(os.Getpid()))
	f, err := os.OpenFile(probe, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return &folderError{fmt.Errorf("workspace %s is not writable: %w", w.Dir, err)}
	}
	_, werr := f.Write(make([]byte, 4096))
	serr := f.Sync()
	cerr := f.Close()
	os.Remove(probe)
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("workspace %s cannot take more data: %w", w.Dir, err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(w.Dir, &st); err == nil {
		if free := int64(st.Bavail) * int64(st.Bsize); free < MinFreeBytes {
			return fmt.Errorf("workspace %s has only %d MiB free; free at least %d MiB before starting", w.Dir, free>>20, MinFreeBytes>>20)
		}
	}
	return nil
}

// CreateExclusive writes a new file and syncs it and its folder; it never overwrites an
// existing file, so an earlier output (a certificate, a CRL, a backup) can never be lost.
func CreateExclusive(path string, data []byte, perm os.FileMode) error {
	return WriteExclusive(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteExclusive is CreateExclusive for output that is streamed rather than held in memory,
// such as a CRL of a million entries. The file appears whole or not at all: it is written
// beside its name, synced, and renamed into place, so a failed write or a crash mid-write
// leaves no part of it under its name (at most a hidden ".NAME.partial-*" file).
func WriteExclusive(path string, perm os.FileMode, write func(io.Writer) error) error {
	exists := func() bool { _, err := os.Lstat(path); return err == nil }
	if exists() {
		return errExists(path)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".partial-*")
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	tmp := f.Name()
	// 64 KiB: large writes (a CRL's megabyte chunks) pass straight through, and a thousand
	// CRL shards written in a row do not each cost a megabyte.
	bw := bufio.NewWriterSize(f, 64<<10)
	werr := write(bw)
	if werr == nil {
		werr = bw.Flush()
	}
	merr := f.Chmod(perm)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, merr, serr, cerr); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	// Checked again just before: the workspace has one writer, so nothing comes between.
	if exists() {
		os.Remove(tmp)
		return errExists(path)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return SyncDir(dir)
}

func errExists(path string) error {
	return fmt.Errorf("%s already exists: Custos never overwrites an output file", path)
}

// SyncDir makes a directory's entries (a newly created file's name) durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// Spool returns an unnamed temporary file in dir, for what a long output (a fleet's record,
// a CRL set) sets aside rather than holds in memory: made without a name (O_TMPFILE), so that
// not even a crash leaves it behind, and gone once closed. Where the filesystem cannot do
// that, it is named ".custos-spool-*" and unlinked at once; Open sweeps such a name if a
// crash came in between. Nothing secret is spooled.
func Spool(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return os.NewFile(uintptr(fd), filepath.Join(dir, "(spool)")), nil
	}
	f, err := os.CreateTemp(dir, ".custos-spool-*")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool: %w", err)
	}
	return f, nil
}

// FileWriter adds one file to a folder that WriteDirExclusive is making: name is its path
// inside the folder (subfolders are made as needed), write streams its content.
type FileWriter func(name string, perm os.FileMode, write func(io.Writer) error) error

// WriteDirExclusive makes a new folder of many files, such as a CRL's thousand shards, that
// appears whole or not at all, and is synced once rather than file by file: the files are
// written into a hidden ".NAME.partial-*" folder beside path, the filesystem is synced
// (syncfs) once they all are, and the folder is renamed into place, never over anything
// already there. A failed write removes the partial folder; a crash leaves at most it.
func WriteDirExclusive(path string, fill func(add FileWriter) error) error {
	if _, err := os.Lstat(path); err == nil {
		return errExists(path)
	}
	parent := filepath.Dir(path)
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(path)+".partial-*")
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	// One buffer for every file: a thousand small files do not each cost 64 KiB.
	bw := bufio.NewWriterSize(nil, 64<<10)
	add := func(name string, perm os.FileMode, write func(io.Writer) error) error {
		if !filepath.IsLocal(name) {
			return fmt.Errorf("write %s: %q is not a name inside the folder", path, name)
		}
		p := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("write %s: %w", filepath.Join(path, name), err)
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if err != nil {
			return fmt.Errorf("write %s: %w", filepath.Join(path, name), err)
		}
		bw.Reset(f)
		werr := write(bw)
		if werr == nil {
			werr = bw.Flush()
		}
		bw.Reset(nil)
		if err := errors.Join(werr, f.Close()); err != nil {
			return fmt.Errorf("write %s: %w", filepath.Join(path, name), err)
		}
		return nil
	}
	if err := fill(add); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := errors.Join(os.Chmod(tmp, 0o755), syncFS(tmp)); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := renameNoReplace(tmp, path); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	return SyncDir(parent)
}

// syncFS makes everything written to the filesystem that holds dir durable, in one call.
func syncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("sync the filesystem of %s: %w", dir, err)
	}
	return nil
}

// renameNoReplace moves from to to, refusing when to exists (rename alone would replace an
// empty folder). A filesystem without RENAME_NOREPLACE is checked first instead, which the
// workspace's one writer makes safe.
func renameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		if _, lerr := os.Lstat(to); lerr == nil {
			return errExists(to)
		}
		err = os.Rename(from, to)
	}
	switch {
	case errors.Is(err, unix.EEXIST):
		return errExists(to)
	case err != nil:
		return fmt.Errorf("move %s into place: %w", to, err)
	}
	return nil
}

// DestroyFile overwrites the regular file at path with random bytes, then with zeros, syncing
// each pass, and removes it, syncing its folder. On a file system that writes in place its
// blocks no longer hold what it held; on a copy-on-write file system (btrfs, ZFS) or flash, an
// earlier copy of its blocks may survive out of any program's reach, which is why the media of
// a workspace that held backups is destroyed at the end of its life.
func DestroyFile(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("destroy %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("destroy %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("destroy %s: not a regular file", path)
	}
	buf := make([]byte, 64<<10)
	for pass := 0; pass < 2; pass++ {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("destroy %s: %w", path, err)
		}
		for left := fi.Size(); left > 0; {
			n := min(left, int64(len(buf)))
			chunk := buf[:n]
			if pass == 0 {
				if _, err := rand.Read(chunk); err != nil {
					return fmt.Errorf("destroy %s: %w", path, err)
				}
			} else {
				clear(chunk)
			}
			if _, err := f.Write(chunk); err != nil {
				return fmt.Errorf("destroy %s: overwrite: %w", path, err)
			}
			left -= n
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("destroy %s: overwrite: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("destroy %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("destroy %s: %w", path, err)
	}
	return SyncDir(filepath.Dir(path))
}
