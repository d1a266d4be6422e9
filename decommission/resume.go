package decommission

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/inputfile"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// Handler is what the decommission package knows of its runs that stopped half way, for
// run.Handlers: they resume (a fleet re-reads its unchanged manifest and handles the devices it
// had not finished; a single device finishes its erasure, then revoke, CRL and record), and an
// abort only records that the run was given up, since nothing erased can be put back.
func Handler() run.Handler {
	return run.Handler{
		Kind:   registry.RunDecommission,
		Title:  stepTitle,
		Resume: resume,
		Abort:  abort,
		Asks:   run.Asks{OpsPIN: true, DevicePIN: true},
	}
}

// resume continues a decommission run that stopped half way, with the caller's PINs. A single
// device that stopped before identifying its device erased nothing: it is aborted and started
// again instead.
func resume(ctx context.Context, env run.Env, rr registry.Run, pins run.PINs) (run.Outcome, error) {
	dr, err := env.Registry.DecommissionRun(ctx, rr.ID)
	if err != nil {
		return run.Outcome{}, err
	}
	if len(pins.Ops) == 0 {
		return run.Outcome{}, run.NewFieldError("OpsPIN", "resume %s: the operator PIN is needed to sign the CRL and the record", rr.ID)
	}
	if dr.Operation == "fleet" {
		return resumeFleet(ctx, env, dr, pins)
	}
	return resumeSingle(ctx, env, dr, pins)
}

func resumeFleet(ctx context.Context, env run.Env, dr registry.DecommissionRun, pins run.PINs) (run.Outcome, error) {
	m, err := LoadManifest(ctx, dr.ManifestPath)
	if err != nil {
		return run.Outcome{}, err
	}
	if FleetRunID(m) != dr.ID {
		return run.Outcome{}, fmt.Errorf("resume %s: %s changed since the run started; restore it, or abort the run", dr.ID, dr.ManifestPath)
	}
	res, err := Fleet(ctx, env, m, FleetRequest{ManifestPath: dr.ManifestPath, Technician: dr.Technician, Witness: dr.Witness,
		OpsPIN: pins.Ops, DevicePIN: pins.Device})
	if err != nil {
		return run.Outcome{}, err
	}
	return run.Outcome{Summary: fmt.Sprintf("fleet run %s finished: %d decommissioned, %d already, %d failed; record %s",
		dr.ID, res.Decommissioned, res.AlreadyDone, res.Failed, res.RecordPath)}, nil
}

