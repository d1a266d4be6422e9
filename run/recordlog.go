package run

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/workspace"
)

// StepLogged is noted when a run enters the record log, just before its record is written.
const StepLogged = "record.logged"

// Logged is the payload of StepLogged: the run's entry in the record log and its place there,
// the checkpoint signed after it, and the root's attestation at a quorum operation. These are
// the journaled facts the registry's log is rebuilt from: entry Index is
// record.LogEntry{Kind, Run, JournalSHA256}.Text(), and JournalSHA256 is the Prev of this note
// when nothing came between.
type Logged struct {
	Index         int64  `json:"index"`
	Kind          string `json:"kind"`
	Run           string `json:"run"`
	JournalSHA256 string `json:"journal_sha256"`
	LeafHash      string `json:"leaf_hash"` // hex SHA-256(0x00 || entry)
	Origin        string `json:"origin"`
	Size          int64  `json:"size"`       // the log's size at the checkpoint
	Checkpoint    string `json:"checkpoint"` // the signed note
	RootSigned    bool   `json:"root_signed"`
	Attestation   string `json:"attestation,omitempty"` // the root's signed note over the entry
}

// LogSeal says who vouches for a run in the record log. The record signer signs the
// checkpoint after every run; at a quorum operation (and the root ceremony) the root key, which
// the quorum has unlocked anyway, signs that checkpoint too and attests the run's entry.
type LogSeal struct {
	Kind    string            // root, issue-ca, crl, reshare, restore, destroy, decommission, fleet, check...
	RootID  string            // the root's ceremony id: names the log when this is its first entry
	Root    *x509.Certificate // the root the record signer chains to
	RootKey crypto.Signer     // the root's key, unlocked by the quorum; nil for an operator's run
	// Resumed is a quorum run whose record is written after it stopped, by the operator, with
	// no quorum (RootKey nil): it carries the root's attestation its journal already holds or,
	// when the run stopped before the root attested it, enters the log without one, and its
	// record then speaks for the operator alone (custos verify says so).
	Resumed bool
}

// EnterLog adds the run of journal j to the workspace's record log, signs the checkpoint
// after it (with the record signer, and the root when seal has its key), keeps that
// checkpoint in the registry, writes the root's attestation beside the record
// (records/<run>.attestation.txt), journals all of it (StepLogged) and returns what the
// record carries. A run logged before (a resumed run) keeps its entry; the checkpoint and
// proof are of the log as it is now.
func EnterLog(ctx context.Context, env Env, j *record.Journal, seal LogSeal, signer record.Signer) (*record.LogProof, error) {
	claims := record.ClaimsQuorum(seal.Kind)
	switch {
	case claims && seal.RootKey == nil && seal.Resumed:
		if p, ok, err := attestedBefore(ctx, env, j); ok || err != nil {
			return p, err
		}
	case claims && seal.RootKey == nil:
		return nil, fmt.Errorf("record log: a %s run claims a quorum, and needs the root key to attest it", seal.Kind)
	case !claims && seal.RootKey != nil:
		return nil, fmt.Errorf("record log: a %s run claims no quorum; the root does not attest it", seal.Kind)
	}
	reg := env.Registry.Journaled(JournalFacts(j)) // the log's changes are facts of the run's journal
	origin, ok, err := reg.LogOrigin(ctx)
	if err != nil {
		return nil, err
	}
	if !ok {
		origin = record.LogOrigin(seal.RootID)
	}
	entry := record.LogEntry{Kind: seal.Kind, Run: j.Run(), JournalSHA256: j.FinalHash()}
	if err := entry.Valid(); err != nil {
		return nil, err
	}
	leaf, tree, existed, err := reg.AppendLog(ctx, origin, registry.LogLeaf{RunID: entry.Run, Kind: entry.Kind,
		JournalSHA256: entry.JournalSHA256, Leaf: entry.Text()})
	if err != nil {
		return nil, err
	}
	if existed {
		if entry, err = record.ParseLogEntry(leaf.Leaf); err != nil {
			return nil, fmt.Errorf("record log: the registry's entry of %s: %w", leaf.RunID, err)
		}
	}
	signers, err := logSigners(ctx, seal, signer)
	if err != nil {
		return nil, err
	}
	cp := record.Checkpoint{Origin: origin, Size: tree.N, Hash: tree.Hash}
	checkpoint, err := record.SignNote(cp.Text(), signers...)
	if err != nil {
		return nil, fmt.Errorf("record log: sign the checkpoint: %w", err)
	}
	p := &record.LogProof{Index: leaf.Index, Entry: entry, Checkpoint: checkpoint}
	if seal.RootKey != nil {
		if p.Attestation, err = keepAttestation(env, entry, signers[1]); err != nil {
			return nil, err
		}
	}
	if err := reg.AddLogCheckpoint(ctx, registry.LogCheckpoint{Size: tree.N, RootHash: tree.Hash, Note: checkpoint,
		RunID: entry.Run, RootSigned: seal.RootKey != nil}); err != nil {
		return nil, err
	}
	if p.Proof, err = reg.ProveLeaf(ctx, leaf.Index, tree.N); err != nil {
		return nil, err
	}
	lh := entry.LeafHash()
	if err := j.Note(StepLogged, record.System, Logged{Index: leaf.Index, Kind: entry.Kind, Run: entry.Run,
		JournalSHA256: entry.JournalSHA256, LeafHash: hex.EncodeToString(lh[:]), Origin: origin, Size: tree.N,
		Checkpoint: string(checkpoint), RootSigned: seal.RootKey != nil, Attestation: string(p.Attestation)}); err != nil {
		return nil, err
	}
	return p, nil
}

