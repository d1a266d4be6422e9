package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/custos-pki/custos/pki"
)

// DeviceHistory is everything the registry knows about a device, for `custos device show`.
type DeviceHistory struct {
	Device       Device
	Certificates []Certificate  // oldest first
	Keys         []DeviceKey    // oldest first, each with its full History
	Revocations  []Revocation   // of its certificates
	Results      []DeviceResult // what decommission runs did to it
}

// DeviceHistory reads a device's whole record from one snapshot.
func (r *Registry) DeviceHistory(ctx context.Context, serial string) (DeviceHistory, error) {
	var h DeviceHistory
	err := r.read(ctx, func(tx *sql.Tx) error {
		var devNum int64
		var err error
		h.Device, err = scanDevice(tx.QueryRowContext(ctx, `SELECT `+deviceColumns+`WHERE d.serial = ?`, serial))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: no device has that serial", ErrNotFound)
		}
		if err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT num FROM devices WHERE serial = ?`, serial).Scan(&devNum); err != nil {
			return err
		}
		if h.Certificates, err = deviceCertificates(ctx, tx, devNum); err != nil {
			return err
		}
		if h.Keys, err = deviceKeys(ctx, tx, devNum); err != nil {
			return err
		}
		for i := range h.Keys {
			if h.Keys[i].History, err = keyHistory(ctx, tx, devNum, h.Keys[i].PublicKeySHA256); err != nil {
				return err
			}
		}
		rows, err := tx.QueryContext(ctx, `SELECT i.id, v.serial, v.revoked_at, v.reason, v.invalidity_at
			FROM certificates c JOIN revocations v ON v.issuer_num = c.issuer_num AND v.serial_len = length(c.serial) AND v.serial = c.serial
			JOIN issuers i ON i.num = c.issuer_num WHERE c.device_num = ? ORDER BY c.num`, devNum)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var rv Revocation
			var at int64
			if err := rows.Scan(&rv.IssuerID, (*[]byte)(&rv.Serial), &at, (*int)(&rv.Reason), nullTime{&rv.InvalidityDate}); err != nil {
				return err
			}
			rv.RevokedAt = fromUnix(at)
			h.Revocations = append(h.Revocations, rv)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		h.Results, err = deviceResults(ctx, tx, `WHERE x.device_num = ? ORDER BY x.at`, devNum)
		return err
	})
	if err != nil {
		return DeviceHistory{}, fmt.Errorf("read the history of device %q: %w", serial, err)
	}
	return h, nil
}

func deviceCertificates(ctx context.Context, tx *sql.Tx, devNum int64) ([]Certificate, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+certColumns+`WHERE c.device_num = ? ORDER BY c.not_before, c.num`, devNum)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Certificate
	for rows.Next() {
		c, err := scanCertificate(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

const (
	keySelect  = `k.key_id, k.public_key_sha256, k.token_label, coalesce(i.id, ''), c.serial, k.state, k.state_at`
	keyJoins   = ` LEFT JOIN certificates c ON c.num = k.certificate_num LEFT JOIN issuers i ON i.num = c.issuer_num `
	keyColumns = keySelect + ` FROM device_keys k` + keyJoins
)

func scanKey(s rowScanner, extra ...any) (DeviceKey, error) {
	var k DeviceKey
	var fpr []byte
	var state string
	var at int64
	dest := append([]any{&k.KeyID, &fpr, &k.TokenLabel, &k.CertIssuerID, (*[]byte)(&k.CertSerial), &state, &at}, extra...)
	if err := s.Scan(dest...); err != nil {
		return DeviceKey{}, err
	}
	copy(k.PublicKeySHA256[:], fpr)
	k.State, k.StateAt = KeyState(state), fromUnix(at)
	return k, nil
}

func deviceKeys(ctx context.Context, tx *sql.Tx, devNum int64) ([]DeviceKey, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+keyColumns+`WHERE k.device_num = ? ORDER BY k.num`, devNum)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []DeviceKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// stateOrder sorts key_states rows of one time in life-cycle order (see the schema).
const stateOrder = `CASE s.state WHEN 'pre-activation' THEN 1 WHEN 'active' THEN 2 WHEN 'deactivated' THEN 3
	WHEN 'compromised' THEN 4 ELSE 5 END`

func keyHistory(ctx context.Context, tx *sql.Tx, devNum int64, fpr [32]byte) ([]KeyStateChange, error) {
	rows, err := tx.QueryContext(ctx, `SELECT s.state, s.at, coalesce(s.run_id, ''), s.note FROM key_states s
		JOIN device_keys k ON k.num = s.key_num WHERE k.device_num = ? AND k.public_key_sha256 = ? ORDER BY s.at, `+stateOrder, devNum, fpr[:])
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []KeyStateChange
	for rows.Next() {
		var c KeyStateChange
		var state string
		var at int64
		if err := rows.Scan(&state, &at, &c.RunID, &c.Note); err != nil {
			return nil, err
		}
		c.State, c.At = KeyState(state), fromUnix(at)
		out = append(out, c)
	}
	return out, rows.Err()
}

// DeviceAt is a device as it was at one moment: for forensics, which key and which
// certificate it had then and in what state.
type DeviceAt struct {
	Device       Device          // as registered now
	At           time.Time       // the moment asked about
	Status       DeviceStatus    // at that moment; "" if the device was not yet registered
	Keys         []KeyAt         // keys that existed then (had a first state at or before At)
	Certificates []CertificateAt // certificates issued by then (notBefore at or before At)
}

// KeyAt is a key and its state at a moment.
type KeyAt struct {
	Key   DeviceKey // as it is now (State is the current state), without History
	State KeyState  // the state it was in at the moment
	Since time.Time // since when it had been in that state
}

// CertificateAt is a certificate and its standing at a moment.
type CertificateAt struct {
	Certificate Certificate
	Valid       bool        // within its validity and not revoked at the moment
	Revocation  *Revocation // its revocation if it had been revoked by then, else nil
}

// DeviceAsOf answers "which key and certificate did this device have at time at?" from the
// key state history and the certificates' validity and revocation times.
func (r *Registry) DeviceAsOf(ctx context.Context, serial string, at time.Time) (DeviceAt, error) {
	at = at.Truncate(time.Second).UTC()
	out := DeviceAt{At: at}
	t := unix(at)
	err := r.read(ctx, func(tx *sql.Tx) error {
		var devNum int64
		var err error
		out.Device, err = scanDevice(tx.QueryRowContext(ctx, `SELECT `+deviceColumns+`WHERE d.serial = ?`, serial))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: no device has that serial", ErrNotFound)
		}
		if err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT num FROM devices WHERE serial = ?`, serial).Scan(&devNum); err != nil {
			return err
		}
		switch d := out.Device; {
		case !d.DecommissionedAt.IsZero() && !d.DecommissionedAt.After(at):
			out.Status = DeviceDecommissioned
		case !d.RegisteredAt.After(at):
			out.Status = DeviceActive
		}

		// Each key's newest state change at or before t; keys with none did not exist yet.
		rows, err := tx.QueryContext(ctx, `SELECT `+keySelect+`, s.state, s.at FROM device_keys k
			JOIN key_states s ON s.key_num = k.num AND s.state = (SELECT s2.state FROM key_states s2 WHERE s2.key_num = k.num
				AND s2.at <= ? ORDER BY s2.at DESC, `+strings.ReplaceAll(stateOrder, "s.state", "s2.state")+` DESC LIMIT 1) `+keyJoins+`
			WHERE k.device_num = ? ORDER BY k.num`, t, devNum)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var state string
			var since int64
			k, err := scanKey(rows, &state, &since)
			if err != nil {
				return err
			}
			out.Keys = append(out.Keys, KeyAt{Key: k, State: KeyState(state), Since: fromUnix(since)})
		}
		if err := rows.Err(); err != nil {
			return err
		}

		crows, err := tx.QueryContext(ctx, `SELECT v.revoked_at, v.reason, v.invalidity_at, `+certColumns+`
			LEFT JOIN revocations v ON v.issuer_num = c.issuer_num AND v.serial_len = length(c.serial) AND v.serial = c.serial AND v.revoked_at <= ?
			WHERE c.device_num = ? AND c.not_before <= ? ORDER BY c.not_before, c.num`, t, devNum, t)
		if err != nil {
			return err
		}
		defer crows.Close()
		for crows.Next() {
			var revokedAt sql.NullInt64
			var reason sql.NullInt64
			var inv time.Time
			c, err := scanCertificate(crows, &revokedAt, &reason, nullTime{&inv})
			if err != nil {
				return err
			}
			ca := CertificateAt{Certificate: c, Valid: !c.NotAfter.Before(at) && !revokedAt.Valid}
			if revokedAt.Valid {
				ca.Revocation = &Revocation{IssuerID: c.IssuerID, Serial: c.Serial, RevokedAt: fromUnix(revokedAt.Int64),
					Reason: pki.Reason(reason.Int64), InvalidityDate: inv}
			}
			out.Certificates = append(out.Certificates, ca)
		}
		return crows.Err()
	})
	if err != nil {
		return DeviceAt{}, fmt.Errorf("read device %q as of %s: %w", serial, at.Format(time.RFC3339), err)
	}
	return out, nil
}
