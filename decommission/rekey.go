package decommission

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/keyalg"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// RekeyRequest is a device to move to a new key during its life.
type RekeyRequest struct {
	Serial string
	// Algorithm of the new key; "" keeps the current key's.
	Algorithm keyalg.Algorithm
	// Issuer of the new certificate, id or common name; "" is the device's issuing CA. Another
	// one must be an active issuing CA under the same root, made no earlier than the device's.
	Issuer     string
	Technician string
	// ValidityYears of the new certificate; 0 means 10 (or what its issuer has left).
	ValidityYears int
	OpsPIN        []byte // operations token: the issuing CAs (certificate, CRL) and the record signer
	DevicePIN     []byte // the device token's user PIN
	CRLNextUpdate time.Duration
}

// RekeyResult is what a rekey did.
type RekeyResult struct {
	RunID          string
	Serial         string
	Token          string
	OldKeyID       []byte
	NewKeyID       []byte
	OldCertificate *x509.Certificate
	NewCertificate *x509.Certificate
	Issuer         string // the new certificate's issuing CA
	Destroyed      []string
	Verification   string
	CRL            run.CRL // the old certificate's issuer's CRL, listing it superseded
	RecordPath     string
	JournalPath    string
}

// The steps of a rekey run. Identify, erase and verify are the decommission's steps with the
// same payloads, so the record reads the old key's sanitization as a decommission's.
var (
	stepGenerate  = run.Step{ID: "generate", Title: "Generate the new key on the device's token"}
	stepIssue     = run.Step{ID: "issue", Title: "Issue the new certificate"}
	stepStore     = run.Step{ID: "store", Title: "Store the new certificate and prove the new key"}
	stepSupersede = run.Step{ID: "supersede", Title: "Revoke the old certificate (superseded)"}
	stepOldErase  = run.Step{ID: stepErase.ID, Title: "Erase the old key and certificate"}
	stepOldVerify = run.Step{ID: stepVerify.ID, Title: "Verify the old key is gone"}
	rekeySteps    = []run.Step{stepIdentify, stepGenerate, stepIssue, stepStore, stepSupersede, stepOldErase, stepOldVerify, stepCRL, stepRecord}
)

const (
	stepRekeyRequest = "rekey.request"    // RekeyRequested
	stepNewKeyIntent = "rekey.key-intent" // run.KeyIntent: the new key's id, before it is generated
)

// RekeySteps are a rekey's steps in order, for a step list on screen.
func RekeySteps() []run.Step { return rekeySteps }

func rekeyStepTitle(id string) string {
	for _, st := range rekeySteps {
		if st.ID == id {
			return st.Title
		}
	}
	return ""
}

// RekeyRequested is the payload of a rekey's first entry: what was asked, so a resumed run
// does the same.
type RekeyRequested struct {
	Serial        string           `json:"serial"`
	Model         string           `json:"model"`
	Algorithm     keyalg.Algorithm `json:"algorithm"`
	OldIssuer     string           `json:"old_issuer"`
	Issuer        string           `json:"issuer"`
	Technician    string           `json:"technician"`
	ValidityYears int              `json:"validity_years,omitempty"`
	CRLNextUpdate time.Duration    `json:"crl_next_update_ns"`
}

// KeyGenerated is the payload of generate: the new key and what the token says of it.
type KeyGenerated struct {
	Token            string           `json:"token"`
	KeyID            record.Hex       `json:"key_id"`
	Algorithm        keyalg.Algorithm `json:"algorithm"`
	PublicKeySHA256  record.Hex       `json:"public_key_sha256"`
	Local            bool             `json:"cka_local"`
	NeverExtractable bool             `json:"cka_never_extractable"`
	AlwaysSensitive  bool             `json:"cka_always_sensitive"`
	Extractable      bool             `json:"cka_extractable"`
}

