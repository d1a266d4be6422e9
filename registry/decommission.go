package registry

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/custos-pki/custos/pki"
)

// DecommissionRun is a decommission run: one device (Operation "single", Subject its serial)
// or a fleet from a manifest (Operation "fleet", Subject the manifest path), with the people
// who did it.
type DecommissionRun struct {
	Run
	ManifestPath   string
	ManifestSHA256 []byte // nil for a single device
	Technician     string
	Witness        string // "" when none was present
}

// StartDecommissionRun records a decommission run as running, before any device is touched.
func (r *Registry) StartDecommissionRun(ctx context.Context, run DecommissionRun) (DecommissionRun, error) {
	run.Kind = RunDecommission
	run.Status, run.StartedAt, run.FinishedAt, run.RecordPath, run.Note = RunRunning, nowOr(run.StartedAt), time.Time{}, "", ""
	fail := func(err error) (DecommissionRun, error) {
		return DecommissionRun{}, fmt.Errorf("start decommission run %q: %w", run.ID, err)
	}
	if err := run.check(); err != nil {
		return fail(err)
	}
	if run.Technician == "" {
		return fail(fmt.Errorf("%w: a decommission run needs its technician", ErrInvalid))
	}
	if run.Operation == "fleet" && (run.ManifestPath == "" || len(run.ManifestSHA256) == 0) {
		return fail(fmt.Errorf("%w: a fleet run needs its manifest path and SHA-256", ErrInvalid))
	}
	fact := &DecommissionRunStarted{RunStarted: RunStarted{ID: run.ID, Kind: run.Kind, Operation: run.Operation, Subject: run.Subject,
		JournalPath: run.JournalPath, StartedAt: run.StartedAt}, ManifestPath: run.ManifestPath, ManifestSHA256: run.ManifestSHA256,
		Technician: run.Technician, Witness: run.Witness}
	err := r.write(ctx, fact, func(tx *sql.Tx) error {
		if err := insertRun(ctx, tx, run.Run); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO decommission_runs (run_id, manifest_path, manifest_sha256, technician, witness)
			VALUES (?, ?, ?, ?, ?)`, run.ID, run.ManifestPath, nilIfEmpty(run.ManifestSHA256), run.Technician, run.Witness)
		return err
	})
	if err != nil {
		return fail(err)
	}
	return run, nil
}

// DecommissionRun finds a decommission run by id.
func (r *Registry) DecommissionRun(ctx context.Context, id string) (DecommissionRun, error) {
	var run DecommissionRun
	err := r.read(ctx, func(tx *sql.Tx) error {
		var err error
		run.Run, err = scanRun(tx.QueryRowContext(ctx, `SELECT `+runColumns+`WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: no run has that id", ErrNotFound)
		}
		if err != nil {
			return err
		}
		err = tx.QueryRowContext(ctx, `SELECT manifest_path, manifest_sha256, technician, witness FROM decommission_runs WHERE run_id = ?`, id).
			Scan(&run.ManifestPath, &run.ManifestSHA256, &run.Technician, &run.Witness)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: run is a %s run, not a decommission", ErrNotFound, run.Kind)
		}
		return err
	})
	if err != nil {
		return DecommissionRun{}, fmt.Errorf("find decommission run %q: %w", id, err)
	}
	return run, nil
}

// Decommission is what to record for one device once its keys are erased and verified (or it
// is known lost or destroyed).
type Decommission struct {
	RunID          string
	DeviceSerial   string
	Method         string     // erase, reinit, physical or unreachable
	Verification   string     // what the verification found, in words
	Reason         pki.Reason // for its certificates
	Note           string     // the manifest's note or the technician's words
	KeyState       KeyState   // what its keys become: KeyDestroyed, or KeyCompromised for a lost device
	At             time.Time  // revocation and key state time; zero: now
	InvalidityDate time.Time  // for keyCompromise: since when the key may have been known; zero if none
}

// Outcome is what a decommission run did with one device.
type Outcome string

const (
	OutcomeDecommissioned        Outcome = "decommissioned"         // this run retired it
	OutcomeAlreadyDecommissioned Outcome = "already-decommissioned" // an earlier run had; nothing changed
	OutcomeFailed                Outcome = "failed"                 // erase or verification failed; nothing changed
)

