package record

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
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
	Participants []Actor
	Workstation  []Field
	HSM          []Field
	Certificates []Cert
	Commitments  []Commitment
	Backups      []Field
	Horizon      []string // NIST IR 8547 notices and who acknowledged them
	// Statement is the quorum statement the root signed in this run, or the one the run
	// checked, as fields; its text and signature are attached (Attachments) as signed.
	Statement []Field
	// SharesChecked are a check of shares' results, one line a share (never a share), then the
	// reconstruction's.
	SharesChecked []string
	// Warnings are what the people must act on, said on screen and in the journal too (shares
	// that rest together in one folder).
	Warnings    []string
	Steps       []StepRow
	Attachments []Attachment // carried beside the journal
	// Log is the run's place in the record log, with the root's attestation for a quorum
	// operation; nil before the run is logged.
	Log *LogProof
}

// DeviceRow is one device of a destruction record.
type DeviceRow struct {
	Serial       string
	UDI          string // the device's Unique Device Identifier, "" when not known
	Model        string
	KeyStore     string // the key store's manufacturer, model and serial, "" when not reached
	Destination  string // where the device goes: reuse, return, recycle, destroyed; "" not stated
	Method       string // erase, reinit, physical, unreachable
	KeyIDs       string
	CertSerials  string
	Verification string
	Reason       string
	Outcome      string
	Time         time.Time
}

// Sanitization is what was done to one device's key store, after NIST SP 800-88 Rev. 2.
type Sanitization struct {
	Serial       string
	Category     string // Purge or Clear; "not sanitized by Custos" for a device it did not reach
	Technique    string
	Copies       string  // whether a copy of the key can exist elsewhere, and why
	KeyStore     []Field // manufacturer, model, serial, label
	Destroyed    []ObjectRow
	Searches     []SearchRow // made after the erasure
	Verification string      // the verification's result
	Attested     string      // for a device Custos did not reach: what was attested, by whom
	UDI          string      // the device's Unique Device Identifier, "" when not known
	Destination  string      // where the device goes after, in words
}

// ObjectRow is one key store object destroyed.
type ObjectRow struct {
	Class      string
	ID         string // CKA_ID in hex
	Label      string
	FoundBy    string // how it was found: key id, certificate value, public key
	Attributes string // a private key's CKA_LOCAL, CKA_NEVER_EXTRACTABLE, CKA_ALWAYS_SENSITIVE, CKA_EXTRACTABLE before destruction
}

// SearchRow is one search for the device identity made after the erasure.
type SearchRow struct {
	Search string
	Found  int
}

// Destruction is a certificate of sanitization after NIST SP 800-88 Rev. 2: one device, or a
// fleet.
type Destruction struct {
	ID           string // the run id
	Outcome      string
	Manufacturer string
	Technician   string
	Witness      string
	Validator    string // who checks the technician's work, or why there is none
	Issuer       string // the issuing CA that revoked
	CRLNumber    int64
	CRLFile      string
	Started      time.Time
	Finished     time.Time
	Devices      []DeviceRow
	// Table, for a fleet, is its Devices table, laid out ahead as the fleet was retired, in
	// place of Devices.
	Table *DeviceTable
	Steps []StepRow
	// Sanitized details each device's sanitization (a single device's record; a fleet's
	// table row says it in brief, and the journal and results.csv in full).
	Sanitized []Sanitization
	// Replacement is the identity a re-keyed device has now (its new key and certificate),
	// for a rekey's record; empty for a decommission.
	Replacement []Field
	// Results gives a fleet's results.csv, attached to its record beside the journal. It is
	// called once the pages are written, so that the file may be made meanwhile.
	Results func() (*Packed, error)
	Log     *LogProof // the run's place in the record log
}

// maxDetail is the longest value a step row shows whole; a longer one (a signed note) is cut,
// saying so: the whole value is in the attached journal.
const maxDetail = 160

// shortValue is v, or its start and a note that the rest is in the attached journal.
func shortValue(v string) string {
	if utf8.RuneCountInString(v) <= maxDetail {
		return v
	}
	r := []rune(v)
	return fmt.Sprintf("%s… (%d characters; whole in the attached journal)", string(r[:maxDetail]), len(r))
}