// CertificateIssued is the payload of issue: the new certificate, as registered.
type CertificateIssued struct {
	Issuer       string     `json:"issuer"`
	Serial       string     `json:"serial"`
	NotBefore    time.Time  `json:"not_before"`
	NotAfter     time.Time  `json:"not_after"`
	CRL          []string   `json:"crl_distribution_points,omitempty"`
	Policies     []string   `json:"policies,omitempty"`
	SHA256       record.Hex `json:"sha256"`
	DER          record.Hex `json:"der"`
	Verification string     `json:"verification"`
}

// Stored is the payload of store: the new certificate on the token, and the new key's proof.
type Stored struct {
	Token string     `json:"token"`
	KeyID record.Hex `json:"key_id"`
	Proof string     `json:"proof"`
}

// Superseded is the payload of supersede: the old certificate revoked.
type Superseded struct {
	Issuer    string    `json:"issuer"`
	Serial    string    `json:"serial"`
	Reason    string    `json:"reason"`
	RevokedAt time.Time `json:"revoked_at"`
}

// check refuses a request missing what a rekey needs, naming the field, and fills in the
// defaults.
func (req *RekeyRequest) check() error {
	if req.Serial == "" {
		return run.NewFieldError("Serial", "rekey: which device? name its serial")
	}
	if strings.TrimSpace(req.Technician) == "" {
		return run.NewFieldError("Technician", "rekey %s: the technician must be named", req.Serial)
	}
	if len(req.DevicePIN) == 0 {
		return run.NewFieldError("DevicePIN", "rekey %s: the device PIN is needed: the new key is made on the device's token", req.Serial)
	}
	if len(req.OpsPIN) == 0 {
		return run.NewFieldError("OpsPIN", "rekey %s: the operator PIN is needed to sign the certificate, the CRL and the record", req.Serial)
	}
	if req.Algorithm != "" {
		if _, err := keyalg.Parse(string(req.Algorithm)); err != nil {
			return &run.FieldError{Name: "Algorithm", Problem: fmt.Sprintf("rekey %s: %v", req.Serial, err), Err: err}
		}
	}
	if req.ValidityYears < 0 || req.ValidityYears > 50 {
		return run.NewFieldError("ValidityYears", "rekey %s: a device certificate is valid 1 to 50 years, not %d", req.Serial, req.ValidityYears)
	}
	if req.CRLNextUpdate == 0 {
		req.CRLNextUpdate = 30 * 24 * time.Hour
	}
	return nil
}

// publicKeySHA256 is the registry's fingerprint of a public key (see registry.PublicKeySHA256).
func publicKeySHA256(pub crypto.PublicKey) ([32]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(spki), nil
}

// rekeyIssuer is the issuing CA a rekey of a device under current issues from: current when
// ref is empty, else ref, which must be an active issuing CA under the same root made no
// earlier than current. It is checked before any module is loaded.
func rekeyIssuer(ctx context.Context, env run.Env, serial string, current registry.Issuer, ref string) (registry.Issuer, error) {
	if ref == "" || ref == current.ID {
		ref = current.ID
	}
	iss, err := run.CheckIssuer(ctx, env.Registry, ref, run.SignCertificates)
	if err != nil {
		return registry.Issuer{}, &run.FieldError{Name: "Issuer", Problem: fmt.Sprintf("rekey %s: %v", serial, err), Err: err}
	}
	if iss.ID == current.ID {
		return iss, nil
	}
	if iss.ParentID != current.ParentID {
		return registry.Issuer{}, run.NewFieldError("Issuer", "rekey %s: issuing CA %s is under root %s, the device's CA %s under root %s: a device keeps its root",
			serial, iss.ID, iss.ParentID, current.ID, current.ParentID)
	}
	// Newer is registered later: two CAs made within a second share their CreatedAt.
	all, err := env.Registry.Issuers(ctx)
	if err != nil {
		return registry.Issuer{}, err
	}
	order := map[string]int{}
	for i, x := range all {
		order[x.ID] = i
	}
	if order[iss.ID] < order[current.ID] {
		return registry.Issuer{}, run.NewFieldError("Issuer", "rekey %s: issuing CA %s was made before the device's CA %s (%s): a rekey moves a device to the same or a newer CA",
			serial, iss.ID, current.ID, current.CreatedAt.UTC().Format(time.DateOnly))
	}
	return iss, nil
}

