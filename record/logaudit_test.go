package record

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// history is a workspace's record log as runs fill it: a root ceremony, decommissionings, a
// reshare; the root co-signs the checkpoint at each quorum operation.
type history struct {
	t        *testing.T
	s        Signer
	key      *ecdsa.PrivateKey
	rootKey  *ecdsa.PrivateKey
	entries  []LogEntry
	m        memLog
	notes    []SignedNote // every checkpoint signed, as the registry keeps them
	rootOnes []SignedNote // those the root signed, as quorum records carry them
}

func newHistory(t *testing.T) *history {
	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, _ := signerWithRoot(t, key, rootKey)
	return &history{t: t, s: s, key: key, rootKey: rootKey}
}

// run logs a run and returns its proof, as its record would carry it.
func (h *history) run(kind string) *LogProof {
	e := LogEntry{Kind: kind, Run: fmt.Sprintf("%s-%02d", kind, len(h.entries)), JournalSHA256: fmt.Sprintf("%064x", len(h.entries)+1)}
	h.entries = append(h.entries, e)
	tree := h.m.add(h.t, int64(len(h.entries)-1), e.Text())
	return h.checkpoint(e, tree, ClaimsQuorum(kind) && h.rootKey != nil)
}

func (h *history) checkpoint(e LogEntry, tree tlog.Tree, quorum bool) *LogProof {
	rs, _ := NoteSigner(context.Background(), RoleRecordSigner, h.s.Certificate, h.key)
	cp, _ := SignNote(Checkpoint{Origin: LogOrigin("acme"), Size: tree.N, Hash: tree.Hash}.Text(), rs)
	p := &LogProof{Index: tree.N - 1, Entry: e}
	if quorum {
		rk, _ := NoteSigner(context.Background(), RoleRoot, h.s.Chain[0], h.rootKey)
		cp, _ = SignNote(cp, rk)
		p.Attestation, _ = SignNote(e.Text(), rk)
		h.rootOnes = append(h.rootOnes, SignedNote{Note: cp, Source: e.Run + ".pdf"})
	}
	p.Checkpoint = cp
	p.Proof, _ = tlog.ProveRecord(tree.N, p.Index, h.m.memHashes)
	h.notes = append(h.notes, SignedNote{Note: cp, Source: "registry"})
	return p
}

func (h *history) leaves() [][]byte {
	var out [][]byte
	for _, e := range h.entries {
		out = append(out, e.Text())
	}
	return out
}

func (h *history) audit(leaves [][]byte, notes []SignedNote) *LogAudit {
	a, err := AuditLog(LogOrigin("acme"), leaves, notes, h.s.Chain[0])
	if err != nil {
		h.t.Fatal(err)
	}
	return a
}

// cp is a proof's checkpoint, parsed.
func cp(t *testing.T, p *LogProof) Checkpoint {
	c, err := p.checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A record forged later with the operator's PIN alone (the record signer's key, and write
// access to the workspace) is either missing from the log or inconsistent with the root's
// checkpoints; and one appended after the last of them is reported as not yet covered.
func TestForgedRecordsAreCaught(t *testing.T) {
	h := newHistory(t)
	h.run("root")
	dec := h.run("decommission")
	h.run("decommission")
	h.run("reshare") // the root signs the log of 4
	after := h.run("decommission")

	real := h.audit(h.leaves(), h.notes)
	if err := real.Consistent(); err != nil || len(real.RootCheckpoints) != 2 {
		t.Fatalf("the honest log: %v, %d root checkpoints", err, len(real.RootCheckpoints))
	}
	if err := real.Holds(dec, cp(t, dec)); err != nil || real.CoveredBy(dec.Index) != 4 {
		t.Errorf("an honest record: %v, covered by %d", err, real.CoveredBy(dec.Index))
	}
	if err := real.Holds(after, cp(t, after)); err != nil || real.CoveredBy(after.Index) != 0 {
		t.Errorf("a record after the last root checkpoint: %v, covered by %d", err, real.CoveredBy(after.Index))
	}

	// 1. The forger signs a "destroy" record and a checkpoint of a log of his own, which the
	// workspace's log never held: missing from the log.
	fork := newHistory(t)
	fork.s, fork.key, fork.rootKey = h.s, h.key, nil // the operator has no root key
	fork.entries = append(fork.entries, h.entries[:2]...)
	for i, e := range fork.entries {
		fork.m.add(t, int64(i), e.Text())
	}
	forged := fork.run("destroy")
	if err := real.Holds(forged, cp(t, forged)); !errors.Is(err, ErrNotInLog) {
		t.Errorf("a record of a forked log: %v", err)
	}

	// 2. He rewrites the workspace's log to hold it where it belongs in time, before the
	// reshare: the log no longer agrees with the checkpoint the root signed at the reshare,
	// whether the auditor reads that from the registry or from the reshare's record.
	var leaves [][]byte
	for i, e := range h.entries {
		if i == 2 {
			fe := LogEntry{Kind: "destroy", Run: "destroy-forged", JournalSHA256: strings.Repeat("ee", 32)}
			leaves = append(leaves, fe.Text())
		}
		leaves = append(leaves, e.Text())
	}
	for _, notes := range [][]SignedNote{h.notes, h.rootOnes} {
		a := h.audit(leaves, notes)
		if err := a.Consistent(); err == nil || !strings.Contains(err.Error(), "not those the root signed") {
			t.Errorf("a log rewritten before the root's checkpoint: %v", err)
		}
	}
	// Deleting the root's checkpoints from the registry hides nothing the quorum records hold.
	if err := h.audit(leaves, h.rootOnes).Consistent(); err == nil {
		t.Error("the quorum records' checkpoints did not catch the rewrite")
	}
	// Cutting entries off the end is caught too.
	if err := h.audit(h.leaves()[:3], h.rootOnes).Consistent(); err == nil || !strings.Contains(err.Error(), "removed") {
		t.Errorf("a truncated log: %v", err)
	}

	// 3. He appends his record after the last root checkpoint: it is in the log, but not
	// covered by any checkpoint the root signed, and, claiming a quorum, it carries no root
	// attestation (TestVerifyChecksTheRecordLog shows Verify failing it).
	late := h.run("destroy")
	late.Attestation = nil
	a := h.audit(h.leaves(), h.notes[:len(h.notes)-1]) // without the root's signature he cannot add a root checkpoint
	if err := a.Holds(late, cp(t, late)); err != nil || a.CoveredBy(late.Index) != 0 {
		t.Errorf("a record appended at the end: %v, covered by %d", err, a.CoveredBy(late.Index))
	}

	// A checkpoint signed by someone else than the root counts for nothing.
	other := newHistory(t)
	forgedRoot := other.run("reshare")
	if a := h.audit(h.leaves(), []SignedNote{{Note: forgedRoot.Checkpoint}}); len(a.RootCheckpoints) != 0 {
		t.Error("another root's checkpoint was taken as the root's")
	}
}

func TestAuditLogRefusesBadLeaves(t *testing.T) {
	h := newHistory(t)
	h.run("root")
	h.run("decommission")
	leaves := h.leaves()
	if _, err := AuditLog("o", append(leaves, []byte("not an entry")), nil, h.s.Chain[0]); err == nil {
		t.Error("a malformed leaf was accepted")
	}
	if _, err := AuditLog("o", append(leaves, leaves[1]), nil, h.s.Chain[0]); err == nil || !strings.Contains(err.Error(), "both of run") {
		t.Errorf("a run logged twice: %v", err)
	}
}
