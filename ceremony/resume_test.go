package ceremony

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// diskFull is the workspace's disk, full: every signed record's write fails with ENOSPC (a
// small tmpfs cannot be mounted unprivileged, so the tests inject the writer's error).
func diskFull(env run.Env) run.Env {
	env.RecordFault = func(string) error { return syscall.ENOSPC }
	return env
}

// A root ceremony whose disk is full when its record is written stops with every step done;
// `resume` writes the record from the journal, signed by the record signer, once there is
// space (a resume while the disk is still full fails again and changes nothing), and the root
// works: an issuing CA under quorum gets its record too.
func TestRecordWrittenOnResumeAfterDiskFull(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, strings.NewReplacer("ecdsa-p384", "ecdsa-p256", "backup: true", "backup: false").Replace(goodPlan))
	p := &people{}
	if _, err := Root(ctx, diskFull(f.env), f.plan, []byte("ops-pin-1234"), p); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("root ceremony on a full disk: %v", err)
	}
	stopped, err := handlers.Stopped(ctx, f.env)
	if err != nil || len(stopped) != 1 || !stopped[0].CanResume {
		t.Fatalf("stopped runs %+v, %v", stopped, err)
	}
	id := stopped[0].ID
	if _, err := os.Stat(f.env.RecordPath(id)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a record after a full disk: %v", err)
	}
	if _, err := handlers.Resume(ctx, f.env, id, run.PINs{}); run.FieldOf(err) != "OpsPIN" {
		t.Errorf("resume without the operator PIN: %v", err)
	}
	if _, err := handlers.Resume(ctx, diskFull(f.env), id, run.PINs{Ops: []byte("ops-pin-1234")}); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("resume on a disk still full: %v", err)
	}
	if rr, _ := f.env.Registry.Run(ctx, id); rr.Status != registry.RunFailed {
		t.Errorf("after a second full disk the run is %s", rr.Status)
	}
	out, err := handlers.Resume(ctx, f.env, id, run.PINs{Ops: []byte("ops-pin-1234")})
	if err != nil || out.Summary != "record written" {
		t.Fatalf("resume with space: %+v, %v", out, err)
	}
	rr, err := f.env.Registry.Run(ctx, id)
	if err != nil || rr.Status != registry.RunCompleted || rr.RecordPath != f.env.RecordPath(id) {
		t.Fatalf("run after resume: %+v, %v", rr, err)
	}
	// The record is whole: signed by the record signer under the root (pdfsig and Custos's own
	// check), carrying the journal as it stands, naming the people and the certificates.
	pdf, err := os.ReadFile(rr.RecordPath)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := exec.Command("pdfsig", rr.RecordPath).CombinedOutput(); !strings.Contains(string(o), "Signature is Valid.") {
		t.Errorf("pdfsig: %s", o)
	}
	iss, _ := f.env.Registry.Issuer(ctx, f.plan.ID)
	root, _ := x509.ParseCertificate(iss.Certificate)
	if rep := record.Verify(pdf, []*x509.Certificate{root}); !rep.OK() {
		t.Errorf("verify: %+v", rep)
	}
	embedded, err := record.EmbeddedJournal(pdf)
	if err != nil {
		t.Fatal(err)
	}
	if jb, _ := os.ReadFile(rr.JournalPath); !bytes.Equal(embedded, jb) {
		t.Error("the record's journal is not the journal file")
	}
	txt, err := exec.Command("pdftotext", rr.RecordPath, "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Record " + id + " of root " + f.plan.ID, "completed: root created, shares verified",
		f.plan.Administrator, f.plan.Custodians[0], "record signer", "clock (local)", "tokens holding the root"} {
		if !strings.Contains(string(txt), want) {
			t.Errorf("the record does not say %q:\n%s", want, txt)
		}
	}
	if _, err := handlers.Resume(ctx, f.env, id, run.PINs{Ops: []byte("ops-pin-1234")}); err == nil || !strings.Contains(err.Error(), "completed") {
		t.Errorf("a second resume: %v", err)
	}

	// The root works, and an operation under quorum whose record hits a full disk resumes too.
	if _, err := IssueCA(ctx, diskFull(f.env), f.quorum(t, p.shares[1], p.shares[2], p.shares[3]),
		IssueCARequest{CommonName: "Acme Devices CA 1", OpsPIN: []byte("ops-pin-1234")}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("issue-ca on a full disk: %v", err)
	}
	stopped, err = handlers.Stopped(ctx, f.env)
	if err != nil || len(stopped) != 1 || !stopped[0].CanResume || stopped[0].Operation != "issue-ca" {
		t.Fatalf("stopped runs %+v, %v", stopped, err)
	}
	if _, err := handlers.Resume(ctx, f.env, stopped[0].ID, run.PINs{Ops: []byte("ops-pin-1234")}); err != nil {
		t.Fatal(err)
	}
	txt, err = exec.Command("pdftotext", f.env.RecordPath(stopped[0].ID), "-").Output()
	if err != nil || !strings.Contains(string(txt), "issuing CA") || !strings.Contains(string(txt), "Acme Devices CA 1") {
		t.Errorf("the issue-ca record: %v\n%s", err, txt)
	}
}

