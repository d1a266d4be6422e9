package registry

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-pki/custos/workspace"
)

func TestOpenWorkspaceReadOnlyLists(t *testing.T) {
	ctx := context.Background()
	// Nothing there yet: an empty workspace, and nothing is created.
	missing := filepath.Join(t.TempDir(), "ws")
	if _, _, _, err := OpenWorkspaceReadOnly(ctx, missing); !errors.Is(err, ErrEmptyWorkspace) {
		t.Errorf("missing folder: %v", err)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("a read-only open made the workspace folder")
	}
	empty := t.TempDir()
	if _, _, _, err := OpenWorkspaceReadOnly(ctx, empty); !errors.Is(err, ErrEmptyWorkspace) {
		t.Errorf("empty folder: %v", err)
	}
	// A workspace written to, then read while no writer works: the reader holds the lock
	// shared, so no writer can start.
	dir := filepath.Join(t.TempDir(), "ws")
	ws, reg, closeAll, err := openWritable(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	reg.SetSetting(ctx, "module", "/usr/lib/softhsm/libsofthsm2.so")
	closeAll()
	ws, reg, closeAll, err = OpenWorkspaceReadOnly(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if !ws.ReadOnly() || !ws.NoWriter() {
		t.Errorf("read-only %v, no writer %v", ws.ReadOnly(), ws.NoWriter())
	}
	if v, ok, err := reg.Setting(ctx, "module"); err != nil || !ok || v != "/usr/lib/softhsm/libsofthsm2.so" {
		t.Errorf("setting: %q %v %v", v, ok, err)
	}
	closeAll()
	// Beside a writer at work: read through its log, without waiting for it.
	_, wreg, wclose, err := openWritable(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	wreg.SetSetting(ctx, "module", "/opt/hsm/lib.so")
	ws, reg, closeAll, err = OpenWorkspaceReadOnly(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if ws.NoWriter() {
		t.Error("NoWriter while a writer holds the workspace")
	}
	if v, _, _ := reg.Setting(ctx, "module"); v != "/opt/hsm/lib.so" {
		t.Errorf("the reader sees %q, not the writer's committed change", v)
	}
	closeAll()
	wclose()
	// Journals without a registry: it was lost, and an empty list would hide that.
	os.Remove(filepath.Join(dir, "custos.db"))
	os.WriteFile(filepath.Join(dir, workspace.JournalDir, "acme-root-2026.jsonl"), []byte("{}\n"), 0o644)
	_, _, _, err = OpenWorkspaceReadOnly(ctx, dir)
	if err == nil || errors.Is(err, ErrEmptyWorkspace) || !strings.Contains(err.Error(), "holds run journals (1) but no registry (custos.db)") {
		t.Errorf("journals without a registry: %v", err)
	}
}

// openWritable opens the workspace in dir as a writer does.
func openWritable(ctx context.Context, dir string) (*workspace.Workspace, *Registry, func(), error) {
	ws, reg, err := OpenWorkspace(ctx, dir)
	if err != nil {
		return nil, nil, nil, err
	}
	return ws, journaled(reg), func() { reg.Close(); ws.Close() }, nil
}
