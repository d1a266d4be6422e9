package decommission

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"slices"
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

// FleetRequest is who retires a fleet, and with which PINs.
type FleetRequest struct {
	ManifestPath  string
	Technician    string
	Witness       string
	OpsPIN        []byte // zeroed
	DevicePIN     []byte // for rows that erase or reinit; zeroed
	CRLNextUpdate time.Duration
}

// FleetResult is what a fleet run did.
type FleetResult struct {
	RunID            string
	Devices          int
	Decommissioned   int
	AlreadyDone      int // decommissioned by an earlier run: nothing changed
	Failed           int
	CRLs             []publish.CRL
	RecordPath       string
	JournalPath      string
	Resumed          bool
	AlreadyCompleted bool
}

// batchSize is how many unreachable or destroyed devices one registry transaction and one
// journal entry cover.
const batchSize = 1000

// FleetRunID is the run id of a manifest: the same manifest always resumes the same run.
func FleetRunID(m *Manifest) string { return "fleet-" + hex.EncodeToString(m.SHA256[:6]) }

// Fleet retires every device of a manifest: reachable ones are identified, erased and
// verified on their tokens, the rest recorded as the row says; then one CRL per issuer and
// one signed fleet record. Run again with the same manifest, it resumes where it stopped,
// and once complete it changes nothing.
func Fleet(ctx context.Context, env Env, m *Manifest, req FleetRequest) (*FleetResult, error) {
	defer secret.ZeroAll(req.OpsPIN, req.DevicePIN)
	if strings.TrimSpace(req.Technician) == "" {
		return nil, errors.New("fleet: the technician must be named (--technician)")
	}
	if req.CRLNextUpdate == 0 {
		req.CRLNextUpdate = 30 * 24 * time.Hour
	}
	runID := FleetRunID(m)
	res := &FleetResult{RunID: runID, Devices: len(m.Rows)}
	jpath := env.Workspace.Path("journal", runID+".jsonl")
	res.JournalPath = jpath
	prev, err := env.Registry.Run(ctx, runID)
	if err == nil && prev.Status == registry.RunCompleted {
		res.AlreadyCompleted, res.RecordPath = true, prev.RecordPath
		return res, nil
	}
	if err := preflight(ctx, env, m, req); err != nil {
		return nil, err
	}
	var j *record.Journal
	switch {
	case err == nil && prev.Status == registry.RunAborted:
		return nil, fmt.Errorf("fleet run %s for this manifest was aborted; change the manifest to start a new run", runID)
	case err == nil:
		if prev.Status == registry.RunFailed {
			if err := env.Registry.ResumeRun(ctx, runID); err != nil {
				return nil, err
			}
		}
		if j, err = record.OpenJournal(jpath, runID); err != nil {
			return nil, err
		}
		res.Resumed = true
		if !slices.ContainsFunc(j.Entries(), func(e record.Entry) bool { return e.Step == "fleet.manifest" }) {
			journalManifest(j, m, req) // killed before it journaled its manifest
		}
		j.Note("fleet.resume", record.Actor{Name: req.Technician, Role: "technician"}, nil)
	case errors.Is(err, registry.ErrNotFound):
		if err := env.Workspace.CheckWritable(); err != nil {
			return nil, err
		}
		if j, err = startJournal(jpath, runID); err != nil {
			return nil, err
		}
		if _, err := env.Registry.StartDecommissionRun(ctx, registry.DecommissionRun{Run: registry.Run{ID: runID,
			Kind: registry.RunDecommission, Operation: "fleet", Subject: req.ManifestPath, JournalPath: jpath},
			ManifestPath: req.ManifestPath, ManifestSHA256: m.SHA256[:], Technician: req.Technician, Witness: req.Witness}); err != nil {
			j.Close()
			return nil, err
		}
		journalManifest(j, m, req)
	default:
		return nil, err
	}
	defer j.Close()
	if err := runFleet(ctx, env, j, m, req, res); err != nil {
		if ctx.Err() == nil {
			env.Registry.FailRun(context.WithoutCancel(ctx), runID, err.Error())
		}
		return res, err
	}
	if err := env.Registry.CompleteRun(ctx, runID, res.RecordPath); err != nil {
		return res, err
	}
	return res, nil
}

