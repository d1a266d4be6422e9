package registry

import (
	"context"
	"testing"
)

// OpenWorkspace makes the workspace when it is new, holds its lock until closed, and opens
// its registry.
func TestOpenWorkspace(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir() + "/ws"
	ws, reg, err := OpenWorkspace(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.UnfinishedRuns(ctx); err != nil {
		t.Errorf("registry: %v", err)
	}
	if ws.Path("records") != dir+"/records" {
		t.Errorf("workspace at %s", ws.Path("records"))
	}
	if _, _, err := OpenWorkspace(ctx, dir); err == nil {
		t.Error("a second open while the first holds the lock succeeded")
	}
	reg.Close()
	ws.Close()
	ws, reg, err = OpenWorkspace(ctx, dir)
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	reg.Close()
	ws.Close()
}
