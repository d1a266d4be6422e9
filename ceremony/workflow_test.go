package ceremony

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/testhsm"
	"github.com/custos-pki/custos/keyalg"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/quorum"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
	"github.com/custos-pki/custos/workspace"
)

// people stands in for the participants: it confirms every step as the administrator and
// keeps each share in memory, as a custodian's paper copy.
type people struct {
	shares  map[int]string
	confirm int // steps confirmed
}

func (p *people) Confirm(ctx context.Context, st run.Step) (record.Actor, error) {
	p.confirm++
	return record.Actor{Name: "Ada Admin", Role: "administrator"}, ctx.Err()
}
func (p *people) AcknowledgeHorizon(ctx context.Context, h Horizon) (record.Actor, error) {
	return record.Actor{Name: "Ada Admin", Role: "administrator"}, nil
}
func (p *people) DeliverShare(ctx context.Context, d ShareDelivery) (string, error) {
	if p.shares == nil {
		p.shares = map[int]string{}
	}
	p.shares[d.Number] = d.Text
	return "memory", nil
}
func (p *people) ReadBackShare(ctx context.Context, d ShareDelivery) (string, error) {
	return p.shares[d.Number], nil
}

type fixture struct {
	env  run.Env
	hsm  *testhsm.Env
	plan *Plan
	dir  string
}

