//go:build cgo && !nopkcs11

package hsm

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Token initialisation is serialised across the Custos processes of the host, one lock file
// per module: each process initialises a token only while it holds the module's lock, and
// checks the label again under it just before C_InitToken. The lock file is also a log of
// every token initialised under it (process, time, label): a module may fix its list of
// tokens when it is loaded (SoftHSM2 does), so a process cannot always see a token another
// process made since; the log names those, and a label among them is refused too. Two
// ceremonies on one HSM can then never give two tokens one label.

// configVariables are the environment variables the software modules Custos knows read for
// where their tokens are: two SoftHSM2 token folders are two HSMs, and get two lock files.
var configVariables = []string{"SOFTHSM2_CONF", "TPM2_PKCS11_STORE"}

// runtimeDir is the folder for files that live while the host is up, such as the lock file
// each module's token initialisations are serialised by: $XDG_RUNTIME_DIR when it is set,
// otherwise custos-<uid> in the temporary folder ($TMPDIR, or /tmp), made mode 0700 and
// refused unless it is a folder of this user that nobody else can write.
func runtimeDir() (string, error) {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) {
		return d, nil
	}
	uid := os.Getuid()
	d := filepath.Join(os.TempDir(), "custos-"+strconv.Itoa(uid))
	if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("make the runtime folder %s: %w", d, err)
	}
	fi, err := os.Lstat(d)
	if err != nil {
		return "", fmt.Errorf("runtime folder: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != uid || fi.Mode().Perm()&0o022 != 0 {
		return "", fmt.Errorf("runtime folder %s is not a folder of user %d that only it can write: remove it, or set XDG_RUNTIME_DIR", d, uid)
	}
	return d, nil
}

// initLockPath is the lock file of the module file at path, in runtimeDir: named by the
// SHA-256 of the module's resolved path and of configVariables as this process has them.
func initLockPath(path string) (string, error) {
	dir, err := runtimeDir()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	io.WriteString(h, path+"\n")
	for _, v := range configVariables {
		io.WriteString(h, v+"="+os.Getenv(v)+"\n")
	}
	return filepath.Join(dir, "custos-pkcs11-"+hex.EncodeToString(h.Sum(nil)[:12])+".lock"), nil
}

// tokenInit is one line of a module's lock file: a token initialised under the lock.
type tokenInit struct {
	pid   int
	at    time.Time
	label string
}

// openInitLock opens (creating) the lock file at path, never through a symbolic link, and
// locks it: shared to read, exclusive to initialise a token. Close the file to unlock.
func openInitLock(path string, how int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the token initialisation lock %s: %w", path, err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("the token initialisation lock %s is not a regular file", path)
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// readInits reads every line of a lock file, from its start; a line it cannot read still
// counts, so that positions in the file stay the same for every reader.
func readInits(f *os.File) ([]tokenInit, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	var out []tokenInit
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e tokenInit
		pid, rest, _ := strings.Cut(sc.Text(), " ")
		at, label, _ := strings.Cut(rest, " ")
		e.pid, _ = strconv.Atoi(pid)
		e.at, _ = time.Parse(time.RFC3339Nano, at)
		e.label, _ = strconv.Unquote(label)
		out = append(out, e)
	}
	return out, sc.Err()
}

// initsSoFar is how many token initialisations the lock file of the module at path records,
// read before the module is initialised: the ones after it are those this process may not
// see. It is -1 with the error when the file cannot be read; InitToken then reports it.
func initsSoFar(path string) (int, error) {
	lock, err := initLockPath(path)
	if err != nil {
		return -1, err
	}
	f, err := openInitLock(lock, syscall.LOCK_SH)
	if err != nil {
		return -1, err
	}
	defer f.Close()
	inits, err := readInits(f)
	if err != nil {
		return -1, fmt.Errorf("read %s: %w", lock, err)
	}
	return len(inits), nil
}

// initLock is a module's lock file, held exclusively while a token is initialised.
type initLock struct {
	f      *os.File
	unseen []tokenInit // initialisations by other processes after this one loaded the module
}

// lockInits takes the module's lock file exclusively, waiting for any other Custos process
// initialising a token on it, and reads what was initialised since this process loaded it.
func (m *Module) lockInits(op string) (*initLock, error) {
	if m.lib.initsErr != nil {
		return nil, failf(op, "", m.lib.initsErr, "token initialisation is serialised across Custos processes by a lock file in the runtime folder; it could not be read when the module was loaded")
	}
	path, err := initLockPath(m.path)
	if err != nil {
		return nil, failf(op, "", err, "token initialisation is serialised across Custos processes by a lock file in the runtime folder")
	}
	f, err := openInitLock(path, syscall.LOCK_EX)
	if err != nil {
		return nil, failf(op, "", err, "token initialisation is serialised across Custos processes by this lock file")
	}
	inits, err := readInits(f)
	if err != nil {
		f.Close()
		return nil, failf(op, "", err, "read the token initialisation lock %s", path)
	}
	l := &initLock{f: f}
	for _, e := range inits[min(m.lib.initsSeen, len(inits)):] {
		if e.pid != os.Getpid() {
			l.unseen = append(l.unseen, e)
		}
	}
	return l, nil
}

// shareInitLock takes the module's lock file shared until the function it returns is
// called, so that the slot list is never read while another Custos process initialises a
// token (SoftHSM2 fails to read a token whose files another process is rewriting). When the
// lock file cannot be opened, the list is read without it.
func (m *Module) shareInitLock() func() {
	path, err := initLockPath(m.path)
	if err != nil {
		return func() {}
	}
	f, err := openInitLock(path, syscall.LOCK_SH)
	if err != nil {
		return func() {}
	}
	return func() { f.Close() }
}

// unseenLabel is the initialisation of a token labelled label that another process made
// after this one loaded the module, if any.
func (l *initLock) unseenLabel(label string) (tokenInit, bool) {
	for _, e := range l.unseen {
		if e.label == label {
			return e, true
		}
	}
	return tokenInit{}, false
}

// record appends a token initialised under the lock, and syncs it before the lock is let go.
func (l *initLock) record(label string) error {
	if _, err := l.f.Seek(0, io.SeekEnd); err != nil {
		return err
	}
	line := fmt.Sprintf("%d %s %s\n", os.Getpid(), time.Now().UTC().Format(time.RFC3339Nano), strconv.Quote(label))
	if _, err := l.f.WriteString(line); err != nil {
		return err
	}
	return l.f.Sync()
}

// release unlocks the lock file; releasing twice is harmless.
func (l *initLock) release() {
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}