// Rekey moves a device to a new key on its token: it proves possession of the current key,
// generates the new key there (never extractable, generated on the token), issues its
// certificate from the same or a newer issuing CA (sign-then-verify, lint), stores it and
// proves the new key under it, revokes the old certificate (superseded), destroys every
// object of the old identity on the token and verifies they are gone, signs the old
// certificate's issuer's CRL and writes the signed record. A run that stops half way is
// resumed (RekeyHandler): the device ends with exactly one identity. The PINs in req stay the
// caller's.
func Rekey(ctx context.Context, env run.Env, req RekeyRequest) (*RekeyResult, error) {
	if err := req.check(); err != nil {
		return nil, err
	}
	dev, err := env.Registry.Device(ctx, req.Serial)
	if errors.Is(err, registry.ErrNotFound) {
		return nil, run.NewFieldError("Serial", "rekey: device %s is not registered in this workspace", req.Serial)
	}
	if err != nil {
		return nil, err
	}
	if dev.Status != registry.DeviceActive {
		return nil, fmt.Errorf("rekey: device %s was decommissioned on %s; a decommissioned device gets no new key", req.Serial, dev.DecommissionedAt.UTC().Format(time.DateOnly))
	}
	if err := refuseOpenRekey(ctx, env, req.Serial); err != nil {
		return nil, err
	}
	if err := env.Workspace.CheckWritable(); err != nil {
		return nil, err
	}
	if err := checkSigners(ctx, env, dev.IssuerID); err != nil {
		return nil, fmt.Errorf("rekey %s: %w", req.Serial, err)
	}
	current, err := env.Registry.Issuer(ctx, dev.IssuerID)
	if err != nil {
		return nil, err
	}
	newIss, err := rekeyIssuer(ctx, env, req.Serial, current, req.Issuer)
	if err != nil {
		return nil, err
	}
	req.Issuer = newIss.ID
	mods, err := env.OpenModules(ctx)
	if err != nil {
		return nil, err
	}
	defer mods.Close()
	k := &rekeying{req: req, dev: dev, done: map[string]bool{}, tech: record.Actor{Name: req.Technician, Role: "technician"}}
	// The operator PIN is checked before any device is touched.
	if err := k.openIssuers(ctx, env, mods); err != nil {
		return nil, err
	}
	defer k.closeIssuers()
	if k.old, err = findDevice(ctx, env, mods.Devices, req.Serial); err != nil {
		return nil, fmt.Errorf("rekey %s: %w", req.Serial, err)
	}
	if req.Algorithm == "" {
		if k.req.Algorithm, err = pki.KeyAlgorithmOf(k.old.Certificate.PublicKey); err != nil {
			return nil, run.NewFieldError("Algorithm", "rekey %s: the current key is none Custos makes (%v): name the new key's algorithm", req.Serial, err)
		}
	}
	id := run.NewID(env, "rekey", req.Serial)
	r, err := run.StartRun(ctx, env, registry.Run{ID: id, Kind: registry.RunRekey, Operation: "rekey", Subject: req.Serial})
	if err != nil {
		return nil, err
	}
	k.r = r
	k.res = &RekeyResult{RunID: id, Serial: req.Serial, Token: k.old.Token, JournalPath: r.Journal.Path()}
	err = r.Note(stepRekeyRequest, k.tech, RekeyRequested{Serial: req.Serial, Model: dev.Model, Algorithm: k.req.Algorithm,
		OldIssuer: dev.IssuerID, Issuer: k.req.Issuer, Technician: req.Technician, ValidityYears: req.ValidityYears, CRLNextUpdate: k.req.CRLNextUpdate})
	if err == nil {
		err = k.steps(ctx, mods)
	}
	return k.res, r.Finish(ctx, err, k.res.RecordPath)
}