// DeviceResult is one device's line in a decommission run, and in its record.
type DeviceResult struct {
	RunID          string
	DeviceSerial   string
	DeviceModel    string
	DeviceUDI      string // the device's UDI as the registry has it, "" when not known
	IssuerID       string
	Outcome        Outcome
	Method         string
	Verification   string
	Reason         pki.Reason
	Note           string
	KeyState       KeyState       // what its keys became ("" unless decommissioned)
	RevokedAt      time.Time      // zero unless decommissioned
	InvalidityDate time.Time      //
	RevokedSerials []SerialNumber // certificates this run revoked (ones revoked before are not repeated)
	KeyIDs         [][]byte       // keys this run moved to KeyState: CKA_IDs, or public key fingerprints for keys without one
	CRLNumber      int64          // the CRL that first lists the revocations; 0 until RecordRunCRL
	RecordPath     string         // the signed record; "" until CompleteRun
	At             time.Time      // when the result was recorded
}

func (d Decommission) check() error {
	if d.DeviceSerial == "" || d.Method == "" {
		return fmt.Errorf("%w: a decommission needs the device serial and the method", ErrInvalid)
	}
	if d.KeyState != KeyDestroyed && d.KeyState != KeyCompromised {
		return fmt.Errorf("%w: key state after decommission %q (want destroyed or compromised)", ErrInvalid, d.KeyState)
	}
	if !d.Reason.Valid() {
		return fmt.Errorf("%w: revocation reason %d is not one Custos records", ErrInvalid, int(d.Reason))
	}
	if !d.InvalidityDate.IsZero() && d.InvalidityDate.After(d.At) {
		return fmt.Errorf("%w: invalidity date %s is after the revocation %s", ErrInvalid,
			d.InvalidityDate.Format(time.RFC3339), d.At.Format(time.RFC3339))
	}
	return nil
}

// DecommissionDevice records one device's decommission in one transaction: the device's
// status, its keys' states, the revocation of its certificates and the run's result for it.
// See DecommissionDevices.
func (r *Registry) DecommissionDevice(ctx context.Context, d Decommission) (DeviceResult, error) {
	res, err := r.DecommissionDevices(ctx, []Decommission{d})
	if err != nil {
		return DeviceResult{}, err
	}
	return res[0], nil
}

