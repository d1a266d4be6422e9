// Package testtpm runs a software TPM for the tests of one package and hands them device
// tokens on it through tpm2-pkcs11: a second PKCS#11 implementation beside SoftHSM2, with the
// limits of a real device key store (no re-initialisation of an initialised token, no public
// data objects, serial 0 on every token, an extra empty slot, digest-sized ECDSA input).
//
// The stack is swtpm (the TPM), tpm2-abrmd in front of it on a D-Bus daemon of its own (the
// resource manager swaps objects in and out of the TPM's three object slots, so one test's
// leftovers never break the next), and libtpm2_pkcs11.so with its token store in a temporary
// folder. tpm2-pkcs11 reads its configuration from the environment when it is initialised, for
// the whole process, so there is one TPM per test binary: the first test that asks for it
// starts it, and Main, the package's TestMain, stops it.
//
//	func TestMain(m *testing.M) { testtpm.Main(m) }
//
//	tpm := testtpm.Get(t)
//	label := tpm.NewLabel("dev")
//	slot := tpm.InitToken(t, label, soPIN, userPIN)
//	m := tpm.Open(t)
//
// The module is never let near a real TPM (/dev/tpmrm0): the TCTI is always set, and Start
// checks the token it sees is swtpm's. A missing package fails the tests: the Makefile
// installs swtpm, tpm2-abrmd, libtss2-tcti-tabrmd0, libtpm2-pkcs11-1 and tpm2-tools.
package testtpm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/custos-pki/custos/hsm"
)

// modulePaths are where Debian, Ubuntu and Fedora install tpm2-pkcs11, in the order tried.
var modulePaths = []string{
	"/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so",
	"/usr/lib/aarch64-linux-gnu/pkcs11/libtpm2_pkcs11.so",
	"/usr/lib64/pkcs11/libtpm2_pkcs11.so",
	"/usr/lib/pkcs11/libtpm2_pkcs11.so",
	"/usr/local/lib/pkcs11/libtpm2_pkcs11.so",
}

// ModulePath returns the installed libtpm2_pkcs11.so, or an error saying what to install.
func ModulePath() (string, error) {
	for _, p := range modulePaths {
		if info, err := os.Stat(p); err == nil && info.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", errors.New("tpm2-pkcs11 module libtpm2_pkcs11.so not found in " + strings.Join(modulePaths, ", ") +
		": install libtpm2-pkcs11-1 (make test does)")
}

// TPM is a running software TPM with tpm2-pkcs11 pointed at it.
type TPM struct {
	ModulePath string // libtpm2_pkcs11.so
	Dir        string // the temporary folder holding the TPM state, the token store and the bus
	Port       int    // swtpm's TPM command port (the control port is Port+1)

	procs  []*proc           // started in order, stopped in reverse
	env    map[string]string // what tpm2-pkcs11 and tpm2-tools read
	labels atomic.Int64
}

// The TCTI that tpm2-pkcs11 and tpm2-tools use: tpm2-abrmd on the session bus, which Start
// sets to its own.
const tcti = "tabrmd:bus_type=session"