// preflight refuses a manifest before anything changes: unknown devices (by line), rows that
// need a witness or a device PIN that was not given.
func preflight(ctx context.Context, env Env, m *Manifest, req FleetRequest) error {
	var bad ManifestError
	for _, r := range m.Rows {
		if _, err := env.Registry.Device(ctx, r.Serial); errors.Is(err, registry.ErrNotFound) {
			bad = append(bad, RowError{r.Line, fmt.Sprintf("device %s is not registered in this workspace", r.Serial)})
		} else if err != nil {
			return err
		}
		if !r.Method.reaches() && strings.TrimSpace(req.Witness) == "" {
			bad = append(bad, RowError{r.Line, fmt.Sprintf("method %s needs a witness (--witness)", r.Method)})
		}
		if r.Method.reaches() && len(req.DevicePIN) == 0 {
			bad = append(bad, RowError{r.Line, fmt.Sprintf("method %s needs the device PIN (--device-pin-file)", r.Method)})
		}
	}
	if slices.ContainsFunc(m.Rows, func(r Row) bool { return r.Method == Reinit }) {
		reinit, err := canReinit(ctx, env)
		if err != nil {
			return err
		}
		for _, r := range m.Rows {
			if r.Method == Reinit && reinit != nil {
				bad = append(bad, RowError{r.Line, fmt.Sprintf("method reinit cannot be done on this module's tokens (%v): use method erase", reinit)})
			}
		}
	}
	if len(bad) > 0 {
		return bad
	}
	if len(req.OpsPIN) == 0 {
		return errors.New("fleet: the operator PIN is needed to sign the CRL and the record (--ops-pin-file)")
	}
	return nil
}

// canReinit says whether the device tokens' module can re-initialise tokens: nil when it can,
// the reason when it cannot; err when the module cannot be asked.
func canReinit(ctx context.Context, env Env) (reason, err error) {
	mod, err := env.openDeviceModule(ctx)
	if err != nil {
		return nil, err
	}
	defer mod.Close()
	if err := mod.CanReinit(ctx); err != nil {
		if errors.Is(err, hsm.ErrCannotReinit) {
			return err, nil
		}
		return nil, err
	}
	return nil, nil
}

