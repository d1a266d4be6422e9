package ceremony

import (
	"crypto/x509"
	"strings"
	"time"

	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/run"
)

// The steps of the ceremony's runs, as the journal names them and people read them. A root
// ceremony's are RootSteps; each quorum operation's are listed by Steps.
var (
	stepCAKey          = run.Step{ID: "issue-ca.generate-key", Title: "Generate the issuing CA key"}
	stepCACert         = run.Step{ID: "issue-ca.certificate", Title: "Sign the issuing CA certificate"}
	stepCRLRevoke      = run.Step{ID: "crl.revoke", Title: "Revoke the issuing CA"}
	stepCRLSign        = run.Step{ID: "crl.sign", Title: "Sign the root CRL"}
	stepDestroy        = run.Step{ID: "destroy.erase", Title: "Destroy the root key and its objects"}
	stepRestore        = run.Step{ID: "restore.unwrap", Title: "Restore the root key into the new token"}
	stepReshare        = run.Step{ID: "reshare.split", Title: "Split the new secret and hand out the shares", Script: "reshare", Confirmer: "witness"}
	stepHolders        = run.Step{ID: "reshare.holders", Title: "Reach every token that holds the root"}
	stepRotate         = run.Step{ID: "reshare.rotate", Title: "Change the PINs of every token that holds the root, re-wrap the backup and sign the new quorum statement"}
	stepSuperseded     = run.Step{ID: "reshare.superseded", Title: "Destroy the superseded backups and list what people must destroy"}
	stepSignerCert     = run.Step{ID: "record-signer.certificate", Title: "Make the new record signer"}
	stepSignerRevoke   = run.Step{ID: "record-signer.revoke", Title: "Revoke the old record signer and destroy its key"}
	stepSignerCRL      = run.Step{ID: "record-signer.crl", Title: "Sign the root CRL"}
	stepRetireCA       = run.Step{ID: "retire-ca.retire", Title: "Retire the issuing CA"}
	stepDestroyHolders = run.Step{ID: "destroy.holders", Title: "Log in to every token that holds the root"}
	stepDestroyCA      = run.Step{ID: "destroy.issuing-ca", Title: "End an issuing CA: its last CRL, its key destroyed"}
	stepDestroyRootCRL = run.Step{ID: "destroy.root-crl", Title: "Sign the final root CRL revoking every issuing CA"}
	stepSetModule      = run.Step{ID: "set-module.statement", Title: "Sign the quorum statement naming the new module"}
	stepCheck          = run.Step{ID: "check-shares.check", Title: "Check each share against its commitment, and the reconstruction"}
	opSteps            = map[string][]run.Step{
		"check-shares":  {stepCheck},
		"issue-ca":      {stepClock("issue-ca"), stepUnlock("issue-ca"), stepCAKey, stepCACert},
		"crl":           {stepClock("crl"), stepUnlock("crl"), stepCRLRevoke, stepCRLSign},
		"destroy":       {stepClock("destroy"), stepUnlock("destroy"), stepDestroyHolders, stepDestroyCA, stepDestroyRootCRL, stepDestroy},
		"restore":       {stepClock("restore"), stepUnlock("restore"), stepRestore},
		"reshare":       {stepClock("reshare"), stepUnlock("reshare"), stepHolders, stepReshare, stepRotate, stepSuperseded},
		"record-signer": {stepClock("record-signer"), stepUnlock("record-signer"), stepSignerCert, stepSignerRevoke, stepSignerCRL},
		"retire-ca":     {stepClock("retire-ca"), stepUnlock("retire-ca"), stepRetireCA},
		"set-module":    {stepClock("set-module"), stepUnlock("set-module"), stepSetModule},
	}
)

// stepClock shows the workstation's clock (UTC and local) for the custodians to confirm
// against a reference time they brought, before the root is unlocked.
func stepClock(op string) run.Step {
	return run.Step{ID: op + ".clock", Title: "Confirm the workstation's clock"}
}

func stepUnlock(op string) run.Step {
	return run.Step{ID: op + ".unlock", Title: "Unlock the root with the quorum"}
}

// stepNoRecord is noted at the end of a quorum operation that signs no record although the
// operator PIN was given: it revoked the record signer (NoRecord).
func stepNoRecord(op string) string { return op + ".no-record" }

// NoRecord is the payload of stepNoRecord.
type NoRecord struct {
	Why string `json:"why"`
}

// Entries that are not steps of their own.
const (
	stepPlan     = "root.plan"     // a root ceremony's plan, as reviewed (PlanNote)
	stepRollback = "root.rollback" // one thing a failed root ceremony undid (run.RolledBack)
	stepUndo     = "root.undo"     // where the root token's temporary SO PIN is kept (UndoKept)
)

