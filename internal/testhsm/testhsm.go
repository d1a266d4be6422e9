// Package testhsm gives a test a fresh SoftHSM2 in its own temporary token folder, in one
// line:
//
//	env := testhsm.New(t)
//	slot := env.InitToken(t, "acme-ops", "so-pin-1234", "user-pin-1234")
//	m := env.Open(t)
//
// SoftHSM2 reads SOFTHSM2_CONF when the module is initialised, and this process shares one
// initialised module among all its users (see hsm.Open), so tests using testhsm run one
// after another (t.Setenv forbids t.Parallel) and every module they open is closed at the
// end of the test. A missing SoftHSM2 fails the test: the Makefile installs it.
package testhsm

import (
	"context"
	"testing"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/softhsm"
)

// Env is one SoftHSM2 installation with its own token folder.
type Env struct {
	ModulePath string // libsofthsm2.so
	ConfPath   string // the softhsm2.conf SOFTHSM2_CONF names
	Dir        string // the folder holding ConfPath and tokens/
}

// New writes a SoftHSM2 configuration in a temporary folder and sets SOFTHSM2_CONF to it
// for the rest of the test (and for the tools it runs, such as pkcs11-tool). XDG_RUNTIME_DIR
// is set to the same folder, so the lock file that serialises token initialisation across
// processes (see hsm) goes with the tokens.
func New(t testing.TB) *Env {
	t.Helper()
	lib, err := softhsm.LibraryPath()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf, err := softhsm.WriteConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	t.Setenv("XDG_RUNTIME_DIR", dir)
	return &Env{ModulePath: lib, ConfPath: conf, Dir: dir}
}

// Open opens the module, failing the test on error, and closes it when the test ends.
func (e *Env) Open(t testing.TB, opts ...hsm.Option) *hsm.Module {
	t.Helper()
	m, err := hsm.Open(e.ModulePath, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close module: %v", err)
		}
	})
	return m
}

// InitToken initialises a token labelled label on a free slot with the given SO and user
// PINs, and returns its slot (as renumbered by SoftHSM2).
func (e *Env) InitToken(t testing.TB, label, soPIN, userPIN string) hsm.Slot {
	t.Helper()
	m, err := hsm.Open(e.ModulePath)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	free, err := m.FreeSlot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slot, err := m.InitToken(ctx, free.ID, label, []byte(soPIN), []byte(userPIN))
	if err != nil {
		t.Fatal(err)
	}
	return slot
}

// UserSession opens a session with the token labelled label on m, logs the user in with
// userPIN, and closes the session when the test ends.
func UserSession(t testing.TB, m *hsm.Module, label, userPIN string) *hsm.Session {
	t.Helper()
	ctx := context.Background()
	s, err := m.OpenSession(ctx, label)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Login(ctx, hsm.User, []byte(userPIN)); err != nil {
		t.Fatal(err)
	}
	return s
}
