package decommission

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/opstoken"
	"github.com/custos-pki/custos/internal/secret"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
)

// Resume continues a decommission run that stopped half way. A fleet run re-reads its
// manifest (which must be unchanged) and handles the devices it had not finished. A single
// device that was identified finishes its erasure on the journaled token (with the device
// PIN), then revoke, CRL and record; one that stopped before identifying its device erased
// nothing and is aborted and started again instead.
func Resume(ctx context.Context, env Env, runID string, opsPIN, devicePIN []byte) (string, error) {
	defer secret.ZeroAll(opsPIN, devicePIN)
	run, err := env.Registry.DecommissionRun(ctx, runID)
	if err != nil {
		return "", err
	}
	if run.Status != registry.RunRunning && run.Status != registry.RunFailed {
		return "", fmt.Errorf("run %s is %s; only a stopped run can be resumed", runID, run.Status)
	}
	if run.Operation == "fleet" {
		m, err := LoadManifest(ctx, run.ManifestPath)
		if err != nil {
			return "", err
		}
		if FleetRunID(m) != runID {
			return "", fmt.Errorf("resume %s: %s changed since the run started; restore it, or abort the run", runID, run.ManifestPath)
		}
		res, err := Fleet(ctx, env, m, FleetRequest{ManifestPath: run.ManifestPath, Technician: run.Technician, Witness: run.Witness,
			OpsPIN: append([]byte(nil), opsPIN...), DevicePIN: append([]byte(nil), devicePIN...)})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("fleet run %s finished: %d decommissioned, %d already, %d failed; record %s", runID, res.Decommissioned, res.AlreadyDone, res.Failed, res.RecordPath), nil
	}
	return resumeSingle(ctx, env, run, opsPIN, devicePIN)
}

func resumeSingle(ctx context.Context, env Env, run registry.DecommissionRun, opsPIN, devicePIN []byte) (string, error) {
	j, err := record.OpenJournal(run.JournalPath, run.ID)
	if err != nil {
		return "", err
	}
	defer j.Close()
	var req Request
	var dt DeviceToken // the token and key identify proved, before anything was erased
	done := map[string]bool{}
	verification := ""
	for _, e := range j.Entries() {
		if e.Step == "decommission.request" {
			req.Serial, req.Technician, req.Witness, req.Note = e.Data["serial"], e.Data["technician"], e.Data["witness"], e.Data["note"]
			req.Method, _ = ParseMethod(e.Data["method"])
			req.Reason, _ = pki.ParseReason(e.Data["reason"])
		}
		if e.Step == "identify" && e.Status == record.StatusDone {
			dt.Token = e.Data["token"]
			dt.KeyID, _ = hex.DecodeString(e.Data["key_id"])
		}
		if e.Status == record.StatusDone {
			done[e.Step] = true
		}
		if e.Data["verification"] != "" {
			verification = e.Data["verification"]
		}
	}
	if req.Serial == "" {
		return "", fmt.Errorf("run %s stopped before it journaled its request, so it did nothing: abort it (custos abort %s) and start again", run.ID, run.ID)
	}
	finishErasure := req.Method.reaches() && !done["verify"]
	if finishErasure && !done["identify"] {
		return "", fmt.Errorf("run %s stopped before it erased anything from %s: abort it (custos abort %s) and decommission the device again", run.ID, req.Serial, run.ID)
	}
	if finishErasure && (dt.Token == "" || len(dt.KeyID) == 0) {
		return "", fmt.Errorf("resume %s: the journal's identify entry names no token and key id", run.ID)
	}
	if finishErasure && len(devicePIN) == 0 {
		return "", fmt.Errorf("run %s stopped while erasing %s from token %q: resuming finishes the erasure and needs the device PIN (--device-pin-file)", run.ID, req.Serial, dt.Token)
	}
	if req.CRLNextUpdate == 0 {
		req.CRLNextUpdate = 30 * 24 * time.Hour
	}
	req.OpsPIN, req.DevicePIN = opsPIN, devicePIN
	dev, err := env.Registry.Device(ctx, req.Serial)
	if err != nil {
		return "", err
	}
	if path, ok := signedRecord(ctx, env, run.ID, dev.IssuerID); ok {
		// Killed after its record was signed: all that is left is to say the run is complete.
		j.Note("decommission.resume", record.Actor{Name: req.Technician, Role: "technician"}, map[string]string{"record": path})
		if err := env.Registry.CompleteRun(ctx, run.ID, path); err != nil {
			return "", err
		}
		return fmt.Sprintf("device %s decommissioned; its record was written before the run stopped: %s", req.Serial, path), nil
	}
	mods, err := env.openModules(ctx)
	if err != nil {
		return "", err
	}
	defer mods.Close()
	iss, cert, key, err := opstoken.Issuer(ctx, env.Registry, mods.ops, dev.IssuerID, opsPIN)
	if err != nil {
		return "", err
	}
	defer key.Close()
	if run.Status == registry.RunFailed {
		if err := env.Registry.ResumeRun(ctx, run.ID); err != nil {
			return "", err
		}
	}
	if verification == "" {
		verification = fmt.Sprintf("not reachable (%s): nothing to erase; attested by %s", req.Method, req.Witness)
	}
	res := &Result{RunID: run.ID, Serial: req.Serial, Token: dt.Token, Reason: req.Reason, Verification: verification, JournalPath: run.JournalPath}
	tech := record.Actor{Name: req.Technician, Role: "technician"}
	j.Note("decommission.resume", tech, nil)
	if finishErasure {
		if err := resumeErasure(ctx, env, j, mods.devices, req, dt, tech, res); err != nil {
			env.Registry.FailRun(ctx, run.ID, err.Error())
			return "", err
		}
	}
	if err := revokePublishRecord(ctx, env, j, mods.ops, req, []string{req.Serial}, iss, cert, key, tech, res); err != nil {
		env.Registry.FailRun(ctx, run.ID, err.Error())
		return "", err
	}
	if err := env.Registry.CompleteRun(ctx, run.ID, res.RecordPath); err != nil {
		return "", err
	}
	return fmt.Sprintf("device %s decommissioned; CRL %d; record %s", req.Serial, res.CRL.Number, res.RecordPath), nil
}