// Steps are the steps of operation op ("root", "issue-ca", "crl", "reshare", "restore",
// "destroy", "record-signer", "retire-ca", "set-module"), in order, for a step list on screen.
func Steps(op string) []run.Step {
	if op == "root" {
		return RootSteps
	}
	return opSteps[op]
}

// stepTitle names a step of any ceremony run, or "" for an id it does not know.
func stepTitle(id string) string {
	for _, st := range RootSteps {
		if st.ID == id {
			return st.Title
		}
	}
	for _, steps := range opSteps {
		for _, st := range steps {
			if st.ID == id {
				return st.Title
			}
		}
	}
	if step, ok := strings.CutSuffix(id, ".confirmed"); ok && stepTitle(step) != "" {
		return stepTitle(step) + ": result confirmed"
	}
	return ""
}

// PlanNote is the payload of a root ceremony's first entry: the plan it runs, by its hash.
type PlanNote struct {
	Ceremony      string   `json:"ceremony"`
	PlanSHA256    string   `json:"plan_sha256"`
	PlanWords     string   `json:"plan_words"`
	Administrator string   `json:"administrator"`
	Witnesses     []string `json:"witnesses"`
	Custodians    []string `json:"custodians"`
	Threshold     int      `json:"threshold"`
	Algorithm     string   `json:"algorithm"`
	Backup        bool     `json:"backup"`
}

// Preflight is the payload of root.preflight: the workstation and the HSM the ceremony ran on.
// ModuleSHA256 is the module file's hash before it was loaded; the quorum statement pins it.
type Preflight struct {
	PlanSHA256 string    `json:"plan_sha256,omitempty"`
	PlanWords  string    `json:"plan_words,omitempty"`
	Host       string    `json:"host"`
	OS         string    `json:"os"`
	Custos     string    `json:"custos"`
	Build      string    `json:"build"`
	Clock      time.Time `json:"clock"`
	// ClockReading is the clock as shown to the witness (UTC and local) and what it was
	// checked against.
	ClockReading      run.ClockReading `json:"clock_reading"`
	Network           string           `json:"network"`
	AirGapped         bool             `json:"air_gapped"`
	Module            string           `json:"module"`
	ModuleSHA256      string           `json:"module_sha256"`
	ModuleInfo        string           `json:"module_info"`
	TokenManufacturer string           `json:"token_manufacturer"`
	TokenModel        string           `json:"token_model"`
	TokenSerial       string           `json:"token_serial"`
	TokenFirmware     string           `json:"token_firmware"`
	Slot              uint             `json:"slot"`
}

// Detail shows the workstation's clock when the preflight is done, for the witness to confirm.
func (p Preflight) Detail() string { return p.ClockReading.Detail() }

// TokenInitialised is the payload of root.init-token.
type TokenInitialised struct {
	Token       string `json:"token"`
	TokenSerial string `json:"token_serial"`
	PINs        string `json:"pins"`
}

// KeyGenerated is the payload of root.generate-key and issue-ca.generate-key.
type KeyGenerated struct {
	Token           string     `json:"token,omitempty"`
	KeyID           record.Hex `json:"key_id"`
	Algorithm       string     `json:"algorithm"`
	PublicKeySHA256 string     `json:"public_key_sha256,omitempty"`
	PublicKeyWords  string     `json:"public_key_words,omitempty"`
	Extractable     string     `json:"extractable,omitempty"`
}

// Certificate is a certificate a step issued, as its payload names it.
type Certificate struct {
	Subject   string    `json:"subject"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	Algorithm string    `json:"algorithm"`
	SHA256    string    `json:"sha256"`
	Words     string    `json:"words"`
	File      string    `json:"file"`
}

func certificatePayload(c *x509.Certificate, alg, file string) Certificate {
	fp := pki.CertificateFingerprint(c)
	return Certificate{Subject: c.Subject.String(), Serial: pki.SerialHex(c.SerialNumber), NotBefore: c.NotBefore,
		NotAfter: c.NotAfter, Algorithm: alg, SHA256: fp.String(), Words: fp.Words(), File: file}
}

// RootCertified is the payload of root.certificate.
type RootCertified struct {
	Certificate
	LintWarnings int `json:"lint_warnings"`
}

// RecordSignerMade is the payload of root.record-signer: the record signer's key on the
// operations token, and whether this ceremony created that token (then its SO PIN derives
// from the quorum secret, and a reshare moves it).
type RecordSignerMade struct {
	Token        string     `json:"token"`
	TokenCreated bool       `json:"token_created"`
	KeyID        record.Hex `json:"key_id"`
	Certificate
}

// HorizonNoted is the payload of root.horizon.
type HorizonNoted struct {
	Notices        []string `json:"notices,omitempty"`
	AcknowledgedBy string   `json:"acknowledged_by,omitempty"`
	Notice         string   `json:"notice,omitempty"` // when there is nothing to acknowledge
}

// ShareHandedOut is one share of a split: its commitment (never the share) and where it went.
type ShareHandedOut struct {
	Number      int        `json:"number"`
	Custodian   string     `json:"custodian"`
	Commitment  record.Hex `json:"commitment"`
	Destination string     `json:"destination"`
}

// Split is the payload of root.split and reshare.split: the quorum the shares make.
type Split struct {
	Epoch        int              `json:"epoch"`
	Threshold    int              `json:"threshold"`
	SecretDigest record.Hex       `json:"secret_digest"`
	Shares       []ShareHandedOut `json:"shares"`
	ReadBack     string           `json:"read_back,omitempty"`
	// Warnings say what the people must act on: plaintext shares resting together in a folder.
	Warnings []string `json:"warnings,omitempty"`
}

// SharesVerified is the payload of root.verify-shares.
type SharesVerified struct {
	ReadBack       string `json:"read_back"`
	Reconstruction string `json:"reconstruction"`
}

// BackupWritten is the payload of root.backup: the wrapped blob, or why there is none.
type BackupWritten struct {
	File   string `json:"file,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Method string `json:"method,omitempty"`
	None   string `json:"none,omitempty"`
}

