package ceremony

import (
	"context"
	"crypto"
	"fmt"
	"strings"

	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/run"
)

// writeRecord enters the run in the record log, the root attesting it with its key (unlocked
// by the quorum), and renders the run's record from its journal and signs it. Nothing is
// journaled after this: the record carries the journal as it stands.
func writeRecord(ctx context.Context, r *run.Run, c *record.Ceremony, s record.Signer, rootKey crypto.Signer) (string, error) {
	if err := fillFromJournal(c, r.Journal.Entries()); err != nil {
		return "", err
	}
	st := run.Step{ID: c.Kind + ".record", Title: "Write the signed record"}
	seal := run.LogSeal{Kind: c.Kind, RootID: c.Root, Root: s.Chain[len(s.Chain)-1], RootKey: rootKey}
	return r.WriteRecord(ctx, st, seal, s, func(path string, journal []byte, log *record.LogProof) error {
		c.Log = log
		return record.WriteCeremony(ctx, path, c, journal, s)
	})
}

// certRoles are the steps that issue a certificate, and the role a record gives it.
var certRoles = map[string]string{"root.certificate": "root CA", "root.record-signer": "record signer",
	"issue-ca.certificate": "issuing CA"}

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
	case "root.preflight":
		p, err := record.Decode[Preflight](e)
		if err != nil {
			return err
		}
		c.Workstation = fields("host", p.Host, "os", p.OS, "custos", p.Custos, "build", p.Build,
			"clock", p.Clock.Format("2006-01-02T15:04:05Z"), "network", p.Network, "air gapped", fmt.Sprint(p.AirGapped))
		c.HSM = fields("module", p.Module, "module info", p.ModuleInfo, "token manufacturer", p.TokenManufacturer,
			"token model", p.TokenModel, "token serial", p.TokenSerial, "token firmware", p.TokenFirmware, "slot", fmt.Sprint(p.Slot))
	case "root.certificate", "root.record-signer", "issue-ca.certificate":
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
	case "restore.unwrap":
		p, err := record.Decode[Restored](e)
		if err != nil {
			return err
		}
		c.Backups = append(c.Backups, fields("backup", p.Backup, "backup_sha256", p.BackupSHA256)...)
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
