package ceremony

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
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

// inTheRecordsWay puts a folder where the ceremony's record goes as the ceremony closes, so
// the ceremony stops after the root is registered and before its record is written.
type inTheRecordsWay struct {
	people
	env  run.Env
	plan string
}

func (w *inTheRecordsWay) Confirm(ctx context.Context, st run.Step) (record.Actor, error) {
	if st.ID == "root.close" {
		runs, err := w.env.Registry.RunsOf(ctx, w.plan)
		if err != nil || len(runs) != 1 {
			return record.Actor{}, fmt.Errorf("runs of %s: %v, %v", w.plan, runs, err)
		}
		if err := os.MkdirAll(w.env.RecordPath(runs[0].ID), 0o755); err != nil {
			return record.Actor{}, err
		}
	}
	return w.people.Confirm(ctx, st)
}

// A root ceremony that closed and could not write its record is listed with what it made and
// resumes to write and sign the record (pdfsig and record.Verify read it); one that stopped
// before it closed cannot resume and is listed with what it made and undid.
func TestStoppedRootCeremonyResumesToWriteItsRecord(t *testing.T) {
	ctx := context.Background()
	plan := strings.NewReplacer("ecdsa-p384", "ecdsa-p256", "backup: true", "backup: false").Replace(goodPlan)
	f := newFixture(t, plan)
	_, err := Root(ctx, f.env, f.plan, []byte("ops-pin-1234"), &inTheRecordsWay{env: f.env, plan: f.plan.ID})
	if err == nil || !strings.Contains(err.Error(), "record could not be written") {
		t.Fatalf("err = %v", err)
	}
	handlers := run.Handlers{Handler()}
	stopped, err := handlers.Stopped(ctx, f.env)
	if err != nil || len(stopped) != 1 {
		t.Fatalf("stopped: %+v, %v", stopped, err)
	}
	s := stopped[0]
	made := strings.Join(s.Made, "\n")
	for _, want := range []string{"root token \"" + f.plan.ID + "\"", "root CA certificate CN=", "record signer certificate", "5 shares of epoch 1 handed out", "root registered"} {
		if !strings.Contains(made, want) {
			t.Errorf("what it made does not say %q:\n%s", want, made)
		}
	}
	if !s.CanResume {
		t.Fatalf("a closed ceremony without its record cannot resume: %s", s.CannotResume)
	}
	os.Remove(f.env.RecordPath(s.ID))
	var fe *run.FieldError
	if _, err := handlers.Resume(ctx, f.env, s.ID, run.PINs{}); !errors.As(err, &fe) || fe.Field() != "OpsPIN" {
		t.Errorf("resume without the operator PIN: %v", err)
	}
	out, err := handlers.Resume(ctx, f.env, s.ID, run.PINs{Ops: []byte("ops-pin-1234")})
	if err != nil {
		t.Fatal(err)
	}
	rr, err := f.env.Registry.Run(ctx, s.ID)
	if err != nil || rr.Status != registry.RunCompleted || rr.RecordPath != f.env.RecordPath(s.ID) || !strings.Contains(out.Done[0], rr.RecordPath) {
		t.Fatalf("after resume: %+v, %v; %+v", rr, err, out)
	}
	pdf, err := os.ReadFile(rr.RecordPath)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := f.env.Registry.Issuer(ctx, f.plan.ID)
	rootCert, _ := x509.ParseCertificate(root.Certificate)
	if rep := record.Verify(pdf, []*x509.Certificate{rootCert}); !rep.OK() {
		t.Errorf("the resumed record does not verify: %+v", rep.Checks)
	}
	if o, err := exec.Command("pdfsig", rr.RecordPath).CombinedOutput(); err != nil || !strings.Contains(string(o), "Signature Validation: Signature is Valid") {
		t.Errorf("pdfsig: %v\n%s", err, o)
	}
	if o, _ := exec.Command("pdftotext", rr.RecordPath, "-").Output(); !strings.Contains(string(o), "run.resume") {
		t.Errorf("the record does not say the run was resumed:\n%s", o)
	}
	if again, _ := handlers.Stopped(ctx, f.env); len(again) != 0 {
		t.Errorf("still stopped: %+v", again)
	}

	// Stopped before it closed: it cannot resume; what it made was undone and is listed so.
	f2 := newFixture(t, plan)
	if _, err := Root(ctx, f2.env, f2.plan, []byte("ops-pin-1234"), &refuseAt{step: "root.statement"}); err == nil {
		t.Fatal("the refused ceremony completed")
	}
	stopped, err = handlers.Stopped(ctx, f2.env)
	if err != nil || len(stopped) != 1 || stopped[0].CanResume || !strings.Contains(stopped[0].CannotResume, "the quorum secret") {
		t.Fatalf("stopped before closing: %+v, %v", stopped, err)
	}
	made = strings.Join(stopped[0].Made, "\n")
	if !strings.Contains(made, "root CA certificate") || !strings.Contains(made, "undone when it failed: ") {
		t.Errorf("what it made and undid:\n%s", made)
	}
	if _, err := handlers.Resume(ctx, f2.env, stopped[0].ID, run.PINs{Ops: []byte("ops-pin-1234")}); !errors.Is(err, run.ErrCannotResume) {
		t.Errorf("resume of a ceremony that did not close: %v", err)
	}
}