// refuseOpenRekey refuses a rekey or a decommission of a device while a rekey of it is
// stopped half way: that run is finished or aborted first, so the device has one identity.
func refuseOpenRekey(ctx context.Context, env run.Env, serial string) error {
	runs, err := env.Registry.UnfinishedRuns(ctx)
	if err != nil {
		return err
	}
	for _, rr := range runs {
		if rr.Kind == registry.RunRekey && rr.Subject == serial {
			return fmt.Errorf("device %s: rekey run %s stopped half way: resume it (custos resume %s) or abort it first", serial, rr.ID, rr.ID)
		}
	}
	return nil
}

// rekeying is one rekey run: what it knows of the device and which of its steps are done. A
// new run and a resumed one go through steps alike.
type rekeying struct {
	r         *run.Run
	req       RekeyRequest
	dev       registry.Device
	tech      record.Actor
	old       DeviceToken // the token, the old key's id and certificate
	oldIssuer *run.Issuer // the old certificate's: signs the CRL
	newIssuer *run.Issuer // signs the new certificate
	newID     []byte      // the new key's id, once intended
	newCert   *x509.Certificate
	done      map[string]bool
	res       *RekeyResult
}

func (k *rekeying) openIssuers(ctx context.Context, env run.Env, mods run.Modules) error {
	var err error
	if k.oldIssuer, err = run.OpenIssuer(ctx, env.Registry, mods.Ops, k.dev.IssuerID, k.req.OpsPIN, run.SignCRLs); err != nil {
		return fmt.Errorf("rekey %s: %w", k.req.Serial, err)
	}
	if k.req.Issuer == k.dev.IssuerID {
		k.newIssuer = k.oldIssuer
		return nil
	}
	if k.newIssuer, err = run.OpenIssuer(ctx, env.Registry, mods.Ops, k.req.Issuer, k.req.OpsPIN, run.SignCertificates); err != nil {
		k.oldIssuer.Close()
		return fmt.Errorf("rekey %s: %w", k.req.Serial, err)
	}
	return nil
}

func (k *rekeying) closeIssuers() {
	if k.newIssuer != nil && k.newIssuer != k.oldIssuer {
		k.newIssuer.Close()
	}
	if k.oldIssuer != nil {
		k.oldIssuer.Close()
	}
}

// steps does every step not yet done, in order, on the device's token.
func (k *rekeying) steps(ctx context.Context, mods run.Modules) error {
	k.res.OldKeyID, k.res.OldCertificate, k.res.Issuer = k.old.KeyID, k.old.Certificate, k.req.Issuer
	if !k.done[stepVerify.ID] {
		if err := k.deviceSteps(ctx, mods); err != nil {
			return err
		}
	}
	if !k.done[stepCRL.ID] {
		err := k.r.Step(stepCRL, k.tech, func() (any, error) {
			c, err := run.SignCRL(ctx, k.r, k.oldIssuer.Entry, k.oldIssuer.Signer(), run.CRLRequest{NextUpdate: k.req.CRLNextUpdate, UpToLimit: true})
			if err != nil {
				return nil, err
			}
			k.res.CRL = c
			return c.Payload(k.oldIssuer.Entry.ID), nil
		})
		if err != nil {
			return err
		}
	}
	k.res.NewKeyID, k.res.NewCertificate = k.newID, k.newCert
	if err := k.writeRecord(ctx, mods.Ops); err != nil {
		return k.r.Fail(stepRecord.ID, k.tech, err)
	}
	return nil
}

