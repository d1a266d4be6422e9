package ceremony

import (
	"context"
	"crypto"
	"fmt"
	"strings"

	"github.com/custos-pki/custos/quorum"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/run"
)

// writeRecord enters the run in the record log, the root attesting it with its key (unlocked
// by the quorum), and renders the run's record from its journal and signs it. Nothing is
// journaled after this: the record carries the journal as it stands.
func writeRecord(ctx context.Context, r *run.Run, c *record.Ceremony, s record.Signer, rootKey crypto.Signer) (string, error) {
	return writeSealed(ctx, r, c, s, run.LogSeal{Kind: c.Kind, RootID: c.Root, Root: s.Chain[len(s.Chain)-1], RootKey: rootKey})
}

// writeResumedRecord is writeRecord for a run resumed after it stopped, with no quorum: its
// record carries the root's attestation the journal noted before the stop, or none (see
// run.LogSeal.Resumed).
func writeResumedRecord(ctx context.Context, r *run.Run, c *record.Ceremony, s record.Signer) (string, error) {
	return writeSealed(ctx, r, c, s, run.LogSeal{Kind: c.Kind, RootID: c.Root, Root: s.Chain[len(s.Chain)-1], Resumed: true})
}

func writeSealed(ctx context.Context, r *run.Run, c *record.Ceremony, s record.Signer, seal run.LogSeal) (string, error) {
	if err := fillFromJournal(c, r.Journal.Entries()); err != nil {
		return "", err
	}
	st := run.Step{ID: c.Kind + ".record", Title: "Write the signed record"}
	return r.WriteRecord(ctx, st, seal, s, func(path string, journal []byte, log *record.LogProof) error {
		c.Log = log
		return record.WriteCeremony(ctx, path, c, journal, s)
	})
}

// certRoles are the steps that issue a certificate, and the role a record gives it.
var certRoles = map[string]string{"root.certificate": "root CA", "root.record-signer": "record signer",
	"issue-ca.certificate": "issuing CA", "record-signer.certificate": "record signer"}

// fillFromJournal takes what a record shows from the journal's payloads, so the record and the
// journal it carries say the same.
func fillFromJournal(c *record.Ceremony, entries []record.Entry) error {
	for _, e := range entries {
		if c.Started.IsZero() {
			c.Started = e.Time
		}
		c.Finished = e.Time
		if e.Status != record.StatusDone {
			continue
		}
		if err := fillFromEntry(c, e); err != nil {
			return fmt.Errorf("the record's facts from the journal: %w", err)
		}
	}
	return nil
}