func newFixture(t *testing.T, planText string) *fixture {
	t.Helper()
	h := testhsm.New(t)
	planText = strings.Replace(planText, "/usr/lib/softhsm/libsofthsm2.so", h.ModulePath, 1)
	plan, err := ParsePlan([]byte(planText))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ws, err := workspace.Open(filepath.Join(dir, "ws"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	reg, err := registry.Open(context.Background(), ws.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return &fixture{env: run.Env{Workspace: ws, Registry: reg}, hsm: h, plan: plan, dir: dir}
}

func (f *fixture) quorum(t *testing.T, shares ...string) *quorum.Collector {
	t.Helper()
	q, err := LoadQuorum(context.Background(), f.env.Registry, f.plan.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range shares {
		if _, err := q.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	return q
}

// tokenObjects lists a token's objects with pkcs11-tool, the independent view.
func tokenObjects(t *testing.T, f *fixture, label, pin string) string {
	t.Helper()
	args := []string{"--module", f.hsm.ModulePath, "--token-label", label, "-O"}
	if pin != "" {
		args = append(args, "--login", "--pin", pin)
	}
	out, err := exec.Command("pkcs11-tool", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool: %v\n%s", err, out)
	}
	return string(out)
}

func openssl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("openssl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestRootCeremonyAndQuorumOperations(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, goodPlan)
	p := &people{}
	res, err := Root(ctx, f.env, f.plan, []byte("ops-pin-1234"), p)
	if err != nil {
		t.Fatal(err)
	}
	if p.confirm < 8 || len(p.shares) != 5 {
		t.Fatalf("%d confirmations, %d shares", p.confirm, len(p.shares))
	}
	openssl(t, "verify", "-CAfile", res.RootPath, res.RootPath)
	openssl(t, "verify", "-CAfile", res.RootPath, res.RecordSignerPath)
	if txt := openssl(t, "x509", "-in", res.RootPath, "-noout", "-text"); !strings.Contains(txt, "CA:TRUE, pathlen:1") || !strings.Contains(txt, "secp384r1") {
		t.Errorf("root certificate:\n%s", txt)
	}
	// The root key reads back sensitive and never extractable except wrapped (backup: true).
	q := f.quorum(t, p.shares[1], p.shares[2], p.shares[5])
	rq, v, err := collectedQuorum(ctx, f.env.Registry, q)
	if err != nil {
		t.Fatal(err)
	}
	u, err := unlock(ctx, f.env, rq, v, q, unlockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	objs, _ := u.sess.Find(ctx, hsm.Match{Class: hsm.ClassPrivateKey})
	if len(objs) != 1 || !objs[0].Sensitive || !objs[0].WrapWithTrusted || !objs[0].Private {
		t.Errorf("root private key attributes: %+v", objs)
	}
	out := tokenObjects(t, f, f.plan.ID, string(u.userPIN))
	if !strings.Contains(out, "Private Key Object") || !strings.Contains(out, "sensitive") {
		t.Errorf("pkcs11-tool sees:\n%s", out)
	}
	u.close(ctx)
	q.Wipe()

	jf, err := record.ReadJournalFile(res.JournalPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(record.OpenSteps(jf.Entries)) != 0 || jf.FinalHash == "" {
		t.Errorf("journal has open steps or no hash")
	}

	// Too few, foreign and duplicate shares change nothing.
	before := tokenObjects(t, f, f.plan.OperationsToken, "ops-pin-1234")
	for n := 1; n < f.plan.Threshold; n++ {
		var shares []string
		for i := 1; i <= n; i++ {
			shares = append(shares, p.shares[i])
		}
		_, err := IssueCA(ctx, f.env, f.quorum(t, shares...), IssueCARequest{CommonName: "X", OpsPIN: []byte("ops-pin-1234")})
		if !errors.Is(err, quorum.ErrRefused) {
			t.Errorf("%d shares: err = %v", n, err)
		}
	}
	dup := f.quorum(t, p.shares[1])
	if _, err := dup.Add(p.shares[1]); err == nil || !strings.Contains(err.Error(), "already entered") {
		t.Errorf("duplicate share: %v", err)
	}
	foreign := quorum.Share{CeremonyID: "other-root", Epoch: 1, Number: 2, Threshold: 3, Bytes: make([]byte, quorum.SecretLen+1)}.Encode()
	if _, err := dup.Add(foreign); err == nil || !strings.Contains(err.Error(), "another ceremony") {
		t.Errorf("foreign share: %v", err)
	}
	forged := quorum.Share{CeremonyID: f.plan.ID, Epoch: 1, Number: 3, Threshold: 3, Bytes: make([]byte, quorum.SecretLen+1)}
	if _, err := dup.Add(forged.Encode()); err == nil || !strings.Contains(err.Error(), "commitment") {
		t.Errorf("forged share: %v", err)
	}
	if after := tokenObjects(t, f, f.plan.OperationsToken, "ops-pin-1234"); after != before {
		t.Errorf("refused operations changed the operations token")
	}

	// issue-ca, then a root CRL revoking it.
	ica, err := IssueCA(ctx, f.env, f.quorum(t, p.shares[2], p.shares[3], p.shares[4]), IssueCARequest{CommonName: "Acme Devices CA 1", OpsPIN: []byte("ops-pin-1234")})
	if err != nil {
		t.Fatal(err)
	}
	openssl(t, "verify", "-CAfile", res.RootPath, ica.Path)
	// Both ceremonies showed the workstation's clock (UTC and local) and checked it against
	// the workspace's newest journal entry; the issue-ca record says so.
	for _, path := range []string{res.JournalPath, ica.JournalPath} {
		jf, err := record.ReadJournalFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var shown int
		for _, e := range jf.Entries {
			switch {
			case e.Step == "root.preflight" && e.Status == record.StatusDone:
				p, err := record.Decode[Preflight](e)
				if err != nil || p.ClockReading.Local == "" || !p.ClockReading.UTC.Equal(p.Clock) {
					t.Errorf("root.preflight's clock %+v, %v", p, err)
				}
				shown++
			case e.Step == "issue-ca.clock" && e.Status == record.StatusDone:
				c, err := record.Decode[run.ClockReading](e)
				if err != nil || c.Local == "" || c.NewestJournal == "" || c.NewestEntry.After(c.UTC.Add(time.Second)) {
					t.Errorf("issue-ca.clock %+v, %v", c, err)
				}
				shown++
			}
		}
		if shown != 1 {
			t.Errorf("%s shows the clock %d times", path, shown)
		}
	}
	if out, err := exec.Command("pdftotext", f.env.RecordPath(ica.RunID), "-").Output(); err != nil ||
		!strings.Contains(string(out), "clock (local)") || !strings.Contains(string(out), "newest journal entry") {
		t.Errorf("the issue-ca record does not show the clock: %v\n%s", err, out)
	}
	if txt := openssl(t, "x509", "-in", ica.Path, "-noout", "-text"); !strings.Contains(txt, "pathlen:0") {
		t.Errorf("issuing CA:\n%s", txt)
	}
	crl, err := RootCRL(ctx, f.env, f.quorum(t, p.shares[1], p.shares[2], p.shares[3]),
		RootCRLRequest{Revoke: pki.SerialHex(ica.Certificate.SerialNumber), Reason: pki.ReasonSuperseded})
	if err != nil {
		t.Fatal(err)
	}
	openssl(t, "crl", "-in", crl.CRL.PEMPath, "-CAfile", res.RootPath, "-noout", "-verify")
	if txt := openssl(t, "crl", "-in", crl.CRL.PEMPath, "-noout", "-text"); !strings.Contains(txt, "Superseded") {
		t.Errorf("CRL:\n%s", txt)
	}
	crl2, err := RootCRL(ctx, f.env, f.quorum(t, p.shares[1], p.shares[2], p.shares[3]), RootCRLRequest{})
	if err != nil || crl2.CRL.Number <= crl.CRL.Number {
		t.Fatalf("second CRL: %v, number %d after %d", err, crl2.CRL.Number, crl.CRL.Number)
	}

	// reshare: old shares stop working, new ones work.
	p2 := &people{}
	rs, err := Reshare(ctx, f.env, f.quorum(t, p.shares[1], p.shares[4], p.shares[5]),
		ReshareRequest{Custodians: []string{"Ann Ames", "李雷", "Zoë Ångström"}, Threshold: 2}, p2)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := LoadQuorum(ctx, f.env.Registry, f.plan.ID)
	if _, err := old.Add(p.shares[1]); err == nil || !strings.Contains(err.Error(), "epoch") {
		t.Errorf("old share after reshare: %v", err)
	}
	if _, err := RootCRL(ctx, f.env, f.quorum(t, p2.shares[2], p2.shares[3]), RootCRLRequest{}); err != nil {
		t.Fatalf("new shares after reshare: %v", err)
	}

	// restore into a new token: the restored key signs for the same certificate.
	if _, err := Restore(ctx, f.env, f.quorum(t, p2.shares[1], p2.shares[3]), RestoreRequest{Backup: rs.BackupPath, Token: "acme-root-b"}); err != nil {
		t.Fatal(err)
	}
	iss, _ := f.env.Registry.Issuer(ctx, f.plan.ID)
	if iss.Key.TokenLabel != "acme-root-b" {
		t.Errorf("root key location = %v", iss.Key)
	}
	if _, err := IssueCA(ctx, f.env, f.quorum(t, p2.shares[1], p2.shares[2]), IssueCARequest{CommonName: "Acme Devices CA 2", OpsPIN: []byte("ops-pin-1234")}); err != nil {
		t.Fatalf("issue-ca with the restored root: %v", err)
	}

	// destroy: nothing of the root remains on either token.
	if _, err := Destroy(ctx, f.env, f.quorum(t, p2.shares[2], p2.shares[3]), []byte("ops-pin-1234")); err != nil {
		t.Fatal(err)
	}
	for _, label := range []string{f.plan.ID, "acme-root-b"} {
		m := f.hsm.Open(t)
		s, err := m.OpenSession(ctx, label)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := s.Objects(ctx)
		if err != nil || len(objs) != 0 {
			t.Errorf("token %s after destroy (public view): %v %v", label, objs, err)
		}
		s.Close()
	}
	if _, err := LoadQuorum(ctx, f.env.Registry, f.plan.ID); err == nil {
		t.Error("a destroyed root still takes shares")
	}
}

func TestRootCeremonyRefusesExistingToken(t *testing.T) {
	f := newFixture(t, goodPlan)
	f.hsm.InitToken(t, f.plan.ID, "so-pin-1234", "user-pin-1234")
	_, err := Root(context.Background(), f.env, f.plan, []byte("ops-pin-1234"), &people{})
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("err = %v", err)
	}
}

// A PKCS#11 failure at any call of a root ceremony ends with a clear error, a journal that
// says where, and no key on any token that the journal does not account for.
func TestRootCeremonyFaultAtEveryCall(t *testing.T) {
	plan := strings.NewReplacer("ecdsa-p384", "ecdsa-p256", "Cole Carter, Zoë Ångström", "Zoë Ångström", "threshold: 3", "threshold: 2").Replace(goodPlan)
	f := newFixture(t, plan)
	log := &hsm.CallLog{}
	f.env.HSMOptions = []hsm.Option{hsm.WithFault(log.Fault)}
	if _, err := Root(context.Background(), f.env, f.plan, []byte("ops-pin-1234"), &people{}); err != nil {
		t.Fatal(err)
	}
	calls := log.Count()
	if testing.Short() {
		t.Skipf("%d calls; skipping the fault sweep in -short", calls)
	}
	for k := 1; k <= calls; k++ {
		for _, fault := range []struct {
			name string
			f    hsm.Fault
		}{{"device-error", hsm.FailCall(k, 0x30)}, {"removed", hsm.RemoveToken(k)}} {
			f := newFixture(t, plan)
			f.env.HSMOptions = []hsm.Option{hsm.WithFault(fault.f)}
			_, err := Root(context.Background(), f.env, f.plan, []byte("ops-pin-1234"), &people{})
			if err == nil {
				continue // the failed call was one the ceremony tolerates (a logout)
			}
			if err.Error() == "" {
				t.Fatalf("call %d %s: empty error", k, fault.name)
			}
			checkNoUnaccountedKeys(t, f, k, fault.name)
		}
	}
	t.Logf("injected %d faults (2 kinds × %d calls)", 2*calls, calls)
}

func checkNoUnaccountedKeys(t *testing.T, f *fixture, k int, kind string) {
	t.Helper()
	ctx := context.Background()
	runs, err := f.env.Registry.UnfinishedRuns(ctx)
	if err != nil || len(runs) > 1 {
		t.Fatalf("call %d %s: runs %v %v", k, kind, runs, err)
	}
	if len(runs) == 1 {
		jf, err := record.ReadJournalFile(runs[0].JournalPath)
		if err != nil {
			t.Fatalf("call %d %s: journal: %v", k, kind, err)
		}
		var failed bool
		for _, e := range jf.Entries {
			failed = failed || e.Status == record.StatusFailed
		}
		if !failed {
			t.Errorf("call %d %s: the journal names no failed step", k, kind)
		}
	}
	// Closed before the next fixture: SoftHSM2 reads its configuration when the module is
	// first opened, so a module left open would keep this fixture's token folder.
	m, err := hsm.Open(f.hsm.ModulePath)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// The operations token keeps no record-signer key of a failed run.
	if s, err := m.OpenSession(ctx, f.plan.OperationsToken); err == nil {
		if err := s.Login(ctx, hsm.User, []byte("ops-pin-1234")); err == nil {
			journal, _ := os.ReadFile(rootJournal(t, f))
			objs, _ := s.Objects(ctx)
			for _, o := range objs {
				if !strings.Contains(string(journal), hex.EncodeToString(o.ID)) {
					t.Errorf("call %d %s: operations token keeps %v, which the journal does not name", k, kind, o)
				}
			}
			s.Logout(ctx)
		}
		s.Close()
	}
	// The root token, if it exists under the ceremony's label, holds no key: a failed run
	// re-initialises it empty (as void-<id>) when it can. A root that was completed and
	// registered (only its record failed) is accounted for by the registry.
	if _, err := f.env.Registry.Issuer(ctx, f.plan.ID); err == nil {
		return
	}
	if _, err := m.TokenByLabel(ctx, f.plan.ID); err == nil {
		jf, _ := record.ReadJournalFile(rootJournal(t, f))
		var said bool
		for _, e := range jf.Entries {
			if e.Step == stepRollback {
				p, err := record.Decode[run.RolledBack](e)
				said = said || (err == nil && strings.Contains(p.Undone, "nobody can use it"))
			}
		}
		if !said {
			t.Errorf("call %d %s: root token %q left behind and the journal does not say why", k, kind, f.plan.ID)
		}
	}
}

// rootJournal is the journal of the fixture's last root ceremony run: its own id, not the
// plan's.
func rootJournal(t *testing.T, f *fixture) string {
	t.Helper()
	runs, err := f.env.Registry.RunsOf(context.Background(), f.plan.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(runs) - 1; i >= 0; i-- {
		if runs[i].Operation == "root" {
			if runs[i].ID == f.plan.ID {
				t.Errorf("the root ceremony's run id is the plan's id %q", f.plan.ID)
			}
			return runs[i].JournalPath
		}
	}
	t.Fatalf("no root ceremony run of %s", f.plan.ID)
	return ""
}

// handlers are the stopped-run handlers a front end offers for ceremonies.
var handlers = run.Handlers{Handler()}

// An issue-ca failing at any PKCS#11 call leaves no issuing CA key that the journal does not
// name, and the root usable.
func TestIssueCAFaultAtEveryCall(t *testing.T) {
	ctx := context.Background()
	plan := strings.NewReplacer("ecdsa-p384", "ecdsa-p256", "Cole Carter, Zoë Ångström", "Zoë Ångström", "threshold: 3", "threshold: 2").Replace(goodPlan)
	f := newFixture(t, plan)
	p := &people{}
	if _, err := Root(ctx, f.env, f.plan, []byte("ops-pin-1234"), p); err != nil {
		t.Fatal(err)
	}
	log := &hsm.CallLog{}
	f.env.HSMOptions = []hsm.Option{hsm.WithFault(log.Fault)}
	req := func() IssueCARequest {
		return IssueCARequest{CommonName: "CA", OpsPIN: []byte("ops-pin-1234"), Algorithm: keyalg.ECDSAP256}
	}
	if _, err := IssueCA(ctx, f.env, f.quorum(t, p.shares[1], p.shares[2]), req()); err != nil {
		t.Fatal(err)
	}
	calls := log.Count()
	if testing.Short() {
		t.Skipf("%d calls; skipping the fault sweep in -short", calls)
	}
	for k := 1; k <= calls; k++ {
		for _, fault := range []hsm.Fault{hsm.FailCall(k, 0x30), hsm.RemoveToken(k)} {
			f.env.HSMOptions = []hsm.Option{hsm.WithFault(fault)}
			_, err := IssueCA(ctx, f.env, f.quorum(t, p.shares[1], p.shares[3]), req())
			if err != nil && err.Error() == "" {
				t.Fatalf("call %d: empty error", k)
			}
		}
	}
	// Every round made the same calls, or the faults drifted away from where they were meant.
	log = &hsm.CallLog{}
	f.env.HSMOptions = []hsm.Option{hsm.WithFault(log.Fault)}
	if _, err := IssueCA(ctx, f.env, f.quorum(t, p.shares[1], p.shares[2]), req()); err != nil || log.Count() != calls {
		t.Errorf("a last issue-ca made %d calls (%v), the first %d", log.Count(), err, calls)
	}
	// With the token back, a person aborts the runs that stopped: a pulled token leaves
	// a key its run could not roll back, which abort destroys.
	f.env.HSMOptions = nil
	runs, _ := f.env.Registry.UnfinishedRuns(ctx)
	destroyed := 0
	for _, r := range runs {
		res, err := handlers.Abort(ctx, f.env, r.ID, run.PINs{Ops: []byte("ops-pin-1234")})
		if err != nil {
			t.Errorf("abort %s: %v", r.ID, err)
			continue
		}
		destroyed += len(res.Done)
	}
	// Every key on the operations token is the record signer, a registered issuing CA, or
	// named in a journal as rolled back.
	issuers, _ := f.env.Registry.Issuers(ctx)
	var known strings.Builder
	for _, i := range issuers {
		known.WriteString(hex.EncodeToString(i.Key.KeyID) + " ")
	}
	roles, _ := f.env.Registry.RoleCerts(ctx)
	for _, r := range roles {
		known.WriteString(hex.EncodeToString(r.Key.KeyID) + " ")
	}
	journals, _ := filepath.Glob(filepath.Join(f.env.Workspace.Dir, "journal", "*.jsonl"))
	for _, j := range journals {
		if _, err := record.ReadJournalFile(j); err != nil {
			t.Errorf("journal %s: %v", j, err)
		}
		b, _ := os.ReadFile(j)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "rollback") && strings.Contains(line, "none remain") {
				known.WriteString(line)
			}
		}
	}
	m, err := hsm.Open(f.hsm.ModulePath)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, _ := m.OpenSession(ctx, f.plan.OperationsToken)
	defer s.Close()
	s.Login(ctx, hsm.User, []byte("ops-pin-1234"))
	objs, _ := s.Objects(ctx)
	for _, o := range objs {
		id := hex.EncodeToString(o.ID)
		if !strings.Contains(known.String(), id) {
			t.Errorf("operations token keeps %v, which neither the registry nor a journal accounts for", o)
		}
	}
	if _, err := IssueCA(ctx, f.env, f.quorum(t, p.shares[2], p.shares[3]), req()); err != nil {
		t.Fatalf("issue-ca after the faults: %v", err)
	}
	t.Logf("injected %d faults into issue-ca (2 kinds × %d calls); %d stopped runs aborted, destroying %d keys a pulled token had kept", 2*calls, calls, len(runs), destroyed)
}

// After a reshare, the operations token's SO PIN (set by the root ceremony that created the
// token) is derived from the new secret: the old one no longer works.
func TestReshareRotatesOperationsTokenSOPIN(t *testing.T) {
	ctx := context.Background()
	plan := strings.NewReplacer("ecdsa-p384", "ecdsa-p256", "backup: true", "backup: false").Replace(goodPlan)
	f := newFixture(t, plan)
	p := &people{}
	if _, err := Root(ctx, f.env, f.plan, []byte("ops-pin-1234"), p); err != nil {
		t.Fatal(err)
	}
	q := f.quorum(t, p.shares[1], p.shares[2], p.shares[3])
	s, err := q.Secret()
	if err != nil {
		t.Fatal(err)
	}
	oldSO := quorum.OpsSOPIN.Derive(s, f.plan.ID)
	q.Wipe()
	stale := f.quorum(t, p.shares[1], p.shares[2], p.shares[3])
	p2 := &people{}
	if _, err := Reshare(ctx, f.env, f.quorum(t, p.shares[1], p.shares[2], p.shares[3]), ReshareRequest{Custodians: []string{"A", "B"}, Threshold: 2}, p2); err != nil {
		t.Fatal(err)
	}
	// Shares collected before the reshare are refused before any run starts.
	journals, _ := os.ReadDir(f.env.Workspace.Path("journal"))
	if _, err := IssueCA(ctx, f.env, stale, IssueCARequest{CommonName: "X", OpsPIN: []byte("ops-pin-1234")}); !errors.Is(err, quorum.ErrRefused) || !strings.Contains(err.Error(), "moved to epoch 2 after the shares of epoch 1 were entered") {
		t.Errorf("issue-ca with shares collected before the reshare: %v", err)
	}
	if after, _ := os.ReadDir(f.env.Workspace.Path("journal")); len(after) != len(journals) {
		t.Errorf("the refused issue-ca started a run")
	}
	m, _ := hsm.Open(f.hsm.ModulePath)
	defer m.Close()
	sess, _ := m.OpenSession(ctx, f.plan.OperationsToken)
	defer sess.Close()
	if err := sess.Login(ctx, hsm.SO, oldSO); err == nil {
		t.Error("the old secret's SO PIN still opens the operations token")
	}
	nq := f.quorum(t, p2.shares[1], p2.shares[2])
	ns, _ := nq.Secret()
	if err := sess.Login(ctx, hsm.SO, quorum.OpsSOPIN.Derive(ns, f.plan.ID)); err != nil {
		t.Errorf("the new secret's SO PIN: %v", err)
	}
	sess.Logout(ctx)
}

// A reshare failing at each PKCS#11 call in turn, with two tokens holding the root (the
// ceremony's and a restored one), leaves both opened by exactly one set of shares: the old
// one when the reshare failed (its PIN changes are undone on every holder, a failure on the
// second putting the first back), the new one when it completed. Never a holder that neither
// opens, nor two holders on different epochs.
func TestReshareFaultAtEveryCall(t *testing.T) {
	ctx := context.Background()
	plan := strings.NewReplacer("ecdsa-p384", "ecdsa-p256").Replace(goodPlan) // with a backup, and the operations token made by the root ceremony
	f := newFixture(t, plan)
	p := &people{}
	if _, err := Root(ctx, f.env, f.plan, []byte("ops-pin-1234"), p); err != nil {
		t.Fatal(err)
	}
	current := []string{p.shares[1], p.shares[2], p.shares[3]}
	// A second holder, restored from the backup: every reshare rotates both.
	if _, err := Restore(ctx, f.env, f.quorum(t, current...), RestoreRequest{Token: "acme-root-b",
		Backup: f.env.Workspace.Path("backup", f.plan.ID+"-epoch1.wrapped")}); err != nil {
		t.Fatal(err)
	}
	reshare := func(opts ...hsm.Option) error {
		next := &people{}
		f.env.HSMOptions = opts
		_, err := Reshare(ctx, f.env, f.quorum(t, current...), ReshareRequest{Custodians: []string{"Ann", "Bea", "Cai"}, Threshold: 2}, next)
		f.env.HSMOptions = nil
		if err == nil {
			current = []string{next.shares[1], next.shares[2]}
		}
		return err
	}
	// unlocks says whether shares open everything the quorum controls: both tokens that hold
	// the root as user and as SO, and the operations token as SO.
	unlocks := func(shares []string) bool {
		q, err := LoadQuorum(ctx, f.env.Registry, f.plan.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range shares {
			if _, err := q.Add(s); err != nil {
				return false // a share of another epoch
			}
		}
		s, err := q.Secret()
		if err != nil {
			return false
		}
		m, err := hsm.Open(f.hsm.ModulePath)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		login := func(token string, who hsm.UserType, pin quorum.PIN) bool {
			sess, err := m.OpenSession(ctx, token)
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			if err := sess.Login(ctx, who, pin.Derive(s, f.plan.ID)); err != nil {
				return false
			}
			sess.Logout(ctx)
			return true
		}
		return login(f.plan.ID, hsm.User, quorum.RootUserPIN) && login(f.plan.ID, hsm.SO, quorum.RootSOPIN) &&
			login("acme-root-b", hsm.User, quorum.RootUserPIN) && login("acme-root-b", hsm.SO, quorum.RootSOPIN) &&
			login(f.plan.OperationsToken, hsm.SO, quorum.OpsSOPIN)
	}
	log := &hsm.CallLog{}
	if err := reshare(hsm.WithFault(log.Fault)); err != nil {
		t.Fatal(err)
	}
	calls := log.Count()
	if testing.Short() {
		t.Skipf("%d calls; skipping the fault sweep in -short", calls)
	}
	failed := 0
	for k := 1; k <= calls; k++ {
		before := current
		err := reshare(hsm.WithFault(hsm.FailCall(k, 0x30)))
		if err != nil {
			failed++
			if !unlocks(before) {
				t.Fatalf("call %d: the reshare failed (%v) and the old shares no longer unlock the root", k, err)
			}
			continue
		}
		if !unlocks(current) {
			t.Fatalf("call %d: the reshare completed and the new shares do not unlock the root", k)
		}
		if unlocks(before) {
			t.Errorf("call %d: the reshare completed and the old shares still unlock the root", k)
		}
	}
	t.Logf("injected %d faults into a reshare: %d failed and left the old shares working, %d completed", calls, failed, calls-failed)
}

// A restore refuses a blob of another root, naming it, before any share is used or any token
// is touched.
func TestRestoreRefusesAnotherRootsBackup(t *testing.T) {
	ctx := context.Background()
	plan := strings.NewReplacer("ecdsa-p384", "ecdsa-p256").Replace(goodPlan)
	f := newFixture(t, plan)
	p := &people{}
	if _, err := Root(ctx, f.env, f.plan, []byte("ops-pin-1234"), p); err != nil {
		t.Fatal(err)
	}
	other, err := ParsePlan([]byte(strings.Replace(strings.Replace(plan, "/usr/lib/softhsm/libsofthsm2.so", f.hsm.ModulePath, 1),
		"id: "+f.plan.ID, "id: acme-root-2031", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Root(ctx, f.env, other, []byte("ops-pin-1234"), &people{}); err != nil {
		t.Fatal(err)
	}
	before, _ := f.env.Registry.RootHolders(ctx, f.plan.ID)
	_, err = Restore(ctx, f.env, f.quorum(t, p.shares[1], p.shares[2], p.shares[3]), RestoreRequest{Token: "acme-root-b",
		Backup: f.env.Workspace.Path("backup", "acme-root-2031-epoch1.wrapped")})
	if err == nil || !strings.Contains(err.Error(), "the backup of another root, acme-root-2031 (epoch 1), not of "+f.plan.ID) || run.FieldOf(err) != "Backup" {
		t.Errorf("a restore from another root's backup: %v", err)
	}
	if after, _ := f.env.Registry.RootHolders(ctx, f.plan.ID); len(after) != len(before) {
		t.Errorf("holders changed: %v -> %v", before, after)
	}
	m := f.hsm.Open(t)
	if _, err := m.TokenByLabel(ctx, "acme-root-b"); err == nil {
		t.Error("the refused restore made a token")
	}
}