func resumeSingle(ctx context.Context, env run.Env, dr registry.DecommissionRun, pins run.PINs) (run.Outcome, error) {
	jf, err := record.ReadJournalFile(dr.JournalPath)
	if err != nil {
		return run.Outcome{}, err
	}
	var req Request
	var dt DeviceToken // the token and key identify proved, before anything was erased
	done := map[string]bool{}
	verification := ""
	for _, e := range jf.Entries {
		switch {
		case e.Step == stepRequest:
			p, err := record.Decode[Requested](e)
			if err != nil {
				return run.Outcome{}, err
			}
			req = Request{Serial: p.Serial, Method: p.Method, InvalidityDate: p.InvalidityDate, Technician: p.Technician,
				Witness: p.Witness, Validator: p.Validator, Destination: p.Destination, Note: p.Note, CRLNextUpdate: p.CRLNextUpdate}
			if req.Reason, err = pki.ParseReason(p.Reason); err != nil {
				return run.Outcome{}, fmt.Errorf("resume %s: the journal's request: %w", dr.ID, err)
			}
		case e.Step == stepIdentify.ID && e.Status == record.StatusDone:
			p, err := record.Decode[Identified](e)
			if err != nil {
				return run.Outcome{}, err
			}
			dt.Token, dt.KeyID = p.Token, p.KeyID
		case e.Step == stepVerify.ID && e.Status == record.StatusDone:
			p, err := record.Decode[Verified](e)
			if err != nil {
				return run.Outcome{}, err
			}
			verification = p.Verification
		case e.Step == stepAttest.ID && e.Status == record.StatusDone:
			p, err := record.Decode[Attested](e)
			if err != nil {
				return run.Outcome{}, err
			}
			verification = p.Attestation
		}
		if e.Status == record.StatusDone {
			done[e.Step] = true
		}
	}
	if req.Serial == "" {
		return run.Outcome{}, fmt.Errorf("run %s stopped before it journaled its request, so it did nothing: abort it and start again", dr.ID)
	}
	finishErasure := req.Method.reaches() && !done[stepVerify.ID]
	if finishErasure && !done[stepIdentify.ID] {
		return run.Outcome{}, fmt.Errorf("run %s stopped before it erased anything from %s: abort it and decommission the device again", dr.ID, req.Serial)
	}
	if finishErasure && (dt.Token == "" || len(dt.KeyID) == 0) {
		return run.Outcome{}, fmt.Errorf("resume %s: the journal's identify entry names no token and key id", dr.ID)
	}
	if finishErasure && len(pins.Device) == 0 {
		return run.Outcome{}, run.NewFieldError("DevicePIN", "run %s stopped while erasing %s from token %q: resuming finishes the erasure and needs the device PIN", dr.ID, req.Serial, dt.Token)
	}
	if req.CRLNextUpdate == 0 {
		req.CRLNextUpdate = 30 * 24 * time.Hour
	}
	req.OpsPIN, req.DevicePIN = pins.Ops, pins.Device
	dev, err := env.Registry.Device(ctx, req.Serial)
	if err != nil {
		return run.Outcome{}, err
	}
	r, err := run.Continue(ctx, env, dr.Run)
	if err != nil {
		return run.Outcome{}, err
	}
	tech := record.Actor{Name: req.Technician, Role: "technician"}
	if path, ok := signedRecord(ctx, env, dr.ID, dev.IssuerID); ok {
		// Killed after its record was signed: all that is left is to say the run is complete.
		if err := r.Note(run.StepResume, tech, run.Resumed{Note: "the record was signed before the run stopped: " + path}); err != nil {
			return run.Outcome{}, r.Finish(ctx, err, "")
		}
		if err := r.Finish(ctx, nil, path); err != nil {
			return run.Outcome{}, err
		}
		return run.Outcome{Summary: fmt.Sprintf("device %s decommissioned; its record was written before the run stopped: %s", req.Serial, path)}, nil
	}
	res := &Result{RunID: dr.ID, Serial: req.Serial, Token: dt.Token, Reason: req.Reason, Verification: verification, JournalPath: dr.JournalPath}
	err = continueSingle(ctx, r, req, dev, dt, finishErasure, tech, res)
	if err = r.Finish(ctx, err, res.RecordPath); err != nil {
		return run.Outcome{}, err
	}
	return run.Outcome{Summary: fmt.Sprintf("device %s decommissioned; CRL %d; record %s", req.Serial, res.CRL.Number, res.RecordPath)}, nil
}

// continueSingle does what a stopped single-device run left: the erasure when it was under
// way, then revoke, CRL and record.
func continueSingle(ctx context.Context, r *run.Run, req Request, dev registry.Device, dt DeviceToken, finishErasure bool, tech record.Actor, res *Result) error {
	mods, err := r.Env.OpenModules(ctx)
	if err != nil {
		return err
	}
	defer mods.Close()
	if err := r.Note(run.StepResume, tech, nil); err != nil {
		return err
	}
	// A token the stop tore can fail its whole module (SoftHSM then lists no slot at all), so
	// it is looked at before the operations token is.
	if finishErasure {
		if err := readableToken(ctx, mods.Devices, r.ID, req, dt); err != nil {
			return r.Fail(stepErase.ID, tech, err)
		}
	}
	iss, err := run.OpenIssuer(ctx, r.Env.Registry, mods.Ops, dev.IssuerID, req.OpsPIN, run.SignCRLs)
	if err != nil {
		return err
	}
	defer iss.Close()
	if res.Verification == "" {
		res.Verification = attestation(req.Method, req.Witness)
	}
	if finishErasure {
		if err := resumeErasure(ctx, r, mods.Devices, req, dt, tech, res); err != nil {
			return err
		}
	}
	return revokePublishRecord(ctx, r, mods.Ops, req, iss, tech, res)
}