// DecommissionDevices records many devices' decommissions in one transaction, as a fleet run
// does a thousand at a time: for each device, its status becomes decommissioned, its keys
// become d.KeyState (an active key being deactivated first), every certificate of it not yet
// expired at d.At is revoked, and the run's result is written. All of the batch is recorded or
// none of it.
//
// It is idempotent, for resuming: a device this run already recorded returns the stored
// result; a device an earlier run decommissioned gets an already-decommissioned result and is
// not changed. A device whose result in this run was a failure is recorded anew. An unknown
// device, or a run that is not a running decommission run, is an error for the whole batch.
func (r *Registry) DecommissionDevices(ctx context.Context, batch []Decommission) ([]DeviceResult, error) {
	results := make([]DeviceResult, len(batch))
	batch = slices.Clone(batch)
	for i := range batch {
		batch[i].At = nowOr(batch[i].At)
		if !batch[i].InvalidityDate.IsZero() {
			batch[i].InvalidityDate = batch[i].InvalidityDate.Truncate(time.Second).UTC()
		}
	}
	err := r.write(ctx, &DevicesDecommissioned{Devices: batch}, func(tx *sql.Tx) error {
		b := &batchState{sc: newStmtCache(tx), issuerIDs: map[int64]string{}}
		defer b.sc.close()
		if !r.testDeviceByDevice {
			if err := decommissionBatch(ctx, b, batch, results); err == nil {
				return nil
			}
		}
		// Not the common shape, or it failed: device by device, which says which device
		// and why. The batch's statements were undone.
		clear(results)
		runsOK := map[string]bool{}
		for i, d := range batch {
			if err := d.check(); err != nil {
				return fmt.Errorf("device %q: %w", d.DeviceSerial, err)
			}
			if !runsOK[d.RunID] {
				if err := checkRunning(ctx, tx, d.RunID); err != nil {
					return err
				}
				runsOK[d.RunID] = true
			}
			res, err := decommissionOne(ctx, b, d)
			if err != nil {
				return fmt.Errorf("device %q: %w", d.DeviceSerial, err)
			}
			results[i] = res
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record decommission in run %q: %w", batchRun(batch), err)
	}
	return results, nil
}

func batchRun(batch []Decommission) string {
	if len(batch) == 0 {
		return ""
	}
	return batch[0].RunID
}

// checkRunning refuses a run that is unknown, not a decommission or not running.
func checkRunning(ctx context.Context, tx *sql.Tx, runID string) error {
	var kind, status string
	err := tx.QueryRowContext(ctx, `SELECT kind, status FROM runs WHERE id = ?`, runID).Scan(&kind, &status)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: run %q is not registered", ErrNotFound, runID)
	}
	if err != nil {
		return err
	}
	if RunKind(kind) != RunDecommission || RunStatus(status) != RunRunning {
		return fmt.Errorf("%w: run %q is a %s %s run; results go to a running decommission run", ErrConflict, runID, status, kind)
	}
	return nil
}

// batchState is what one decommission transaction keeps between devices.
type batchState struct {
	sc        *stmtCache
	issuerIDs map[int64]string
}

func (b *batchState) issuerID(ctx context.Context, num int64) (string, error) {
	if id, ok := b.issuerIDs[num]; ok {
		return id, nil
	}
	var id string
	if err := b.sc.queryRow(ctx, `SELECT id FROM issuers WHERE num = ?`, num).Scan(&id); err != nil {
		return "", err
	}
	b.issuerIDs[num] = id
	return id, nil
}

func decommissionOne(ctx context.Context, b *batchState, d Decommission) (DeviceResult, error) {
	sc := b.sc
	// The common case first: an active device, retired by one statement. A result this run
	// may already hold for an active device can only be a failure, which is replaced.
	var devNum, issuerNum int64
	var model, udi string
	err := sc.queryRow(ctx, `UPDATE devices SET status = 'decommissioned', decommissioned_at = ?
		WHERE serial = ? AND status = 'active' RETURNING num, issuer_num, model, udi`, unix(d.At), d.DeviceSerial).Scan(&devNum, &issuerNum, &model, &udi)
	if errors.Is(err, sql.ErrNoRows) {
		return alreadyDecommissioned(ctx, b, d)
	}
	if err != nil {
		return DeviceResult{}, err
	}
	issuerID, err := b.issuerID(ctx, issuerNum)
	if err != nil {
		return DeviceResult{}, err
	}
	res := DeviceResult{RunID: d.RunID, DeviceSerial: d.DeviceSerial, DeviceModel: model, DeviceUDI: udi, IssuerID: issuerID, Outcome: OutcomeDecommissioned,
		Method: d.Method, Verification: d.Verification, Reason: d.Reason, Note: d.Note, KeyState: d.KeyState,
		RevokedAt: d.At, InvalidityDate: d.InvalidityDate, At: d.At}
	if res.KeyIDs, err = moveDeviceKeys(ctx, sc, devNum, d.KeyState, d.At, d.RunID, d.Method); err != nil {
		return DeviceResult{}, err
	}
	rows, err := sc.query(ctx, `INSERT INTO revocations (issuer_num, serial_len, serial, revoked_at, reason, invalidity_at)
		SELECT issuer_num, length(serial), serial, ?, ?, ? FROM certificates WHERE device_num = ? AND not_after >= ? ORDER BY num
		ON CONFLICT DO NOTHING RETURNING serial`, unix(d.At), int(d.Reason), unixOrNil(d.InvalidityDate), devNum, unix(d.At))
	if err != nil {
		return DeviceResult{}, err
	}
	for rows.Next() {
		var s []byte
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return DeviceResult{}, err
		}
		res.RevokedSerials = append(res.RevokedSerials, SerialNumber(s))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return DeviceResult{}, err
	}
	return res, writeResult(ctx, sc, devNum, issuerNum, res)
}

