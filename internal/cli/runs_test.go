package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/workspace"
)

func TestRunsListsWhereARunStopped(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ws")
	code, out, errs := run(t, "runs", "--workspace", dir)
	if code != ExitOK || !strings.Contains(out, "no unfinished runs") {
		t.Fatalf("empty workspace: exit %d, %q %q", code, out, errs)
	}

	ctx := context.Background()
	ws, err := workspace.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Open(ctx, ws.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	jpath := ws.Path("journal", "acme-root-2026.jsonl")
	j, err := record.CreateJournal(jpath, "acme-root-2026")
	if err != nil {
		t.Fatal(err)
	}
	j.Begin("token.init", record.System, nil)
	j.Done("token.init", record.System, nil)
	j.Begin("root.generate-key", record.System, nil)
	j.Close()
	if _, err := reg.StartRun(ctx, registry.Run{ID: "acme-root-2026", Kind: registry.RunCeremony,
		Operation: "root", Subject: "acme-root-2026", JournalPath: jpath}); err != nil {
		t.Fatal(err)
	}
	reg.Close()
	ws.Close()

	code, out, errs = run(t, "runs", "--workspace", dir)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"acme-root-2026  ceremony root", "running", "stopped in step root.generate-key (journal line 3"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