// signedRecord finds the record a single-device run wrote before it stopped, when it is there
// whole and verifies against the root of the device's issuer.
func signedRecord(ctx context.Context, env run.Env, runID, issuerID string) (string, bool) {
	path := env.RecordPath(runID)
	b, err := inputfile.Read(ctx, "record", path, record.MaxFileSize)
	if err != nil {
		return "", false
	}
	iss, err := env.Registry.Issuer(ctx, issuerID)
	if err != nil {
		return "", false
	}
	root, err := env.Registry.Issuer(ctx, iss.ParentID)
	if err != nil {
		return "", false
	}
	cert, err := x509.ParseCertificate(root.Certificate)
	if err != nil {
		return "", false
	}
	return path, record.Verify(b, []*x509.Certificate{cert}).OK()
}

// TokenUnreadableError says the token of a device whose re-initialisation a stopped run began
// cannot be found or read now: a stop during C_InitToken can tear a token its module rewrites
// in place (SoftHSM does), and Custos can then neither erase it nor verify it. The way
// forward is a decommissioning as physical, with a witness.
type TokenUnreadableError struct {
	Serial, Token, RunID string
	Err                  error // what the module said
	Fleet                bool  // the run is a fleet's
}

func (e *TokenUnreadableError) Error() string {
	what := fmt.Sprintf("device %s: its token %q cannot be read (%v): the run stopped while re-initialising it, which can leave a token torn, so Custos can neither erase nor verify it; "+
		"take the token off the module (disconnect the device; for SoftHSM2, delete the token's folder), ", e.Serial, e.Token, e.Err)
	if e.Fleet {
		return what + fmt.Sprintf("decommission %s on its own with method physical and a witness who sees the device destroyed, then run the manifest again: a device decommissioned meanwhile is passed over", e.Serial)
	}
	return what + fmt.Sprintf("abort run %s, and decommission %s again with method physical and a witness who sees the device destroyed", e.RunID, e.Serial)
}

func (e *TokenUnreadableError) Unwrap() error { return e.Err }

// readableToken refuses, with a TokenUnreadableError, to go on with a re-initialisation that a
// stopped run began on a token that cannot be read now.
func readableToken(ctx context.Context, mod *hsm.Module, runID string, req Request, dt DeviceToken) error {
	if req.Method != Reinit {
		return nil
	}
	if _, err := mod.TokenByLabel(ctx, dt.Token); err != nil {
		return &TokenUnreadableError{Serial: req.Serial, Token: dt.Token, RunID: runID, Err: err}
	}
	return nil
}

// resumeErasure finishes the erasure of a device whose run stopped after identifying it:
// whatever of its key id is still on the journaled token is destroyed (or the token
// re-initialised again), then the erasure is verified as in a run that never stopped.
func resumeErasure(ctx context.Context, r *run.Run, mod *hsm.Module, req Request, dt DeviceToken, tech record.Actor, res *Result) error {
	sess, err := mod.OpenSession(ctx, dt.Token)
	if err != nil {
		return fmt.Errorf("resume the erasure of %s: %w", req.Serial, err)
	}
	defer func() {
		if sess != nil {
			sess.Logout(context.WithoutCancel(ctx))
			sess.Close()
		}
	}()
	if req.Method == Erase {
		if err := sess.Login(ctx, hsm.User, req.DevicePIN); err != nil {
			return fmt.Errorf("device token %q: %w", dt.Token, err)
		}
	}
	return eraseDevice(ctx, r, mod, &sess, req, dt, tech, res)
}

// abort gives up a stopped decommission run. Nothing erased can be put back; a device it did
// not finish stays as the registry has it.
func abort(ctx context.Context, r *run.Run, pins run.PINs) (run.Outcome, error) {
	open := record.OpenSteps(r.Journal.Entries())
	if len(open) > 0 {
		step := open[len(open)-1].Step
		if t := stepTitle(step); t != "" {
			step = t
		}
		return run.Outcome{Summary: fmt.Sprintf("aborted in step %s; nothing erased can be restored", step)}, nil
	}
	return run.Outcome{Summary: "aborted; nothing erased can be restored"}, nil
}