// deviceSteps are the steps on the device's token, up to the verification that the old key is
// gone.
func (k *rekeying) deviceSteps(ctx context.Context, mods run.Modules) error {
	env := k.r.Env
	// The session is opened inside the first step that needs it, so a token that fails
	// there fails that step, journaled.
	var sess *hsm.Session
	defer func() {
		if sess != nil {
			sess.Logout(context.WithoutCancel(ctx))
			sess.Close()
		}
	}()
	session := func() (*hsm.Session, error) {
		if sess != nil {
			return sess, nil
		}
		s, err := mods.Devices.OpenSession(ctx, k.old.Token)
		if err != nil {
			return nil, fmt.Errorf("device token %q: %w", k.old.Token, err)
		}
		if err := s.Login(ctx, hsm.User, k.req.DevicePIN); err != nil {
			s.Close()
			return nil, fmt.Errorf("device token %q: %w", k.old.Token, err)
		}
		sess = s
		return s, nil
	}
	var key *hsm.Signer
	newKey := func() (*hsm.Signer, error) {
		if key != nil {
			return key, nil
		}
		s, err := session()
		if err != nil {
			return nil, err
		}
		if key, err = s.Signer(ctx, hsm.Match{Class: hsm.ClassPrivateKey, ID: k.newID}); err != nil {
			return nil, fmt.Errorf("the new key %x is not on token %q: %w", k.newID, k.old.Token, err)
		}
		return key, nil
	}
	if !k.done[stepIdentify.ID] {
		err := k.r.Step(stepIdentify, k.tech, func() (any, error) {
			s, err := session()
			if err != nil {
				return nil, err
			}
			proof, err := prove(ctx, s, k.old)
			if err != nil {
				return nil, err
			}
			info, _ := s.TokenInfo(ctx)
			return Identified{Token: k.old.Token, TokenSerial: info.SerialOrNone(), TokenModel: info.Model,
				TokenManufacturer: info.Manufacturer, TokenFirmware: info.FirmwareVersion.String(), KeyID: k.old.KeyID,
				CertificateSerial: pki.SerialHex(k.old.Certificate.SerialNumber), Proof: proof}, nil
		})
		if err != nil {
			return err
		}
	}
	if !k.done[stepGenerate.ID] {
		var err error
		if key, err = k.generate(ctx, session); err != nil {
			return err
		}
	}
	if !k.done[stepIssue.ID] {
		if err := k.issue(ctx, session, newKey); err != nil {
			return err
		}
	}
	if !k.done[stepStore.ID] {
		err := k.r.Step(stepStore, k.tech, func() (any, error) {
			s, err := session()
			if err != nil {
				return nil, err
			}
			key, err := newKey()
			if err != nil {
				return nil, err
			}
			if _, err := s.Certificate(ctx, hsm.Match{ID: k.newID}); err != nil {
				if err := s.StoreCertificate(ctx, k.newCert, k.newID, "device "+k.req.Serial); err != nil {
					return nil, err
				}
			}
			stored, err := s.Certificate(ctx, hsm.Match{ID: k.newID})
			if err != nil {
				return nil, err
			}
			if !bytes.Equal(stored.Raw, k.newCert.Raw) {
				return nil, fmt.Errorf("token %q holds another certificate under the new key's id %x", k.old.Token, k.newID)
			}
			proof, err := possession(key, k.newCert, "the new key")
			if err != nil {
				return nil, err
			}
			return Stored{Token: k.old.Token, KeyID: k.newID, Proof: proof}, nil
		})
		if err != nil {
			return err
		}
	}
	if !k.done[stepSupersede.ID] {
		err := k.r.Step(stepSupersede, k.tech, func() (any, error) {
			serial, err := registry.SerialFromBig(k.old.Certificate.SerialNumber)
			if err != nil {
				return nil, err
			}
			rv, _, err := k.r.Registry().Revoke(ctx, registry.Revocation{IssuerID: k.dev.IssuerID, Serial: serial,
				RevokedAt: env.Clock(), Reason: pki.ReasonSuperseded, RunID: k.r.ID})
			if err != nil {
				return nil, err
			}
			return Superseded{Issuer: rv.IssuerID, Serial: rv.Serial.String(), Reason: rv.Reason.String(), RevokedAt: rv.RevokedAt}, nil
		})
		if err != nil {
			return err
		}
	}
	if _, err := session(); err != nil {
		return k.r.Fail(stepOldErase.ID, k.tech, err)
	}
	return k.eraseOld(ctx, mods.Devices, &sess)
}