func fillFromEntry(c *record.Ceremony, e record.Entry) error {
	switch e.Step {
	case stepUnlock(c.Kind).ID:
		p, err := record.Decode[Unlocked](e)
		if err != nil {
			return err
		}
		c.HSM = fields("module", p.Module, "module sha256", p.ModuleSHA256, "root token", p.RootToken,
			"quorum statement checked", fmt.Sprintf("number %d, verified under the root certificate %s", p.Statement, p.RootSHA256))
	case "root.preflight":
		p, err := record.Decode[Preflight](e)
		if err != nil {
			return err
		}
		c.Workstation = fields("host", p.Host, "os", p.OS, "custos", p.Custos, "build", p.Build,
			"clock", p.Clock.Format("2006-01-02T15:04:05Z"), "clock (local)", p.ClockReading.Local,
			"clock checked against", p.ClockReading.Against(), "network", p.Network, "air gapped", fmt.Sprint(p.AirGapped))
		c.HSM = fields("module", p.Module, "module sha256", p.ModuleSHA256, "module info", p.ModuleInfo, "token manufacturer", p.TokenManufacturer,
			"token model", p.TokenModel, "token serial", p.TokenSerial, "token firmware", p.TokenFirmware, "slot", fmt.Sprint(p.Slot))
	case "issue-ca.clock", "crl.clock", "destroy.clock", "restore.clock", "reshare.clock", "record-signer.clock", "retire-ca.clock", "set-module.clock":
		p, err := record.Decode[run.ClockReading](e)
		if err != nil {
			return err
		}
		c.Workstation = fields("clock", p.UTC.Format("2006-01-02T15:04:05Z"), "clock (local)", p.Local,
			"clock checked against", p.Against())
	case "root.certificate", "root.record-signer", "issue-ca.certificate", "record-signer.certificate":
		p, err := record.Decode[Certificate](e) // each payload embeds a Certificate
		if err != nil {
			return err
		}
		c.Certificates = append(c.Certificates, record.Cert{Role: certRoles[e.Step], Subject: p.Subject, Serial: p.Serial,
			NotBefore: p.NotBefore, NotAfter: p.NotAfter, SHA256: p.SHA256, Fingerprint: p.Words, Algorithm: p.Algorithm})
	case "root.split", "reshare.split":
		p, err := record.Decode[Split](e)
		if err != nil {
			return err
		}
		for _, sh := range p.Shares {
			c.Commitments = append(c.Commitments, record.Commitment{Number: sh.Number, Custodian: sh.Custodian, SHA256: sh.Commitment.String()})
		}
		c.Warnings = append(c.Warnings, p.Warnings...)
	case stepCheck.ID:
		p, err := record.Decode[SharesChecked](e)
		if err != nil {
			return err
		}
		c.SharesChecked = shareChecks(p)
		c.Statement = fields("number checked", fmt.Sprint(p.Statement), "epoch", fmt.Sprint(p.Epoch), "root sha256", p.RootSHA256)
	case "root.backup":
		p, err := record.Decode[BackupWritten](e)
		if err != nil {
			return err
		}
		c.Backups = append(c.Backups, fields("file", p.File, "sha256", p.SHA256, "method", p.Method, "backup", p.None)...)
	case "reshare.rotate":
		p, err := record.Decode[Rotated](e)
		if err != nil {
			return err
		}
		c.Backups = append(c.Backups, fields("backup", p.Backup, "backup_sha256", p.BackupSHA256)...)
		addStatement(c, p.Statement)
	case "restore.unwrap":
		p, err := record.Decode[Restored](e)
		if err != nil {
			return err
		}
		c.Backups = append(c.Backups, fields("backup", p.Backup, "backup_sha256", p.BackupSHA256)...)
		addStatement(c, p.Statement)
	case "root.statement":
		p, err := record.Decode[StatementSigned](e)
		if err != nil {
			return err
		}
		addStatement(c, &p)
	case "set-module.statement":
		p, err := record.Decode[ModuleSet](e)
		if err != nil {
			return err
		}
		c.HSM = append(c.HSM, fields("module replaced", p.Previous, "its sha256", p.PreviousSHA256)...)
		addStatement(c, &p.Statement)
	case "root.horizon":
		p, err := record.Decode[HorizonNoted](e)
		if err != nil {
			return err
		}
		if len(p.Notices) > 0 {
			c.Horizon = append(c.Horizon, strings.Join(p.Notices, " ")+" Acknowledged by "+p.AcknowledgedBy+".")
		}
	}
	return nil
}

// addStatement shows a statement the run signed in the record, and attaches its text and
// signature exactly as signed, so that anyone can check it with the root certificate alone.
func addStatement(c *record.Ceremony, st *StatementSigned) {
	if st == nil {
		return
	}
	holders := "(not parsed)"
	if s, err := quorum.ParseStatement([]byte(st.Statement)); err == nil {
		var names []string
		for _, h := range s.HolderList() {
			names = append(names, h.Token.String())
		}
		holders = strings.Join(names, "; ")
	}
	c.Statement = fields("number", fmt.Sprint(st.Seq), "epoch", fmt.Sprint(st.Epoch), "module", st.Module,
		"module sha256", st.ModuleSHA256, "root token", st.RootToken, "tokens holding the root", holders,
		"statement sha256", st.SHA256,
		"attached as", statementFile(st.Seq, ".json")+" with its signature "+statementFile(st.Seq, ".sig"))
	c.Attachments = append(c.Attachments,
		record.Attachment{Name: statementFile(st.Seq, ".json"), MIME: "application/json", Relationship: record.RelSupplement,
			Description: "the quorum statement the root signed, as signed", Content: []byte(st.Statement)},
		record.Attachment{Name: statementFile(st.Seq, ".sig"), MIME: "application/octet-stream", Relationship: record.RelSupplement,
			Description: "the root's signature over the quorum statement", Content: st.Signature})
}

func statementFile(seq int, ext string) string { return fmt.Sprintf("quorum-statement-%d%s", seq, ext) }

// fields are the name, value pairs with a value, as a record lists them.
func fields(pairs ...string) []record.Field {
	var out []record.Field
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			out = append(out, record.Field{Name: pairs[i], Value: pairs[i+1]})
		}
	}
	return out
}

// quorumPeople are the participants of an operation under quorum.
func quorumPeople(holders []string) []record.Actor {
	var out []record.Actor
	for _, h := range holders {
		out = append(out, record.Actor{Name: h, Role: "custodian"})
	}
	return out
}