// UndoKept is the payload of root.undo: the private data object on the operations token that
// keeps the root token's temporary SO PIN until the ceremony closes, by its label (never the
// PIN), so the abort of a killed run can re-initialise the root token empty.
type UndoKept struct {
	Token string `json:"token"`
	Label string `json:"label"`
	Root  string `json:"root"`
}

// Closed is the payload of root.close: the root as the registry now has it.
type Closed struct {
	RootSHA256      string `json:"root_sha256"`
	RootWords       string `json:"root_words"`
	Module          string `json:"module"`
	OperationsToken string `json:"operations_token"`
	SOPIN           string `json:"so_pin,omitempty"`
	Secrets         string `json:"secrets"`
}

// Unlocked is the payload of a quorum operation's unlock step: who unlocked the root, and
// what they relied on, for them to compare with their ceremony record: the quorum statement
// checked, the root's fingerprint, the module loaded and the token that answered.
type Unlocked struct {
	Custodians []string `json:"custodians"`
	Shares     string   `json:"shares"`
	// Threshold and Of are the quorum that unlocked the root (Threshold of Of custodians), as
	// the operation's record names it.
	Threshold    int    `json:"threshold,omitempty"`
	Of           int    `json:"of,omitempty"`
	Statement    int    `json:"statement"` // the number of the quorum statement checked
	RootSHA256   string `json:"root_sha256"`
	RootWords    string `json:"root_words"`
	Module       string `json:"module"`
	ModuleSHA256 string `json:"module_sha256"`
	RootToken    string `json:"root_token,omitempty"` // the token that answered; none for a restore
}

// SharesChecked is the payload of check-shares.check: which share each source held, whose, and
// whether it matched its commitment; never a share.
type SharesChecked struct {
	Statement      int            `json:"statement"` // the number of the quorum statement checked against
	RootSHA256     string         `json:"root_sha256"`
	Epoch          int            `json:"epoch"`
	Shares         []ShareChecked `json:"shares"`
	Reconstruction string         `json:"reconstruction"`
}

// ShareChecked is one share of a check-shares run.
type ShareChecked struct {
	Source    string `json:"source"`              // the file or token:LABEL it was read from
	Number    int    `json:"number,omitempty"`    // 0 when it was refused
	Custodian string `json:"custodian,omitempty"` // whose it is
	Result    string `json:"result"`              // "matches its commitment", or why it was refused
}

// StatementSigned is a quorum statement the root signed, as a journal keeps it: its facts in
// brief, then the statement's canonical text and the signature, exactly as signed (see
// quorum.Statement). It is the payload of root.statement, and part of the payloads of the
// steps that sign a new one (reshare.rotate, restore.unwrap, set-module.statement).
type StatementSigned struct {
	Seq          int        `json:"seq"`
	Epoch        int        `json:"epoch"`
	Module       string     `json:"module"`
	ModuleSHA256 string     `json:"module_sha256"`
	RootToken    string     `json:"root_token"`
	SHA256       string     `json:"sha256"` // of Statement
	Statement    string     `json:"statement"`
	Signature    record.Hex `json:"signature"`
}

// ModuleSet is the payload of set-module.statement: the module the quorum accepted in place
// of another, and the statement that says so.
type ModuleSet struct {
	Previous       string          `json:"previous"`
	PreviousSHA256 string          `json:"previous_sha256"`
	Statement      StatementSigned `json:"statement"`
}

