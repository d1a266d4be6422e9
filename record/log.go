package record

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// The record log is an append-only Merkle tree (RFC 6962 hashing, golang.org/x/mod/sumdb/tlog)
// of every run that ends in a record, kept in the registry. A leaf is a LogEntry's text: the
// run's kind, its id, and the SHA-256 of its journal's last line when it was logged. After each
// run the record signer signs a checkpoint (C2SP tlog-checkpoint: origin, size, root hash)
// of the log as a signed note; at each quorum operation the root signs it too, and signs the
// run's entry as its attestation. Every record carries its entry, that checkpoint and the
// proof that the entry is in it (a LogProof). A record forged later with the operator's PIN
// alone is then either not in the log, or in a log that no longer agrees with the checkpoints
// the root signed.

// LogEntry is a run as the record log holds it.
type LogEntry struct {
	Kind          string // root, issue-ca, crl, reshare, restore, destroy, decommission, fleet...
	Run           string // the run id
	JournalSHA256 string // hex SHA-256 of the journal's last line when the run was logged
}

const logEntryHeader = "custos record log entry"

// Text is the entry as the log hashes it, and as the root signs it in an attestation:
//
//	custos record log entry
//	kind <kind>
//	run <run id>
//	journal-sha256 <64 hex digits>
func (e LogEntry) Text() []byte {
	return []byte(logEntryHeader + "\nkind " + e.Kind + "\nrun " + e.Run + "\njournal-sha256 " + e.JournalSHA256 + "\n")
}

// LeafHash is the entry's leaf hash in the log: SHA-256(0x00 || Text()).
func (e LogEntry) LeafHash() tlog.Hash { return tlog.RecordHash(e.Text()) }

// Valid says what is wrong with an entry, or nil.
func (e LogEntry) Valid() error {
	for name, v := range map[string]string{"kind": e.Kind, "run": e.Run} {
		if v == "" || strings.ContainsAny(v, " \n\r\t") {
			return fmt.Errorf("record log entry: the %s %q is empty or has white space", name, v)
		}
	}
	if b, err := hex.DecodeString(e.JournalSHA256); err != nil || len(b) != 32 || strings.ToLower(e.JournalSHA256) != e.JournalSHA256 {
		return fmt.Errorf("record log entry: journal hash %q is not 64 lower-case hex digits", e.JournalSHA256)
	}
	return nil
}

// ParseLogEntry reads an entry's text; anything but the exact form Text writes is refused.
func ParseLogEntry(b []byte) (LogEntry, error) {
	lines := strings.Split(string(b), "\n")
	if len(lines) != 5 || lines[0] != logEntryHeader || lines[4] != "" {
		return LogEntry{}, errors.New("not a record log entry")
	}
	var e LogEntry
	for i, f := range []struct {
		key string
		dst *string
	}{{"kind ", &e.Kind}, {"run ", &e.Run}, {"journal-sha256 ", &e.JournalSHA256}} {
		v, ok := strings.CutPrefix(lines[1+i], f.key)
		if !ok {
			return LogEntry{}, fmt.Errorf("record log entry: line %d is not %q", i+2, strings.TrimSpace(f.key))
		}
		*f.dst = v
	}
	if err := e.Valid(); err != nil {
		return LogEntry{}, err
	}
	if !bytes.Equal(e.Text(), b) {
		return LogEntry{}, errors.New("record log entry: not in its canonical form")
	}
	return e, nil
}

// Checkpoint is the state of the record log, as C2SP tlog-checkpoint writes it.
type Checkpoint struct {
	Origin string // the log's name: custos/<the root of the first ceremony>/record-log
	Size   int64
	Hash   tlog.Hash
}

// Text is the checkpoint's note text: the origin, the size in decimal, the root hash in
// base64, each on its line.
func (c Checkpoint) Text() []byte {
	return []byte(c.Origin + "\n" + strconv.FormatInt(c.Size, 10) + "\n" + c.Hash.String() + "\n")
}

// LogOrigin is the origin line of a workspace's record log, named after the root whose
// ceremony began it.
func LogOrigin(rootID string) string { return "custos/" + rootID + "/record-log" }

// ParseCheckpoint reads a checkpoint's note text (without signatures).
func ParseCheckpoint(text string) (Checkpoint, error) {
	lines := strings.Split(text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" || lines[0] == "" {
		return Checkpoint{}, errors.New("not a checkpoint: it needs an origin, a size and a root hash, each on its line")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return Checkpoint{}, fmt.Errorf("checkpoint: size %q is not a decimal number", lines[1])
	}
	h, err := tlog.ParseHash(lines[2])
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint: root hash %q: %w", lines[2], err)
	}
	return Checkpoint{Origin: lines[0], Size: size, Hash: h}, nil
}

// LogProof is a record's place in the record log: its entry at Index, the checkpoint signed
// right after it was logged, the proof that the entry is in that checkpoint's tree, and for a
// quorum operation the root's attestation (a signed note whose text is the entry's).
type LogProof struct {
	Index       int64
	Entry       LogEntry
	Checkpoint  []byte // the signed note
	Proof       tlog.RecordProof
	Attestation []byte // nil when the root did not take part
}

// Names of the files a record carries its LogProof in.
const (
	LogEntryAttachment    = "log-entry.txt"
	CheckpointAttachment  = "checkpoint.txt"
	ProofAttachment       = "inclusion-proof.txt"
	AttestationAttachment = "attestation.txt"
)

// proofText is the inclusion proof as a record carries it: "index N", "size S", then one
// base64 hash per line, from the leaf up.
func (p *LogProof) proofText(size int64) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "index %d\nsize %d\n", p.Index, size)
	for _, h := range p.Proof {
		b.WriteString(h.String() + "\n")
	}
	return []byte(b.String())
}

