package registry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// errNotCommonBatch says a batch is not of the shape decommissionBatch does at once (one run,
// each device once, every entry valid): the batch is done device by device instead, which
// refuses it with the same words as always.
var errNotCommonBatch = errors.New("not a common batch")

// decommissionBatch records a batch as decommissionOne would device by device, with a few
// statements for the whole batch instead of four for each device: a fleet of 100,000 spends
// most of its registry time on statements, not on the rows they change. The devices that are
// not active (already decommissioned, or recorded by this run before) go through
// alreadyDecommissioned one by one, as before. It writes results[i] for batch[i].
//
// Its statements run under a savepoint: on any error the batch's changes are undone and the
// error returned, so that the caller can do the batch device by device, which names the device
// that failed.
func decommissionBatch(ctx context.Context, b *batchState, batch []Decommission, results []DeviceResult) (err error) {
	if len(batch) == 0 {
		return nil
	}
	seen := make(map[string]bool, len(batch))
	for _, d := range batch {
		if d.RunID != batch[0].RunID || seen[d.DeviceSerial] || d.check() != nil {
			return errNotCommonBatch
		}
		seen[d.DeviceSerial] = true
	}
	if err := checkRunning(ctx, b.sc.tx, batch[0].RunID); err != nil {
		return err
	}
	if _, err := b.sc.exec(ctx, `SAVEPOINT decommission_batch`); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			b.sc.exec(context.WithoutCancel(ctx), `ROLLBACK TO decommission_batch`)
		}
		b.sc.exec(context.WithoutCancel(ctx), `RELEASE decommission_batch`)
	}()
	// A hundred devices at a time: the same few statements serve a whole batch, each prepared
	// once, and none takes long to prepare (a statement of a thousand rows of parameters costs
	// more to parse than to run).
	for lo := 0; lo < len(batch); lo += batchChunk {
		hi := min(lo+batchChunk, len(batch))
		if err := decommissionActive(ctx, b, batch[lo:hi], results[lo:hi]); err != nil {
			return err
		}
	}
	return nil
}

// batchChunk is how many devices the statements of decommissionBatch take at once.
const batchChunk = 100

// activeDevice is a device of the batch that was active, as its status changed.
type activeDevice struct {
	i         int // its index in the batch
	num       int64
	issuerNum int64
}

func decommissionActive(ctx context.Context, b *batchState, batch []Decommission, results []DeviceResult) error {
	sc := b.sc
	index := make(map[string]int, len(batch))
	args := make([]any, 0, 2*len(batch))
	for i, d := range batch {
		index[d.DeviceSerial] = i
		args = append(args, d.DeviceSerial, unix(d.At))
	}
	// The common case: active devices, retired by one statement. A result this run may already
	// hold for an active device can only be a failure, which is replaced below.
	upd, err := sc.query(ctx, `WITH b (serial, at) AS (VALUES `+valuesList(len(batch), 2)+`)
		UPDATE devices SET status = 'decommissioned', decommissioned_at = b.at
		FROM b WHERE devices.serial = b.serial AND devices.status = 'active'
		RETURNING serial, num, issuer_num, model, udi`, args...)
	if err != nil {
		return err
	}
	var active []activeDevice
	done := make([]bool, len(batch))
	for upd.Next() {
		var serial, model, udi string
		var a activeDevice
		if err := upd.Scan(&serial, &a.num, &a.issuerNum, &model, &udi); err != nil {
			upd.Close()
			return err
		}
		i, ok := index[serial]
		if !ok || done[i] {
			upd.Close()
			return fmt.Errorf("device %q: changed by the batch but not in it", serial)
		}
		a.i, done[i] = i, true
		d := batch[i]
		results[i] = DeviceResult{RunID: d.RunID, DeviceSerial: d.DeviceSerial, DeviceModel: model, DeviceUDI: udi, Outcome: OutcomeDecommissioned,
			Method: d.Method, Verification: d.Verification, Reason: d.Reason, Note: d.Note, KeyState: d.KeyState,
			RevokedAt: d.At, InvalidityDate: d.InvalidityDate, At: d.At}
		active = append(active, a)
	}
	upd.Close()
	if err := upd.Err(); err != nil {
		return err
	}
	// In the batch's order, as device by device.
	slices.SortFunc(active, func(x, y activeDevice) int { return x.i - y.i })
	for _, a := range active {
		if results[a.i].IssuerID, err = b.issuerID(ctx, a.issuerNum); err != nil {
			return err
		}
	}
	if err := moveBatchKeys(ctx, sc, batch, active, results); err != nil {
		return err
	}
	if err := revokeBatch(ctx, sc, batch, active, results); err != nil {
		return err
	}
	if err := writeBatchResults(ctx, sc, active, results); err != nil {
		return err
	}
	// The rest, rarely any: not active, so already decommissioned, recorded by this run
	// before, or unknown.
	for i, d := range batch {
		if done[i] {
			continue
		}
		res, err := alreadyDecommissioned(ctx, b, d)
		if err != nil {
			return fmt.Errorf("device %q: %w", d.DeviceSerial, err)
		}
		results[i] = res
	}
	return nil
}

