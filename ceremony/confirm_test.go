package ceremony

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// checkingPeople confirm each step's result as the person the script names, and refuse the
// result of one step (refuse), as a witness would who reads the wrong words.
type checkingPeople struct {
	people
	refuse string
	seen   map[string]any // each step's result as it was confirmed
}

func (c *checkingPeople) ConfirmResult(ctx context.Context, st run.Step, result any) (record.Actor, error) {
	if c.seen == nil {
		c.seen = map[string]any{}
	}
	c.seen[st.ID] = result
	if st.ID == c.refuse {
		return record.Actor{}, errors.New("the witness read other words")
	}
	if st.Confirmer == "witness" {
		return record.Actor{Name: "Wes Witness", Role: "witness"}, nil
	}
	return record.Actor{Name: "Ada Admin", Role: "administrator"}, nil
}

// A ceremony whose people confirm results journals each confirmation after the step's result,
// naming who confirmed which step; the command line's participants are asked nothing more.
func TestRootCeremonyJournalsEachResultConfirmedAfterIt(t *testing.T) {
	ctx := context.Background()
	plan := strings.NewReplacer("ecdsa-p384", "ecdsa-p256", "backup: true", "backup: false").Replace(goodPlan)
	f := newFixture(t, plan)
	p := &checkingPeople{}
	res, err := Root(ctx, f.env, f.plan, []byte("ops-pin-1234"), p)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.seen["root.preflight"].(Preflight); !ok {
		t.Errorf("the pre-flight's result given to confirm: %T", p.seen["root.preflight"])
	}
	jf, err := record.ReadJournalFile(res.JournalPath)
	if err != nil {
		t.Fatal(err)
	}
	done := map[string]int{} // step → index of its done entry
	confirmed := 0
	for i, e := range jf.Entries {
		if e.Status == record.StatusDone {
			done[e.Step] = i
		}
		step, ok := strings.CutSuffix(e.Step, ".confirmed")
		if !ok {
			continue
		}
		confirmed++
		c, err := record.Decode[ResultConfirmed](e)
		if err != nil || c.Step != step || e.Status != record.StatusNote {
			t.Fatalf("entry %d: %+v (%+v, %v)", e.Seq, e, c, err)
		}
		d, ok := done[step]
		if !ok || d != i-1 {
			t.Errorf("%s confirmed at entry %d; its result at %d (%v)", step, i, d, ok)
		}
		want := rootStep(strings.TrimPrefix(step, "root.")).Confirmer
		if e.Role != want || e.Time.Before(jf.Entries[d].Time) {
			t.Errorf("%s confirmed by %s (%s) at %v; the script names the %s", step, e.Actor, e.Role, e.Time, want)
		}
		if step == "root.certificate" && !strings.Contains(strings.Join(c.Checked, ","), "SHA-256 fingerprint") {
			t.Errorf("the certificate's confirmation names %v", c.Checked)
		}
	}
	if confirmed != len(p.seen) || confirmed < 9 {
		t.Errorf("%d confirmations journaled, %d asked", confirmed, len(p.seen))
	}
	// The record lists the confirmations among its steps.
	out, err := exec.Command("pdftotext", res.RecordPath, "-").Output()
	if err != nil || !strings.Contains(string(out), "root.preflight.confirmed") {
		t.Errorf("pdftotext: %v\n%s", err, out)
	}

	// The command line's participants (no ResultConfirmer) journal no confirmation.
	f2 := newFixture(t, plan)
	res2, err := Root(ctx, f2.env, f2.plan, []byte("ops-pin-1234"), &people{})
	if err != nil {
		t.Fatal(err)
	}
	jf2, err := record.ReadJournalFile(res2.JournalPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range jf2.Entries {
		if strings.HasSuffix(e.Step, ".confirmed") {
			t.Errorf("a confirmation without a ResultConfirmer: %+v", e)
		}
	}
}

// A result the witness does not confirm stops the ceremony as a failed step does: what it made
// is undone and the run is failed, naming the step.
func TestRootCeremonyStopsOnAResultNotConfirmed(t *testing.T) {
	ctx := context.Background()
	plan := strings.NewReplacer("ecdsa-p384", "ecdsa-p256", "backup: true", "backup: false").Replace(goodPlan)
	f := newFixture(t, plan)
	_, err := Root(ctx, f.env, f.plan, []byte("ops-pin-1234"), &checkingPeople{refuse: "root.generate-key"})
	if err == nil || !strings.Contains(err.Error(), "Generate the root key: its result was not confirmed: the witness read other words") {
		t.Fatalf("err = %v", err)
	}
	runs, err := f.env.Registry.RunsOf(ctx, f.plan.ID)
	if err != nil || len(runs) != 1 || runs[0].Status != registry.RunFailed {
		t.Fatalf("runs: %+v, %v", runs, err)
	}
	if out, _ := exec.Command("pkcs11-tool", "--module", f.hsm.ModulePath, "-L").CombinedOutput(); strings.Contains(string(out), "label:        "+f.plan.ID+"\n") {
		t.Errorf("the root token was left with its label:\n%s", out)
	}
}