// generate makes the new key on the device's token, after journaling its id, and checks the
// token says it was made there and can never leave. A half-made key a stopped run left under
// its journaled id is destroyed first. session opens the device's token, logged in.
func (k *rekeying) generate(ctx context.Context, session func() (*hsm.Session, error)) (*hsm.Signer, error) {
	var key *hsm.Signer
	err := k.r.Step(stepGenerate, k.tech, func() (any, error) {
		sess, err := session()
		if err != nil {
			return nil, err
		}
		if len(k.newID) > 0 {
			for _, o := range mustFind(ctx, sess, k.newID) {
				if err := sess.DestroyObject(ctx, o); err != nil {
					return nil, fmt.Errorf("destroy the half-made new key %x on %q: %w", k.newID, k.old.Token, err)
				}
			}
		} else {
			id, err := sess.Random(ctx, 16)
			if err != nil {
				return nil, err
			}
			if err := k.r.Note(stepNewKeyIntent, k.tech, run.KeyIntent{Token: k.old.Token, KeyID: id}); err != nil {
				return nil, err
			}
			k.newID = id
		}
		key, err = sess.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: k.req.Algorithm, ID: k.newID, Label: "device " + k.req.Serial})
		if err != nil {
			return nil, err
		}
		objs, err := sess.Find(ctx, hsm.Match{Class: hsm.ClassPrivateKey, ID: k.newID})
		if err != nil {
			return nil, err
		}
		if len(objs) != 1 {
			return nil, fmt.Errorf("token %q shows %d private keys under the new key's id %x", k.old.Token, len(objs), k.newID)
		}
		o := objs[0]
		if !o.Local || !o.NeverExtractable || o.Extractable || !o.Sensitive {
			return nil, fmt.Errorf("token %q says the new key was not made on it or can leave it (CKA_LOCAL %t, CKA_NEVER_EXTRACTABLE %t, CKA_EXTRACTABLE %t, CKA_SENSITIVE %t)",
				k.old.Token, o.Local, o.NeverExtractable, o.Extractable, o.Sensitive)
		}
		if err := pki.CheckPublicKey(key.Public(), k.req.Algorithm); err != nil {
			return nil, err
		}
		fpr, err := publicKeySHA256(key.Public())
		if err != nil {
			return nil, err
		}
		return KeyGenerated{Token: k.old.Token, KeyID: k.newID, Algorithm: k.req.Algorithm, PublicKeySHA256: fpr[:],
			Local: o.Local, NeverExtractable: o.NeverExtractable, AlwaysSensitive: o.AlwaysSensitive, Extractable: o.Extractable}, nil
	})
	return key, err
}

// mustFind lists the objects under id on the token; a failed search finds nothing, and the
// key generation that follows refuses a taken id anyway.
func mustFind(ctx context.Context, sess *hsm.Session, id []byte) []hsm.Object {
	objs, _ := sess.Find(ctx, hsm.Match{ID: id})
	return objs
}

