package record

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Signer is the record-signing key (on an HSM, through crypto.Signer) with its certificate
// and the chain up to and including the root, all embedded in the signature.
type Signer struct {
	Key         crypto.Signer
	Certificate *x509.Certificate
	Chain       []*x509.Certificate
}

// Field is one labelled value of a record.
type Field struct{ Name, Value string }

// Person is a participant and the role they held.
type Person struct{ Name, Role string }

// Cert is a certificate a run issued, as a record lists it.
type Cert struct {
	Role        string // "root CA", "issuing CA", "record signer"
	Subject     string
	Serial      string
	NotBefore   time.Time
	NotAfter    time.Time
	SHA256      string
	Algorithm   string
	Fingerprint string // the SHA-256 in PGP words
}

// Commitment is a share's public commitment: never the share.
type Commitment struct {
	Number    int
	Custodian string
	SHA256    string
}

// StepRow is one journal entry as a record shows it.
type StepRow struct {
	Seq     int64
	Time    time.Time
	Step    string
	Status  string
	Actor   string
	Details string
}

// Ceremony is the record of a root key ceremony or of an operation under quorum.
type Ceremony struct {
	ID           string // the run id
	Kind         string // root, issue-ca, crl, reshare, restore, destroy
	Root         string // the root's ceremony id
	Outcome      string
	Threshold    int
	Custodians   int
	Started      time.Time
	Finished     time.Time
	Participants []Person
	Workstation  []Field
	HSM          []Field
	Certificates []Cert
	Commitments  []Commitment
	Backups      []Field
	Horizon      []string // NIST IR 8547 notices and who acknowledged them
	Steps        []StepRow
}

// DeviceRow is one device of a destruction record.
type DeviceRow struct {
	Serial       string
	Model        string
	Method       string // erase, reinit, physical, unreachable
	KeyIDs       string
	CertSerials  string
	Verification string
	Reason       string
	Outcome      string
	Time         time.Time
}

// Destruction is a certificate of sanitization after NIST SP 800-88: one device, or a fleet.
type Destruction struct {
	ID           string // the run id
	Outcome      string
	Manufacturer string
	Technician   string
	Witness      string
	Issuer       string // the issuing CA that revoked
	CRLNumber    int64
	CRLFile      string
	Started      time.Time
	Finished     time.Time
	Devices      []DeviceRow
	Steps        []StepRow
	// ResultsCSV is attached to a fleet record beside the journal.
	ResultsCSV []byte
}

// StepsFromJournal lists every entry of a journal for a record, one row each, in order: time,
// step, status, who, and the entry's data as "key: value" pairs. Nothing is folded: a step's
// begin entry and the entry that closed it are two rows, as they are two lines of the journal.
func StepsFromJournal(entries []Entry) []StepRow {
	rows := make([]StepRow, 0, len(entries))
	for _, e := range entries {
		keys := make([]string, 0, len(e.Data))
		for k := range e.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s: %s", k, e.Data[k]))
		}
		actor := e.Actor
		if e.Role != "" {
			actor = fmt.Sprintf("%s (%s)", e.Actor, e.Role)
		}
		rows = append(rows, StepRow{Seq: e.Seq, Time: e.Time, Step: e.Step, Status: string(e.Status), Actor: actor, Details: strings.Join(parts, "; ")})
	}
	return rows
}

// CheckRow is one thing a module was asked to do in a module check.
type CheckRow struct {
	Check  string
	Result string // supported, NOT supported, not tried
	Code   string // the PKCS#11 return value
	Detail string
}

// ModuleCheck is the record of `custos hsm check`: what a PKCS#11 module did on a spare
// token, for the ceremony file.
type ModuleCheck struct {
	ID       string // the run id
	Module   []Field
	Token    []Field
	Checks   []CheckRow
	Plan     string   // the plan checked against, "" for none
	Problems []string // what of the plan the module cannot do
	Cleared  string   // how the spare token was left
	Started  time.Time
	Finished time.Time
}