// StepsFromJournal lists every entry of a journal for a record, one row each, in order: time,
// step, status, who, and the entry's payload as "key: value" pairs (see Flatten). Nothing is
// folded: a step's begin entry and the entry that closed it are two rows, as they are two
// lines of the journal.
func StepsFromJournal(entries []Entry) []StepRow {
	rows := make([]StepRow, 0, len(entries))
	for _, e := range entries {
		var parts []string
		for _, f := range Flatten(e.Data) {
			parts = append(parts, f.Name+": "+shortValue(f.Value))
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
	Log      *LogProof // the check's place in the record log
}

// Flatten lists a payload's values in the order they were written, whatever its Go type: a
// nested object's keys are joined with dots ("token.serial"), a list's items numbered from 1
// ("shares.2.custodian"), a list of plain values joined with commas. Empty values are left
// out. A payload that is not a JSON object is shown whole, under "data".
//
// It reads the JSON itself rather than through json.Decoder's tokens: a fleet's journal has a
// registry fact of a thousand devices for every batch, and its record lists every entry.
func Flatten(data json.RawMessage) []Field {
	if len(data) == 0 {
		return nil
	}
	var out []Field
	sc := &jsonScan{b: data}
	if err := sc.value("", &out); err != nil {
		return []Field{{Name: "data", Value: string(data)}}
	}
	return out
}

// jsonScan reads JSON values from b, from i on.
type jsonScan struct {
	b []byte
	i int
}

var errJSON = errors.New("not JSON")

func (sc *jsonScan) space() {
	for sc.i < len(sc.b) && (sc.b[sc.i] == ' ' || sc.b[sc.i] == '\t' || sc.b[sc.i] == '\n' || sc.b[sc.i] == '\r') {
		sc.i++
	}
}

// next is the next byte after white space, 0 at the end.
func (sc *jsonScan) next() byte {
	sc.space()
	if sc.i >= len(sc.b) {
		return 0
	}
	return sc.b[sc.i]
}

// value reads one value and adds it to out under name.
func (sc *jsonScan) value(name string, out *[]Field) error {
	switch c := sc.next(); {
	case c == '{':
		sc.i++
		if sc.next() == '}' {
			sc.i++
			return nil
		}
		for {
			if sc.next() != '"' {
				return errJSON
			}
			key, err := sc.str()
			if err != nil {
				return err
			}
			if sc.next() != ':' {
				return errJSON
			}
			sc.i++
			if err := sc.value(joinName(name, key), out); err != nil {
				return err
			}
			switch sc.next() {
			case ',':
				sc.i++
			case '}':
				sc.i++
				return nil
			default:
				return errJSON
			}
		}
	case c == '[':
		sc.i++
		var plain []string
		var nested []Field
		if sc.next() == ']' {
			sc.i++
			return nil
		}
		for i := 1; ; i++ {
			var item []Field
			itemName := joinName(name, strconv.Itoa(i))
			if err := sc.value(itemName, &item); err != nil {
				return err
			}
			if len(item) == 1 && item[0].Name == itemName {
				plain = append(plain, item[0].Value)
			}
			nested = append(nested, item...)
			switch sc.next() {
			case ',':
				sc.i++
				continue
			case ']':
				sc.i++
			default:
				return errJSON
			}
			break
		}
		if len(plain) == len(nested) {
			if len(plain) > 0 {
				*out = append(*out, Field{Name: name, Value: strings.Join(plain, ", ")})
			}
		} else {
			*out = append(*out, nested...)
		}
		return nil
	case c == '"':
		v, err := sc.str()
		if err != nil {
			return err
		}
		if v != "" {
			*out = append(*out, Field{Name: name, Value: v})
		}
		return nil
	case c == 'n' && bytes.HasPrefix(sc.b[sc.i:], []byte("null")):
		sc.i += 4
		return nil
	case c == 't' && bytes.HasPrefix(sc.b[sc.i:], []byte("true")):
		sc.i += 4
		*out = append(*out, Field{Name: name, Value: "true"})
		return nil
	case c == 'f' && bytes.HasPrefix(sc.b[sc.i:], []byte("false")):
		sc.i += 5
		*out = append(*out, Field{Name: name, Value: "false"})
		return nil
	case c == '-' || c >= '0' && c <= '9':
		start := sc.i
		for sc.i < len(sc.b) && strings.IndexByte("+-.eE0123456789", sc.b[sc.i]) >= 0 {
			sc.i++
		}
		num := sc.b[start:sc.i]
		if !json.Valid(num) {
			return errJSON
		}
		*out = append(*out, Field{Name: name, Value: string(num)})
		return nil
	}
	return errJSON
}

// str reads a string; one with escapes is unquoted by encoding/json.
func (sc *jsonScan) str() (string, error) {
	start := sc.i
	sc.i++
	escaped := false
	for sc.i < len(sc.b) {
		switch c := sc.b[sc.i]; {
		case c == '\\':
			escaped = true
			sc.i += 2
			continue
		case c == '"':
			sc.i++
			raw := sc.b[start:sc.i]
			if !escaped && utf8.Valid(raw) {
				return string(raw[1 : len(raw)-1]), nil
			}
			var v string
			if err := json.Unmarshal(raw, &v); err != nil {
				return "", errJSON
			}
			return v, nil
		case c < 0x20:
			return "", errJSON
		}
		sc.i++
	}
	return "", errJSON
}

func joinName(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// CRLPublication is the short record of an issuing CA's full CRL, signed with the operator PIN
// (`custos crl publish`): which CA, who asked, and the CRL.
type CRLPublication struct {
	ID         string // the run id
	Operator   string
	Issuer     string
	Number     int64
	Entries    int
	ThisUpdate time.Time
	NextUpdate time.Time
	File       string  // the full CRL
	SHA256     string  // of the full CRL
	Set        *CRLSet // the CRL set, when the CA splits its CRL into shards
	Started    time.Time
	Finished   time.Time
	Log        *LogProof // the publication's place in the record log
	// Attachments are files the record carries beside its journal (the set's SHA-256 list).
	Attachments []Attachment
}

// CRLSet is a CRL set as a publication's record names it: where it is, its shards and each
// one's SHA-256.
type CRLSet struct {
	Folder      string
	ShardFolder string
	Shards      int
	Largest     string  // which shard is the largest, and its size
	Budget      int     // bytes a shard should stay within
	OverBudget  []int   // the shards over it
	ShardSHA256 []Field // each shard's path inside Folder, and its SHA-256
	SumsFile    string  // the attachment listing every file of the set with its SHA-256
	SumsSHA256  string  // that listing's SHA-256
}
