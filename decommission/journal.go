package decommission

import (
	"slices"
	"time"

	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/run"
)

// The steps of a decommissioning run, as the journal names them and people read them.
var (
	stepIdentify = run.Step{ID: "identify", Title: "Identify the device (proof of possession)"}
	stepErase    = run.Step{ID: "erase", Title: "Erase the device's keys"}
	stepVerify   = run.Step{ID: "verify", Title: "Verify the erasure"}
	stepAttest   = run.Step{ID: "attest", Title: "Attest what happened to the device"}
	stepRevoke   = run.Step{ID: "revoke", Title: "Revoke the certificate"}
	stepCRL      = run.Step{ID: "crl", Title: "Sign the CRL"}
	stepRecord   = run.Step{ID: "record", Title: "Write the signed record"}
	stepFleet    = run.Step{ID: "fleet", Title: "Devices"}
	stepBatch    = run.Step{ID: "revoke-batch", Title: "Record and revoke a batch of devices"}
	allSteps     = []run.Step{stepIdentify, stepErase, stepVerify, stepAttest, stepRevoke, stepCRL, stepRecord, stepFleet, stepBatch}

	// The steps of the operations beside runs (run.StartOperation).
	stepProvision = run.Step{ID: "device.provision", Title: "Provision the device"}
	stepImport    = run.Step{ID: "device.import", Title: "Import the devices"}
)

// Entries that are not steps of their own.
const (
	stepRequest      = "decommission.request" // a single device's request (Requested)
	stepManifest     = "fleet.manifest"       // a fleet's manifest (ManifestRead)
	stepDevice       = "device"               // a fleet device proven and about to be erased (DeviceFound)
	stepDeviceResume = "device.resume"        // a fleet device whose erasure a re-run finishes (DeviceFound)
	stepDeviceFailed = "device.failed"        // a fleet device that failed before its erasure began (DeviceFailed)
)

// Steps are the steps one device goes through by method m, in order, for a step list on
// screen: identify, erase and verify on its token, or an attestation when it cannot be
// reached; then revoke, CRL and record.
func Steps(m Method) []run.Step {
	if m.reaches() {
		return []run.Step{stepIdentify, stepErase, stepVerify, stepRevoke, stepCRL, stepRecord}
	}
	return []run.Step{stepAttest, stepRevoke, stepCRL, stepRecord}
}

func stepTitle(id string) string {
	for _, st := range allSteps {
		if st.ID == id {
			return st.Title
		}
	}
	return ""
}

// reasons are the reasons a device is revoked for. cACompromise belongs to CAs, and an
// unspecified reason is the method's default instead.
var reasons = []pki.Reason{pki.ReasonCessationOfOperation, pki.ReasonKeyCompromise, pki.ReasonSuperseded,
	pki.ReasonAffiliationChanged, pki.ReasonPrivilegeWithdrawn}

// Reasons are the revocation reasons a device retired by method m can be given, m's default
// first: the menu a screen offers.
func Reasons(m Method) []pki.Reason {
	out := []pki.Reason{m.DefaultReason()}
	for _, r := range reasons {
		if r != out[0] {
			out = append(out, r)
		}
	}
	return out
}

func validReason(r pki.Reason) bool { return slices.Contains(reasons, r) }

// Requested is the payload of a single device's first entry: what was asked, by whom, so a
// resumed run does the same.
type Requested struct {
	Serial         string        `json:"serial"`
	Model          string        `json:"model"`
	UDI            string        `json:"udi,omitempty"`
	Method         Method        `json:"method"`
	Reason         string        `json:"reason"`
	InvalidityDate time.Time     `json:"invalidity_date,omitzero"`
	Technician     string        `json:"technician"`
	Witness        string        `json:"witness,omitempty"`
	Validator      string        `json:"validator,omitempty"`
	Destination    Destination   `json:"destination,omitempty"`
	Issuer         string        `json:"issuer"`
	Note           string        `json:"note,omitempty"`
	CRLNextUpdate  time.Duration `json:"crl_next_update_ns"`
}

// Identified is the payload of identify: the token and key the proof of possession found,
// before anything is erased.
type Identified struct {
	Token             string     `json:"token"`
	TokenSerial       string     `json:"token_serial"`
	TokenModel        string     `json:"token_model"`
	TokenManufacturer string     `json:"token_manufacturer"`
	TokenFirmware     string     `json:"token_firmware,omitempty"`
	KeyID             record.Hex `json:"key_id"`
	CertificateSerial string     `json:"certificate_serial"`
	Proof             string     `json:"proof"`
}