func runFleet(ctx context.Context, env Env, j *record.Journal, m *Manifest, req FleetRequest, res *FleetResult) error {
	tech := record.Actor{Name: req.Technician, Role: "technician"}
	done, err := env.Registry.RunDoneSerials(ctx, res.RunID)
	if err != nil {
		return err
	}
	mods, err := env.openModules(ctx)
	if err != nil {
		return err
	}
	defer mods.Close()
	// Every issuer's key is opened before any device is touched: a wrong operator PIN stops
	// the run here.
	issuers := map[string]*fleetIssuer{}
	for _, r := range m.Rows {
		dev, err := env.Registry.Device(ctx, r.Serial)
		if err != nil {
			return err
		}
		if _, ok := issuers[dev.IssuerID]; !ok {
			iss, cert, key, err := opstoken.Issuer(ctx, env.Registry, mods.ops, dev.IssuerID, req.OpsPIN)
			if err != nil {
				return err
			}
			defer key.Close()
			issuers[dev.IssuerID] = &fleetIssuer{iss: iss, cert: cert, key: key}
		}
	}
	handled := len(done)
	env.progress(Progress{Step: "fleet", Status: record.StatusBegin, Done: handled, Total: len(m.Rows)})
	var batch []registry.Decommission
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		name := fmt.Sprintf("revoke %s … %s", batch[0].DeviceSerial, batch[len(batch)-1].DeviceSerial)
		err := step(env, j, "revoke-batch", tech, func() (map[string]string, error) {
			// What is done is recorded even when the run is being cancelled: cancel stops the
			// next device, it must not leave an erased one unrevoked.
			if _, err := env.Registry.DecommissionDevices(context.WithoutCancel(ctx), batch); err != nil {
				return nil, err
			}
			return map[string]string{"devices": fmt.Sprint(len(batch)), "first": batch[0].DeviceSerial, "last": batch[len(batch)-1].DeviceSerial}, nil
		})
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		handled += len(batch)
		batch = batch[:0]
		env.progress(Progress{Step: "fleet", Status: record.StatusNote, Done: handled, Total: len(m.Rows)})
		return nil
	}
	for _, r := range m.Rows {
		if done[r.Serial] {
			continue
		}
		if err := ctx.Err(); err != nil {
			if ferr := flush(); ferr != nil {
				return ferr
			}
			return fmt.Errorf("fleet stopped after %d of %d devices (run it again to resume): %w", handled, len(m.Rows), err)
		}
		d := registry.Decommission{RunID: res.RunID, DeviceSerial: r.Serial, Method: string(r.Method), Reason: r.Reason,
			Note: r.Note, KeyState: registry.KeyDestroyed, At: env.now()}
		if r.Method == Unreachable {
			d.KeyState = registry.KeyCompromised
		}
		if r.Reason == pki.ReasonKeyCompromise {
			d.InvalidityDate = env.now()
		}
		if r.Method.reaches() {
			verification, begun, err := eraseOne(ctx, env, j, mods.devices, r, req, tech)
			if err != nil && begun {
				// Half erased: neither a success nor a failure to pass over, since nothing
				// else could finish it once its key is gone. The run stops; run again to finish.
				if ferr := flush(); ferr != nil {
					return ferr
				}
				return fmt.Errorf("device %s: its erasure began on token and did not finish: %w; run the manifest again to finish it", r.Serial, err)
			}
			if err != nil {
				d.Verification = err.Error()
				env.Registry.RecordDecommissionFailure(ctx, d)
				j.Note("device.failed", tech, map[string]string{"serial": r.Serial, "line": fmt.Sprint(r.Line), "error": err.Error()})
				continue
			}
			d.Verification = verification
		} else {
			d.Verification = fmt.Sprintf("%s: nothing to erase; attested by %s", r.Method, req.Witness)
		}
		batch = append(batch, d)
		if len(batch) >= batchSize || r.Method.reaches() {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	for _, fi := range issuers {
		err := step(env, j, "crl", tech, func() (map[string]string, error) {
			c, err := publish.SignCRL(ctx, env.Registry, env.Workspace, fi.iss.ID, pki.Issuer{Certificate: fi.cert, Signer: fi.key}, env.now(), req.CRLNextUpdate)
			if err != nil {
				return nil, err
			}
			if err := env.Registry.RecordRunCRL(ctx, res.RunID, fi.iss.ID, c.Number); err != nil {
				return nil, err
			}
			res.CRLs = append(res.CRLs, c)
			return map[string]string{"issuer": fi.iss.ID, "number": fmt.Sprint(c.Number), "entries": fmt.Sprint(c.Entries), "file": c.DERPath}, nil
		})
		if err != nil {
			return err
		}
	}
	// The record holds the journal, so only its failure can be journaled, not its start.
	if err := fleetRecord(ctx, env, j, mods.ops, req, issuers, res); err != nil {
		j.Fail("record", tech, err)
		return err
	}
	return nil
}

type fleetIssuer struct {
	iss  registry.Issuer
	cert *x509.Certificate
	key  *opstoken.Key
}

// eraseOne identifies, erases and verifies one reachable device of a fleet, journaling each.
// begun says whether its erasure had begun (its proof succeeded), so that a failure leaves it
// to be finished rather than passed over.
func eraseOne(ctx context.Context, env Env, j *record.Journal, mod *hsm.Module, r Row, req FleetRequest, tech record.Actor) (verification string, begun bool, err error) {
	if v, found, err := resumeErasureOf(ctx, env, j, mod, r, req, tech); found {
		return v, true, err
	}
	dt, err := findDevice(ctx, env, mod, r.Serial)
	if err != nil {
		return "", false, err
	}
	sess, err := mod.OpenSession(ctx, dt.Token)
	if err != nil {
		return "", false, err
	}
	defer func() {
		if sess != nil {
			sess.Logout(context.WithoutCancel(ctx))
			sess.Close()
		}
	}()
	if err := sess.Login(ctx, hsm.User, req.DevicePIN); err != nil {
		return "", false, fmt.Errorf("device token %q: %w", dt.Token, err)
	}
	if _, err := prove(ctx, sess, dt); err != nil {
		return "", false, err
	}
	// Proven, and before anything is erased: a run killed from here on finds the device by
	// this entry when it resumes (its certificate may be gone by then).
	if err := j.Note(stepDevice, tech, map[string]string{"serial": r.Serial, "token": dt.Token, "key_id": hex.EncodeToString(dt.KeyID)}); err != nil {
		return "", false, err
	}
	one := Request{Serial: r.Serial, Method: r.Method, DevicePIN: req.DevicePIN}
	res := &Result{}
	if err := eraseAndVerify(ctx, env, j, mod, &sess, one, dt, tech, res); err != nil {
		return "", true, err
	}
	return res.Verification, true, nil
}

// stepDevice journals the token and key of a reachable fleet device once its proof of
// possession succeeded, before its erasure.
const stepDevice = "device"

// resumeErasureOf finishes, in a resumed run, the erasure of a device the stopped run had
// proven and begun to erase (found says whether the journal names one): whatever of its key
// id is left on the journaled token is destroyed, or the token re-initialised again, and the
// erasure verified, without looking for the device by its certificate, which may be gone.
func resumeErasureOf(ctx context.Context, env Env, j *record.Journal, mod *hsm.Module, r Row, req FleetRequest, tech record.Actor) (verification string, found bool, err error) {
	var dt DeviceToken
	for _, e := range j.Entries() {
		if e.Step == stepDevice && e.Data["serial"] == r.Serial {
			dt.Token = e.Data["token"]
			dt.KeyID, _ = hex.DecodeString(e.Data["key_id"])
		}
	}
	if dt.Token == "" || len(dt.KeyID) == 0 {
		return "", false, nil
	}
	j.Note("device.resume", tech, map[string]string{"serial": r.Serial, "token": dt.Token, "key_id": hex.EncodeToString(dt.KeyID),
		"note": "identified before the run stopped; its erasure is finished and verified now"})
	one := Request{Serial: r.Serial, Method: r.Method, DevicePIN: req.DevicePIN}
	res := &Result{}
	if err := resumeErasure(ctx, env, j, mod, one, dt, tech, res); err != nil {
		return "", true, err
	}
	return res.Verification + " (erasure finished on resuming)", true, nil
}

// fleetRecord writes the signed fleet record, with every device in its table and the results
// attached as CSV.
func fleetRecord(ctx context.Context, env Env, j *record.Journal, mod *hsm.Module, req FleetRequest, issuers map[string]*fleetIssuer, res *FleetResult) error {
	var fi *fleetIssuer
	var names []string
	for _, f := range issuers {
		fi = f
		names = append(names, f.iss.ID+" ("+f.cert.Subject.CommonName+")")
	}
	rootIss, err := env.Registry.Issuer(ctx, fi.iss.ParentID)
	if err != nil {
		return err
	}
	root, err := x509.ParseCertificate(rootIss.Certificate)
	if err != nil {
		return err
	}
	signer, key, err := opstoken.RecordSigner(ctx, env.Registry, mod, fi.iss.CeremonyID, root, req.OpsPIN)
	if err != nil {
		return fmt.Errorf("devices revoked, but the record could not be signed: %w", err)
	}
	defer key.Close()
	d := &record.Destruction{ID: res.RunID, Technician: req.Technician, Witness: req.Witness,
		Issuer: strings.Join(names, ", "), Manufacturer: strings.Join(fi.cert.Subject.Organization, ", ")}
	if len(res.CRLs) > 0 {
		d.CRLNumber, d.CRLFile = res.CRLs[len(res.CRLs)-1].Number, res.CRLs[len(res.CRLs)-1].DERPath
	}
	var csvBuf bytes.Buffer
	w := csv.NewWriter(&csvBuf)
	w.Write([]string{"serial", "outcome", "method", "reason", "revoked_serials", "key_ids", "verification", "crl_number", "note"})
	res.Decommissioned, res.AlreadyDone, res.Failed = 0, 0, 0
	for r, err := range env.Registry.RunResults(ctx, res.RunID) {
		if err != nil {
			return err
		}
		switch r.Outcome {
		case registry.OutcomeDecommissioned:
			res.Decommissioned++
		case registry.OutcomeAlreadyDecommissioned:
			res.AlreadyDone++
		default:
			res.Failed++
		}
		row := record.DeviceRow{Serial: r.DeviceSerial, Method: r.Method, Verification: r.Verification,
			Reason: r.Reason.String(), Outcome: string(r.Outcome), Time: r.At}
		var serials, keys []string
		for _, s := range r.RevokedSerials {
			serials = append(serials, s.String())
		}
		for _, k := range r.KeyIDs {
			keys = append(keys, hex.EncodeToString(k))
		}
		row.CertSerials, row.KeyIDs = strings.Join(serials, " "), strings.Join(keys, " ")
		d.Devices = append(d.Devices, row)
		w.Write([]string{r.DeviceSerial, string(r.Outcome), r.Method, row.Reason, row.CertSerials, row.KeyIDs, r.Verification, fmt.Sprint(r.CRLNumber), r.Note})
	}
	w.Flush()
	d.ResultsCSV = csvBuf.Bytes()
	d.Outcome = fmt.Sprintf("%d decommissioned, %d already decommissioned, %d failed", res.Decommissioned, res.AlreadyDone, res.Failed)
	entries := j.Entries()
	d.Started, d.Finished = entries[0].Time, entries[len(entries)-1].Time
	jb, err := j.Bytes()
	if err != nil {
		return err
	}
	path := env.Workspace.Path("records", res.RunID+"-"+env.now().Format("20060102T150405Z")+".pdf")
	if err := record.WriteDestruction(ctx, path, d, jb, signer); err != nil {
		return fmt.Errorf("devices revoked, but the record could not be written: %w", err)
	}
	res.RecordPath = path
	return nil
}

// journalManifest is a fleet journal's first entry: which manifest, by whom.
func journalManifest(j *record.Journal, m *Manifest, req FleetRequest) {
	j.Note("fleet.manifest", record.Actor{Name: req.Technician, Role: "technician"}, map[string]string{
		"manifest": req.ManifestPath, "sha256": hex.EncodeToString(m.SHA256[:]), "devices": fmt.Sprint(len(m.Rows)),
		"technician": req.Technician, "witness": req.Witness})
}

// startJournal creates a fleet run's journal, or reopens the one a run killed before it was
// registered left behind.
func startJournal(path, runID string) (*record.Journal, error) {
	j, err := record.CreateJournal(path, runID)
	if errors.Is(err, fs.ErrExist) {
		return record.OpenJournal(path, runID)
	}
	return j, err
}