// issue has the new issuing CA certify the new key (lint, sign, verify) and registers it: the
// device's old key is deactivated as the new one comes into use. A certificate a stopped run
// registered for the same key is taken instead of a second one.
func (k *rekeying) issue(ctx context.Context, session func() (*hsm.Session, error), newKey func() (*hsm.Signer, error)) error {
	env := k.r.Env
	return k.r.Step(stepIssue, k.tech, func() (any, error) {
		sess, err := session()
		if err != nil {
			return nil, err
		}
		key, err := newKey()
		if err != nil {
			return nil, err
		}
		fpr, err := publicKeySHA256(key.Public())
		if err != nil {
			return nil, err
		}
		cert, err := k.registered(ctx, fpr)
		if err != nil {
			return nil, err
		}
		if cert == nil {
			serial, err := pki.NewSerial(run.TokenRand(ctx, sess))
			if err != nil {
				return nil, err
			}
			p := deviceProfile(k.newIssuer, k.req.Serial, k.dev.Model, env.Clock(), k.req.ValidityYears)
			if cert, _, err = pki.Issue(p, serial, key.Public(), k.newIssuer.Signer()); err != nil {
				return nil, fmt.Errorf("rekey %s: %w", k.req.Serial, err)
			}
			rc, err := registry.CertificateFromX509(k.newIssuer.Entry.ID, cert)
			if err != nil {
				return nil, err
			}
			_, err = k.r.Registry().RekeyDevice(ctx, registry.DeviceRekey{RunID: k.r.ID, DeviceSerial: k.req.Serial, Certificate: rc,
				Key: registry.DeviceKey{KeyID: k.newID, PublicKeySHA256: fpr, TokenLabel: k.old.Token, GeneratedAt: cert.NotBefore}})
			if err != nil {
				return nil, err
			}
		}
		if err := cert.CheckSignatureFrom(k.newIssuer.Certificate); err != nil {
			return nil, fmt.Errorf("the new certificate does not verify under %s: %w", k.newIssuer.Entry.ID, err)
		}
		k.newCert = cert
		sum := sha256.Sum256(cert.Raw)
		var pols []string
		for _, p := range cert.PolicyIdentifiers {
			pols = append(pols, p.String())
		}
		return CertificateIssued{Issuer: k.newIssuer.Entry.ID, Serial: pki.SerialHex(cert.SerialNumber), NotBefore: cert.NotBefore,
			NotAfter: cert.NotAfter, CRL: cert.CRLDistributionPoints, Policies: pols, SHA256: sum[:], DER: cert.Raw,
			Verification: "linted before signing, the signature verified under " + k.newIssuer.Entry.ID + " after"}, nil
	})
}

// registered is the certificate the registry has for the device's key fpr, nil when it has
// none.
func (k *rekeying) registered(ctx context.Context, fpr [32]byte) (*x509.Certificate, error) {
	h, err := k.r.Env.Registry.DeviceHistory(ctx, k.req.Serial)
	if err != nil {
		return nil, err
	}
	for _, key := range h.Keys {
		if key.PublicKeySHA256 != fpr {
			continue
		}
		for _, c := range h.Certificates {
			if c.IssuerID == key.CertIssuerID && bytes.Equal(c.Serial, key.CertSerial) {
				return x509.ParseCertificate(c.DER)
			}
		}
	}
	return nil, nil
}

