package ceremony

import (
	"fmt"
	"strings"

	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/run"
)

// made says what the stopped run whose journal holds entries made, from its done steps, and
// what a failed run undid, for a person deciding to resume or abort it.
func made(entries []record.Entry) []string {
	var out []string
	for _, e := range entries {
		if e.Step == stepRollback {
			if p, err := record.Decode[run.RolledBack](e); err == nil {
				out = append(out, "undone when it failed: "+p.Undone)
			}
			continue
		}
		if e.Status != record.StatusDone {
			continue
		}
		if what := madeBy(e); what != "" {
			out = append(out, what)
		}
	}
	return out
}

// madeBy says what one done step made, or "" when it made nothing to list.
func madeBy(e record.Entry) string {
	decodeErr := func(err error) string {
		return stepTitle(e.Step) + ": its journal entry cannot be read: " + err.Error()
	}
	switch e.Step {
	case rootStep("init-token").ID:
		p, err := record.Decode[TokenInitialised](e)
		if err != nil {
			return decodeErr(err)
		}
		return fmt.Sprintf("root token %q (serial %s) initialised", p.Token, p.TokenSerial)
	case rootStep("generate-key").ID, stepCAKey.ID:
		p, err := record.Decode[KeyGenerated](e)
		if err != nil {
			return decodeErr(err)
		}
		return fmt.Sprintf("%s key %s on token %q", p.Algorithm, p.KeyID, p.Token)
	case "root.certificate", "root.record-signer", "issue-ca.certificate", "record-signer.certificate":
		p, err := record.Decode[Certificate](e)
		if err != nil {
			return decodeErr(err)
		}
		return fmt.Sprintf("%s certificate %s, serial %s, in %s", certRoles[e.Step], p.Subject, p.Serial, p.File)
	case "root.split", "reshare.split":
		p, err := record.Decode[Split](e)
		if err != nil {
			return decodeErr(err)
		}
		var where []string
		for _, s := range p.Shares {
			where = append(where, fmt.Sprintf("#%d %s: %s", s.Number, s.Custodian, s.Destination))
		}
		return fmt.Sprintf("%d shares of epoch %d handed out (%s)", len(p.Shares), p.Epoch, strings.Join(where, "; "))
	case rootStep("backup").ID:
		p, err := record.Decode[BackupWritten](e)
		if err != nil {
			return decodeErr(err)
		}
		if p.File == "" {
			return ""
		}
		return "backup file " + p.File
	case rootStep("statement").ID:
		return "quorum statement signed by the root"
	case rootStep("close").ID:
		return "root registered with its quorum and record signer"
	}
	return ""
}
