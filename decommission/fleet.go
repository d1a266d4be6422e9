package decommission

import (
	"context"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// FleetRequest is who retires a fleet, and with which PINs (they stay the caller's).
type FleetRequest struct {
	ManifestPath  string
	Technician    string
	Witness       string
	Validator     string // another person than the technician; required unless the workspace's policy allows none
	OpsPIN        []byte
	DevicePIN     []byte // for rows that erase or reinit
	CRLNextUpdate time.Duration
}

// FleetResult is what a fleet run did.
type FleetResult struct {
	RunID            string
	Devices          int
	Decommissioned   int
	AlreadyDone      int // decommissioned by an earlier run: nothing changed
	Failed           int
	CRLs             []run.CRL
	RecordPath       string
	JournalPath      string
	Resumed          bool
	AlreadyCompleted bool
}

// batchSize is how many unreachable or destroyed devices one registry transaction and one
// journal entry cover.
const batchSize = 1000

// FleetRunID is the run id of a manifest: the same manifest always resumes the same run.
func FleetRunID(m *Manifest) string { return run.DerivedID("fleet", m.SHA256[:]) }

// Fleet retires every device of a manifest: reachable ones are identified, erased and
// verified on their tokens, the rest recorded as the row says; then one CRL per issuer and
// one signed fleet record. Run again with the same manifest, it resumes where it stopped,
// and once complete it changes nothing.
func Fleet(ctx context.Context, env run.Env, m *Manifest, req FleetRequest) (*FleetResult, error) {
	if strings.TrimSpace(req.Technician) == "" {
		return nil, run.NewFieldError("Technician", "fleet: the technician must be named")
	}
	if req.CRLNextUpdate == 0 {
		req.CRLNextUpdate = 30 * 24 * time.Hour
	}
	runID := FleetRunID(m)
	res := &FleetResult{RunID: runID, Devices: len(m.Rows), JournalPath: env.JournalPath(runID)}
	prev, err := env.Registry.Run(ctx, runID)
	if err == nil && prev.Status == registry.RunCompleted {
		res.AlreadyCompleted, res.RecordPath = true, prev.RecordPath
		return res, nil
	}
	issuers, perr := preflight(ctx, env, m, req)
	if perr != nil {
		return nil, perr
	}
	tech := record.Actor{Name: req.Technician, Role: "technician"}
	var r *run.Run
	switch {
	case err == nil && prev.Status == registry.RunAborted:
		return nil, fmt.Errorf("fleet run %s for this manifest was aborted; change the manifest to start a new run", runID)
	case err == nil:
		if r, err = run.Continue(ctx, env, prev); err != nil {
			return nil, err
		}
		res.Resumed = true
		// A token the stop tore during its re-initialisation is named before anything else
		// (a torn SoftHSM2 token fails its whole module), and the run stops there.
		if err := readableReinits(ctx, r, m, tech); err != nil {
			return res, r.Finish(ctx, err, "")
		}
		if path, ok := signedFleetRecord(ctx, env, runID, m); ok {
			// Killed after its record was signed: all that is left is to say the run is complete.
			res.RecordPath = path
			err := r.Note(run.StepResume, tech, run.Resumed{Note: "the record was signed before the run stopped: " + path})
			return res, r.Finish(ctx, err, path)
		}
		if err := startFleetJournal(r, m, req, tech); err != nil {
			return res, r.Finish(ctx, err, "")
		}
	case errors.Is(err, registry.ErrNotFound):
		if err := checkValidator(ctx, env, "fleet", req.Technician, req.Validator); err != nil {
			return nil, err
		}
		r, err = run.Start(ctx, env, runID, func(reg *registry.Registry, jpath string) error {
			_, err := reg.StartDecommissionRun(ctx, registry.DecommissionRun{Run: registry.Run{ID: runID,
				Kind: registry.RunDecommission, Operation: "fleet", Subject: req.ManifestPath, JournalPath: jpath},
				ManifestPath: req.ManifestPath, ManifestSHA256: m.SHA256[:], Technician: req.Technician, Witness: req.Witness})
			return err
		})
		if err != nil {
			return nil, err
		}
		if err := startFleetJournal(r, m, req, tech); err != nil {
			return res, r.Finish(ctx, err, "")
		}
	default:
		return nil, err
	}
	// A resumed run keeps the validator it was started with.
	req.Validator = journaledValidator(r, req.Validator)
	err = runFleet(ctx, r, m, req, issuers, res)
	return res, r.Finish(ctx, err, res.RecordPath)
}

// preflight refuses a manifest before anything changes: the lines Preview refuses, rows that
// need a witness or a device PIN that was not given. It returns the issuing CAs of the
// manifest's devices, in the order they first appear.
func preflight(ctx context.Context, env run.Env, m *Manifest, req FleetRequest) ([]string, error) {
	issuers, bad, err := previewRows(ctx, env, m)
	if err != nil {
		return nil, err
	}
	for _, r := range m.Rows {
		if !r.Method.reaches() && strings.TrimSpace(req.Witness) == "" {
			bad = append(bad, fieldRowError(r.Line, "Witness", "method %s needs a witness", r.Method))
		}
		if p := compromisedAtProblem(r.Reason, r.CompromisedAt, env.Clock()); p != "" {
			bad = append(bad, RowError{Line: r.Line, Problem: "compromised_at: " + p})
		}
		if r.Method.reaches() && len(req.DevicePIN) == 0 {
			bad = append(bad, fieldRowError(r.Line, "DevicePIN", "method %s needs the device PIN", r.Method))
		}
	}
	if len(bad) > 0 {
		slices.SortStableFunc(bad, func(a, b RowError) int { return a.Line - b.Line })
		return nil, bad
	}
	if len(req.OpsPIN) == 0 {
		return nil, run.NewFieldError("OpsPIN", "fleet: the operator PIN is needed to sign the CRL and the record")
	}
	return issuers, nil
}

// Preview checks a loaded manifest against the workspace before anyone fills in the rest:
// every line naming a device the registry does not know, or a method the device tokens'
// module cannot do, comes back in a ManifestError. Fleet checks these again, with the
// people and PINs of the request. Nothing changes.
func Preview(ctx context.Context, env run.Env, m *Manifest) error {
	_, bad, err := previewRows(ctx, env, m)
	if err != nil {
		return err
	}
	if len(bad) > 0 {
		return bad
	}
	return nil
}

// previewRows is what Preview finds wrong with a manifest's lines, and the issuing CAs of its
// devices in the order they first appear.
func previewRows(ctx context.Context, env run.Env, m *Manifest) ([]string, ManifestError, error) {
	var bad ManifestError
	var issuers []string
	checked := map[string]error{} // issuing CA id → why it may not sign the CRL or the record
	err := eachDevice(ctx, env.Registry, m.Rows, func(r Row, dev registry.DeviceLookup) error {
		if !dev.Registered {
			bad = append(bad, RowError{Line: r.Line, Problem: fmt.Sprintf("device %s is not registered in this workspace", r.Serial)})
			return nil
		}
		if r.UDI != "" && dev.UDI != "" && r.UDI != dev.UDI {
			bad = append(bad, RowError{Line: r.Line, Problem: fmt.Sprintf("device %s: the udi column says %s, the registry %s: is it the same device?", r.Serial, r.UDI, dev.UDI)})
		}
		why, ok := checked[dev.IssuerID]
		if !ok {
			why = checkSigners(ctx, env, dev.IssuerID)
			checked[dev.IssuerID] = why
			issuers = append(issuers, dev.IssuerID)
		}
		if why != nil {
			bad = append(bad, RowError{Line: r.Line, Problem: fmt.Sprintf("device %s: %v", r.Serial, why)})
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if slices.ContainsFunc(m.Rows, func(r Row) bool { return r.Method == Reinit }) {
		reinit, err := canReinit(ctx, env)
		if err != nil {
			return nil, nil, err
		}
		for _, r := range m.Rows {
			if r.Method == Reinit && reinit != nil {
				bad = append(bad, RowError{Line: r.Line, Problem: fmt.Sprintf("method reinit cannot be done on this module's tokens (%v): use method erase", reinit)})
			}
		}
	}
	return issuers, bad, nil
}

// canReinit says whether the device tokens' module can re-initialise tokens: nil when it can,
// the reason when it cannot; err when the module cannot be asked.
func canReinit(ctx context.Context, env run.Env) (reason, err error) {
	mod, err := env.OpenDeviceModule(ctx)
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

func runFleet(ctx context.Context, r *run.Run, m *Manifest, req FleetRequest, order []string, res *FleetResult) error {
	env := r.Env
	tech := record.Actor{Name: req.Technician, Role: "technician"}
	// What an earlier attempt of the run finished is counted here and skipped row by row below,
	// as the pages of the manifest are looked up.
	outcomes, err := env.Registry.RunOutcomes(ctx, res.RunID)
	if err != nil {
		return err
	}
	mods, err := env.OpenModules(ctx)
	if err != nil {
		return err
	}
	defer mods.Close()
	// Every issuer's key is opened before any device is touched: a wrong operator PIN stops
	// the run here.
	issuers := map[string]*run.Issuer{}
	defer func() {
		for _, iss := range issuers {
			iss.Close()
		}
	}()
	for _, id := range order {
		iss, err := run.OpenIssuer(ctx, env.Registry, mods.Ops, id, req.OpsPIN, run.SignCRLs)
		if err != nil {
			return err
		}
		issuers[id] = iss
	}
	// The record's table of devices is laid out beside the run, a page of devices at a time
	// once the registry holds their results: settled rows are those before it.
	table := startFleetTable(ctx, r, m)
	defer table.stop()
	stores := table.stores
	recorded := map[string]*registry.DeviceResult{} // what the batches since the last page recorded
	settled := 0
	settle := func(next int) {
		if next > settled {
			page := make([]settledRow, 0, next-settled)
			for i := settled; i < next; i++ {
				serial := m.Rows[i].Serial
				page = append(page, settledRow{row: &m.Rows[i], store: stores[serial], result: recorded[serial]})
			}
			table.settle(page)
			settled = next
			clear(recorded)
		}
	}
	handled := 0
	for o, n := range outcomes {
		if o != registry.OutcomeFailed {
			handled += n
		}
	}
	r.Progress(run.Event{Step: stepFleet, Status: record.StatusBegin, Done: handled, Total: len(m.Rows)})
	var batch []registry.Decommission
	var given []CompromisedAt // the batch's invalidity dates the technician gave
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := r.Step(stepBatch, tech, func() (any, error) {
			// What is done is recorded even when the run is being cancelled: cancel stops the
			// next device, it must not leave an erased one unrevoked.
			results, err := r.Registry().DecommissionDevices(context.WithoutCancel(ctx), batch)
			if err != nil {
				return nil, err
			}
			for i := range results {
				recorded[results[i].DeviceSerial] = &results[i]
			}
			return BatchRevoked{Devices: len(batch), First: batch[0].DeviceSerial, Last: batch[len(batch)-1].DeviceSerial,
				Compromised: given}, nil
		})
		if err != nil {
			return fmt.Errorf("devices %s to %s: %w", batch[0].DeviceSerial, batch[len(batch)-1].DeviceSerial, err)
		}
		handled += len(batch)
		batch, given = batch[:0], nil
		r.Progress(run.Event{Step: stepFleet, Status: record.StatusNote, Done: handled, Total: len(m.Rows)})
		return nil
	}
	// The devices are looked up a page at a time, each page in one query, as the rows come.
	var page []registry.DeviceLookup
	for n, row := range m.Rows {
		if n%lookupPage == 0 {
			if page, err = lookupRows(ctx, env.Registry, res.RunID, m.Rows[n:min(n+lookupPage, len(m.Rows))]); err != nil {
				return err
			}
		}
		dev := page[n%lookupPage]
		if dev.Done() {
			continue
		}
		if err := ctx.Err(); err != nil {
			if ferr := flush(); ferr != nil {
				return ferr
			}
			return fmt.Errorf("fleet stopped after %d of %d devices (run it again to resume): %w", handled, len(m.Rows), err)
		}
		d := registry.Decommission{RunID: res.RunID, DeviceSerial: row.Serial, Method: string(row.Method), Reason: row.Reason,
			Note: row.Note, KeyState: registry.KeyDestroyed, At: env.Clock()}
		if row.Method == Unreachable {
			d.KeyState = registry.KeyCompromised
		}
		var from string
		if d.InvalidityDate, from = invalidity(row.Reason, row.CompromisedAt, d.At); from == FromTechnician {
			given = append(given, CompromisedAt{Serial: row.Serial, At: d.InvalidityDate})
		}
		if row.Method.reaches() {
			// Its token is reached, which takes a while: what the registry says of it is read
			// again, just before.
			if dev, err = lookupDevice(ctx, env.Registry, res.RunID, row.Serial); err != nil {
				return err
			}
		}
		if earlier := decommissionedBefore(dev); earlier != "" {
			// Retired by an earlier run (before this one, or meanwhile: a device whose token a
			// stop left unreadable, decommissioned on its own as physical): nothing to erase,
			// nothing failed; the registry records it as already decommissioned.
			d.Verification = earlier
			batch = append(batch, d)
			continue
		}
		if row.Method.reaches() {
			verification, store, begun, err := eraseOne(ctx, r, mods.Devices, row, req, tech)
			var tu *TokenUnreadableError
			if errors.As(err, &tu) {
				tu.Fleet = true
				if ferr := flush(); ferr != nil {
					return ferr
				}
				return err
			}
			if err != nil && begun {
				// Half erased: neither a success nor a failure to pass over, since nothing
				// else could finish it once its key is gone. The run stops; run again to finish.
				if ferr := flush(); ferr != nil {
					return ferr
				}
				return fmt.Errorf("device %s: its erasure began on token and did not finish: %w; run the manifest again to finish it", row.Serial, err)
			}
			if err != nil {
				d.Verification = err.Error()
				if rerr := r.Registry().RecordDecommissionFailure(ctx, d); rerr != nil {
					return fmt.Errorf("device %s failed (%v), and the registry could not record it: %w", row.Serial, err, rerr)
				}
				if jerr := r.Note(stepDeviceFailed, tech, DeviceFailed{Serial: row.Serial, Line: row.Line, Error: err.Error()}); jerr != nil {
					return jerr
				}
				continue
			}
			d.Verification = verification
			if store != "" {
				stores[row.Serial] = store
			}
		} else {
			d.Verification = attestation(row.Method, req.Witness)
		}
		batch = append(batch, d)
		if len(batch) >= batchSize || row.Method.reaches() {
			if err := flush(); err != nil {
				return err
			}
			settle(n + 1)
		}
	}
	if err := flush(); err != nil {
		return err
	}
	settle(len(m.Rows))
	table.close()
	for _, id := range order {
		iss := issuers[id]
		err := r.Step(stepCRL, tech, func() (any, error) {
			c, err := run.SignCRL(ctx, r, iss.Entry, iss.Signer(), run.CRLRequest{NextUpdate: req.CRLNextUpdate, UpToLimit: true})
			if err != nil {
				return nil, err
			}
			if err := r.Registry().RecordRunCRL(ctx, res.RunID, id, c.Number); err != nil {
				return nil, err
			}
			res.CRLs = append(res.CRLs, c)
			return c.Payload(id), nil
		})
		if err != nil {
			return err
		}
	}
	// The record holds the journal, so only its failure can be journaled, not its start.
	if err := fleetRecord(ctx, r, mods.Ops, req, m, issuers, order, table, res); err != nil {
		return r.Fail(stepRecord.ID, tech, err)
	}
	return nil
}

// eraseOne identifies, erases and verifies one reachable device of a fleet, journaling each.
// begun says whether its erasure had begun (its proof succeeded), so that a failure leaves it
// to be finished rather than passed over.
func eraseOne(ctx context.Context, r *run.Run, mod *hsm.Module, row Row, req FleetRequest, tech record.Actor) (verification, store string, begun bool, err error) {
	if v, found, err := resumeErasureOf(ctx, r, mod, row, req, tech); found {
		return v, "", true, err // its key store was journaled by the run that stopped
	}
	dt, err := findDevice(ctx, r.Env, mod, row.Serial)
	if err != nil {
		return "", "", false, err
	}
	sess, err := mod.OpenSession(ctx, dt.Token)
	if err != nil {
		return "", "", false, err
	}
	defer func() {
		if sess != nil {
			sess.Logout(context.WithoutCancel(ctx))
			sess.Close()
		}
	}()
	if err := sess.Login(ctx, hsm.User, req.DevicePIN); err != nil {
		return "", "", false, fmt.Errorf("device token %q: %w", dt.Token, err)
	}
	if _, err := prove(ctx, sess, dt); err != nil {
		return "", "", false, err
	}
	// Proven, and before anything is erased: a run killed from here on finds the device by
	// this entry when it resumes (its certificate may be gone by then).
	info, err := sess.TokenInfo(ctx)
	if err != nil {
		return "", "", false, fmt.Errorf("device token %q: %w", dt.Token, err)
	}
	found := DeviceFound{Serial: row.Serial, Token: dt.Token, KeyID: dt.KeyID,
		TokenManufacturer: info.Manufacturer, TokenModel: info.Model, TokenSerial: info.SerialOrNone()}
	if err := r.Note(stepDevice, tech, found); err != nil {
		return "", "", false, err
	}
	one := Request{Serial: row.Serial, Method: row.Method, DevicePIN: req.DevicePIN}
	res := &Result{}
	if err := eraseDevice(ctx, r, mod, &sess, one, dt, tech, res); err != nil {
		return "", "", true, err
	}
	return res.Verification, keyStore(found), true, nil
}

// readableReinits checks, for a fleet run taken up again, the token of every device whose
// re-initialisation the stopped run began and did not finish: one that cannot be read is
// journaled and returned as a TokenUnreadableError.
func readableReinits(ctx context.Context, r *run.Run, m *Manifest, tech record.Actor) error {
	pending := map[string]DeviceToken{}
	for _, e := range r.Journal.Entries() {
		switch e.Step {
		case stepDevice:
			p, err := record.Decode[DeviceFound](e)
			if err != nil {
				return err
			}
			pending[p.Serial] = DeviceToken{Token: p.Token, KeyID: p.KeyID}
		case stepDeviceResume:
			if e.Status == record.StatusNote {
				p, err := record.Decode[DeviceFound](e)
				if err != nil {
					return err
				}
				delete(pending, p.Serial) // finished and verified on an earlier resume
			}
		}
	}
	var check []Row
	for _, row := range m.Rows {
		if _, ok := pending[row.Serial]; ok && row.Method == Reinit {
			dev, err := lookupDevice(ctx, r.Env.Registry, r.ID, row.Serial)
			if err != nil {
				return err
			}
			if !dev.Done() && dev.Registered && dev.Status != registry.DeviceDecommissioned {
				check = append(check, row)
			}
		}
	}
	if len(check) == 0 {
		return nil
	}
	mod, err := r.Env.OpenDeviceModule(ctx)
	if err != nil {
		return err
	}
	defer mod.Close()
	for _, row := range check {
		one := Request{Serial: row.Serial, Method: row.Method}
		if err := readableToken(ctx, mod, r.ID, one, pending[row.Serial]); err != nil {
			var tu *TokenUnreadableError
			if errors.As(err, &tu) {
				tu.Fleet = true
			}
			return r.Fail(stepDeviceResume, tech, err)
		}
	}
	return nil
}

// resumeErasureOf finishes, in a resumed run, the erasure of a device the stopped run had
// proven and begun to erase (found says whether the journal names one): whatever of its key
// id is left on the journaled token is destroyed, or the token re-initialised again, and the
// erasure verified, without looking for the device by its certificate, which may be gone.
func resumeErasureOf(ctx context.Context, r *run.Run, mod *hsm.Module, row Row, req FleetRequest, tech record.Actor) (verification string, found bool, err error) {
	var dt DeviceToken
	for _, e := range r.Journal.Entries() {
		if e.Step != stepDevice {
			continue
		}
		p, err := record.Decode[DeviceFound](e)
		if err != nil {
			return "", true, err
		}
		if p.Serial == row.Serial {
			dt.Token, dt.KeyID = p.Token, p.KeyID
		}
	}
	if dt.Token == "" || len(dt.KeyID) == 0 {
		return "", false, nil
	}
	// Journaled after the attempt, as it went: finished and verified only once it is.
	one := Request{Serial: row.Serial, Method: row.Method, DevicePIN: req.DevicePIN}
	res := &Result{}
	err = readableToken(ctx, mod, r.ID, one, dt)
	if err == nil {
		err = resumeErasure(ctx, r, mod, one, dt, tech, res)
	}
	if err != nil {
		return "", true, r.Fail(stepDeviceResume, tech, err)
	}
	if err := r.Note(stepDeviceResume, tech, DeviceFound{Serial: row.Serial, Token: dt.Token, KeyID: dt.KeyID,
		Note: "identified before the run stopped; its erasure was finished and verified on resuming"}); err != nil {
		return "", true, err
	}
	return res.Verification + " (erasure finished on resuming)", true, nil
}

// fleetRecord writes the signed fleet record, with the devices' table laid out as the run went
// and the results attached as CSV.
func fleetRecord(ctx context.Context, r *run.Run, mod *hsm.Module, req FleetRequest, m *Manifest,
	issuers map[string]*run.Issuer, order []string, table *fleetTable, res *FleetResult) error {
	env := r.Env
	// results.csv is written while the record's last pages are laid out.
	results := startResults(ctx, env.Registry, res.RunID, m, table.stores, table.given)
	defer results.wait()
	var names []string
	for _, id := range order {
		names = append(names, id+" ("+issuers[id].Certificate.Subject.CommonName+")")
	}
	fi := issuers[order[len(order)-1]]
	signer, err := openRecordSigner(ctx, env, mod, fi.Entry, req.OpsPIN)
	if err != nil {
		return fmt.Errorf("devices revoked, but the record could not be signed: %w", err)
	}
	defer signer.Close()
	d := &record.Destruction{ID: res.RunID, Technician: req.Technician, Witness: req.Witness, Validator: validatorText(req.Validator),
		Issuer: strings.Join(names, ", "), Manufacturer: strings.Join(fi.Certificate.Subject.Organization, ", ")}
	if len(res.CRLs) > 0 {
		d.CRLNumber, d.CRLFile = res.CRLs[len(res.CRLs)-1].Number, res.CRLs[len(res.CRLs)-1].DERPath
	}
	outcomes, err := env.Registry.RunOutcomes(ctx, res.RunID)
	if err != nil {
		return err
	}
	res.Decommissioned, res.AlreadyDone, res.Failed = outcomes[registry.OutcomeDecommissioned],
		outcomes[registry.OutcomeAlreadyDecommissioned], outcomes[registry.OutcomeFailed]
	if n := res.Decommissioned + res.AlreadyDone + res.Failed; n != len(m.Rows) {
		return fmt.Errorf("devices revoked, but the registry holds results for %d of the manifest's %d devices", n, len(m.Rows))
	}
	d.Outcome = fmt.Sprintf("%d decommissioned, %d already decommissioned, %d failed", res.Decommissioned, res.AlreadyDone, res.Failed)
	d.Results = results.wait
	if d.Table, err = table.wait(); err != nil {
		return fmt.Errorf("devices revoked, but the record's table could not be laid out: %w", err)
	}
	res.RecordPath, err = writeDestruction(ctx, r, d, signer)
	if err != nil {
		return fmt.Errorf("devices revoked, but the record could not be written: %w", err)
	}
	return nil
}

// fleetResults writes a fleet's results.csv on a goroutine of its own: one line per device the
// registry has a result of the run for, in serial order, packed as it goes, so that a fleet
// of 100,000 is never held whole.
type fleetResults struct {
	packer *record.Packer
	done   chan error
	once   sync.Once
	packed *record.Packed
	err    error
}

func startResults(ctx context.Context, reg *registry.Registry, runID string, m *Manifest, stores map[string]string, given map[string]bool) *fleetResults {
	f := &fleetResults{packer: record.NewPacker(), done: make(chan error, 1)}
	go func() {
		rows := make(map[string]*Row, len(m.Rows))
		for i := range m.Rows {
			rows[m.Rows[i].Serial] = &m.Rows[i]
		}
		w := csv.NewWriter(f.packer)
		w.Write(resultColumns)
		for dr, err := range reg.RunResults(ctx, runID) {
			if err != nil {
				f.done <- err
				return
			}
			w.Write(resultRecord(dr, rows[dr.DeviceSerial], stores[dr.DeviceSerial], given[dr.DeviceSerial]))
		}
		w.Flush()
		f.done <- w.Error()
	}()
	return f
}

// wait waits for results.csv and returns it packed.
func (f *fleetResults) wait() (*record.Packed, error) {
	f.once.Do(func() {
		if f.err = <-f.done; f.err == nil {
			f.packed = f.packer.Packed()
		}
	})
	return f.packed, f.err
}

// resultColumns are the columns of a fleet's results.csv.
var resultColumns = []string{"serial", "outcome", "method", "reason", "revoked_serials", "key_ids", "verification", "crl_number", "note",
	"invalidity_date", "invalidity_date_from", "udi", "key_store", "destination", "model"}

// resultRecord is a device's line of results.csv: what the registry holds of it (dr), with
// its manifest row (mr, nil if none), the key store the run found it on, and whether the
// technician gave its invalidity date.
func resultRecord(dr registry.DeviceResult, mr *Row, store string, given bool) []string {
	from := FromRunTime
	if given {
		from = FromTechnician
	}
	var serials, keys []string
	for _, s := range dr.RevokedSerials {
		serials = append(serials, s.String())
	}
	for _, k := range dr.KeyIDs {
		keys = append(keys, hex.EncodeToString(k))
	}
	udi, destination := dr.DeviceUDI, ""
	if mr != nil {
		if udi == "" && mr.UDI != "" {
			udi = mr.UDI + " (from the manifest)"
		}
		destination = string(mr.Destination.For(Method(dr.Method)))
	}
	inval := ""
	if !dr.InvalidityDate.IsZero() {
		inval = dr.InvalidityDate.UTC().Format(time.RFC3339)
	} else {
		from = ""
	}
	return []string{dr.DeviceSerial, string(dr.Outcome), dr.Method, dr.Reason.String(), strings.Join(serials, " "), strings.Join(keys, " "),
		dr.Verification, fmt.Sprint(dr.CRLNumber), dr.Note, inval, from, udi, store, destination, dr.DeviceModel}
}

// fleetRow is the fleet record's row of a device whose line of results.csv is f.
func fleetRow(f []string) (record.DeviceRow, error) {
	var inval time.Time
	if f[9] != "" {
		var err error
		if inval, err = time.Parse(time.RFC3339, f[9]); err != nil {
			return record.DeviceRow{}, fmt.Errorf("device %s: %w", f[0], err)
		}
	}
	return record.DeviceRow{Serial: f[0], Outcome: f[1], Method: f[2], Reason: f[3] + invalidityText(inval, f[10]),
		CertSerials: f[4], KeyIDs: f[5], Verification: f[6], UDI: f[11], KeyStore: f[12], Destination: f[13], Model: f[14]}, nil
}

// fleetTable lays out a fleet record's table of devices on a goroutine of its own, while the
// run goes on: the run hands it each page of rows once the registry holds their results, and
// it reads them back and draws them, in the manifest's order. The record is then laid out
// around the table.
type fleetTable struct {
	table *record.DeviceTable
	// given is the devices whose invalidity date the technician gave (read by both
	// goroutines, changed by neither); stores the key store the run found each reached
	// device on, from the journal and as the run goes (the run's goroutine only). results.csv
	// takes both from here.
	given  map[string]bool
	stores map[string]string
	pages  chan []settledRow
	done   chan error
	cancel context.CancelFunc // stops the drawing of a table no record will hold
	closed bool
	err    error
	waited bool
}

// settledRow is a manifest row whose device the registry has a result for, with the key store
// the run found it on ("" when not reached) and the result when its batch returned it (nil
// for one the table reads back: a failure, or a device an earlier attempt finished).
type settledRow struct {
	row    *Row
	store  string
	result *registry.DeviceResult
}

func startFleetTable(ctx context.Context, r *run.Run, m *Manifest) *fleetTable {
	ctx, cancel := context.WithCancel(ctx)
	t := &fleetTable{table: record.NewDeviceTable(r.ID, len(m.Rows), filepath.Dir(r.RecordPath())),
		given: compromisedGiven(m), stores: keyStores(r.Journal.Entries()),
		pages: make(chan []settledRow, 8), done: make(chan error, 1), cancel: cancel}
	given, reg, runID := t.given, r.Env.Registry, r.ID
	go func() {
		var err error
		for page := range t.pages {
			if err == nil {
				err = t.draw(ctx, reg, runID, page, given)
			}
		}
		t.done <- err
	}()
	return t
}

// draw draws a page of rows, reading back from the registry the results it was not given,
// lookupPage at a time.
func (t *fleetTable) draw(ctx context.Context, reg *registry.Registry, runID string, page []settledRow, given map[string]bool) error {
	if err := ctx.Err(); err != nil {
		return err // the run stopped: its table will not be a record's
	}
	var missing []string
	var at []int
	for i, s := range page {
		if s.result == nil {
			missing, at = append(missing, s.row.Serial), append(at, i)
		}
	}
	for start := 0; start < len(missing); start += lookupPage {
		end := min(start+lookupPage, len(missing))
		results, err := reg.RunResultsOf(ctx, runID, missing[start:end])
		if err != nil {
			return err
		}
		for i := range results {
			page[at[start+i]].result = &results[i]
		}
	}
	for _, s := range page {
		row, err := fleetRow(resultRecord(*s.result, s.row, s.store, given[s.row.Serial]))
		if err != nil {
			return err
		}
		t.table.Add(row)
	}
	return nil
}

// settle hands the table a page of rows; it waits while the table is far behind.
func (t *fleetTable) settle(page []settledRow) { t.pages <- page }

// close says every row is settled.
func (t *fleetTable) close() {
	if !t.closed {
		close(t.pages)
		t.closed = true
	}
}

// wait waits for the table to be drawn, and returns it for the record.
func (t *fleetTable) wait() (*record.DeviceTable, error) {
	t.close()
	if !t.waited {
		t.err, t.waited = <-t.done, true
	}
	return t.table, t.err
}

// stop lets go of the table, once the record holds it or when the run stops before.
func (t *fleetTable) stop() {
	t.cancel()
	t.wait()
	t.table.Stop()
}

// compromisedGiven is the set of a manifest's devices whose invalidity date the technician
// gave in its compromised_at column; usually none, so it costs nothing for a large fleet.
func compromisedGiven(m *Manifest) map[string]bool {
	given := map[string]bool{}
	for _, row := range m.Rows {
		if !row.CompromisedAt.IsZero() {
			given[row.Serial] = true
		}
	}
	return given
}

// startFleetJournal writes a fleet journal's first entry, which manifest and by whom, unless
// it has one (a resumed run notes that it resumed instead).
func startFleetJournal(r *run.Run, m *Manifest, req FleetRequest, tech record.Actor) error {
	for _, e := range r.Journal.Entries() {
		if e.Step == stepManifest {
			return r.Note(run.StepResume, tech, nil)
		}
	}
	return r.Note(stepManifest, tech, ManifestRead{Manifest: req.ManifestPath, SHA256: m.SHA256[:], Devices: len(m.Rows),
		Technician: req.Technician, Witness: req.Witness, Validator: req.Validator})
}

// journaledValidator is the validator a fleet run's journal names in its first entry, or
// given when it has none yet (a new run).
func journaledValidator(r *run.Run, given string) string {
	for _, e := range r.Journal.Entries() {
		if e.Step == stepManifest {
			if p, err := record.Decode[ManifestRead](e); err == nil {
				return p.Validator
			}
		}
	}
	return given
}

// keyStores are the key stores a fleet's journal found its reached devices on, by serial:
// manufacturer, model and serial as each token answered.
func keyStores(entries []record.Entry) map[string]string {
	out := map[string]string{}
	for _, e := range entries {
		if e.Step != stepDevice {
			continue
		}
		if p, err := record.Decode[DeviceFound](e); err == nil && keyStore(p) != "" {
			out[p.Serial] = keyStore(p)
		}
	}
	return out
}

// keyStore is the key store a device was found on, as its token answered: manufacturer, model
// and serial ("" when the journal did not note them).
func keyStore(p DeviceFound) string {
	if p.TokenManufacturer == "" {
		return ""
	}
	return strings.Join([]string{p.TokenManufacturer, p.TokenModel, "serial " + p.TokenSerial}, " ")
}

// signedFleetRecord finds the record a fleet run wrote before it stopped, when it is there
// whole and verifies against the root of its first device's issuer.
func signedFleetRecord(ctx context.Context, env run.Env, runID string, m *Manifest) (string, bool) {
	dev, err := env.Registry.Device(ctx, m.Rows[0].Serial)
	if err != nil {
		return "", false
	}
	return signedRecord(ctx, env, runID, dev.IssuerID)
}

// decommissionedBefore says, for a device an earlier run decommissioned, which run and when
// ("" for a device still active, or one not registered: it fails where it is looked for,
// naming it).
func decommissionedBefore(dev registry.DeviceLookup) string {
	if !dev.Registered || dev.Status != registry.DeviceDecommissioned {
		return ""
	}
	runID := dev.DecommissionedBy
	if runID == "" {
		runID = "unknown"
	}
	return fmt.Sprintf("already decommissioned (run %s, %s): nothing done in this run", runID, dev.DecommissionedAt.UTC().Format(time.DateOnly))
}

// lookupPage is how many manifest rows one registry lookup covers: a fleet of 100,000 is
// checked in a hundred queries, holding a page at a time.
const lookupPage = 1000

// lookupRows looks up the devices of at most lookupPage rows in one query, in the rows' order,
// with what the run runID ("" for none) recorded for each.
func lookupRows(ctx context.Context, reg *registry.Registry, runID string, rows []Row) ([]registry.DeviceLookup, error) {
	serials := make([]string, len(rows))
	for i, r := range rows {
		serials[i] = r.Serial
	}
	return reg.LookupDevices(ctx, runID, serials)
}

// lookupDevice looks up one device, with what the run runID recorded for it.
func lookupDevice(ctx context.Context, reg *registry.Registry, runID, serial string) (registry.DeviceLookup, error) {
	found, err := reg.LookupDevices(ctx, runID, []string{serial})
	if err != nil {
		return registry.DeviceLookup{}, err
	}
	return found[0], nil
}

// eachDevice calls fn with every row and what the registry has of its device, in the rows'
// order, looking them up a page at a time.
func eachDevice(ctx context.Context, reg *registry.Registry, rows []Row, fn func(Row, registry.DeviceLookup) error) error {
	for start := 0; start < len(rows); start += lookupPage {
		page := rows[start:min(start+lookupPage, len(rows))]
		found, err := lookupRows(ctx, reg, "", page)
		if err != nil {
			return err
		}
		for i, r := range page {
			if err := fn(r, found[i]); err != nil {
				return err
			}
		}
	}
	return nil
}