// logSigners are the record signer's note signer, then the root's when seal has its key.
func logSigners(ctx context.Context, seal LogSeal, signer record.Signer) ([]note.Signer, error) {
	rs, err := record.NoteSigner(ctx, record.RoleRecordSigner, signer.Certificate, signer.Key)
	if err != nil {
		return nil, fmt.Errorf("record log: %w", err)
	}
	out := []note.Signer{rs}
	if seal.RootKey != nil {
		root, err := record.NoteSigner(ctx, record.RoleRoot, seal.Root, seal.RootKey)
		if err != nil {
			return nil, fmt.Errorf("record log: %w", err)
		}
		out = append(out, root)
	}
	return out, nil
}

// AttestationPath is where the root's attestation of run id is kept: beside its record.
func (e Env) AttestationPath(id string) string {
	return strings.TrimSuffix(e.RecordPath(id), ".pdf") + ".attestation.txt"
}

// keepAttestation has the root sign the entry and keeps the attestation in the workspace. A
// resumed run finds its attestation there and carries that one, if it attests the same entry.
func keepAttestation(env Env, entry record.LogEntry, root note.Signer) ([]byte, error) {
	path := env.AttestationPath(entry.Run)
	if old, err := os.ReadFile(path); err == nil {
		v, ok := root.(note.Verifier)
		if !ok {
			return nil, errors.New("record log: the root's note signer cannot verify")
		}
		if text, _, err := record.OpenNote(old, v); err == nil && text == string(entry.Text()) {
			return old, nil
		}
		return nil, fmt.Errorf("record log: %s holds another attestation than this run's entry: move it aside and run again", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	att, err := record.SignNote(entry.Text(), root)
	if err != nil {
		return nil, fmt.Errorf("record log: the root's attestation: %w", err)
	}
	if err := workspace.CreateExclusive(path, att, 0o644); err != nil {
		return nil, fmt.Errorf("record log: keep the attestation: %w", err)
	}
	return bytes.Clone(att), nil
}

// attestedBefore is the run's place in the record log as its journal j noted it when the root
// attested it (a StepLogged note the root signed), for a record written after the run stopped;
// ok is false when the journal has none.
func attestedBefore(ctx context.Context, env Env, j *record.Journal) (p *record.LogProof, ok bool, err error) {
	var last *Logged
	for _, e := range j.Entries() {
		if e.Step != StepLogged {
			continue
		}
		l, err := record.Decode[Logged](e)
		if err != nil {
			return nil, false, fmt.Errorf("record log: the journal's %s: %w", StepLogged, err)
		}
		if l.RootSigned && l.Run == j.Run() {
			last = &l
		}
	}
	if last == nil {
		return nil, false, nil
	}
	p = &record.LogProof{Index: last.Index, Entry: record.LogEntry{Kind: last.Kind, Run: last.Run, JournalSHA256: last.JournalSHA256},
		Checkpoint: []byte(last.Checkpoint), Attestation: []byte(last.Attestation)}
	if p.Proof, err = env.Registry.ProveLeaf(ctx, last.Index, last.Size); err != nil {
		return nil, false, err
	}
	return p, true, nil
}
