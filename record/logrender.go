package record

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// logSection prints a record's place in the record log: its entry, the checkpoint after it
// with the keys that signed it, the inclusion proof, and the root's attestation when there is
// one. The same values are in the attached files, which is what a program checks.
func (d *doc) logSection(p *LogProof) error {
	if p == nil {
		return nil
	}
	cp, err := p.checkpoint()
	if err != nil {
		return fmt.Errorf("render record: %w", err)
	}
	leaf := p.Entry.LeafHash()
	d.heading("Record log")
	d.para(fmt.Sprintf("This run is entry %d of the workspace's record log, an append-only Merkle tree (RFC 6962) of every run that ended in a record. "+
		"The attached %s, %s and %s hold what this section prints; `custos log verify` checks the log against every checkpoint the root signed.",
		p.Index, LogEntryAttachment, CheckpointAttachment, ProofAttachment), "", smallPt)
	d.fields([]Field{
		{"Entry", fmt.Sprintf("%d: %s run %s", p.Index, p.Entry.Kind, p.Entry.Run)},
		{"Journal SHA-256 logged", p.Entry.JournalSHA256},
		{"Leaf hash", hex.EncodeToString(leaf[:])},
		{"Checkpoint", fmt.Sprintf("%s, %d %s", cp.Origin, cp.Size, map[bool]string{true: "entry", false: "entries"}[cp.Size == 1])},
		{"Checkpoint root hash", hex.EncodeToString(cp.Hash[:])},
		{"Checkpoint signed by", strings.Join(noteSigners(p.Checkpoint), "\n")},
	})
	d.heading("Inclusion proof")
	if len(p.Proof) == 0 {
		d.para("The log held this entry alone: its leaf hash is the root hash.", "", smallPt)
	} else {
		d.startTable([]column{{title: "Level", width: 0.1}, {title: "Hash (SHA-256)", width: 0.9, mono: true}})
		for i, h := range p.Proof {
			d.tableRow(fmt.Sprint(i+1), hex.EncodeToString(h[:]))
		}
		d.endTable()
	}
	if p.Attestation != nil {
		d.heading("Root attestation")
		d.para("The root key, unlocked by the quorum for this operation, signed this run's log entry and the checkpoint above: "+
			"the attached "+AttestationAttachment+" is that signed note.", "", smallPt)
		d.fields([]Field{{"Attested by", strings.Join(noteSigners(p.Attestation), "\n")}})
	}
	return nil
}

// noteSigners lists the key names on a signed note's signature lines, as written (the
// signatures are checked by Verify, not here).
func noteSigners(msg []byte) []string {
	_, sigs, ok := strings.Cut(string(msg), "\n\n")
	if !ok {
		return nil
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSuffix(sigs, "\n"), "\n") {
		if f := strings.Fields(strings.TrimPrefix(l, "\u2014 ")); len(f) == 2 {
			names = append(names, f[0])
		}
	}
	return names
}