// signedRecord finds the record a single-device run wrote before it stopped, when it is there
// whole and verifies against the root of the device's issuer.
func signedRecord(ctx context.Context, env Env, runID, issuerID string) (string, bool) {
	path := singleRecordPath(env, runID)
	b, err := os.ReadFile(path)
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

// resumeErasure finishes the erasure of a device whose run stopped after identifying it:
// whatever of its key id is still on the journaled token is destroyed (or the token
// re-initialised again), then the erasure is verified as in a run that never stopped.
func resumeErasure(ctx context.Context, env Env, j *record.Journal, mod *hsm.Module, req Request, dt DeviceToken, tech record.Actor, res *Result) error {
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
	return eraseAndVerify(ctx, env, j, mod, &sess, req, dt, tech, res)
}

// Abort ends a stopped decommission run without finishing it. Nothing erased can be put back;
// the journal and the registry say the run was aborted, and a device it did not finish stays
// as the registry has it.
func Abort(ctx context.Context, env Env, runID string) (string, error) {
	run, err := env.Registry.Run(ctx, runID)
	if err != nil {
		return "", err
	}
	if run.Kind != registry.RunDecommission {
		return "", errors.New("not a decommission run")
	}
	j, err := record.OpenJournal(run.JournalPath, run.ID)
	if err != nil {
		return "", err
	}
	defer j.Close()
	open := record.OpenSteps(j.Entries())
	note := "aborted; nothing erased can be restored"
	if len(open) > 0 {
		note = fmt.Sprintf("aborted in step %s; nothing erased can be restored", open[len(open)-1].Step)
	}
	if err := j.Note("run.abort", record.System, map[string]string{"note": note}); err != nil {
		return "", err
	}
	if err := env.Registry.AbortRun(ctx, runID, note); err != nil {
		return "", err
	}
	return note, nil
}