// A ceremony stopped before its last step cannot resume (the quorum secret died with it) and
// says so; one stopped with every step done can.
func TestOnlyARunWithEveryStepDoneResumes(t *testing.T) {
	rr := registry.Run{ID: "r", Operation: "crl"}
	done := func(ids ...string) []record.Entry {
		var out []record.Entry
		for _, id := range ids {
			out = append(out, record.Entry{Step: id, Status: record.StatusBegin}, record.Entry{Step: id, Status: record.StatusDone})
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		entries []record.Entry
		can     bool
	}{
		{"every step", done("crl.clock", "crl.unlock", "crl.revoke", "crl.sign"), true},
		{"every step and a failed record", append(done("crl.clock", "crl.unlock", "crl.revoke", "crl.sign"), record.Entry{Step: "crl.record", Status: record.StatusFailed}), true},
		{"the last step missing", done("crl.clock", "crl.unlock", "crl.revoke"), false},
		{"a step open", append(done("crl.clock", "crl.unlock", "crl.revoke", "crl.sign"), record.Entry{Step: "crl.sign", Status: record.StatusBegin}), false},
		{"nothing", nil, false},
		{"a root CRL that revoked nothing", done("crl.clock", "crl.unlock", "crl.sign"), true},
	} {
		if why := recordPending(rr, tc.entries); (why == "") != tc.can {
			t.Errorf("%s: resumable %v, says %q", tc.name, why == "", why)
		}
	}
	if why := recordPending(registry.Run{Operation: "unknown"}, done("x")); why == "" {
		t.Error("a run of an operation Custos does not know resumes")
	}
	// The end of a root: its record signer is retired by the run, so its record is never
	// written later; check-shares: its record is the check itself.
	for op, steps := range map[string][]string{"destroy": {"destroy.clock", "destroy.unlock", "destroy.holders", "destroy.root-crl", "destroy.erase"},
		"check-shares": {"check-shares.check"}} {
		if why := recordPending(registry.Run{Operation: op}, done(steps...)); why == "" {
			t.Errorf("a %s run with every step done resumes", op)
		}
	}
}

// Aborting a root ceremony whose record could not be written keeps everything it registered:
// the abort never advises re-initialising the operations token that holds the live record
// signer, and destroys nothing.
func TestAbortAfterDiskFullKeepsTheRecordSigner(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, strings.NewReplacer("ecdsa-p384", "ecdsa-p256", "backup: true", "backup: false").Replace(goodPlan))
	if _, err := Root(ctx, diskFull(f.env), f.plan, []byte("ops-pin-1234"), &people{}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("root ceremony on a full disk: %v", err)
	}
	stopped, err := handlers.Stopped(ctx, f.env)
	if err != nil || len(stopped) != 1 {
		t.Fatalf("stopped runs %+v, %v", stopped, err)
	}
	res, err := handlers.Abort(ctx, f.env, stopped[0].ID, run.PINs{Ops: []byte("ops-pin-1234")})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(res.Remaining, "\n")
	if len(res.Done) != 0 || strings.Contains(all, "re-initialise it with") || strings.Contains(all, "clear it") ||
		!strings.Contains(all, `operations token "acme-ops" was initialised by this run and is in use (it holds the record-signer certificate`) ||
		!strings.Contains(all, "was made and registered before the run stopped") {
		t.Errorf("abort = %+v", res)
	}
	roles, err := f.env.Registry.RoleCerts(ctx)
	if err != nil || len(roles) != 1 {
		t.Fatalf("role certificates %v, %v", roles, err)
	}
	m, _ := hsm.Open(f.hsm.ModulePath)
	defer m.Close()
	s, err := m.OpenSession(ctx, f.plan.OperationsToken)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Login(ctx, hsm.User, []byte("ops-pin-1234"))
	if left, _ := s.Remaining(ctx, roles[0].Key.KeyID, ""); len(left) == 0 {
		t.Error("abort destroyed the record signer")
	}
}
