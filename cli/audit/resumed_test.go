package audit

import (
	"context"
	"crypto/x509"
	"os"
	"strings"
	"testing"

	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/run"
)

// A quorum run's record written after the run stopped, by the operator with no quorum
// (run.LogSeal.Resumed): it carries the root's attestation the journal noted before the stop
// and verifies; a run that stopped before the root attested it is logged by the operator
// alone, and verify fails its record saying so. Without Resumed, no quorum kind is logged
// without the root.
func TestResumedQuorumRecord(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, "resumed")
	env := w.open()
	defer env.Close()
	write := func(kind string, attestFirst bool) *record.Report {
		t.Helper()
		id := run.NewID(env, kind, "acme")
		j, err := record.CreateJournal(env.JournalPath(id), id)
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		if err := j.Note(kind+".step", record.System, nil); err != nil {
			t.Fatal(err)
		}
		seal := run.LogSeal{Kind: kind, RootID: "acme-root", Root: w.root}
		if attestFirst { // the run logged and attested, then stopped before its record
			attested := seal
			attested.RootKey = w.rootKey
			if _, err := run.EnterLog(ctx, env, j, attested, w.signer); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := run.EnterLog(ctx, env, j, seal, w.signer); err == nil || !strings.Contains(err.Error(), "needs the root key") {
			t.Errorf("a %s run logged without the root and not resumed: %v", kind, err)
		}
		seal.Resumed = true
		lp, err := run.EnterLog(ctx, env, j, seal, w.signer)
		if err != nil {
			t.Fatal(err)
		}
		jb, _ := j.Bytes()
		c := &record.Ceremony{ID: id, Kind: kind, Root: "acme-root", Outcome: "completed", Threshold: 2, Custodians: 3, Log: lp}
		path := env.RecordPath(id)
		if err := record.WriteCeremony(ctx, path, c, jb, w.signer); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		return record.Verify(b, []*x509.Certificate{w.root})
	}
	if rep := write("issue-ca", true); !rep.OK() || rep.Log == nil || rep.Log.Attestation == nil {
		t.Errorf("a resumed run the root attested before it stopped: %+v", rep.Checks)
	}
	rep := write("issue-ca", false)
	if rep.OK() {
		t.Fatal("a resumed record the root never attested verifies")
	}
	said := false
	for _, c := range rep.Checks {
		switch {
		case c.OK:
		case c.Name == record.CheckLogInclusion && strings.Contains(c.Detail, "not by every one of 2 keys"):
		case c.Name == record.CheckAttestation && strings.Contains(c.Detail, "speaks for the operator alone"):
			said = true
		default:
			t.Errorf("unexpected failure: %s: %s", c.Name, c.Detail)
		}
	}
	if !said {
		t.Errorf("verify does not say the record speaks for the operator alone: %+v", rep.Checks)
	}
}
