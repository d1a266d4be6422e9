package decommission

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// RekeyHandler is what the decommission package knows of rekey runs that stopped half way,
// for run.Handlers: they resume from the step they stopped in (the device ends with exactly
// one identity: the new one), and abort only while the new certificate is not yet issued,
// destroying the half-made new key so the device keeps its old identity alone.
func RekeyHandler() run.Handler {
	return run.Handler{
		Kind:   registry.RunRekey,
		Title:  rekeyStepTitle,
		Resume: resumeRekey,
		Abort:  abortRekey,
		Asks:   run.Asks{OpsPIN: true, DevicePIN: true},
	}
}

// rekeyJournal is what a stopped rekey's journal says it did.
type rekeyJournal struct {
	req       RekeyRequest
	model     string
	oldIssuer string
	ident     *Identified
	newID     []byte
	newCert   *x509.Certificate
	crl       *run.CRLSigned
	done      map[string]bool
}

func readRekeyJournal(entries []record.Entry) (rekeyJournal, error) {
	j := rekeyJournal{done: map[string]bool{}}
	for _, e := range entries {
		var err error
		switch {
		case e.Step == stepRekeyRequest:
			var p RekeyRequested
			if p, err = record.Decode[RekeyRequested](e); err == nil {
				j.req = RekeyRequest{Serial: p.Serial, Algorithm: p.Algorithm, Issuer: p.Issuer, Technician: p.Technician,
					ValidityYears: p.ValidityYears, CRLNextUpdate: p.CRLNextUpdate}
				j.model, j.oldIssuer = p.Model, p.OldIssuer
			}
		case e.Step == stepNewKeyIntent:
			var p run.KeyIntent
			if p, err = record.Decode[run.KeyIntent](e); err == nil {
				j.newID = p.KeyID
			}
		case e.Step == stepIdentify.ID && e.Status == record.StatusDone:
			var p Identified
			if p, err = record.Decode[Identified](e); err == nil {
				j.ident = &p
			}
		case e.Step == stepIssue.ID && e.Status == record.StatusDone:
			var p CertificateIssued
			if p, err = record.Decode[CertificateIssued](e); err == nil {
				j.newCert, err = x509.ParseCertificate(p.DER)
			}
		case e.Step == stepCRL.ID && e.Status == record.StatusDone:
			var p run.CRLSigned
			if p, err = record.Decode[run.CRLSigned](e); err == nil {
				j.crl = &p
			}
		}
		if err != nil {
			return j, fmt.Errorf("the journal's %s entry (line %d): %w", e.Step, e.Seq, err)
		}
		if e.Status == record.StatusDone {
			j.done[e.Step] = true
		}
	}
	return j, nil
}

// resumeRekey continues a rekey run that stopped half way, with the caller's PINs.
func resumeRekey(ctx context.Context, env run.Env, rr registry.Run, pins run.PINs) (run.Outcome, error) {
	jf, err := record.ReadJournalFile(rr.JournalPath)
	if err != nil {
		return run.Outcome{}, err
	}
	j, err := readRekeyJournal(jf.Entries)
	if err != nil {
		return run.Outcome{}, fmt.Errorf("resume %s: %w", rr.ID, err)
	}
	if j.req.Serial == "" {
		return run.Outcome{}, fmt.Errorf("run %s stopped before it journaled its request, so it did nothing: abort it and re-key the device again", rr.ID)
	}
	if len(pins.Ops) == 0 {
		return run.Outcome{}, run.NewFieldError("OpsPIN", "resume %s: the operator PIN is needed to sign the certificate, the CRL and the record", rr.ID)
	}
	if !j.done[stepVerify.ID] && len(pins.Device) == 0 {
		return run.Outcome{}, run.NewFieldError("DevicePIN", "resume %s: the run stopped before the old key of %s was erased; resuming needs the device PIN", rr.ID, j.req.Serial)
	}
	j.req.OpsPIN, j.req.DevicePIN = pins.Ops, pins.Device
	if j.req.CRLNextUpdate == 0 {
		j.req.CRLNextUpdate = 30 * 24 * time.Hour
	}
	dev, err := env.Registry.Device(ctx, j.req.Serial)
	if err != nil {
		return run.Outcome{}, err
	}
	r, err := run.Continue(ctx, env, rr)
	if err != nil {
		return run.Outcome{}, err
	}
	tech := record.Actor{Name: j.req.Technician, Role: "technician"}
	if path, ok := signedRecord(ctx, env, rr.ID, j.oldIssuer); ok {
		// Killed after its record was signed: all that is left is to say the run is complete.
		if err := r.Note(run.StepResume, tech, run.Resumed{Note: "the record was signed before the run stopped: " + path}); err != nil {
			return run.Outcome{}, r.Finish(ctx, err, "")
		}
		if err := r.Finish(ctx, nil, path); err != nil {
			return run.Outcome{}, err
		}
		return run.Outcome{Summary: fmt.Sprintf("device %s re-keyed; its record was written before the run stopped: %s", j.req.Serial, path)}, nil
	}
	// The device's issuer is the new one once the new certificate is registered; the old
	// certificate's is the request's.
	dev.IssuerID = j.oldIssuer
	k := &rekeying{r: r, req: j.req, dev: dev, tech: tech, done: j.done, newID: j.newID, newCert: j.newCert,
		res: &RekeyResult{RunID: rr.ID, Serial: j.req.Serial, JournalPath: rr.JournalPath}}
	if j.crl != nil {
		k.res.CRL = run.CRL{Number: j.crl.Number, DERPath: j.crl.File}
	}
	err = k.resume(ctx, j)
	if err = r.Finish(ctx, err, k.res.RecordPath); err != nil {
		return run.Outcome{}, err
	}
	return run.Outcome{Summary: fmt.Sprintf("device %s re-keyed: new key %x, certificate %s; old certificate revoked on CRL %d; record %s",
		j.req.Serial, k.newID, k.newCert.SerialNumber.Text(16), k.res.CRL.Number, k.res.RecordPath)}, nil
}

