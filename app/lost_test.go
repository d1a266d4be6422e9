package app

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"fyne.io/fyne/v2/test"

	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// A workspace whose registry was deleted opens on a window that says so and nothing else;
// its button rebuilds the registry from the journals, puts it in place, and opens the
// workspace, which holds what the journals say.
func TestLostRegistryWindowRebuilds(t *testing.T) {
	test.NewTempApp(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "ws")
	env, err := run.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.SaveModule(ctx, env, "/usr/lib/softhsm/libsofthsm2.so"); err != nil {
		t.Fatal(err)
	}
	env.Close()
	os.Remove(filepath.Join(dir, "custos.db"))

	_, err = run.Open(ctx, dir)
	if !errors.Is(err, registry.ErrRegistryLost) {
		t.Fatalf("open a workspace with journals and no registry: %v", err)
	}
	var mu sync.Mutex
	uiLock = &mu
	opened := make(chan run.Env, 1)
	l := newLostScreen(ctx, dir, err, &mu, func() error {
		e, err := run.Open(ctx, dir)
		if err == nil {
			opened <- e
		}
		return err
	})
	w := test.NewTempWindow(t, nil)
	onUI(func() { w.SetContent(l.content()) })
	var txt string
	onUI(func() { txt = texts(w.Content()) })
	for _, want := range []string{"The registry of this workspace is lost", "holds run journals (1) but no registry (custos.db)",
		"Rebuild the registry from the journals"} {
		if !strings.Contains(txt, want) {
			t.Errorf("the window lacks %q:\n%s", want, txt)
		}
	}
	onUI(func() { test.Tap(l.button) })
	e := <-opened
	defer e.Close()
	if m, _ := run.SavedModule(ctx, e.Registry); m != "/usr/lib/softhsm/libsofthsm2.so" {
		t.Errorf("the rebuilt registry's module is %q", m)
	}
	eventually(t, "the report", func() bool { return strings.Contains(texts(w.Content()), "1 journals, 1 facts replayed") })
}
