package ceremony

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/custos-pki/custos/internal/pgpwords"
)

// Fact is one thing a step's result shows the people at the workstation: what the script
// asks the witness to check, labelled.
type Fact struct {
	Label, Value string
	Words        bool // Value is hash words or hex, read aloud and compared: shown in monospace
}

// ResultFacts says what a done step's result (its journal payload, run.Event.Result) shows the
// witness: the plan's hash words and the HSM's identity at pre-flight, the certificate's
// subject, validity and fingerprint, the backup's SHA-256, and so on. Nil for a result it
// does not know.
func ResultFacts(result any) []Fact {
	switch p := result.(type) {
	case Preflight:
		return []Fact{{"Plan SHA-256", p.PlanWords, true}, {"Workstation", p.Host + ", " + p.OS, false},
			{"Network", p.Network, false}, {"Clock (UTC)", p.Clock.Format("2006-01-02 15:04:05"), false},
			{"HSM", fmt.Sprintf("%s %s, serial %s, firmware %s (slot %d)", p.TokenManufacturer, p.TokenModel, p.TokenSerial, p.TokenFirmware, p.Slot), false},
			{"PKCS#11 module", p.Module + " (" + p.ModuleInfo + ")", false}}
	case TokenInitialised:
		return []Fact{{"Root token", p.Token + ", serial " + p.TokenSerial, false}, {"PINs", p.PINs, false}}
	case KeyGenerated:
		return []Fact{{"Key", p.Algorithm + " on " + p.Token, false}, {"Public key SHA-256", p.PublicKeyWords, true}}
	case RootCertified:
		return certificateFacts(p.Certificate)
	case RecordSignerMade:
		return append([]Fact{{"Operations token", p.Token, false}}, certificateFacts(p.Certificate)...)
	case IssuingCAMade:
		return append([]Fact{{"Issuing CA", p.IssuerID, false}}, certificateFacts(p.Certificate)...)
	case HorizonNoted:
		if p.Notice != "" {
			return []Fact{{"Horizon", p.Notice, false}}
		}
		return []Fact{{"Horizon", strings.Join(p.Notices, " "), false}, {"Acknowledged by", p.AcknowledgedBy, false}}
	case Split:
		var where []string
		for _, s := range p.Shares {
			where = append(where, fmt.Sprintf("#%d %s: %s", s.Number, s.Custodian, s.Destination))
		}
		f := []Fact{{"Quorum", fmt.Sprintf("epoch %d, %d of %d shares needed", p.Epoch, p.Threshold, len(p.Shares)), false},
			{"Shares", strings.Join(where, "\n"), false}}
		if len(p.Warnings) > 0 {
			f = append(f, Fact{"Warning", strings.Join(p.Warnings, "\n"), false})
		}
		return f
	case SharesVerified:
		return []Fact{{"Read back", p.ReadBack, false}, {"Reconstruction", p.Reconstruction, false}}
	case BackupWritten:
		if p.None != "" {
			return []Fact{{"Backup", p.None, false}}
		}
		return append([]Fact{{"Backup file", p.File, false}}, sumFacts("Backup SHA-256", p.SHA256)...)
	case Closed:
		return []Fact{{"Root SHA-256", p.RootWords, true}, {"Module", p.Module, false}, {"Secrets", p.Secrets, false}}
	case Rotated:
		f := []Fact{{"PINs", p.PINs, false}}
		if p.Backup != "" {
			f = append(f, Fact{"Backup file", p.Backup, false})
			f = append(f, sumFacts("Backup SHA-256", p.BackupSHA256)...)
		}
		return f
	}
	return nil
}

func certificateFacts(c Certificate) []Fact {
	return []Fact{{"Subject", c.Subject, false},
		{"Valid", c.NotBefore.UTC().Format("2006-01-02 15:04 UTC") + " to " + c.NotAfter.UTC().Format("2006-01-02 15:04 UTC"), false},
		{"Serial", c.Serial, false}, {"SHA-256 fingerprint", c.Words, true}}
}

// sumFacts is a SHA-256 in hex and, when it is one, in words.
func sumFacts(label, sum string) []Fact {
	f := []Fact{{label, sum, true}}
	if b, err := hex.DecodeString(sum); err == nil {
		f = append(f, Fact{label + " (words)", pgpwords.Encode(b), true})
	}
	return f
}
