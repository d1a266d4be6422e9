package decommission

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/opstoken"
	"github.com/custos-pki/custos/internal/publish"
	"github.com/custos-pki/custos/internal/secret"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
)

// Method is how a device's keys are destroyed.
type Method string

const (
	Erase       Method = "erase"       // destroy every key and certificate object of the identity
	Reinit      Method = "reinit"      // re-initialise the whole token (needs the device SO PIN)
	Physical    Method = "physical"    // the device was physically destroyed: nothing to erase
	Unreachable Method = "unreachable" // the device is lost: nothing to erase, its key may be known
)

// ParseMethod reads a method name.
func ParseMethod(s string) (Method, error) {
	switch m := Method(strings.ToLower(strings.TrimSpace(s))); m {
	case Erase, Reinit, Physical, Unreachable:
		return m, nil
	}
	return "", fmt.Errorf("method %q: use erase, reinit, physical or unreachable", s)
}

// reaches says whether the method works on the device's token.
func (m Method) reaches() bool { return m == Erase || m == Reinit }

// DefaultReason is the revocation reason a method suggests: a lost device's key may be known
// to someone, so keyCompromise; otherwise cessationOfOperation.
func (m Method) DefaultReason() pki.Reason {
	if m == Unreachable {
		return pki.ReasonKeyCompromise
	}
	return pki.ReasonCessationOfOperation
}

// Consequence says in plain words what a method does, for the person choosing it.
func (m Method) Consequence() string {
	switch m {
	case Erase:
		return "Destroys the device's key and certificate on its key store, checks they are gone, and revokes the certificate. The device keeps any other data."
	case Reinit:
		return "Re-initialises the device's whole key store (every object on it is destroyed), checks it is empty, and revokes the certificate. Needs the device's SO PIN."
	case Physical:
		return "For a device already physically destroyed: nothing is erased here; a witness attests the destruction and the certificate is revoked."
	case Unreachable:
		return "For a lost or stolen device: nothing can be erased; a witness attests it, the certificate is revoked, and keyCompromise is suggested because someone may hold the key."
	}
	return ""
}

// Request is one device to decommission.
type Request struct {
	Serial         string
	Method         Method
	Reason         pki.Reason // zero: the method's default
	InvalidityDate time.Time  // for keyCompromise: since when the key may be known; zero: now
	Technician     string
	Witness        string
	Note           string
	OpsPIN         []byte // operations token: issuing CA (CRL) and record signer; zeroed
	DevicePIN      []byte // the device token's PIN (user PIN for erase, SO PIN for reinit); zeroed
	CRLNextUpdate  time.Duration
}

// Result is what a decommission did.
type Result struct {
	RunID        string
	Serial       string
	Token        string
	Destroyed    []string // objects destroyed
	Remaining    string   // what the verification found
	Reason       pki.Reason
	RevokedAt    time.Time
	CRL          publish.CRL
	RecordPath   string
	JournalPath  string
	Verification string
}

func (req *Request) check() error {
	if req.Serial == "" {
		return errors.New("decommission: which device? (--serial)")
	}
	if strings.TrimSpace(req.Technician) == "" {
		return errors.New("decommission: the technician must be named (--technician)")
	}
	if !req.Method.reaches() && strings.TrimSpace(req.Witness) == "" {
		return fmt.Errorf("decommission %s: method %s needs a witness (--witness): nothing is erased, so a person must attest it", req.Serial, req.Method)
	}
	if req.Method.reaches() && len(req.DevicePIN) == 0 {
		return fmt.Errorf("decommission %s: method %s needs the device PIN (--device-pin-file)", req.Serial, req.Method)
	}
	if len(req.OpsPIN) == 0 {
		return fmt.Errorf("decommission %s: the operator PIN is needed to sign the CRL and the record (--ops-pin-file)", req.Serial)
	}
	if req.Reason == pki.ReasonUnspecified {
		req.Reason = req.Method.DefaultReason()
	}
	if req.CRLNextUpdate == 0 {
		req.CRLNextUpdate = 30 * 24 * time.Hour
	}
	return nil
}