// alreadyDecommissioned handles a device that is not active: unknown, recorded by this run
// before (a resumed run: its stored result), or retired by an earlier run (a result saying so).
func alreadyDecommissioned(ctx context.Context, b *batchState, d Decommission) (DeviceResult, error) {
	sc := b.sc
	var devNum, issuerNum int64
	var model, udi string
	var decommissionedAt sql.NullInt64
	var prior, by sql.NullString
	err := sc.queryRow(ctx, `SELECT d.num, d.issuer_num, d.model, d.udi, d.decommissioned_at,
		(SELECT outcome FROM decommission_results WHERE run_id = ? AND device_num = d.num),
		(SELECT run_id FROM decommission_results WHERE device_num = d.num AND outcome = 'decommissioned' ORDER BY at DESC LIMIT 1)
		FROM devices d WHERE d.serial = ?`, d.RunID, d.DeviceSerial).Scan(&devNum, &issuerNum, &model, &udi, &decommissionedAt, &prior, &by)
	if errors.Is(err, sql.ErrNoRows) {
		return DeviceResult{}, fmt.Errorf("%w: the device is not registered", ErrNotFound)
	}
	if err != nil {
		return DeviceResult{}, err
	}
	if prior.Valid && Outcome(prior.String) != OutcomeFailed {
		// Recorded by this run before a crash or a re-run of the batch: nothing more to do.
		rows, err := sc.query(ctx, `SELECT `+resultColumns+`WHERE x.run_id = ? AND x.device_num = ?`, d.RunID, devNum)
		if err != nil {
			return DeviceResult{}, err
		}
		defer rows.Close()
		if !rows.Next() {
			return DeviceResult{}, fmt.Errorf("result of run %q vanished: %w", d.RunID, rows.Err())
		}
		return scanResult(rows)
	}
	issuerID, err := b.issuerID(ctx, issuerNum)
	if err != nil {
		return DeviceResult{}, err
	}
	// Its revocation is the earlier run's: this result carries none.
	res := DeviceResult{RunID: d.RunID, DeviceSerial: d.DeviceSerial, DeviceModel: model, DeviceUDI: udi, IssuerID: issuerID, Outcome: OutcomeAlreadyDecommissioned,
		Method: d.Method, Verification: d.Verification, At: d.At,
		Note: fmt.Sprintf("already decommissioned at %s", fromUnix(decommissionedAt.Int64).Format(time.RFC3339))}
	if by.Valid {
		res.Note += " by run " + by.String
	}
	if d.Note != "" {
		res.Note += "; " + d.Note
	}
	return res, writeResult(ctx, sc, devNum, issuerNum, res)
}

func writeResult(ctx context.Context, sc *stmtCache, devNum, issuerNum int64, res DeviceResult) error {
	_, err := sc.exec(ctx, `INSERT OR REPLACE INTO decommission_results (run_id, device_num, issuer_num, outcome, method, verification,
		reason, note, key_state, revoked_at, invalidity_at, revoked_serials, key_ids, at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, resultValues(devNum, issuerNum, res)...)
	return err
}

// resultValues are the columns of a result's row in decommission_results, in their order.
func resultValues(devNum, issuerNum int64, res DeviceResult) []any {
	var keyState, revokedAt, reason any
	if res.Outcome == OutcomeDecommissioned {
		keyState, revokedAt, reason = string(res.KeyState), unix(res.RevokedAt), int(res.Reason)
	}
	serials := make([]string, len(res.RevokedSerials))
	for i, s := range res.RevokedSerials {
		serials[i] = s.String()
	}
	ids := make([]string, len(res.KeyIDs))
	for i, k := range res.KeyIDs {
		ids[i] = hex.EncodeToString(k)
	}
	return []any{res.RunID, devNum, issuerNum, string(res.Outcome), res.Method, res.Verification, reason, res.Note, keyState, revokedAt,
		unixOrNil(res.InvalidityDate), strings.Join(serials, ","), strings.Join(ids, ","), unix(res.At)}
}

// RecordDecommissionFailure records that a device's erase or verification failed in a run:
// nothing about the device changes, and a later DecommissionDevices in the same run replaces
// the failure. The failure is not "done" for RunDoneSerials, so a resumed run retries it.
func (r *Registry) RecordDecommissionFailure(ctx context.Context, d Decommission) error {
	d.At = nowOr(d.At)
	fact := &DecommissionFailed{Run: d.RunID, Device: d.DeviceSerial, Method: d.Method, Verification: d.Verification, Note: d.Note, At: d.At}
	err := r.write(ctx, fact, func(tx *sql.Tx) error {
		if d.DeviceSerial == "" || d.Method == "" {
			return fmt.Errorf("%w: a decommission needs the device serial and the method", ErrInvalid)
		}
		if err := checkRunning(ctx, tx, d.RunID); err != nil {
			return err
		}
		var devNum, issuerNum int64
		var prior sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT d.num, d.issuer_num, x.outcome FROM devices d
			LEFT JOIN decommission_results x ON x.run_id = ? AND x.device_num = d.num WHERE d.serial = ?`, d.RunID, d.DeviceSerial).
			Scan(&devNum, &issuerNum, &prior)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: the device is not registered", ErrNotFound)
		}
		if err != nil {
			return err
		}
		if prior.Valid && Outcome(prior.String) != OutcomeFailed {
			return fmt.Errorf("%w: the run has already recorded the device as %s", ErrConflict, prior.String)
		}
		sc := newStmtCache(tx)
		defer sc.close()
		return writeResult(ctx, sc, devNum, issuerNum, DeviceResult{RunID: d.RunID, DeviceSerial: d.DeviceSerial,
			Outcome: OutcomeFailed, Method: d.Method, Verification: d.Verification, Note: d.Note, At: d.At})
	})
	if err != nil {
		return fmt.Errorf("record failed decommission of device %q in run %q: %w", d.DeviceSerial, d.RunID, err)
	}
	return nil
}