// eraseOld destroys every object of the old identity on the token, found as a
// decommission's erase finds them (by the old key's id, the old certificates' values and
// public keys), verifies none is left, and records the old key destroyed.
func (k *rekeying) eraseOld(ctx context.Context, mod *hsm.Module, sess **hsm.Session) error {
	ident, err := identityOf(ctx, k.r.Env, k.req.Serial)
	if err != nil {
		return err
	}
	// The identity is the old one: every registered certificate but the new.
	old := ident.certs[:0]
	for _, c := range ident.certs {
		if !bytes.Equal(c.Raw, k.newCert.Raw) {
			old = append(old, c)
		}
	}
	ident.certs = old
	res := &Result{}
	dreq := Request{Serial: k.req.Serial, Method: Erase, DevicePIN: k.req.DevicePIN}
	err = eraseAndVerify(ctx, k.r, mod, sess, dreq, k.old, ident, k.tech, res, stepOldErase, stepOldVerify, func() error {
		fpr := registry.PublicKeySHA256(k.old.Certificate)
		h, err := k.r.Env.Registry.DeviceHistory(ctx, k.req.Serial)
		if err != nil {
			return err
		}
		for _, key := range h.Keys {
			if key.PublicKeySHA256 == fpr && key.State != registry.KeyDestroyed {
				return k.r.Registry().SetKeyStateInRun(ctx, k.r.ID, k.req.Serial, fpr, registry.KeyDestroyed, k.r.Env.Clock(), "destroyed on the device's token by rekey, run "+k.r.ID)
			}
		}
		return nil
	})
	k.res.Destroyed, k.res.Verification = res.Destroyed, res.Verification
	return err
}

// writeRecord signs the rekey's record: the old key's sanitization as a decommission's
// record has it, and the new identity.
func (k *rekeying) writeRecord(ctx context.Context, ops *hsm.Module) error {
	env := k.r.Env
	signer, err := openRecordSigner(ctx, env, ops, k.oldIssuer.Entry, k.req.OpsPIN)
	if err != nil {
		return fmt.Errorf("re-keyed, but the record could not be signed: %w", err)
	}
	defer signer.Close()
	newCert, oldCert := k.newCert, k.old.Certificate
	d := &record.Destruction{ID: k.r.ID, Outcome: "re-keyed: the device has a new key and certificate; the old certificate is revoked (superseded) and the old key destroyed",
		Technician: k.req.Technician, Issuer: k.oldIssuer.Entry.ID + " (" + k.oldIssuer.Certificate.Subject.CommonName + ")",
		CRLNumber: k.res.CRL.Number, CRLFile: k.res.CRL.DERPath, Manufacturer: strings.Join(k.oldIssuer.Certificate.Subject.Organization, ", ")}
	d.Devices = []record.DeviceRow{{Serial: k.req.Serial, Model: k.dev.Model, Method: "rekey",
		KeyIDs: fmt.Sprintf("key %x", k.old.KeyID), CertSerials: "cert " + pki.SerialHex(oldCert.SerialNumber),
		Verification: k.res.Verification, Reason: pki.ReasonSuperseded.String(), Outcome: "re-keyed", Time: env.Clock()}}
	d.Sanitized = []record.Sanitization{sanitizationOf(k.r.Journal.Entries(), k.req.Serial)}
	newFpr := registry.PublicKeySHA256(newCert)
	d.Replacement = []record.Field{
		{Name: "Token", Value: k.old.Token},
		{Name: "New key", Value: fmt.Sprintf("id %x, %s, generated on the token, never extractable (CKA_LOCAL, CKA_NEVER_EXTRACTABLE)", k.newID, k.req.Algorithm)},
		{Name: "Public key SHA-256", Value: fmt.Sprintf("%x", newFpr[:])},
		{Name: "New certificate", Value: fmt.Sprintf("serial %s, issued by %s, valid %s to %s", pki.SerialHex(newCert.SerialNumber),
			k.newIssuer.Entry.ID, newCert.NotBefore.UTC().Format(time.DateOnly), newCert.NotAfter.UTC().Format(time.DateOnly))},
		{Name: "CRL distribution point", Value: orNone(strings.Join(newCert.CRLDistributionPoints, " "))},
		{Name: "Old certificate", Value: fmt.Sprintf("serial %s of %s, revoked (superseded), on CRL %d", pki.SerialHex(oldCert.SerialNumber),
			k.oldIssuer.Entry.ID, k.res.CRL.Number)},
	}
	k.res.RecordPath, err = writeDestruction(ctx, k.r, d, signer)
	if err != nil {
		return fmt.Errorf("re-keyed, but the record could not be written: %w", err)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
