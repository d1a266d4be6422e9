package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// audit runs custos-verify with args and returns its exit status and output.
func audit(args ...string) (int, string, string) {
	var out, errs bytes.Buffer
	code := Program().Run(context.Background(), args, command.Streams{Out: &out, Err: &errs})
	return code, out.String(), errs.String()
}

// snapshot is every file under dir with its content hash and modification time.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, _ := d.Info()
		data, _ := os.ReadFile(path)
		fmt.Fprintf(&b, "%s %v %x %v\n", path, fi.Mode(), sha256.Sum256(data), fi.ModTime().UnixNano())
		return nil
	})
	return b.String()
}

// The auditor's commands read a workspace and change nothing in it: every file stays as it
// was, and none appears, also where there is no workspace at all.
func TestAuditorsCommandsChangeNothing(t *testing.T) {
	w := newWorld(t, "acme")
	rec := w.record("root")
	w.record("decommission")
	before := snapshot(t, w.dir)
	for _, args := range [][]string{
		{"verify", rec, "--workspace", w.dir},
		{"verify", rec, "--workspace", w.dir, "--root", w.rootPEM},
		{"log", "checkpoint", "--workspace", w.dir},
		{"log", "verify", "--workspace", w.dir, rec},
	} {
		if code, out, errs := audit(args...); code != command.ExitOK {
			t.Errorf("%v: exit %d\n%s%s", args, code, out, errs)
		}
	}
	if after := snapshot(t, w.dir); after != before {
		t.Errorf("the workspace changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// In a folder with no workspace: nothing is created.
	nowhere := filepath.Join(t.TempDir(), "no-workspace")
	if code, out, errs := audit("verify", rec, "--root", w.rootPEM, "--workspace", nowhere); code != command.ExitOK {
		t.Errorf("verify with --root and no workspace: exit %d\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(nowhere); !os.IsNotExist(err) {
		t.Errorf("verify created %s", nowhere)
	}
}

// verify names the root it checked against, and will not guess between several.
func TestVerifyNamesTheRootAndWillNotGuess(t *testing.T) {
	w := newWorld(t, "acme")
	rec := w.record("reshare")
	code, out, _ := audit("verify", rec, "--workspace", w.dir)
	if code != command.ExitOK || !strings.Contains(out, "root  "+w.root.Subject.String()+", SHA-256 "+fingerprint(w.root)) ||
		!strings.Contains(out, "PASS  root attests the quorum operation") {
		t.Errorf("exit %d:\n%s", code, out)
	}
	// A look-alike root with the same name, registered beside the first.
	look := newWorld(t, "acme")
	env := w.open()
	_, err := w.journaled(env).AddIssuer(context.Background(), registry.Issuer{ID: "lookalike", Kind: registry.IssuerRoot, Certificate: look.root.Raw,
		CeremonyID: "lookalike", Key: registry.KeyLocation{TokenLabel: "lookalike", KeyID: []byte{2}, Algorithm: "ecdsa-p256"}})
	env.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, _, errs := audit("verify", rec, "--workspace", w.dir)
	if code != command.ExitFail || !strings.Contains(errs, "has 2 roots") || !strings.Contains(errs, "will not guess") ||
		!strings.Contains(errs, fingerprint(look.root)) {
		t.Errorf("two roots: exit %d: %s", code, errs)
	}
	if code, out, _ := audit("verify", rec, "--workspace", w.dir, "--root", look.rootPEM); code != command.ExitFail ||
		!strings.Contains(out, "FAIL  signer chains to the root") {
		t.Errorf("the look-alike root given: exit %d:\n%s", code, out)
	}
	if code, out, _ := audit("verify", rec, "--workspace", w.dir, "--root", w.rootPEM); code != command.ExitOK {
		t.Errorf("the right root given: exit %d:\n%s", code, out)
	}
}

// A record signed after its signer's revocation on the root's CRL fails; one signed before
// passes and says when the signer was revoked; the newest CRL counts, or the one given.
func TestVerifyChecksTheSignerAgainstTheRootCRL(t *testing.T) {
	w := newWorld(t, "acme")
	rec := w.record("decommission")
	if _, out, _ := audit("verify", rec, "--workspace", w.dir); !strings.Contains(out, "NOTE  the signer's revocation was not checked") {
		t.Errorf("no CRL:\n%s", out)
	}
	w.crl(1, time.Time{})
	if code, out, _ := audit("verify", rec, "--workspace", w.dir); code != command.ExitOK || !strings.Contains(out, "PASS  signer was not revoked when it signed: not on the root's CRL number 1") {
		t.Errorf("a CRL without the signer: exit %d\n%s", code, out)
	}
	later := w.crl(2, time.Now().Add(time.Hour))
	if code, out, _ := audit("verify", rec, "--workspace", w.dir); code != command.ExitOK || !strings.Contains(out, "after it signed") {
		t.Errorf("revoked after signing: exit %d\n%s", code, out)
	}
	before := w.crl(3, time.Now().Add(-time.Hour))
	code, out, _ := audit("verify", rec, "--workspace", w.dir)
	if code != command.ExitFail || !strings.Contains(out, "FAIL  signer was not revoked when it signed") || !strings.Contains(out, "a revoked record signer signs no record") {
		t.Errorf("revoked before signing, newest CRL: exit %d\n%s", code, out)
	}
	if code, out, _ := audit("verify", rec, "--workspace", w.dir, "--crl", later); code != command.ExitOK {
		t.Errorf("--crl with the older CRL: exit %d\n%s", code, out)
	}
	if code, _, _ := audit("verify", rec, "--root", w.rootPEM, "--crl", before, "--workspace", filepath.Join(t.TempDir(), "none")); code != command.ExitFail {
		t.Errorf("--crl revoking before signing, no workspace: exit %d", code)
	}
	other := newWorld(t, "other")
	if code, _, errs := audit("verify", rec, "--workspace", w.dir, "--crl", other.crl(1, time.Time{})); code == command.ExitOK || !strings.Contains(errs, "is not a CRL of the root") {
		t.Errorf("another root's CRL: exit %d %s", code, errs)
	}
}

// rewriteLog replaces the workspace's record log by leaves, as an insider who can write the
// workspace would; keepCheckpoints false deletes the kept checkpoints too.
func rewriteLog(t *testing.T, dir string, leaves [][]byte, keepCheckpoints bool) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, "custos.db"))
	if err != nil {
		t.Fatal(err)
	}
	stmts := []string{`DELETE FROM record_log`, `DELETE FROM record_log_hashes`}
	if !keepCheckpoints {
		stmts = append(stmts, `DELETE FROM record_log_checkpoints`)
	}
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	reg, err := registry.Open(context.Background(), filepath.Join(dir, "custos.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	// The forger journals the rewrite as Custos would, in a journal of their own.
	j, err := record.CreateJournal(filepath.Join(t.TempDir(), "forger.jsonl"), "forger")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	reg = reg.Journaled(run.JournalFacts(j))
	origin, _, _ := reg.LogOrigin(context.Background())
	for _, l := range leaves {
		e, err := record.ParseLogEntry(l)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := reg.AppendLog(context.Background(), origin, registry.LogLeaf{RunID: e.Run, Kind: e.Kind, JournalSHA256: e.JournalSHA256, Leaf: l}); err != nil {
			t.Fatal(err)
		}
	}
}

// forge writes, with the record signer's key alone, a record of a run that never happened,
// entered in the log of workspace dir as it now stands; kind "destroy" claims a quorum.
func (w *world) forge(dir, kind string) (string, [][]byte) {
	w.t.Helper()
	ctx := context.Background()
	env, err := run.Open(ctx, dir)
	if err != nil {
		w.t.Fatal(err)
	}
	defer env.Close()
	id := run.NewID(env, kind, "acme")
	j, err := record.CreateJournal(filepath.Join(w.t.TempDir(), id+".jsonl"), id)
	if err != nil {
		w.t.Fatal(err)
	}
	defer j.Close()
	j.Note(kind+".done", record.Actor{Name: "Cara Cruz, Cody Chen, Zoë Ångström", Role: "custodians"}, nil)
	e := record.LogEntry{Kind: kind, Run: id, JournalSHA256: j.FinalHash()}
	origin, _, _ := env.Registry.LogOrigin(ctx)
	leaf, tree, _, err := env.Registry.Journaled(run.JournalFacts(j)).AppendLog(ctx, origin, registry.LogLeaf{RunID: id, Kind: kind, JournalSHA256: e.JournalSHA256, Leaf: e.Text()})
	if err != nil {
		w.t.Fatal(err)
	}
	rs, _ := record.NoteSigner(ctx, record.RoleRecordSigner, w.signer.Certificate, w.signerKey)
	cp, _ := record.SignNote(record.Checkpoint{Origin: origin, Size: tree.N, Hash: tree.Hash}.Text(), rs)
	proof, _ := env.Registry.ProveLeaf(ctx, leaf.Index, tree.N)
	jb, _ := j.Bytes()
	path := filepath.Join(w.t.TempDir(), "forged-"+kind+".pdf")
	c := &record.Ceremony{ID: id, Kind: kind, Root: "acme-root", Outcome: "completed: root destroyed, 3 of 4 custodians present",
		Threshold: 3, Custodians: 4, Log: &record.LogProof{Index: leaf.Index, Entry: e, Checkpoint: cp, Proof: proof}}
	if err := record.WriteCeremony(ctx, path, c, jb, w.signer); err != nil {
		w.t.Fatal(err)
	}
	leaves, _ := env.Registry.LogLeaves(ctx)
	var out [][]byte
	for _, l := range leaves {
		out = append(out, l.Leaf)
	}
	return path, out
}

// copyDir copies a workspace, for a forger's private copy.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, _ := os.ReadFile(path)
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
}

// A record forged later with the operator's PIN alone (the record signer's key and write
// access to the workspace) is either missing from the log, or the log no longer agrees with
// the root's checkpoints, or, appended at its end, it is not covered by any and, claiming a
// quorum, fails verify for want of the root's attestation.
func TestLogVerifyCatchesForgedRecords(t *testing.T) {
	w := newWorld(t, "acme")
	records := []string{w.record("root"), w.record("decommission"), w.record("decommission")}
	reshare := w.record("reshare") // the root signs the log of 4
	last := w.record("decommission")
	all := append(append(records, reshare), last)
	code, out, errs := audit(append([]string{"log", "verify", "--workspace", w.dir}, all...)...)
	if code != command.ExitOK || !strings.Contains(out, "covered by the root's checkpoint of 4 entries") ||
		!strings.Contains(out, "NOTE  not yet covered by a checkpoint the root signed: entries 4 (decommission") {
		t.Fatalf("the honest workspace: exit %d\n%s%s", code, out, errs)
	}

	// 1. Forged in a private copy of the workspace: the real log does not hold it.
	private := filepath.Join(t.TempDir(), "copy")
	copyDir(t, w.dir, private)
	forged, _ := w.forge(private, "decommission")
	if code, out, _ := audit("log", "verify", "--workspace", w.dir, forged); code != command.ExitFail || !strings.Contains(out, "not in the record log") {
		t.Errorf("a record of a private copy: exit %d\n%s", code, out)
	}
	// Claiming a quorum, it fails verify itself: the root signed neither its checkpoint nor
	// an attestation.
	destroy, _ := w.forge(private, "destroy")
	if code, out, _ := audit("verify", destroy, "--workspace", w.dir); code != command.ExitFail ||
		!strings.Contains(out, "FAIL  record is in the record log's checkpoint") || !strings.Contains(out, "FAIL  root attests the quorum operation") {
		t.Errorf("a forged destroy record: exit %d\n%s", code, out)
	}

	// 2. Forged into the real log where it belongs in time, before the reshare: the log no
	// longer agrees with the checkpoint the root signed at the reshare, whether that is read
	// from the registry or, the registry's copies deleted, from the reshare's record.
	inserted, leaves := w.forge(w.dir, "decommission")
	forgedLeaf := leaves[len(leaves)-1]
	rewritten := append(append(append([][]byte{}, leaves[:2]...), forgedLeaf), leaves[2:len(leaves)-1]...)
	rewriteLog(t, w.dir, rewritten, true)
	code, out, _ = audit("log", "verify", "--workspace", w.dir)
	if code != command.ExitFail || !strings.Contains(out, "FAIL  the log agrees with the root's checkpoint of 4 entries (from the registry)") {
		t.Errorf("a log rewritten before the reshare: exit %d\n%s", code, out)
	}
	rewriteLog(t, w.dir, rewritten, false)
	code, out, _ = audit("log", "verify", "--workspace", w.dir, reshare)
	if code != command.ExitFail || !strings.Contains(out, "FAIL  the log agrees with the root's checkpoint of 4 entries (from "+reshare+")") {
		t.Errorf("the root's checkpoints deleted, the reshare's record given: exit %d\n%s", code, out)
	}
	_ = inserted
}
