package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/custos-pki/custos/cli/audit"
	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/internal/softhsm"
	"github.com/custos-pki/custos/internal/testtpm"
)

// TestMain lets the scripts run custos and custos-verify: testscript puts this test binary on
// their PATH under those names, and each exec is a process of its own (so each script's
// SOFTHSM2_CONF is the one its SoftHSM2 reads).
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"custos": func() {
			os.Exit(Run(context.Background(), os.Args[1:], transcribed(), nil))
		},
		"custos-verify": func() {
			os.Exit(audit.Program().Run(context.Background(), os.Args[1:], transcribed()))
		},
	})
}

// transcribed is stdout and stderr, each also appended to the script's $CUSTOS_TRANSCRIPT, so
// nosecrets can search everything the commands of a script printed.
func transcribed() command.Streams {
	s := command.Streams{Out: os.Stdout, Err: os.Stderr}
	path := os.Getenv("CUSTOS_TRANSCRIPT")
	if path == "" {
		return s
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return s
	}
	return command.Streams{Out: io.MultiWriter(s.Out, f), Err: io.MultiWriter(s.Err, f)}
}

// TestScripts runs the command-line scenarios in testdata/script. Each script starts in a
// fresh $WORK with its own SoftHSM2 token folder (SOFTHSM2_CONF), $MODULE naming the
// SoftHSM2 module, and $CUSTOS_WORKSPACE set to $WORK/ws. Besides testscript's own commands
// they have:
//
//	capture VAR REGEXP          set VAR to REGEXP's first group in the last command's stdout
//	exits N PROGRAM [ARGS...]   run PROGRAM; its exit status must be N (stdout, stderr kept)
//	expand FILE...              replace $VAR and ${VAR} in each file with the script's environment
//	flipbit FILE                flip the low bit of the byte in the middle of FILE
//	agekey VAR FILE             write a new age X25519 identity to FILE (mode 0600) and set VAR
//	                            to its recipient
//	mistype FILE                change one character of the last share group in a share file, as
//	                            a custodian's typo in a copy would
//	tpm                         start this test binary's software TPM (once) and point the script
//	                            at it: $TPM_MODULE is tpm2-pkcs11, with the environment it reads
//	nosecrets PATH...           no secret appears in the workspace or in what custos printed: the
//	                            quorum secrets of the share folders named, their derived PINs and
//	                            KEKs, every share, and the PINs in the PIN files named
func TestScripts(t *testing.T) {
	lib, err := softhsm.LibraryPath()
	if err != nil {
		t.Fatal(err)
	}
	var tpm scriptTPM
	t.Cleanup(tpm.stop)
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			conf, err := softhsm.WriteConfig(filepath.Join(env.WorkDir, ".softhsm"))
			if err != nil {
				return err
			}
			env.Setenv("SOFTHSM2_CONF", conf)
			env.Setenv("MODULE", lib)
			env.Setenv("CUSTOS_WORKSPACE", filepath.Join(env.WorkDir, "ws"))
			env.Setenv("CUSTOS_TRANSCRIPT", filepath.Join(env.WorkDir, ".transcript"))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"agekey":    agekey,
			"mistype":   mistype,
			"capture":   capture,
			"exits":     exits,
			"expand":    expand,
			"flipbit":   flipbit,
			"nosecrets": nosecrets,
			"tpm":       tpm.use,
		},
	})
}

// exits runs a program and checks its exit status: exec only tells success from failure, and
// the command line promises 0 (done), 1 (failed) and 2 (wrong usage).
func exits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits STATUS PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			ts.Fatalf("%s: %v", args[1], err)
		}
		got = exit.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}

// capture keeps what a command printed for the commands after it, such as an issuing CA's id.
func capture(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: capture VAR REGEXP")
	}
	re, err := regexp.Compile("(?m)" + args[1])
	ts.Check(err)
	m := re.FindStringSubmatch(ts.ReadFile("stdout"))
	if len(m) < 2 {
		ts.Fatalf("no match for %s with a group in stdout", args[1])
	}
	ts.Setenv(args[0], m[1])
}

// expand replaces $VAR and ${VAR} in files with the script's environment, for the paths a
// file must hold (a plan's module).
func expand(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: expand FILE...")
	}
	for _, f := range args {
		text := os.Expand(ts.ReadFile(f), ts.Getenv)
		ts.Check(os.WriteFile(ts.MkAbs(f), []byte(text), 0o644))
	}
}

// agekey makes a custodian's age identity, as age-keygen would.
func agekey(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: agekey VAR FILE")
	}
	id, err := age.GenerateX25519Identity()
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte("# created by the test\n"+id.String()+"\n"), 0o600))
	ts.Setenv(args[0], id.Recipient().String())
}

// mistype replaces the last character of a share file's last line by another digit of the
// share alphabet.
func mistype(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: mistype FILE")
	}
	path := ts.MkAbs(args[0])
	data, err := os.ReadFile(path)
	ts.Check(err)
	text := strings.TrimRight(string(data), "\n")
	last := text[len(text)-1]
	swap := byte('A')
	if last == 'A' {
		swap = 'B'
	}
	ts.Check(os.WriteFile(path, []byte(text[:len(text)-1]+string(swap)+"\n"), 0o600))
}

// flipbit changes one bit in the middle of a file, as a single flipped bit on a disk would.
func flipbit(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: flipbit FILE")
	}
	path := ts.MkAbs(args[0])
	data, err := os.ReadFile(path)
	ts.Check(err)
	if len(data) == 0 {
		ts.Fatalf("%s is empty", args[0])
	}
	data[len(data)/2] ^= 1
	ts.Check(os.WriteFile(path, data, 0o644))
}

// nosecrets fails the script if the workspace or anything custos printed holds a secret: see
// findSecrets. Each argument is a folder of share files or a PIN file.
func nosecrets(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: nosecrets SHARES_DIR|PIN_FILE...")
	}
	var dirs []string
	var pins [][]byte
	for _, a := range args {
		path := ts.MkAbs(a)
		if info, err := os.Stat(path); err == nil && info.IsDir() {
			dirs = append(dirs, path)
			continue
		}
		pin, err := os.ReadFile(path)
		ts.Check(err)
		pins = append(pins, bytes.TrimSuffix(pin, []byte("\n")))
	}
	output, err := os.ReadFile(ts.Getenv("CUSTOS_TRANSCRIPT"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		ts.Fatalf("%v", err)
	}
	found, searched, err := findSecrets(dirs, pins, ts.Getenv("CUSTOS_WORKSPACE"), output)
	ts.Check(err)
	for _, f := range found {
		ts.Logf("%s", f)
	}
	if len(found) > 0 {
		ts.Fatalf("%d secrets found", len(found))
	}
	ts.Logf("searched %s", searched)
}

// scriptTPM is the software TPM the scripts share, started by the first that asks for it.
type scriptTPM struct {
	mu  sync.Mutex
	tpm *testtpm.TPM
	err error
}

func (st *scriptTPM) use(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: tpm")
	}
	st.mu.Lock()
	if st.tpm == nil && st.err == nil {
		st.tpm, st.err = testtpm.Start()
	}
	st.mu.Unlock()
	ts.Check(st.err)
	for _, kv := range st.tpm.Env() {
		k, v, _ := strings.Cut(kv, "=")
		ts.Setenv(k, v)
	}
	ts.Setenv("TPM_MODULE", st.tpm.ModulePath)
}

func (st *scriptTPM) stop() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.tpm != nil {
		st.tpm.Stop()
	}
}