// Start starts swtpm, a D-Bus daemon and tpm2-abrmd in a new temporary folder, turns the TPM's
// dictionary-attack lockout off (tests enter wrong PINs on purpose), and sets the environment
// tpm2-pkcs11 reads: TPM2_PKCS11_TCTI, TPM2_PKCS11_STORE and DBUS_SESSION_BUS_ADDRESS. Stop
// undoes all of it.
func Start() (_ *TPM, err error) {
	lib, err := ModulePath()
	if err != nil {
		return nil, err
	}
	for _, tool := range []string{"swtpm", "tpm2-abrmd", "dbus-daemon", "tpm2_dictionarylockout"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("testtpm: %s not found: install swtpm, tpm2-abrmd, dbus and tpm2-tools (make test does)", tool)
		}
	}
	// Unix socket paths are limited to 107 bytes, so the bus lives under a short folder.
	dir, err := os.MkdirTemp(shortTemp(), "custos-tpm-")
	if err != nil {
		return nil, fmt.Errorf("testtpm: %w", err)
	}
	t := &TPM{ModulePath: lib, Dir: dir}
	defer func() {
		if err != nil {
			t.Stop()
		}
	}()
	for _, d := range []string{"state", "store"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("testtpm: %w", err)
		}
	}
	bus, err := t.startBus()
	if err != nil {
		return nil, err
	}
	if err := t.startSWTPM(); err != nil {
		return nil, err
	}
	t.env = map[string]string{
		"DBUS_SESSION_BUS_ADDRESS": bus,
		"TPM2_PKCS11_TCTI":         tcti,
		"TPM2TOOLS_TCTI":           tcti,
		"TPM2_PKCS11_STORE":        filepath.Join(dir, "store"),
		"TPM2_PKCS11_LOG_LEVEL":    "0", // errors only: its warnings would fill the test output
	}
	for k, v := range t.env {
		os.Setenv(k, v)
	}
	args := []string{"--session", "--flush-all", "--tcti=swtpm:host=127.0.0.1,port=" + strconv.Itoa(t.Port)}
	if os.Geteuid() == 0 {
		args = append(args, "--allow-root")
	}
	if _, err := t.start("tpm2-abrmd", args...); err != nil {
		return nil, err
	}
	// The resource manager is ready once a client gets through to the TPM.
	if err := retry(15*time.Second, func() error {
		return t.tool("tpm2_dictionarylockout", "--setup-parameters", "--max-tries=4294967295",
			"--recovery-time=0", "--lockout-recovery-time=0")
	}); err != nil {
		return nil, fmt.Errorf("testtpm: turn the TPM's dictionary lockout off: %w", err)
	}
	if err := t.checkSoftware(); err != nil {
		return nil, err
	}
	return t, nil
}

// shortTemp is the temporary folder, or /tmp when TMPDIR is too deep for a socket path.
func shortTemp() string {
	if d := os.TempDir(); len(d) < 60 {
		return d
	}
	return "/tmp"
}