// Decommission retires one device: identify (proof of possession), erase, verify, revoke,
// sign a new CRL, and write the signed destruction record. A device already decommissioned,
// unknown, or failing its proof is refused before anything changes.
func Decommission(ctx context.Context, env Env, req Request) (*Result, error) {
	defer secret.ZeroAll(req.OpsPIN, req.DevicePIN)
	if err := req.check(); err != nil {
		return nil, err
	}
	dev, err := env.Registry.Device(ctx, req.Serial)
	if errors.Is(err, registry.ErrNotFound) {
		return nil, fmt.Errorf("decommission: device %s is not registered in this workspace", req.Serial)
	}
	if err != nil {
		return nil, err
	}
	if dev.Status == registry.DeviceDecommissioned {
		return nil, fmt.Errorf("decommission: device %s was already decommissioned on %s", req.Serial, dev.DecommissionedAt.UTC().Format(time.DateOnly))
	}
	if err := env.Workspace.CheckWritable(); err != nil {
		return nil, err
	}
	mods, err := env.openModules(ctx)
	if err != nil {
		return nil, err
	}
	defer mods.Close()
	// The operator PIN is checked before any device is touched.
	iss, issCert, caKey, err := opstoken.Issuer(ctx, env.Registry, mods.ops, dev.IssuerID, req.OpsPIN)
	if err != nil {
		return nil, err
	}
	defer caKey.Close()

	var dt DeviceToken
	if req.Method.reaches() {
		if dt, err = findDevice(ctx, env, mods.devices, req.Serial); err != nil {
			return nil, err
		}
	}
	if req.Method == Reinit {
		if err := mods.devices.CanReinit(ctx); err != nil {
			return nil, fmt.Errorf("decommission %s: method reinit cannot be done on token %q: %w; use method erase, which destroys the objects of the device identity and verifies they are gone", req.Serial, dt.Token, err)
		}
	}
	var b [3]byte
	rand.Read(b[:])
	runID := fmt.Sprintf("decommission-%s-%s-%x", safeID(req.Serial), env.now().Format("20060102T150405Z"), b)
	jpath := env.Workspace.Path("journal", runID+".jsonl")
	j, err := record.CreateJournal(jpath, runID)
	if err != nil {
		return nil, err
	}
	defer j.Close()
	if _, err := env.Registry.StartDecommissionRun(ctx, registry.DecommissionRun{Run: registry.Run{ID: runID,
		Kind: registry.RunDecommission, Operation: "single", Subject: req.Serial, JournalPath: jpath},
		Technician: req.Technician, Witness: req.Witness}); err != nil {
		return nil, err
	}
	res := &Result{RunID: runID, Serial: req.Serial, Token: dt.Token, Reason: req.Reason, JournalPath: jpath}
	err = runSingle(ctx, env, j, mods, req, dev, dt, iss, issCert, caKey, res)
	if err != nil {
		env.Registry.FailRun(ctx, runID, err.Error())
		return res, err
	}
	if err := env.Registry.CompleteRun(ctx, runID, res.RecordPath); err != nil {
		return res, err
	}
	return res, nil
}

func runSingle(ctx context.Context, env Env, j *record.Journal, mods modules, req Request, dev registry.Device,
	dt DeviceToken, iss registry.Issuer, issCert *x509.Certificate, caKey *opstoken.Key, res *Result) error {
	tech := record.Actor{Name: req.Technician, Role: "technician"}
	j.Note("decommission.request", tech, map[string]string{"serial": req.Serial, "model": dev.Model, "method": string(req.Method),
		"reason": req.Reason.String(), "technician": req.Technician, "witness": req.Witness, "issuer": iss.ID, "note": req.Note})
	var sess *hsm.Session
	defer func() {
		if sess != nil {
			sess.Logout(context.WithoutCancel(ctx))
			sess.Close()
		}
	}()
	if req.Method.reaches() {
		err := step(env, j, "identify", tech, func() (map[string]string, error) {
			var err error
			if sess, err = mods.devices.OpenSession(ctx, dt.Token); err != nil {
				return nil, err
			}
			if err := sess.Login(ctx, hsm.User, req.DevicePIN); err != nil {
				return nil, fmt.Errorf("device token %q: %w", dt.Token, err)
			}
			proof, err := prove(ctx, sess, dt)
			if err != nil {
				return nil, err
			}
			info, _ := sess.TokenInfo(ctx)
			return map[string]string{"token": dt.Token, "token_serial": info.SerialOrNone(), "token_model": info.Model,
				"token_manufacturer": info.Manufacturer, "key_id": hex.EncodeToString(dt.KeyID),
				"certificate_serial": pki.SerialHex(dt.Certificate.SerialNumber), "proof": proof}, nil
		})
		if err != nil {
			return err
		}
		if err := eraseAndVerify(ctx, env, j, mods.devices, &sess, req, dt, tech, res); err != nil {
			return err
		}
	} else {
		res.Verification = fmt.Sprintf("not reachable (%s): nothing to erase; attested by %s", req.Method, req.Witness)
		j.Note("attest", record.Actor{Name: req.Witness, Role: "witness"}, map[string]string{"method": string(req.Method), "attestation": res.Verification})
	}
	return revokePublishRecord(ctx, env, j, mods.ops, req, []string{req.Serial}, iss, issCert, caKey, tech, res)
}

