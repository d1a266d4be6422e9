package ceremony

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/custos-pki/custos/run"
	"github.com/custos-pki/custos/workspace"
)

// A wrong operator PIN is refused when the ceremony starts: no run, no journal, and no root
// token (pkcs11-tool lists the slots); the right PIN then runs the same plan.
func TestRootCeremonyChecksOperatorPINAtStart(t *testing.T) {
	ctx := context.Background()
	plan := strings.NewReplacer("ecdsa-p384", "ecdsa-p256", "backup: true", "backup: false").Replace(goodPlan)
	f := newFixture(t, plan)
	f.hsm.InitToken(t, f.plan.OperationsToken, "ops-so-pin-1234", "ops-pin-1234")
	p := &people{}
	_, err := Root(ctx, f.env, f.plan, []byte("wrong-pin-0000"), p)
	if run.FieldOf(err) != "OpsPIN" || !strings.Contains(err.Error(), "nothing was changed on any token") {
		t.Fatalf("wrong operator PIN: %v", err)
	}
	if p.confirm != 0 {
		t.Errorf("%d steps were confirmed before the PIN was checked", p.confirm)
	}
	if runs, err := f.env.Registry.UnfinishedRuns(ctx); err != nil || len(runs) != 0 {
		t.Errorf("runs after a refused start: %v, %v", runs, err)
	}
	if js, _ := os.ReadDir(f.env.Workspace.Path(workspace.JournalDir)); len(js) != 0 {
		t.Errorf("journals after a refused start: %v", js)
	}
	out, err := exec.Command("pkcs11-tool", "--module", f.hsm.ModulePath, "-L").CombinedOutput()
	if err != nil || strings.Contains(string(out), f.plan.ID) || !strings.Contains(string(out), f.plan.OperationsToken) {
		t.Errorf("pkcs11-tool -L after a refused start: %v\n%s", err, out)
	}
	if _, err := Root(ctx, f.env, f.plan, []byte("ops-pin-1234"), &people{}); err != nil {
		t.Fatalf("the right PIN: %v", err)
	}
}

// A certificate left by a killed run of the same plan is found at the start, before the root
// token is initialised, instead of at the certificate step after the root key exists.
func TestRootCeremonyChecksItsFilesAtStart(t *testing.T) {
	f := newFixture(t, goodPlan)
	left := f.env.Workspace.Path(workspace.CertsDir, f.plan.ID+"-root.pem")
	if err := os.WriteFile(left, []byte("left"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Root(context.Background(), f.env, f.plan, []byte("ops-pin-1234"), &people{})
	if err == nil || !strings.Contains(err.Error(), left) || !strings.Contains(err.Error(), "abort that run") {
		t.Fatalf("err = %v", err)
	}
	out, _ := exec.Command("pkcs11-tool", "--module", f.hsm.ModulePath, "-L").CombinedOutput()
	if strings.Contains(string(out), f.plan.ID) {
		t.Errorf("a root token was made:\n%s", out)
	}
}