// moveBatchKeys moves the keys of the batch's active devices to each one's KeyState, as
// moveDeviceKeys does for one device: one statement per key state the batch names (usually
// one). Each device's key ids come in the order moveDeviceKeys gives them: the order the keys
// were registered in.
func moveBatchKeys(ctx context.Context, sc *stmtCache, batch []Decommission, active []activeDevice, results []DeviceResult) error {
	byNum := make(map[int64]int, len(active))
	groups := map[KeyState][]any{}
	var states []KeyState
	for _, a := range active {
		d := batch[a.i]
		byNum[a.num] = a.i
		if _, ok := groups[d.KeyState]; !ok {
			states = append(states, d.KeyState)
		}
		groups[d.KeyState] = append(groups[d.KeyState], a.num, unix(d.At), d.Method)
	}
	type moved struct {
		num int64
		id  []byte
	}
	keys := make(map[int][]moved, len(active))
	for _, state := range states {
		from := statesThatReach(state)
		if from == "" {
			return fmt.Errorf("%w: no key can become %q", ErrInvalid, state)
		}
		// The parameters in the order they stand: the rows, then the state and the run.
		args := append(groups[state], string(state), nullString(batch[active[0].i].RunID))
		rows, err := sc.query(ctx, `WITH b (num, at, note) AS (VALUES `+valuesList(len(groups[state])/3, 3)+`)
			UPDATE device_keys SET state = ?, state_at = b.at, state_run_id = ?, state_note = b.note
			FROM b WHERE device_keys.device_num = b.num AND device_keys.state IN (`+from+`)
			RETURNING device_num, num, CASE WHEN length(key_id) > 0 THEN key_id ELSE public_key_sha256 END`, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var num int64
			var k moved
			if err := rows.Scan(&num, &k.num, &k.id); err != nil {
				rows.Close()
				return err
			}
			i, ok := byNum[num]
			if !ok {
				rows.Close()
				return fmt.Errorf("key of device %d: moved by the batch but not in it", num)
			}
			keys[i] = append(keys[i], k)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	for i, ks := range keys {
		slices.SortFunc(ks, func(x, y moved) int { return cmp.Compare(x.num, y.num) })
		for _, k := range ks {
			results[i].KeyIDs = append(results[i].KeyIDs, k.id)
		}
	}
	return nil
}

// revokeBatch revokes, for each active device of the batch, every certificate of it not yet
// expired at its time and not revoked before, and notes them in its result in the order they
// were registered.
func revokeBatch(ctx context.Context, sc *stmtCache, batch []Decommission, active []activeDevice, results []DeviceResult) error {
	byNum := make(map[int64]int, len(active))
	args := make([]any, 0, 4*len(active))
	for _, a := range active {
		d := batch[a.i]
		byNum[a.num] = a.i
		args = append(args, a.num, unix(d.At), int(d.Reason), unixOrNil(d.InvalidityDate))
	}
	batchRows := `WITH b (num, at, reason, invalidity_at) AS (VALUES ` + valuesList(len(active), 4) + `) `
	// What the insert below adds: certificates of one issuer have distinct serials, so no two
	// of the batch's clash with each other, only with revocations made before.
	found, err := sc.query(ctx, batchRows+`SELECT c.device_num, c.serial FROM b JOIN certificates c ON c.device_num = b.num
		WHERE c.not_after >= b.at AND NOT EXISTS (SELECT 1 FROM revocations v
			WHERE v.issuer_num = c.issuer_num AND v.serial_len = length(c.serial) AND v.serial = c.serial)
		ORDER BY c.num`, args...)
	if err != nil {
		return err
	}
	for found.Next() {
		var num int64
		var s []byte
		if err := found.Scan(&num, &s); err != nil {
			found.Close()
			return err
		}
		i, ok := byNum[num]
		if !ok {
			found.Close()
			return fmt.Errorf("certificate of device %d: found for the batch but not in it", num)
		}
		results[i].RevokedSerials = append(results[i].RevokedSerials, SerialNumber(s))
	}
	found.Close()
	if err := found.Err(); err != nil {
		return err
	}
	_, err = sc.exec(ctx, batchRows+`INSERT INTO revocations (issuer_num, serial_len, serial, revoked_at, reason, invalidity_at)
		SELECT c.issuer_num, length(c.serial), c.serial, b.at, b.reason, b.invalidity_at
		FROM b JOIN certificates c ON c.device_num = b.num WHERE c.not_after >= b.at
		ON CONFLICT DO NOTHING`, args...)
	return err
}

// writeBatchResults writes the results of the batch's active devices, as writeResult does one.
func writeBatchResults(ctx context.Context, sc *stmtCache, active []activeDevice, results []DeviceResult) error {
	args := make([]any, 0, resultColumnCount*len(active))
	for _, a := range active {
		args = append(args, resultValues(a.num, a.issuerNum, results[a.i])...)
	}
	_, err := sc.exec(ctx, `INSERT OR REPLACE INTO decommission_results (run_id, device_num, issuer_num, outcome, method, verification,
		reason, note, key_state, revoked_at, invalidity_at, revoked_serials, key_ids, at)
		VALUES `+valuesList(len(active), resultColumnCount), args...)
	return err
}

// resultColumnCount is how many columns resultValues gives.
const resultColumnCount = 14

// valuesList is the rows of a VALUES clause of rows rows of cols parameters each, "(?, ?),
// (?, ?)": a batch bound as parameters (a thousand devices take at most 14,000 of the 32,766
// a statement may have).
func valuesList(rows, cols int) string {
	row := "(" + strings.Repeat("?, ", cols-1) + "?)"
	var b strings.Builder
	b.Grow(rows * (len(row) + 2))
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	return b.String()
}