// RecordRunCRL notes that the revocations a run made under an issuer are published in that
// issuer's CRL number crlNumber, which must be recorded (RecordCRL) already.
func (r *Registry) RecordRunCRL(ctx context.Context, runID, issuerID string, crlNumber int64) error {
	err := r.write(ctx, &RunCRLRecorded{Run: runID, Issuer: issuerID, Number: crlNumber}, func(tx *sql.Tx) error {
		num, err := issuerNum(ctx, tx, issuerID)
		if err != nil {
			return err
		}
		var ok bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM crls WHERE issuer_num = ? AND number = ?)`, num, crlNumber).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: CRL number %d is not recorded", ErrNotFound, crlNumber)
		}
		_, err = tx.ExecContext(ctx, `UPDATE decommission_results SET crl_number = ?
			WHERE run_id = ? AND issuer_num = ? AND outcome = 'decommissioned' AND crl_number IS NULL`, crlNumber, runID, num)
		return err
	})
	if err != nil {
		return fmt.Errorf("record CRL %d of issuer %q for run %q: %w", crlNumber, issuerID, runID, err)
	}
	return nil
}

const (
	resultSelect = `x.run_id, d.serial, d.model, d.udi, i.id, x.outcome, x.method, x.verification, x.reason, x.note, x.key_state,
	x.revoked_at, x.invalidity_at, x.revoked_serials, x.key_ids, x.crl_number, x.record_path, x.at `
	resultColumns = resultSelect + `FROM decommission_results x JOIN devices d ON d.num = x.device_num JOIN issuers i ON i.num = x.issuer_num `
)

func scanResult(s rowScanner) (DeviceResult, error) {
	var res DeviceResult
	var outcome, serials, ids string
	var reason, crl sql.NullInt64
	var keyState sql.NullString
	var at int64
	err := s.Scan(&res.RunID, &res.DeviceSerial, &res.DeviceModel, &res.DeviceUDI, &res.IssuerID, &outcome, &res.Method, &res.Verification, &reason, &res.Note,
		&keyState, nullTime{&res.RevokedAt}, nullTime{&res.InvalidityDate}, &serials, &ids, &crl, &res.RecordPath, &at)
	if err != nil {
		return DeviceResult{}, err
	}
	res.Outcome, res.Reason, res.KeyState, res.CRLNumber, res.At = Outcome(outcome), pki.Reason(reason.Int64),
		KeyState(keyState.String), crl.Int64, fromUnix(at)
	for _, s := range splitList(serials) {
		b, err := hex.DecodeString(s)
		if err != nil {
			return DeviceResult{}, fmt.Errorf("stored serial %q: %w", s, err)
		}
		res.RevokedSerials = append(res.RevokedSerials, b)
	}
	for _, s := range splitList(ids) {
		b, err := hex.DecodeString(s)
		if err != nil {
			return DeviceResult{}, fmt.Errorf("stored key id %q: %w", s, err)
		}
		res.KeyIDs = append(res.KeyIDs, b)
	}
	return res, nil
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func deviceResults(ctx context.Context, tx *sql.Tx, where string, args ...any) ([]DeviceResult, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+resultColumns+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []DeviceResult
	for rows.Next() {
		res, err := scanResult(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, res)
	}
	return out, rows.Err()
}

// RunResults streams a run's per-device results in device serial order, for its record.
func (r *Registry) RunResults(ctx context.Context, runID string) iter.Seq2[DeviceResult, error] {
	return func(yield func(DeviceResult, error) bool) {
		rows, err := r.db.QueryContext(ctx, `SELECT `+resultColumns+`WHERE x.run_id = ? ORDER BY d.serial`, runID)
		if err != nil {
			yield(DeviceResult{}, fmt.Errorf("read results of run %q: %w", runID, err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			res, err := scanResult(rows)
			if err != nil {
				yield(DeviceResult{}, fmt.Errorf("read results of run %q: %w", runID, err))
				return
			}
			if !yield(res, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(DeviceResult{}, fmt.Errorf("read results of run %q: %w", runID, err))
		}
	}
}

// RunResultsOf is what run runID recorded of each device of serials, in their order: a fleet's
// rows, read back a page at a time as the run records them. A device without a result in the
// run is an error.
func (r *Registry) RunResultsOf(ctx context.Context, runID string, serials []string) ([]DeviceResult, error) {
	fail := func(err error) ([]DeviceResult, error) {
		return nil, fmt.Errorf("read results of run %q: %w", runID, err)
	}
	list, err := json.Marshal(serials)
	if err != nil {
		return fail(err)
	}
	at := make(map[string]int, len(serials))
	for i, s := range serials {
		at[s] = i
	}
	// CROSS JOIN keeps SQLite to this order: each serial through the serial index, then its
	// result through the results' key, never a scan of the run's results.
	rows, err := r.db.QueryContext(ctx, `SELECT `+resultSelect+`FROM json_each(?2) j CROSS JOIN devices d ON d.serial = j.value
		CROSS JOIN decommission_results x ON x.run_id = ?1 AND x.device_num = d.num JOIN issuers i ON i.num = x.issuer_num`, runID, string(list))
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	out := make([]DeviceResult, len(serials))
	found := 0
	for rows.Next() {
		res, err := scanResult(rows)
		if err != nil {
			return fail(err)
		}
		i, ok := at[res.DeviceSerial]
		if !ok || out[i].DeviceSerial != "" {
			return fail(fmt.Errorf("the database answered for device %q", res.DeviceSerial))
		}
		out[i] = res
		found++
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	if found != len(serials) {
		for i, res := range out {
			if res.DeviceSerial == "" {
				return fail(fmt.Errorf("%w: device %q has no result in the run", ErrNotFound, serials[i]))
			}
		}
	}
	return out, nil
}

// RunOutcomes counts a decommission run's devices by outcome.
func (r *Registry) RunOutcomes(ctx context.Context, runID string) (map[Outcome]int, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT outcome, COUNT(*) FROM decommission_results WHERE run_id = ? GROUP BY outcome`, runID)
	if err != nil {
		return nil, fmt.Errorf("count the outcomes of run %q: %w", runID, err)
	}
	defer rows.Close()
	out := map[Outcome]int{}
	for rows.Next() {
		var o string
		var n int
		if err := rows.Scan(&o, &n); err != nil {
			return nil, fmt.Errorf("count the outcomes of run %q: %w", runID, err)
		}
		out[Outcome(o)] = n
	}
	return out, rows.Err()
}

// RunDoneSerials is the set of devices a run has finished with (decommissioned, or found
// already decommissioned): what a resumed fleet run skips. Failed devices are not in it.
func (r *Registry) RunDoneSerials(ctx context.Context, runID string) (map[string]bool, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT d.serial FROM decommission_results x JOIN devices d ON d.num = x.device_num
		WHERE x.run_id = ? AND x.outcome <> 'failed'`, runID)
	if err != nil {
		return nil, fmt.Errorf("read done devices of run %q: %w", runID, err)
	}
	defer rows.Close()
	done := map[string]bool{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("read done devices of run %q: %w", runID, err)
		}
		done[s] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read done devices of run %q: %w", runID, err)
	}
	return done, nil
}
