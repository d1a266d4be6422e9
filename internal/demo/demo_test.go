package demo

import (
	"context"
	"io"
	"os"
	"testing"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/workspace"
)

func TestPrepare(t *testing.T) {
	t.Setenv("SOFTHSM2_CONF", "") // restored after the test; Prepare sets its own
	t.Setenv("TMPDIR", t.TempDir())
	ctx := context.Background()
	d, err := Prepare(ctx, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := workspace.Open(d.Workspace)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	reg, err := registry.Open(ctx, ws.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if _, err := reg.Issuer(ctx, d.IssuerID); err != nil {
		t.Errorf("demo issuing CA: %v", err)
	}
	plan, err := os.ReadFile(d.Dir + "/plan-new-root.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ceremony.ParsePlan(plan); err != nil {
		t.Errorf("the demo's plan for a new root does not load: %v", err)
	}
	q, err := ceremony.LoadQuorum(ctx, reg, "demo-root")
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 5; n++ {
		text, _ := os.ReadFile(d.SharesDir + "/" + string(rune('0'+n)) + ".share")
		if _, err := q.Add(string(text)); err != nil {
			t.Errorf("demo share %d: %v", n, err)
		}
	}
}
