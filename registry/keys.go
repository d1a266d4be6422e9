package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// statesThatReach lists, as SQL string literals, the states from which target can be reached
// (see KeyState.pathTo).
func statesThatReach(target KeyState) string {
	var from []string
	for _, s := range []KeyState{KeyPreActivation, KeyActive, KeyDeactivated, KeyCompromised, KeyDestroyed} {
		if s.pathTo(target) != nil {
			from = append(from, "'"+string(s)+"'")
		}
	}
	return strings.Join(from, ", ")
}

// moveDeviceKeys moves every key of the device that can reach state to it, at the given time,
// in one statement; the triggers write the history, where an active key that is destroyed is
// deactivated first.
// It returns the CKA_IDs (or, for keys registered without one, the public key fingerprints)
// of the keys it moved.
func moveDeviceKeys(ctx context.Context, sc *stmtCache, devNum int64, state KeyState, at time.Time, runID, note string) ([][]byte, error) {
	from := statesThatReach(state)
	if from == "" {
		return nil, fmt.Errorf("%w: no key can become %q", ErrInvalid, state)
	}
	run := nullString(runID)
	rows, err := sc.query(ctx, `UPDATE device_keys SET state = ?, state_at = ?, state_run_id = ?, state_note = ?
		WHERE device_num = ? AND state IN (`+from+`) RETURNING CASE WHEN length(key_id) > 0 THEN key_id ELSE public_key_sha256 END`,
		string(state), unix(at), run, note, devNum)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids [][]byte
	for rows.Next() {
		var id []byte
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// SetKeyState records a change in the life of one device key, found by its public key
// fingerprint: for example a key found compromised. SP 800-57's order is enforced (an active
// key is deactivated before it is destroyed, a destroyed key stays destroyed); a forbidden move
// is ErrConflict naming both states. A change dated before the key's current state is refused
// too, so the history stays in order.
func (r *Registry) SetKeyState(ctx context.Context, deviceSerial string, publicKeySHA256 [32]byte, state KeyState, at time.Time, note string) error {
	return r.SetKeyStateInRun(ctx, "", deviceSerial, publicKeySHA256, state, at, note)
}

// SetKeyStateInRun is SetKeyState for a change the run runID made ("" for none), which the
// key's history names.
func (r *Registry) SetKeyStateInRun(ctx context.Context, runID, deviceSerial string, publicKeySHA256 [32]byte, state KeyState, at time.Time, note string) error {
	at = nowOr(at)
	fact := &KeyStateSet{RunID: runID, Device: deviceSerial, PublicKeySHA256: publicKeySHA256[:], State: state, At: at, Note: note}
	err := r.write(ctx, fact, func(tx *sql.Tx) error {
		if !state.Valid() {
			return fmt.Errorf("%w: key state %q", ErrInvalid, state)
		}
		var keyNum, since int64
		var cur string
		err := tx.QueryRowContext(ctx, `SELECT k.num, k.state, k.state_at FROM device_keys k JOIN devices d ON d.num = k.device_num
			WHERE d.serial = ? AND k.public_key_sha256 = ?`, deviceSerial, publicKeySHA256[:]).Scan(&keyNum, &cur, &since)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: the device has no such key", ErrNotFound)
		}
		if err != nil {
			return err
		}
		if !KeyState(cur).CanBecome(state) {
			return fmt.Errorf("%w: SP 800-57 does not allow a %s key to become %s", ErrConflict, cur, state)
		}
		if unix(at) < since {
			return fmt.Errorf("%w: the key has been %s since %s, after %s", ErrConflict, cur,
				fromUnix(since).Format(time.RFC3339), at.Format(time.RFC3339))
		}
		_, err = tx.ExecContext(ctx, `UPDATE device_keys SET state = ?, state_at = ?, state_run_id = ?, state_note = ? WHERE num = ?`,
			string(state), unix(at), nullString(runID), note, keyNum)
		return err
	})
	if err != nil {
		return fmt.Errorf("set key %x of device %q to %s: %w", publicKeySHA256[:8], deviceSerial, state, err)
	}
	return nil
}