// startBus starts a D-Bus daemon of the tests' own, so that tpm2-abrmd needs neither the system
// bus nor a desktop session, and returns its address.
func (t *TPM) startBus() (string, error) {
	sock := filepath.Join(t.Dir, "bus")
	conf := filepath.Join(t.Dir, "bus.conf")
	text := `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=` + sock + `</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return "", fmt.Errorf("testtpm: %w", err)
	}
	cmd, err := t.start("dbus-daemon", "--config-file="+conf, "--nofork", "--nopidfile")
	if err != nil {
		return "", err
	}
	if err := retry(10*time.Second, func() error {
		if cmd.exited() {
			return errors.New("dbus-daemon exited")
		}
		c, err := net.Dial("unix", sock)
		if err != nil {
			return err
		}
		return c.Close()
	}); err != nil {
		return "", fmt.Errorf("testtpm: the D-Bus daemon did not start: %w (%s)", err, t.logTail("dbus-daemon"))
	}
	return "unix:path=" + sock, nil
}

// startSWTPM starts swtpm on two free loopback ports (commands on Port, control on Port+1),
// trying other ports when another process takes them first.
func (t *TPM) startSWTPM() error {
	var last error
	for range 10 {
		port, err := freePortPair()
		if err != nil {
			return err
		}
		cmd, err := t.start("swtpm", "socket", "--tpm2",
			"--tpmstate", "dir="+filepath.Join(t.Dir, "state"),
			"--server", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port),
			"--ctrl", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port+1),
			"--flags", "not-need-init,startup-clear")
		if err != nil {
			return err
		}
		last = retry(10*time.Second, func() error {
			if cmd.exited() {
				return errors.New("swtpm exited")
			}
			c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
			if err != nil {
				return err
			}
			return c.Close()
		})
		if last == nil {
			t.Port = port
			return nil
		}
		t.stopLast()
	}
	return fmt.Errorf("testtpm: swtpm did not start: %w (%s)", last, t.logTail("swtpm"))
}

// freePortPair finds a port p such that p and p+1 are both free on the loopback address now.
func freePortPair() (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("testtpm: find a free port: %w", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1))
		l.Close()
		if err == nil {
			l2.Close()
			return p, nil
		}
	}
	return 0, errors.New("testtpm: no two free consecutive ports on 127.0.0.1")
}

// proc is a daemon the TPM started.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// start runs name with its output in Dir/name.log. The process is killed if the test binary
// dies without stopping it.
func (t *TPM) start(name string, args ...string) (*proc, error) {
	log, err := os.OpenFile(filepath.Join(t.Dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("testtpm: %w", err)
	}
	defer log.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("testtpm: start %s: %w", name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.procs = append(t.procs, p)
	return p, nil
}

// tool runs a tpm2-tools command against the TPM.
func (t *TPM) tool(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// checkSoftware makes sure the module reaches swtpm and not a real TPM: swtpm's tokens say
// they are made by IBM, model "SW   TPM".
func (t *TPM) checkSoftware() error {
	m, err := hsm.Open(t.ModulePath)
	if err != nil {
		return fmt.Errorf("testtpm: %w", err)
	}
	defer m.Close()
	slots, err := m.Slots(context.Background())
	if err != nil {
		return fmt.Errorf("testtpm: %w", err)
	}
	for _, s := range slots {
		if s.TokenPresent && s.Token.Manufacturer == "IBM" && strings.Contains(s.Token.Model, "SW") {
			return nil
		}
	}
	return fmt.Errorf("testtpm: tpm2-pkcs11 does not show swtpm's token (slots %+v): refusing to go on, it may be talking to a real TPM", slots)
}

func (t *TPM) logTail(name string) string {
	b, err := os.ReadFile(filepath.Join(t.Dir, name+".log"))
	if err != nil {
		return "no log"
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 600 {
		s = "…" + s[len(s)-600:]
	}
	if s == "" {
		return "its log is empty"
	}
	return name + " says: " + s
}

func (t *TPM) stopLast() {
	n := len(t.procs)
	if n == 0 {
		return
	}
	stop(t.procs[n-1])
	t.procs = t.procs[:n-1]
}

func stop(p *proc) {
	if p.exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Stop stops the daemons in reverse order and removes the folder.
func (t *TPM) Stop() {
	for len(t.procs) > 0 {
		t.stopLast()
	}
	os.RemoveAll(t.Dir)
}

func retry(limit time.Duration, f func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// shared is this test binary's TPM: started by the first test that asks for it (so a test
// binary re-run as a helper process starts none), stopped when Main's tests end.
var shared struct {
	sync.Mutex
	main bool
	tpm  *TPM
	err  error
}

// Main runs the tests and then stops the TPM if any test started it: the body of a package's
// TestMain.
func Main(m *testing.M) {
	shared.Lock()
	shared.main = true
	shared.Unlock()
	code := m.Run()
	shared.Lock()
	if shared.tpm != nil {
		shared.tpm.Stop()
	}
	shared.Unlock()
	os.Exit(code)
}

// Get returns this test binary's TPM, starting it on the first call. A TPM that does not
// start fails the test, with the reason; it is never skipped.
func Get(tb testing.TB) *TPM {
	tb.Helper()
	shared.Lock()
	defer shared.Unlock()
	if !shared.main {
		tb.Fatal("testtpm: call testtpm.Main(m) from the package's TestMain, which stops the TPM")
	}
	if shared.tpm == nil && shared.err == nil {
		shared.tpm, shared.err = Start()
	}
	if shared.err != nil {
		tb.Fatal(shared.err)
	}
	return shared.tpm
}

// Env is the environment that points tpm2-pkcs11 and tpm2-tools at this TPM, as KEY=VALUE,
// for processes a test starts with an environment of their own (command-line scripts).
func (t *TPM) Env() []string {
	var out []string
	for k, v := range t.env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// NewLabel returns a token label no other token of this TPM has: prefix and a number. Tokens
// cannot be re-initialised through tpm2-pkcs11, so every test makes new ones.
func (t *TPM) NewLabel(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, t.labels.Add(1))
}

// Open opens the tpm2-pkcs11 module, failing the test on error, and closes it when the test
// ends.
func (t *TPM) Open(tb testing.TB, opts ...hsm.Option) *hsm.Module {
	tb.Helper()
	m, err := hsm.Open(t.ModulePath, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := m.Close(); err != nil {
			tb.Errorf("close module: %v", err)
		}
	})
	return m
}

// InitToken initialises the TPM's empty slot as a token labelled label with the given SO and
// user PINs, and returns its slot.
func (t *TPM) InitToken(tb testing.TB, label, soPIN, userPIN string) hsm.Slot {
	tb.Helper()
	m, err := hsm.Open(t.ModulePath)
	if err != nil {
		tb.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	free, err := m.FreeSlot(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	slot, err := m.InitToken(ctx, free.ID, label, []byte(soPIN), []byte(userPIN))
	if err != nil {
		tb.Fatal(err)
	}
	return slot
}
