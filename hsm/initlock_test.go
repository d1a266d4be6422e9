//go:build cgo && !nopkcs11

package hsm_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/testhsm"
)

// TestInitTokenHelper is the child of TestInitTokenSeesOtherProcesses: another Custos process
// that initialises a token on the same module.
func TestInitTokenHelper(t *testing.T) {
	label := os.Getenv("CUSTOS_TEST_INIT_LABEL")
	if label == "" {
		t.Skip("child process of TestInitTokenSeesOtherProcesses")
	}
	m, err := hsm.Open(os.Getenv("CUSTOS_TEST_INIT_MODULE"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	free, err := m.FreeSlot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.InitToken(ctx, free.ID, label, []byte(soPIN), []byte(userPIN)); err != nil {
		t.Fatal(err)
	}
}

// SoftHSM2 fixes its list of tokens when it is loaded: a token another process initialises
// afterwards is invisible to this one. The module's lock file names it, and its label is
// refused; another label is not.
func TestInitTokenSeesOtherProcesses(t *testing.T) {
	ctx := context.Background()
	env := testhsm.New(t)
	m := env.Open(t)
	free, err := m.FreeSlot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command(os.Args[0], "-test.run=^TestInitTokenHelper$", "-test.v")
	child.Env = append(os.Environ(), "CUSTOS_TEST_INIT_LABEL=acme-ops", "CUSTOS_TEST_INIT_MODULE="+env.ModulePath)
	if out, err := child.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if _, err := m.TokenByLabel(ctx, "acme-ops"); !errors.Is(err, hsm.ErrTokenNotFound) {
		t.Fatalf("this process sees the child's token (%v): the test no longer shows what it is for", err)
	}
	_, err = m.InitToken(ctx, free.ID, "acme-ops", []byte(soPIN), []byte(userPIN))
	if !errors.Is(err, hsm.ErrLabelInUse) || !strings.Contains(err.Error(), fmt.Sprintf("process %d", child.Process.Pid)) {
		t.Fatalf("second token labelled acme-ops: %v", err)
	}
	if _, err := m.InitToken(ctx, free.ID, "acme-other", []byte(soPIN), []byte(userPIN)); err != nil {
		t.Fatalf("another label: %v", err)
	}
	list := pkcs11Tool(t, env.ModulePath, "-L")
	if n := strings.Count(list, "token label        : acme-ops\n"); n != 1 {
		t.Errorf("%d tokens labelled acme-ops:\n%s", n, list)
	}
	locks, _ := filepath.Glob(filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "custos-pkcs11-*.lock"))
	if len(locks) != 1 {
		t.Fatalf("lock files: %v", locks)
	}
	fi, err := os.Stat(locks[0])
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file %s: %v %v", locks[0], fi.Mode(), err)
	}
	b, _ := os.ReadFile(locks[0])
	if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) != 2 || !strings.HasSuffix(lines[0], ` "acme-ops"`) || !strings.HasSuffix(lines[1], ` "acme-other"`) {
		t.Errorf("lock file records:\n%s", b)
	}
}
