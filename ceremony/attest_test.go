package ceremony

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/custos-pki/custos/record"
)

// TestEveryQuorumRecordIsAttested runs every kind of run that claims a quorum, each with the
// operator PIN, and checks that its record carries the root's attestation and verifies under
// the root: every kind record.QuorumKinds names is made here, so a kind added there without
// its operation attesting fails this test. A check of fewer shares than a quorum cannot open
// the root: its record claims no quorum and says so.
func TestEveryQuorumRecordIsAttested(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, goodPlan)
	p := &people{}
	ops := []byte("ops-pin-1234")
	res, err := Root(ctx, f.env, f.plan, ops, p)
	if err != nil {
		t.Fatal(err)
	}
	roots := []*x509.Certificate{res.Root}
	made := map[string]string{"root": res.RunID} // kind -> run
	q := func(n ...int) func() []string {
		return func() []string {
			var out []string
			for _, i := range n {
				out = append(out, p.shares[i])
			}
			return out
		}
	}
	ica, err := IssueCA(ctx, f.env, f.quorum(t, q(1, 2, 3)()...), IssueCARequest{CommonName: "Acme Devices CA 1", OpsPIN: ops})
	if err != nil {
		t.Fatal(err)
	}
	made["issue-ca"] = ica.RunID
	crl, err := RootCRL(ctx, f.env, f.quorum(t, q(2, 3, 4)()...), RootCRLRequest{OpsPIN: ops})
	if err != nil {
		t.Fatal(err)
	}
	made["crl"] = crl.RunID
	// The same module under another path: a driver update the quorum accepts.
	mod := filepath.Join(t.TempDir(), "libsofthsm2-new.so")
	b, err := os.ReadFile(f.hsm.ModulePath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mod, b, 0o755); err != nil {
		t.Fatal(err)
	}
	sm, err := SetModule(ctx, f.env, f.quorum(t, q(3, 4, 5)()...), SetModuleRequest{Module: mod, OpsPIN: ops})
	if err != nil {
		t.Fatal(err)
	}
	made["set-module"] = sm.RunID
	rs, err := NewRecordSigner(ctx, f.env, f.quorum(t, q(1, 3, 5)()...), RecordSignerRequest{OpsPIN: ops})
	if err != nil {
		t.Fatal(err)
	}
	made["record-signer"] = rs.RunID
	rc, err := RetireCA(ctx, f.env, f.quorum(t, q(1, 2, 5)()...), RetireCARequest{Issuer: ica.IssuerID, OpsPIN: ops})
	if err != nil {
		t.Fatal(err)
	}
	made["retire-ca"] = rc.RunID
	shares := func(n ...int) []ShareInput {
		var in []ShareInput
		for _, s := range q(n...)() {
			in = append(in, ShareInput{Source: "paper", Text: []byte(s)})
		}
		return in
	}
	cs, err := CheckShares(ctx, f.env, f.plan.ID, shares(2, 4, 5), ops)
	if err != nil || !cs.Rebuilt {
		t.Fatalf("check-shares: %v, rebuilt %v", err, cs != nil && cs.Rebuilt)
	}
	made["check-shares"] = cs.RunID
	partial, err := CheckShares(ctx, f.env, f.plan.ID, shares(1), ops)
	if err != nil {
		t.Fatal(err)
	}
	p2 := &people{}
	re, err := Reshare(ctx, f.env, f.quorum(t, q(1, 4, 5)()...), ReshareRequest{Custodians: []string{"Ann Ames", "Bo Berg", "Cy Cole"}, Threshold: 2, OpsPIN: ops}, p2)
	if err != nil {
		t.Fatal(err)
	}
	made["reshare"] = re.RunID
	rst, err := Restore(ctx, f.env, f.quorum(t, p2.shares[1], p2.shares[3]), RestoreRequest{Backup: re.BackupPath, Token: "acme-root-b", OpsPIN: ops})
	if err != nil {
		t.Fatal(err)
	}
	made["restore"] = rst.RunID
	d, err := Destroy(ctx, f.env, f.quorum(t, p2.shares[2], p2.shares[3]), ops)
	if err != nil {
		t.Fatal(err)
	}
	made["destroy"] = d.RunID

	for _, kind := range record.QuorumKinds {
		id, ok := made[kind]
		if !ok {
			t.Errorf("no %s run was made: a kind that claims a quorum needs its operation here", kind)
			continue
		}
		rep := verifyRecord(t, f, id, roots)
		if !rep.OK() || !passed(rep, record.CheckAttestation) {
			t.Errorf("%s record %s does not verify with the root's attestation:\n%s", kind, id, reportText(rep))
		}
		if rep.Log == nil || rep.Log.Attestation == nil || rep.Kind != kind {
			t.Errorf("%s record: kind %q, log %+v", kind, rep.Kind, rep.Log)
		}
	}
	rep := verifyRecord(t, f, partial.RunID, roots)
	if !rep.OK() || rep.Kind != kindPartialCheck || rep.Log == nil || rep.Log.Attestation != nil {
		t.Errorf("a check of too few shares: kind %q, attestation %v:\n%s", rep.Kind, rep.Log != nil && rep.Log.Attestation != nil, reportText(rep))
	}
	if c := check(rep, record.CheckAttestation); c == nil || !strings.Contains(c.Detail, "operator alone") {
		t.Errorf("a check of too few shares does not say it speaks for the operator alone: %+v", c)
	}
}

func verifyRecord(t *testing.T, f *fixture, runID string, roots []*x509.Certificate) *record.Report {
	t.Helper()
	b, err := os.ReadFile(f.env.RecordPath(runID))
	if err != nil {
		t.Fatal(err)
	}
	return record.Verify(b, roots)
}

func check(rep *record.Report, name string) *record.Check {
	i := slices.IndexFunc(rep.Checks, func(c record.Check) bool { return c.Name == name })
	if i < 0 {
		return nil
	}
	return &rep.Checks[i]
}

func passed(rep *record.Report, name string) bool {
	c := check(rep, name)
	return c != nil && c.OK
}

func reportText(rep *record.Report) string {
	var b strings.Builder
	for _, c := range rep.Checks {
		mark := "PASS"
		if !c.OK {
			mark = "FAIL"
		}
		b.WriteString(mark + " " + c.Name + ": " + c.Detail + "\n")
	}
	return b.String()
}