// IssuingCAMade is the payload of issue-ca.certificate: the CA, what its certificate allows,
// and how it splits its device CRL (fixed for its life).
type IssuingCAMade struct {
	IssuerID string `json:"issuer_id"`
	Certificate
	Profile    CAProfile `json:"profile"`
	CRLBaseURL string    `json:"crl_base_url,omitempty"`
	CRLShards  int       `json:"crl_shards,omitempty"`
}

// CAProfile is what an issuing CA's certificate allows.
type CAProfile struct {
	ExtKeyUsages []string `json:"ext_key_usages"`
	Policies     []string `json:"policies,omitempty"`
	CAIssuers    []string `json:"ca_issuers,omitempty"`
}

// CARevoked is the payload of crl.revoke: the certificate the root revoked (an issuing CA or
// a record signer), which signs nothing from then on.
type CARevoked struct {
	Serial         string    `json:"serial"`
	Certificate    string    `json:"certificate,omitempty"` // e.g. "issuing CA ica-3f2a9c01b4 (Acme Devices CA 1)"
	Reason         string    `json:"reason"`
	AlreadyRevoked bool      `json:"already_revoked"`
	RevokedAt      time.Time `json:"revoked_at"`
}

// SignerRevoked is the payload of record-signer.revoke: the old record signer, revoked, and
// its key destroyed on the operations token.
type SignerRevoked struct {
	Serial         string    `json:"serial"`
	Reason         string    `json:"reason"`
	AlreadyRevoked bool      `json:"already_revoked"`
	RevokedAt      time.Time `json:"revoked_at"`
	Key            string    `json:"key,omitempty"`
}

// CARetired is the payload of retire-ca.retire.
type CARetired struct {
	IssuerID   string    `json:"issuer_id"`
	CommonName string    `json:"common_name"`
	RetiredAt  time.Time `json:"retired_at"`
	Signs      string    `json:"signs"`
}

// TokenErased is what destroy found and destroyed on one token.
type TokenErased struct {
	Token     string   `json:"token"`
	Destroyed []string `json:"destroyed"`
}

// RootDestroyed is the payload of destroy.erase: the root key destroyed on every holder, the
// workspace's blobs destroyed, the record signer retired, and what people must still destroy.
type RootDestroyed struct {
	Tokens       []TokenErased `json:"tokens"`
	DestroyedAt  time.Time     `json:"destroyed_at"`
	Backups      []string      `json:"backups,omitempty"`
	RecordSigner string        `json:"record_signer"`
	Outstanding  []string      `json:"outstanding,omitempty"`
	Verification string        `json:"verification"`
}

// IssuingCAEnded is the payload of destroy.issuing-ca, once per issuing CA of the root.
type IssuingCAEnded struct {
	IssuerID   string         `json:"issuer_id"`
	CommonName string         `json:"common_name"`
	Before     string         `json:"before"` // its state before
	LastCRL    *run.CRLSigned `json:"last_crl,omitempty"`
	NoCRL      string         `json:"no_crl,omitempty"`
	Key        string         `json:"key"`
}

// FinalRootCRL is the payload of destroy.root-crl.
type FinalRootCRL struct {
	Revoked []string      `json:"revoked"`
	Reason  string        `json:"reason"`
	CRL     run.CRLSigned `json:"crl"`
}

// Restored is the payload of restore.unwrap.
type Restored struct {
	Token        string           `json:"token"`
	TokenSerial  string           `json:"token_serial"`
	Backup       string           `json:"backup"`
	BackupSHA256 string           `json:"backup_sha256"`
	Verification string           `json:"verification"`
	Statement    *StatementSigned `json:"statement,omitempty"` // naming the new token
}

// Rotated is the payload of reshare.rotate.
type Rotated struct {
	PINs            string           `json:"pins"`
	Tokens          []string         `json:"tokens,omitempty"` // every token whose PINs changed
	OperationsToken string           `json:"operations_token,omitempty"`
	Backup          string           `json:"backup,omitempty"`
	BackupSHA256    string           `json:"backup_sha256,omitempty"`
	Statement       *StatementSigned `json:"statement,omitempty"` // of the new epoch
}

// LostToken is a token that holds a root, recorded lost, and why.
type LostToken struct {
	Token  string `json:"token"`
	Reason string `json:"reason"`
}

// HoldersReached is the payload of reshare.holders: every token that holds the root, reached
// and its PINs checked before anything changed, and those recorded lost.
type HoldersReached struct {
	Tokens []string    `json:"tokens"`
	Lost   []LostToken `json:"lost,omitempty"`
}

// SupersededDestroyed is the payload of reshare.superseded: the blobs destroyed in the
// workspace, and what people must still destroy because the old shares may open it.
type SupersededDestroyed struct {
	Destroyed   []string `json:"destroyed,omitempty"`
	Outstanding []string `json:"outstanding,omitempty"`
	None        string   `json:"none,omitempty"`
}
