package ceremony

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-pki/custos/internal/testhsm"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/run"
)

// meetAt confirms every step, and at one step waits until a file says go, having said it is
// there: two processes meet at that step and go on together.
type meetAt struct {
	people
	step, sync, name string
}

func (m *meetAt) Confirm(ctx context.Context, st run.Step) (record.Actor, error) {
	if st.ID == m.step {
		os.WriteFile(filepath.Join(m.sync, "ready-"+m.name), nil, 0o600)
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
			if _, err := os.Stat(filepath.Join(m.sync, "go")); err == nil {
				break
			}
			if time.Now().After(deadline) {
				return record.Actor{}, fmt.Errorf("nobody said go")
			}
		}
	}
	return m.people.Confirm(ctx, st)
}

// TestConcurrentRootHelper is a child of TestConcurrentCeremoniesShareNoLabel: one root
// ceremony, which meets the other at the step that makes the operations token (before the root
// token).
func TestConcurrentRootHelper(t *testing.T) {
	dir := os.Getenv("CUSTOS_TEST_CONC_DIR")
	if dir == "" {
		t.Skip("child process of TestConcurrentCeremoniesShareNoLabel")
	}
	plan, err := ParsePlan([]byte(os.Getenv("CUSTOS_TEST_CONC_PLAN")))
	if err != nil {
		t.Fatal(err)
	}
	env := childEnv(t, dir)
	defer env.Close()
	p := &meetAt{step: "root.init-token", sync: os.Getenv("CUSTOS_TEST_CONC_SYNC"), name: plan.ID}
	if _, err := Root(context.Background(), env, plan, []byte("ops-pin-1234"), p); err != nil {
		t.Fatal(err)
	}
}

// Two root ceremonies in two processes on one HSM, both with operations_token acme-ops and
// both reaching the step that makes it at once: one token gets that label, and the other
// ceremony fails saying so, its own root token voided.
func TestConcurrentCeremoniesShareNoLabel(t *testing.T) {
	h := testhsm.New(t)
	sync := t.TempDir()
	var cmds []*exec.Cmd
	var outs []*strings.Builder
	// SoftHSM2 is not made for two processes at once: one may fail to read a token while the
	// other rewrites it (a login does). So the second ceremony starts once the first waits at
	// the meeting point, and the two meet before the operations token is made.
	for _, id := range []string{"acme-root-a", "acme-root-b"} {
		plan := strings.NewReplacer("/usr/lib/softhsm/libsofthsm2.so", h.ModulePath, "acme-root-2026", id,
			"ecdsa-p384", "ecdsa-p256").Replace(goodPlan)
		cmd := exec.Command(os.Args[0], "-test.run=^TestConcurrentRootHelper$", "-test.v")
		cmd.Env = append(os.Environ(), "CUSTOS_TEST_CONC_DIR="+t.TempDir(), "CUSTOS_TEST_CONC_PLAN="+plan,
			"CUSTOS_TEST_CONC_SYNC="+sync)
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, out)
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
			if _, err := os.Stat(filepath.Join(sync, "ready-"+id)); err == nil {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("ceremony %s did not reach the meeting point:\n%s", id, out)
			}
		}
	}
	os.WriteFile(filepath.Join(sync, "go"), nil, 0o600)
	var failed []string
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			failed = append(failed, outs[i].String())
		}
	}
	if len(failed) != 1 {
		t.Fatalf("%d of 2 ceremonies failed; want 1:\n%s\n%s", len(failed), outs[0], outs[1])
	}
	if !strings.Contains(failed[0], `initialised a token labelled "acme-ops" on this module`) ||
		!strings.Contains(failed[0], "token label already in use") {
		t.Errorf("the failed ceremony does not say why:\n%s", failed[0])
	}
	out, err := exec.Command("pkcs11-tool", "--module", h.ModulePath, "-L").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(out), "token label        : acme-ops\n"); n != 1 {
		t.Errorf("%d tokens labelled acme-ops:\n%s", n, out)
	}
	// The operations token is made before the root token, so the ceremony that lost the label
	// never made a root token at all.
	if n := strings.Count(string(out), "token label        : acme-root-") + strings.Count(string(out), "token label        : void-"); n != 1 {
		t.Errorf("%d root tokens (want 1, the winner's, and no voided one):\n%s", n, out)
	}
}