// eraseAndVerify destroys the device identity by the method and proves it is gone.
func eraseAndVerify(ctx context.Context, env Env, j *record.Journal, mod *hsm.Module, sess **hsm.Session, req Request, dt DeviceToken, tech record.Actor, res *Result) error {
	err := step(env, j, "erase", tech, func() (map[string]string, error) {
		if req.Method == Reinit {
			(*sess).Logout(ctx)
			(*sess).Close()
			*sess = nil
			if _, err := mod.ReinitToken(ctx, dt.Token, req.DevicePIN, dt.Token, nil); err != nil {
				return nil, err
			}
			res.Destroyed = []string{"every object on token " + dt.Token}
			return map[string]string{"method": "token re-initialisation (C_InitToken): every object destroyed"}, nil
		}
		objs, err := (*sess).Remaining(ctx, dt.KeyID, "")
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			res.Destroyed = append(res.Destroyed, o.String())
		}
		if _, err := (*sess).Destroy(ctx, hsm.Match{ID: dt.KeyID}); err != nil {
			return nil, err
		}
		return map[string]string{"method": "cryptographic erase by object destruction (C_DestroyObject)", "destroyed": joinOrNone(res.Destroyed)}, nil
	})
	if err != nil {
		return err
	}
	return step(env, j, "verify", tech, func() (map[string]string, error) {
		s := *sess
		if s == nil {
			var err error
			if s, err = mod.OpenSession(ctx, dt.Token); err != nil {
				return nil, err
			}
			defer s.Close()
		}
		left, err := remaining(ctx, s, dt.KeyID)
		if err != nil {
			return nil, err
		}
		all, err := s.Objects(ctx)
		if err != nil {
			return nil, err
		}
		if len(left) > 0 || (req.Method == Reinit && len(all) > 0) {
			return nil, fmt.Errorf("verification failed: still on token %q: %s; the run stops here and nothing was revoked", dt.Token, joinOrNone(left))
		}
		if _, err := s.Signer(ctx, hsm.Match{Class: hsm.ClassPrivateKey, ID: dt.KeyID}); err == nil {
			return nil, fmt.Errorf("verification failed: the old key on %q can still sign", dt.Token)
		}
		res.Remaining = "none of the destroyed objects remains"
		res.Verification = fmt.Sprintf("token %s searched for key id %x: nothing remains; the old key cannot sign", dt.Token, dt.KeyID)
		return map[string]string{"remaining": joinOrNone(left), "objects_on_token": fmt.Sprint(len(all)),
			"old_key_signs": "no", "verification": res.Verification}, nil
	})
}