// resume takes up the stopped run's steps where its journal left them.
func (k *rekeying) resume(ctx context.Context, j rekeyJournal) error {
	env := k.r.Env
	mods, err := env.OpenModules(ctx)
	if err != nil {
		return err
	}
	defer mods.Close()
	if err := k.openIssuers(ctx, env, mods); err != nil {
		return err
	}
	defer k.closeIssuers()
	if err := k.r.Note(run.StepResume, k.tech, nil); err != nil {
		return err
	}
	if j.ident == nil {
		// It stopped before proving the old key: nothing changed on the token.
		if k.old, err = findDevice(ctx, env, mods.Devices, k.req.Serial); err != nil {
			return err
		}
	} else {
		k.old = DeviceToken{Token: j.ident.Token, Serial: k.req.Serial, KeyID: j.ident.KeyID}
		if k.old.Certificate, err = registeredCertificate(ctx, env, k.req.Serial, j.ident.CertificateSerial); err != nil {
			return err
		}
	}
	return k.steps(ctx, mods)
}

// registeredCertificate is the device's registered certificate of serial hex.
func registeredCertificate(ctx context.Context, env run.Env, device, serialHex string) (*x509.Certificate, error) {
	serial, err := registry.ParseSerial(serialHex)
	if err != nil {
		return nil, err
	}
	h, err := env.Registry.DeviceHistory(ctx, device)
	if err != nil {
		return nil, err
	}
	for _, c := range h.Certificates {
		if bytes.Equal(c.Serial, serial) {
			return x509.ParseCertificate(c.DER)
		}
	}
	return nil, fmt.Errorf("device %s has no registered certificate %s", device, serialHex)
}

// abortRekey gives up a stopped rekey while the new certificate is not issued: the half-made
// new key is destroyed on the device's token (with the device PIN), and the device keeps its
// old key and certificate alone. Once the new certificate is issued the registry has the new
// key in use, so the run must be resumed instead.
func abortRekey(ctx context.Context, r *run.Run, pins run.PINs) (run.Outcome, error) {
	j, err := readRekeyJournal(r.Journal.Entries())
	if err != nil {
		return run.Outcome{}, fmt.Errorf("abort %s: %w", r.ID, err)
	}
	issued := j.done[stepIssue.ID]
	var token string
	if j.ident != nil {
		token = j.ident.Token
	}
	if !issued && len(j.newID) > 0 && j.req.Serial != "" {
		h, err := r.Env.Registry.DeviceHistory(ctx, j.req.Serial)
		if err != nil {
			return run.Outcome{}, err
		}
		for _, k := range h.Keys {
			issued = issued || bytes.Equal(k.KeyID, j.newID)
		}
	}
	if issued {
		return run.Outcome{}, fmt.Errorf("abort %s: the new certificate of %s is issued and registered, so the run cannot be undone: resume it (custos resume %s) to finish the rekey", r.ID, j.req.Serial, r.ID)
	}
	if len(j.newID) == 0 {
		return run.Outcome{Summary: "aborted before a new key was made; the device keeps its key and certificate"}, nil
	}
	if token == "" {
		if token, err = intentToken(r.Journal.Entries()); err != nil {
			return run.Outcome{}, err
		}
	}
	if len(pins.Device) == 0 {
		return run.Outcome{}, run.NewFieldError("DevicePIN", "abort %s: a new key %x may be half made on token %q: the device PIN is needed to remove it", r.ID, j.newID, token)
	}
	mod, err := r.Env.OpenDeviceModule(ctx)
	if err != nil {
		return run.Outcome{}, err
	}
	defer mod.Close()
	sess, err := mod.OpenSession(ctx, token)
	if err != nil {
		return run.Outcome{}, fmt.Errorf("abort %s: %w", r.ID, err)
	}
	defer sess.Close()
	if err := sess.Login(ctx, hsm.User, pins.Device); err != nil {
		return run.Outcome{}, fmt.Errorf("abort %s: device token %q: %w", r.ID, token, err)
	}
	defer sess.Logout(context.WithoutCancel(ctx))
	objs, err := sess.Find(ctx, hsm.Match{ID: j.newID})
	if err != nil {
		return run.Outcome{}, fmt.Errorf("abort %s: %w", r.ID, err)
	}
	out := run.Outcome{Summary: "aborted before the new certificate was issued; the device keeps its old key and certificate"}
	for _, o := range objs {
		if err := sess.DestroyObject(ctx, o); err != nil {
			return run.Outcome{}, fmt.Errorf("abort %s: destroy the half-made new key on %q: %w", r.ID, token, err)
		}
		out.Done = append(out.Done, fmt.Sprintf("destroyed %s of the half-made new key on token %q", o.String(), token))
	}
	return out, nil
}

// intentToken is the token the new key was meant for, as the journal's intent names it.
func intentToken(entries []record.Entry) (string, error) {
	for _, e := range entries {
		if e.Step == stepNewKeyIntent {
			p, err := record.Decode[run.KeyIntent](e)
			if err != nil {
				return "", err
			}
			return p.Token, nil
		}
	}
	return "", fmt.Errorf("the journal names no token for the new key")
}
