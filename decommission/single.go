package decommission

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// Method is how a device's keys are destroyed.
type Method string

const (
	Erase       Method = "erase"       // destroy every key and certificate object of the identity
	Reinit      Method = "reinit"      // re-initialise the whole token (needs the device SO PIN)
	Physical    Method = "physical"    // the device was physically destroyed: nothing to erase
	Unreachable Method = "unreachable" // the device is lost: nothing to erase, its key may be known
)

// Methods are the ways a device's keys are destroyed, in the order a screen offers them.
func Methods() []Method { return []Method{Erase, Reinit, Physical, Unreachable} }

// ParseMethod reads a method name.
func ParseMethod(s string) (Method, error) {
	m := Method(strings.ToLower(strings.TrimSpace(s)))
	if slices.Contains(Methods(), m) {
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
	InvalidityDate time.Time  // for keyCompromise: since when the key may be known (--compromised-at); zero: the run's time
	Technician     string
	Witness        string
	Validator      string      // another person than the technician; required unless the workspace's policy allows none
	Destination    Destination // where the device goes; NoDestination: not stated
	Note           string
	OpsPIN         []byte // operations token: issuing CA (CRL) and record signer
	DevicePIN      []byte // the device token's PIN (user PIN for erase, SO PIN for reinit)
	CRLNextUpdate  time.Duration
}

// Result is what a decommission did.
type Result struct {
	RunID     string
	Serial    string
	Token     string
	Destroyed []string // objects destroyed
	Remaining string   // what the verification found
	Reason    pki.Reason
	RevokedAt time.Time
	// InvalidityDate is a keyCompromise revocation's invalidity date, and InvalidityFrom who
	// set it: FromTechnician or FromRunTime.
	InvalidityDate time.Time
	InvalidityFrom string
	CRL            run.CRL
	RecordPath     string
	JournalPath    string
	Verification   string
}

// check refuses a request missing what its method needs, naming the field, and fills in the
// defaults.
func (req *Request) check() error {
	if req.Serial == "" {
		return run.NewFieldError("Serial", "decommission: which device? name its serial")
	}
	if strings.TrimSpace(req.Technician) == "" {
		return run.NewFieldError("Technician", "decommission: the technician must be named")
	}
	if !req.Method.reaches() && strings.TrimSpace(req.Witness) == "" {
		return run.NewFieldError("Witness", "decommission %s: method %s needs a witness: nothing is erased, so a person must attest it", req.Serial, req.Method)
	}
	if req.Method.reaches() && len(req.DevicePIN) == 0 {
		return run.NewFieldError("DevicePIN", "decommission %s: method %s needs the device PIN", req.Serial, req.Method)
	}
	if p := req.Destination.problem(req.Method); p != "" {
		return run.NewFieldError("Destination", "decommission %s: %s", req.Serial, p)
	}
	if len(req.OpsPIN) == 0 {
		return run.NewFieldError("OpsPIN", "decommission %s: the operator PIN is needed to sign the CRL and the record", req.Serial)
	}
	if req.Reason == pki.ReasonUnspecified {
		req.Reason = req.Method.DefaultReason()
	}
	if !validReason(req.Reason) {
		return run.NewFieldError("Reason", "decommission %s: a device is not revoked for %s; use one of %s", req.Serial, req.Reason, pki.ReasonNames(Reasons(req.Method)))
	}
	if req.CRLNextUpdate == 0 {
		req.CRLNextUpdate = 30 * 24 * time.Hour
	}
	return nil
}

// Decommission retires one device: identify (proof of possession), erase, verify, revoke,
// sign a new CRL, and write the signed destruction record. A device already decommissioned,
// unknown, or failing its proof is refused before anything changes. The PINs in req stay the
// caller's.
func Decommission(ctx context.Context, env run.Env, req Request) (*Result, error) {
	if err := req.check(); err != nil {
		return nil, err
	}
	if p := compromisedAtProblem(req.Reason, req.InvalidityDate, env.Clock()); p != "" {
		return nil, run.NewFieldError("InvalidityDate", "decommission %s: %s", req.Serial, p)
	}
	dev, err := env.Registry.Device(ctx, req.Serial)
	if errors.Is(err, registry.ErrNotFound) {
		return nil, run.NewFieldError("Serial", "decommission: device %s is not registered in this workspace", req.Serial)
	}
	if err != nil {
		return nil, err
	}
	if dev.Status == registry.DeviceDecommissioned {
		return nil, fmt.Errorf("decommission: device %s was already decommissioned on %s", req.Serial, dev.DecommissionedAt.UTC().Format(time.DateOnly))
	}
	if err := checkValidator(ctx, env, "decommission "+req.Serial, req.Technician, req.Validator); err != nil {
		return nil, err
	}
	if err := refuseOpenRekey(ctx, env, req.Serial); err != nil {
		return nil, err
	}
	if err := env.Workspace.CheckWritable(); err != nil {
		return nil, err
	}
	if err := checkSigners(ctx, env, dev.IssuerID); err != nil {
		return nil, fmt.Errorf("decommission %s: %w", req.Serial, err)
	}
	mods, err := env.OpenModules(ctx)
	if err != nil {
		return nil, err
	}
	defer mods.Close()
	// The operator PIN is checked before any device is touched.
	iss, err := run.OpenIssuer(ctx, env.Registry, mods.Ops, dev.IssuerID, req.OpsPIN, run.SignCRLs)
	if err != nil {
		return nil, err
	}
	defer iss.Close()

	var dt DeviceToken
	if req.Method.reaches() {
		if dt, err = findDevice(ctx, env, mods.Devices, req.Serial); err != nil {
			return nil, err
		}
	}
	if req.Method == Reinit {
		if err := mods.Devices.CanReinit(ctx); err != nil {
			return nil, fmt.Errorf("decommission %s: method reinit cannot be done on token %q: %w; use method erase, which destroys the objects of the device identity and verifies they are gone", req.Serial, dt.Token, err)
		}
	}
	id := run.NewID(env, "decommission", req.Serial)
	r, err := run.Start(ctx, env, id, func(reg *registry.Registry, jpath string) error {
		_, err := reg.StartDecommissionRun(ctx, registry.DecommissionRun{Run: registry.Run{ID: id,
			Kind: registry.RunDecommission, Operation: "single", Subject: req.Serial, JournalPath: jpath},
			Technician: req.Technician, Witness: req.Witness})
		return err
	})
	if err != nil {
		return nil, err
	}
	res := &Result{RunID: r.ID, Serial: req.Serial, Token: dt.Token, Reason: req.Reason, JournalPath: r.Journal.Path()}
	err = runSingle(ctx, r, mods, req, dev, dt, iss, res)
	return res, r.Finish(ctx, err, res.RecordPath)
}

func runSingle(ctx context.Context, r *run.Run, mods run.Modules, req Request, dev registry.Device,
	dt DeviceToken, iss *run.Issuer, res *Result) error {
	tech := record.Actor{Name: req.Technician, Role: "technician"}
	if err := r.Note(stepRequest, tech, Requested{Serial: req.Serial, Model: dev.Model, UDI: dev.UDI, Method: req.Method,
		Reason: req.Reason.String(), InvalidityDate: req.InvalidityDate, Technician: req.Technician, Witness: req.Witness,
		Validator: req.Validator, Destination: req.Destination,
		Issuer: iss.Entry.ID, Note: req.Note, CRLNextUpdate: req.CRLNextUpdate}); err != nil {
		return err
	}
	var sess *hsm.Session
	defer func() {
		if sess != nil {
			sess.Logout(context.WithoutCancel(ctx))
			sess.Close()
		}
	}()
	if req.Method.reaches() {
		err := r.Step(stepIdentify, tech, func() (any, error) {
			var err error
			if sess, err = mods.Devices.OpenSession(ctx, dt.Token); err != nil {
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
			return Identified{Token: dt.Token, TokenSerial: info.SerialOrNone(), TokenModel: info.Model,
				TokenManufacturer: info.Manufacturer, TokenFirmware: info.FirmwareVersion.String(), KeyID: dt.KeyID,
				CertificateSerial: pki.SerialHex(dt.Certificate.SerialNumber), Proof: proof}, nil
		})
		if err != nil {
			return err
		}
		if err := eraseDevice(ctx, r, mods.Devices, &sess, req, dt, tech, res); err != nil {
			return err
		}
	} else {
		res.Verification = attestation(req.Method, req.Witness)
		err := r.Step(stepAttest, record.Actor{Name: req.Witness, Role: "witness"}, func() (any, error) {
			return Attested{Method: req.Method, Witness: req.Witness, Attestation: res.Verification}, nil
		})
		if err != nil {
			return err
		}
	}
	return revokePublishRecord(ctx, r, mods.Ops, req, iss, tech, res)
}

// eraseDevice destroys the identity the registry has of the device req names, and proves it
// is gone: see eraseAndVerify.
func eraseDevice(ctx context.Context, r *run.Run, mod *hsm.Module, sess **hsm.Session, req Request, dt DeviceToken, tech record.Actor, res *Result) error {
	ident, err := identityOf(ctx, r.Env, req.Serial)
	if err != nil {
		return err
	}
	return eraseAndVerify(ctx, r, mod, sess, req, dt, ident, tech, res, stepErase, stepVerify, nil)
}

// eraseAndVerify destroys the device identity by the method and proves it is gone. Every
// object of the identity is found first, whatever its id (by key id, certificate value and
// public key: see hsm.Session.IdentityObjects), its private keys' attributes read, and the
// erasure classified under NIST SP 800-88 Rev. 2 before anything is destroyed; afterwards the
// same searches must find nothing.
//
// ident is the identity to erase; erase and verify are the steps it is journaled as; after,
// when not nil, records in the registry what the verification proved, inside verify.
func eraseAndVerify(ctx context.Context, r *run.Run, mod *hsm.Module, sess **hsm.Session, req Request, dt DeviceToken, ident identity,
	tech record.Actor, res *Result, erase, verify run.Step, after func() error) error {
	category := ""
	err := r.Step(erase, tech, func() (any, error) {
		found, _, err := (*sess).IdentityObjects(ctx, dt.KeyID, ident.certs)
		if err != nil {
			return nil, err
		}
		var copies string
		category, copies = classify(found, ident)
		if prev, ok := erasedBefore(r, req.Serial); ok && !hasPrivateKey(found) {
			// A resumed run: the stopped one destroyed the key after classifying it.
			category, copies = prev.Category, prev.Copies+" (read before the run stopped)"
		}
		for _, o := range found {
			res.Destroyed = append(res.Destroyed, o.String())
		}
		p := Erased{Serial: req.Serial, Category: category, Copies: copies, Origin: ident.origin(), Objects: objectsDestroyed(found)}
		if req.Method == Reinit {
			(*sess).Logout(ctx)
			(*sess).Close()
			*sess = nil
			if _, err := mod.ReinitToken(ctx, dt.Token, req.DevicePIN, dt.Token, nil); err != nil {
				return nil, err
			}
			res.Destroyed = append(res.Destroyed, "every other object on token "+dt.Token)
			p.Method = "token re-initialisation (C_InitToken): every object destroyed"
			p.Technique = "cryptographic erase: the key store re-initialised, every object on it destroyed (C_InitToken)"
		} else {
			for _, o := range found {
				if err := (*sess).DestroyObject(ctx, o.Object); err != nil {
					return nil, err
				}
			}
			p.Method = "cryptographic erase by object destruction (C_DestroyObject)"
			p.Technique = "cryptographic erase: every object of the device identity destroyed on the key store (C_DestroyObject)"
		}
		p.Destroyed = res.Destroyed
		return p, nil
	})
	if err != nil {
		return err
	}
	return r.Step(verify, tech, func() (any, error) {
		s := *sess
		if s == nil {
			var err error
			if s, err = mod.OpenSession(ctx, dt.Token); err != nil {
				return nil, err
			}
			defer s.Close()
		}
		left, searches, err := s.IdentityObjects(ctx, dt.KeyID, ident.certs)
		if err != nil {
			return nil, err
		}
		all, err := s.Objects(ctx)
		if err != nil {
			return nil, err
		}
		var still []string
		for _, o := range left {
			still = append(still, o.String())
		}
		if len(left) > 0 || (req.Method == Reinit && len(all) > 0) {
			return nil, fmt.Errorf("verification failed: still on token %q: %s; the run stops here and nothing was revoked", dt.Token, joinOrNone(still))
		}
		if len(dt.KeyID) > 0 {
			if _, err := s.Signer(ctx, hsm.Match{Class: hsm.ClassPrivateKey, ID: dt.KeyID}); err == nil {
				return nil, fmt.Errorf("verification failed: the old key on %q can still sign", dt.Token)
			}
		}
		if after != nil {
			if err := after(); err != nil {
				return nil, err
			}
		}
		res.Remaining = "none of the destroyed objects remains"
		res.Verification = fmt.Sprintf("%s (cryptographic erase): token %s searched %d ways for the device identity (key id, certificate value, public key): nothing remains; the old key cannot sign",
			orClear(category), dt.Token, len(searches))
		return Verified{Searches: searchesOf(searches), ObjectsOnToken: len(all), OldKeySigns: false, Verification: res.Verification}, nil
	})
}

// orClear is the category an erasure counts as; an erasure whose classification was lost
// (a run resumed after the erase step was journaled) is taken as only a Clear.
func orClear(category string) string {
	if category == "" {
		return Clear
	}
	return category
}

// revokePublishRecord records the device's decommissioning in the registry (revoking its
// certificates), signs the issuer's new CRL, and writes the signed destruction record.
func revokePublishRecord(ctx context.Context, r *run.Run, mod *hsm.Module, req Request, iss *run.Issuer, tech record.Actor, res *Result) error {
	env := r.Env
	keyState := registry.KeyDestroyed
	if req.Method == Unreachable {
		keyState = registry.KeyCompromised
	}
	inval, from := invalidity(req.Reason, req.InvalidityDate, env.Clock())
	res.InvalidityDate, res.InvalidityFrom = inval, from
	var results []registry.DeviceResult
	err := r.Step(stepRevoke, tech, func() (any, error) {
		d := registry.Decommission{RunID: res.RunID, DeviceSerial: req.Serial, Method: string(req.Method),
			Verification: res.Verification, Reason: req.Reason, Note: req.Note,
			KeyState: keyState, At: env.Clock(), InvalidityDate: inval}
		var err error
		if results, err = r.Registry().DecommissionDevices(ctx, []registry.Decommission{d}); err != nil {
			return nil, err
		}
		p := Revoked{Serial: req.Serial, Method: req.Method, Reason: req.Reason.String(), KeyState: string(keyState),
			At: d.At, InvalidityDate: inval, InvalidityFrom: from, Verification: res.Verification}
		for _, dr := range results {
			for _, sn := range dr.RevokedSerials {
				p.Revoked = append(p.Revoked, sn.String())
			}
			res.RevokedAt = dr.RevokedAt
		}
		return p, nil
	})
	if err != nil {
		return err
	}
	err = r.Step(stepCRL, tech, func() (any, error) {
		c, err := run.SignCRL(ctx, r, iss.Entry, iss.Signer(), run.CRLRequest{NextUpdate: req.CRLNextUpdate, UpToLimit: true})
		if err != nil {
			return nil, err
		}
		if err := r.Registry().RecordRunCRL(ctx, res.RunID, iss.Entry.ID, c.Number); err != nil {
			return nil, err
		}
		res.CRL = c
		return c.Payload(iss.Entry.ID), nil
	})
	if err != nil {
		return err
	}
	// The record holds the journal, so only its failure can be journaled, not its start.
	if err := writeRecord(ctx, r, mod, req, iss, results, res); err != nil {
		return r.Fail(stepRecord.ID, tech, err)
	}
	return nil
}

func writeRecord(ctx context.Context, r *run.Run, mod *hsm.Module, req Request, iss *run.Issuer,
	results []registry.DeviceResult, res *Result) error {
	env := r.Env
	signer, err := openRecordSigner(ctx, env, mod, iss.Entry, req.OpsPIN)
	if err != nil {
		return fmt.Errorf("revoked, but the record could not be signed: %w", err)
	}
	defer signer.Close()
	d := &record.Destruction{ID: res.RunID, Outcome: "decommissioned", Technician: req.Technician, Witness: req.Witness,
		Validator: validatorText(req.Validator),
		Issuer:    iss.Entry.ID + " (" + iss.Certificate.Subject.CommonName + ")", CRLNumber: res.CRL.Number, CRLFile: res.CRL.DERPath,
		Manufacturer: strings.Join(iss.Certificate.Subject.Organization, ", ")}
	_, from := invalidity(req.Reason, req.InvalidityDate, time.Time{})
	sz := sanitizationOf(r.Journal.Entries(), req.Serial)
	sz.Destination = req.Destination.For(req.Method).Text()
	for _, dr := range results {
		row := deviceRow(dr)
		row.Reason += invalidityText(dr.InvalidityDate, from)
		row.Destination, row.KeyStore = string(req.Destination.For(req.Method)), keyStoreText(sz.KeyStore)
		sz.UDI = row.UDI
		d.Devices = append(d.Devices, row)
	}
	d.Sanitized = []record.Sanitization{sz}
	res.RecordPath, err = writeDestruction(ctx, r, d, signer)
	if err != nil {
		return fmt.Errorf("revoked, but the record could not be written: %w", err)
	}
	return nil
}

// writeDestruction writes the run's destruction record d, dated by its journal.
func writeDestruction(ctx context.Context, r *run.Run, d *record.Destruction, signer *run.RecordSigner) (string, error) {
	if entries := r.Journal.Entries(); len(entries) > 0 {
		d.Started, d.Finished = entries[0].Time, entries[len(entries)-1].Time
	}
	kind := "decommission"
	if len(d.Devices) > 1 || d.Results != nil {
		kind = "fleet"
	}
	seal := run.LogSeal{Kind: kind, RootID: signer.RootID, Root: signer.Chain[len(signer.Chain)-1]}
	return r.WriteRecord(ctx, stepRecord, seal, signer.Signer, func(path string, journal []byte, log *record.LogProof) error {
		d.Log = log
		return record.WriteDestruction(ctx, path, d, journal, signer.Signer)
	})
}

// checkSigners refuses, before any token is opened, a decommission whose issuing CA may not
// sign its CRL or whose record signer may not sign its record.
func checkSigners(ctx context.Context, env run.Env, issuerID string) error {
	iss, err := run.CheckIssuer(ctx, env.Registry, issuerID, run.SignCRLs)
	if err != nil {
		return err
	}
	_, err = run.CheckRecordSigner(ctx, env.Registry, iss.CeremonyID)
	return err
}

// openRecordSigner opens the record signer of the root above the issuing CA iss.
func openRecordSigner(ctx context.Context, env run.Env, mod *hsm.Module, iss registry.Issuer, opsPIN []byte) (*run.RecordSigner, error) {
	rootIss, err := env.Registry.Issuer(ctx, iss.ParentID)
	if err != nil {
		return nil, fmt.Errorf("the root of %s: %w", iss.ID, err)
	}
	root, err := x509.ParseCertificate(rootIss.Certificate)
	if err != nil {
		return nil, err
	}
	return run.OpenRecordSigner(ctx, env.Registry, mod, iss.CeremonyID, root, opsPIN)
}

func deviceRow(r registry.DeviceResult) record.DeviceRow {
	var keys, certs []string
	for _, k := range r.KeyIDs {
		keys = append(keys, "key "+hex.EncodeToString(k))
	}
	for _, s := range r.RevokedSerials {
		certs = append(certs, "cert "+s.String())
	}
	return record.DeviceRow{Serial: r.DeviceSerial, UDI: r.DeviceUDI, Model: r.DeviceModel, Method: r.Method, KeyIDs: strings.Join(keys, " "),
		CertSerials: strings.Join(certs, " "), Verification: r.Verification, Reason: r.Reason.String(),
		Outcome: string(r.Outcome), Time: r.At}
}

// keyStoreText is a key store's identity in one line for a table: manufacturer, model and
// serial; "" when the device was not reached.
func keyStoreText(fs []record.Field) string {
	var parts []string
	for _, f := range fs {
		switch f.Name {
		case "Manufacturer", "Model":
			parts = append(parts, f.Value)
		case "Serial":
			parts = append(parts, "serial "+f.Value)
		}
	}
	return strings.Join(parts, " ")
}