// revokePublishRecord records the decommission in the registry (revoking the certificates),
// signs the issuer's new CRL, and writes the signed destruction record.
func revokePublishRecord(ctx context.Context, env Env, j *record.Journal, mod *hsm.Module, req Request, serials []string,
	iss registry.Issuer, issCert *x509.Certificate, caKey *opstoken.Key, tech record.Actor, res *Result) error {
	keyState := registry.KeyDestroyed
	if req.Method == Unreachable {
		keyState = registry.KeyCompromised
	}
	var inval time.Time
	if req.Reason == pki.ReasonKeyCompromise {
		inval = req.InvalidityDate
		if inval.IsZero() {
			inval = env.now()
		}
	}
	var results []registry.DeviceResult
	err := step(env, j, "revoke", tech, func() (map[string]string, error) {
		var err error
		var batch []registry.Decommission
		for _, s := range serials {
			batch = append(batch, registry.Decommission{RunID: res.RunID, DeviceSerial: s, Method: string(req.Method),
				Verification: res.Verification, Reason: req.Reason, Note: req.Note,
				KeyState: keyState, At: env.now(), InvalidityDate: inval})
		}
		if results, err = env.Registry.DecommissionDevices(ctx, batch); err != nil {
			return nil, err
		}
		var revoked []string
		for _, r := range results {
			for _, sn := range r.RevokedSerials {
				revoked = append(revoked, sn.String())
			}
			res.RevokedAt = r.RevokedAt
		}
		return map[string]string{"revoked": joinOrNone(revoked), "reason": req.Reason.String(), "key_state": string(keyState)}, nil
	})
	if err != nil {
		return err
	}
	err = step(env, j, "crl", tech, func() (map[string]string, error) {
		c, err := publish.SignCRL(ctx, env.Registry, env.Workspace, iss.ID, pki.Issuer{Certificate: issCert, Signer: caKey}, env.now(), req.CRLNextUpdate)
		if err != nil {
			return nil, err
		}
		if err := env.Registry.RecordRunCRL(ctx, res.RunID, iss.ID, c.Number); err != nil {
			return nil, err
		}
		res.CRL = c
		return map[string]string{"issuer": iss.ID, "number": fmt.Sprint(c.Number), "entries": fmt.Sprint(c.Entries),
			"file": c.DERPath, "sha256": c.Fingerprint.String()}, nil
	})
	if err != nil {
		return err
	}
	// The record holds the journal, so only its failure can be journaled, not its start.
	if err := writeRecord(ctx, env, j, mod, req, iss, issCert, results, res); err != nil {
		j.Fail("record", tech, err)
		return err
	}
	return nil
}

func writeRecord(ctx context.Context, env Env, j *record.Journal, mod *hsm.Module, req Request, iss registry.Issuer,
	issCert *x509.Certificate, results []registry.DeviceResult, res *Result) error {
	rootIss, err := env.Registry.Issuer(ctx, iss.ParentID)
	if err != nil {
		return fmt.Errorf("record: the root of %s: %w", iss.ID, err)
	}
	root, err := x509.ParseCertificate(rootIss.Certificate)
	if err != nil {
		return err
	}
	signer, key, err := opstoken.RecordSigner(ctx, env.Registry, mod, iss.CeremonyID, root, req.OpsPIN)
	if err != nil {
		return fmt.Errorf("revoked, but the record could not be signed: %w", err)
	}
	defer key.Close()
	d := &record.Destruction{ID: res.RunID, Outcome: "decommissioned", Technician: req.Technician, Witness: req.Witness,
		Issuer: iss.ID + " (" + issCert.Subject.CommonName + ")", CRLNumber: res.CRL.Number, CRLFile: res.CRL.DERPath,
		Manufacturer: strings.Join(issCert.Subject.Organization, ", ")}
	for _, r := range results {
		d.Devices = append(d.Devices, deviceRow(ctx, env, r, res))
	}
	entries := j.Entries()
	if len(entries) > 0 {
		d.Started, d.Finished = entries[0].Time, entries[len(entries)-1].Time
	}
	jb, err := j.Bytes()
	if err != nil {
		return err
	}
	path := singleRecordPath(env, res.RunID)
	if err := record.WriteDestruction(ctx, path, d, jb, signer); err != nil {
		return fmt.Errorf("revoked, but the record could not be written: %w", err)
	}
	res.RecordPath = path
	env.progress(Progress{Step: "record", Status: record.StatusDone, Detail: path})
	return nil
}

func deviceRow(ctx context.Context, env Env, r registry.DeviceResult, res *Result) record.DeviceRow {
	var keys, certs []string
	for _, k := range r.KeyIDs {
		keys = append(keys, "key "+hex.EncodeToString(k))
	}
	for _, s := range r.RevokedSerials {
		certs = append(certs, "cert "+s.String())
	}
	model := ""
	if dev, err := env.Registry.Device(ctx, r.DeviceSerial); err == nil {
		model = dev.Model
	}
	return record.DeviceRow{Serial: r.DeviceSerial, Model: model, Method: r.Method, KeyIDs: strings.Join(keys, " "),
		CertSerials: strings.Join(certs, " "), Verification: r.Verification, Reason: r.Reason.String(),
		Outcome: string(r.Outcome), Time: r.At}
}

// singleRecordPath is where a single-device run's record goes.
func singleRecordPath(env Env, runID string) string {
	return env.Workspace.Path("records", runID+".pdf")
}

// safeID keeps a serial usable in a file name.
func safeID(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, s)
}