func parseProof(b []byte) (index, size int64, proof tlog.RecordProof, err error) {
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) < 2 {
		return 0, 0, nil, errors.New("inclusion proof: too short")
	}
	if _, err := fmt.Sscanf(lines[0], "index %d", &index); err != nil {
		return 0, 0, nil, fmt.Errorf("inclusion proof: %q is not an index", lines[0])
	}
	if _, err := fmt.Sscanf(lines[1], "size %d", &size); err != nil {
		return 0, 0, nil, fmt.Errorf("inclusion proof: %q is not a size", lines[1])
	}
	for _, l := range lines[2:] {
		h, err := tlog.ParseHash(l)
		if err != nil {
			return 0, 0, nil, fmt.Errorf("inclusion proof: %q: %w", l, err)
		}
		proof = append(proof, h)
	}
	return index, size, proof, nil
}

// attachments are the files a record carries the proof in.
func (p *LogProof) attachments() ([]Attachment, error) {
	cp, err := p.checkpoint()
	if err != nil {
		return nil, err
	}
	files := []Attachment{
		{Name: LogEntryAttachment, MIME: "text/plain", Relationship: RelSupplement, Content: p.Entry.Text(),
			Description: "this run's entry in the record log, as hashed into it"},
		{Name: CheckpointAttachment, MIME: "text/plain", Relationship: RelSupplement, Content: p.Checkpoint,
			Description: "the record log's checkpoint after this run (C2SP tlog-checkpoint, signed note)"},
		{Name: ProofAttachment, MIME: "text/plain", Relationship: RelSupplement, Content: p.proofText(cp.Size),
			Description: "the proof that the entry is in the checkpoint's tree (RFC 6962 hashes, base64)"},
	}
	if p.Attestation != nil {
		files = append(files, Attachment{Name: AttestationAttachment, MIME: "text/plain", Relationship: RelSupplement,
			Content: p.Attestation, Description: "the root's attestation of this quorum operation (signed note over the log entry)"})
	}
	return files, nil
}

// checkpoint is the checkpoint's note text parsed, signatures not checked.
func (p *LogProof) checkpoint() (Checkpoint, error) {
	text, _, _ := strings.Cut(string(p.Checkpoint), "\n\n")
	return ParseCheckpoint(text + "\n")
}

// logProofOf reads a record's LogProof from its attachments; nil when it carries none.
func logProofOf(files map[string][]byte) (*LogProof, error) {
	entry, ok := files[LogEntryAttachment]
	if !ok {
		return nil, nil
	}
	e, err := ParseLogEntry(entry)
	if err != nil {
		return nil, err
	}
	p := &LogProof{Entry: e, Checkpoint: files[CheckpointAttachment], Attestation: files[AttestationAttachment]}
	if p.Checkpoint == nil || files[ProofAttachment] == nil {
		return nil, fmt.Errorf("the record carries its log entry without %s and %s", CheckpointAttachment, ProofAttachment)
	}
	var size int64
	if p.Index, size, p.Proof, err = parseProof(files[ProofAttachment]); err != nil {
		return nil, err
	}
	cp, err := p.checkpoint()
	if err != nil {
		return nil, err
	}
	if cp.Size != size {
		return nil, fmt.Errorf("the inclusion proof is for a log of %d entries, the checkpoint of %d", size, cp.Size)
	}
	return p, nil
}

// Check verifies the proof: the checkpoint is signed by the record signer cert (and, when
// root is not nil, by the root too), and the entry is leaf Index of the checkpoint's tree. It
// returns the checkpoint and the names of the keys that signed it.
func (p *LogProof) Check(recordSigner, root *x509.Certificate) (Checkpoint, []string, error) {
	rs, err := NoteVerifier(RoleRecordSigner, recordSigner)
	if err != nil {
		return Checkpoint{}, nil, err
	}
	verifiers := []note.Verifier{rs}
	if root != nil {
		rv, err := NoteVerifier(RoleRoot, root)
		if err != nil {
			return Checkpoint{}, nil, err
		}
		verifiers = append(verifiers, rv)
	}
	text, signed, err := OpenNote(p.Checkpoint, verifiers...)
	if err != nil {
		return Checkpoint{}, nil, fmt.Errorf("checkpoint: %w", err)
	}
	if len(signed) != len(verifiers) {
		return Checkpoint{}, signed, fmt.Errorf("checkpoint: signed by %v, not by every one of %d keys", signed, len(verifiers))
	}
	cp, err := ParseCheckpoint(text)
	if err != nil {
		return Checkpoint{}, nil, err
	}
	if p.Index < 0 || p.Index >= cp.Size {
		return cp, signed, fmt.Errorf("entry %d cannot be in a log of %d entries", p.Index, cp.Size)
	}
	if err := tlog.CheckRecord(p.Proof, cp.Size, cp.Hash, p.Index, p.Entry.LeafHash()); err != nil {
		return cp, signed, fmt.Errorf("the entry is not leaf %d of the checkpoint's tree: %w", p.Index, err)
	}
	return cp, signed, nil
}

// QuorumKinds are the kinds of run that claim a quorum of custodians: their records need the
// root's attestation.
var QuorumKinds = []string{"root", "issue-ca", "crl", "reshare", "restore", "destroy", "set-module", "retire-ca", "record-signer", "check-shares"}

// ClaimsQuorum says whether a run of kind claims a quorum.
func ClaimsQuorum(kind string) bool {
	for _, k := range QuorumKinds {
		if k == kind {
			return true
		}
	}
	return false
}