// Erased is the payload of erase: what was found of the identity and destroyed, and what
// the erasure counts as under NIST SP 800-88 Rev. 2.
type Erased struct {
	Serial    string            `json:"serial"`
	Method    string            `json:"method"`
	Category  string            `json:"category"`  // Purge or Clear
	Technique string            `json:"technique"` // how, in words
	Copies    string            `json:"copies"`    // whether a copy of the key can exist elsewhere, and why
	Origin    string            `json:"origin"`    // where the registry says the key was made
	Objects   []ObjectDestroyed `json:"objects,omitempty"`
	Destroyed []string          `json:"destroyed,omitempty"`
}

// ObjectDestroyed is one object of the device identity destroyed, with how it was found and,
// for a private key, the attributes read before it was destroyed.
type ObjectDestroyed struct {
	Class            string     `json:"class"`
	ID               record.Hex `json:"id"`
	Label            string     `json:"label"`
	FoundBy          []string   `json:"found_by"`
	Local            *bool      `json:"cka_local,omitempty"`
	NeverExtractable *bool      `json:"cka_never_extractable,omitempty"`
	AlwaysSensitive  *bool      `json:"cka_always_sensitive,omitempty"`
	Extractable      *bool      `json:"cka_extractable,omitempty"`
}

// Search is one search for the device identity made after the erasure, and what it found.
type Search struct {
	Search string `json:"search"`
	Found  int    `json:"found"`
}

// Verified is the payload of verify.
type Verified struct {
	Remaining      []string `json:"remaining,omitempty"`
	Searches       []Search `json:"searches"`
	ObjectsOnToken int      `json:"objects_on_token"`
	OldKeySigns    bool     `json:"old_key_signs"`
	Verification   string   `json:"verification"`
}

// Attested is the payload of attest: a device nothing could be erased on.
type Attested struct {
	Method      Method `json:"method"`
	Witness     string `json:"witness"`
	Attestation string `json:"attestation"`
}

// Revoked is the payload of revoke: the device decommissioned in the registry and its
// certificates revoked.
type Revoked struct {
	Serial         string    `json:"serial"`
	Method         Method    `json:"method"`
	Reason         string    `json:"reason"`
	KeyState       string    `json:"key_state"`
	At             time.Time `json:"at"`
	InvalidityDate time.Time `json:"invalidity_date,omitzero"`
	InvalidityFrom string    `json:"invalidity_date_from,omitempty"` // FromTechnician or FromRunTime
	Verification   string    `json:"verification"`
	Revoked        []string  `json:"revoked"`
}

// ManifestRead is the payload of a fleet journal's first entry: which manifest, by whom.
type ManifestRead struct {
	Manifest   string     `json:"manifest"`
	SHA256     record.Hex `json:"sha256"`
	Devices    int        `json:"devices"`
	Technician string     `json:"technician"`
	Witness    string     `json:"witness,omitempty"`
	Validator  string     `json:"validator,omitempty"`
}

// DeviceFound is the payload of device and device.resume: a fleet device's token and key,
// journaled once its proof succeeded and before its erasure, so a re-run finishes erasing it
// there even when its certificate is gone.
type DeviceFound struct {
	Serial string     `json:"serial"`
	Token  string     `json:"token"`
	KeyID  record.Hex `json:"key_id"`
	// The key store's identity, as the token answered (not in a resume's entry).
	TokenManufacturer string `json:"token_manufacturer,omitempty"`
	TokenModel        string `json:"token_model,omitempty"`
	TokenSerial       string `json:"token_serial,omitempty"`
	Note              string `json:"note,omitempty"`
}

// DeviceFailed is the payload of device.failed.
type DeviceFailed struct {
	Serial string `json:"serial"`
	Line   int    `json:"line"`
	Error  string `json:"error"`
}

// BatchRevoked is the payload of revoke-batch: fleet devices decommissioned together.
type BatchRevoked struct {
	Devices int    `json:"devices"`
	First   string `json:"first"`
	Last    string `json:"last"`
	// Compromised lists the batch's devices whose invalidity date the technician gave (a
	// compromised_at column); the other keyCompromise revocations are dated the batch's time.
	Compromised []CompromisedAt `json:"compromised_at,omitempty"`
}

// CompromisedAt is a device's invalidity date as the technician gave it.
type CompromisedAt struct {
	Serial string    `json:"serial"`
	At     time.Time `json:"at"`
}

// DeviceProvisioned is the payload of device.provision: the device made, its token, key and
// certificate.
type DeviceProvisioned struct {
	Serial            string     `json:"serial"`
	Model             string     `json:"model,omitempty"`
	Issuer            string     `json:"issuer"`
	Token             string     `json:"token"`
	KeyID             record.Hex `json:"key_id"`
	CertificateSerial string     `json:"certificate_serial"`
	CertificateSHA256 string     `json:"certificate_sha256"`
	NotBefore         time.Time  `json:"not_before"`
	NotAfter          time.Time  `json:"not_after"`
}

// DevicesImported is the payload of device.import: which files, how many devices.
type DevicesImported struct {
	Issuer  string   `json:"issuer"`
	Files   []string `json:"files"`
	Devices int      `json:"devices"`
}
