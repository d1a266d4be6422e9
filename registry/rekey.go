package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// RunRekey is a device's re-key: a new key on its token, its certificate, the old one revoked
// and the old key destroyed. The runs table's kind column predates it and SQLite cannot widen
// that column's CHECK without rebuilding a table others refer to, so a rekey run is stored as
// kind decommission with operation rekey, and read back as RunRekey.
const RunRekey RunKind = "rekey"

// rekeyOperation is the operation a rekey run is stored under (see RunRekey).
const rekeyOperation = "rekey"

// storedKind is the kind column's value for a run of kind k.
func storedKind(k RunKind) string {
	if k == RunRekey {
		return string(RunDecommission)
	}
	return string(k)
}

// readKind is the kind of a run stored with kind and operation.
func readKind(kind, operation string) RunKind {
	if RunKind(kind) == RunDecommission && operation == rekeyOperation {
		return RunRekey
	}
	return RunKind(kind)
}

// DeviceRekey is a device's new key and the certificate that certifies it, made by the rekey
// run RunID.
type DeviceRekey struct {
	RunID        string
	DeviceSerial string
	// Certificate is issued by the device's issuing CA or a newer one under the same root;
	// the device moves to its issuer.
	Certificate Certificate
	Key         DeviceKey // KeyID, PublicKeySHA256, TokenLabel and GeneratedAt
}

// RekeyNote is the note a key replaced by the rekey run runID carries in its history.
func RekeyNote(runID string) string { return "superseded by rekey, run " + runID }

// RekeyDevice registers a device's new key and certificate in one transaction: the
// certificate under its issuer (the device moves to that issuer), the device's active keys
// deactivated as the new key comes into use (noted "superseded by rekey, run R"), and the new
// key, generated and active from the certificate's notBefore. Registering the same key again
// (a resumed run) changes nothing and reports already. The device must be active and the
// certificate's issuer an issuing CA under the same root as the device's.
func (r *Registry) RekeyDevice(ctx context.Context, rk DeviceRekey) (already bool, err error) {
	fact := &DeviceRekeyed{RunID: rk.RunID, Device: rk.DeviceSerial, Certificate: certOf(rk.Certificate), Key: deviceKeyOf(rk.Key)}
	err = r.write(ctx, fact, func(tx *sql.Tx) error {
		var runKind, op, st string
		err := tx.QueryRowContext(ctx, `SELECT kind, operation, status FROM runs WHERE id = ?`, rk.RunID).Scan(&runKind, &op, &st)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: run %q is not registered", ErrNotFound, rk.RunID)
		}
		if err != nil {
			return err
		}
		if readKind(runKind, op) != RunRekey || RunStatus(st) != RunRunning {
			return fmt.Errorf("%w: run %q is a %s %s run; a new key is registered by a running rekey run", ErrConflict, rk.RunID, st, readKind(runKind, op))
		}
		var devNum, oldIssuer int64
		var status string
		err = tx.QueryRowContext(ctx, `SELECT num, issuer_num, status FROM devices WHERE serial = ?`, rk.DeviceSerial).Scan(&devNum, &oldIssuer, &status)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: the device is not registered", ErrNotFound)
		}
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM device_keys WHERE device_num = ? AND public_key_sha256 = ?`,
			devNum, rk.Key.PublicKeySHA256[:]).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			already = true
			return nil
		}
		if DeviceStatus(status) != DeviceActive {
			return fmt.Errorf("%w: the device is %s", ErrConflict, status)
		}
		var issuerNum int64
		var kind string
		var parent, oldParent sql.NullInt64
		err = tx.QueryRowContext(ctx, `SELECT num, kind, parent_num FROM issuers WHERE id = ?`, rk.Certificate.IssuerID).Scan(&issuerNum, &kind, &parent)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: no issuer has id %q", ErrNotFound, rk.Certificate.IssuerID)
		}
		if err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT parent_num FROM issuers WHERE num = ?`, oldIssuer).Scan(&oldParent); err != nil {
			return err
		}
		if IssuerKind(kind) != IssuerIssuing || parent != oldParent {
			return fmt.Errorf("%w: issuer %q is not an issuing CA under the device's root", ErrInvalid, rk.Certificate.IssuerID)
		}
		sc := newStmtCache(tx)
		defer sc.close()
		certNum, err := insertCertificate(ctx, sc, issuerNum, devNum, rk.Certificate)
		if err != nil {
			return err
		}
		activated := rk.Certificate.NotBefore.Truncate(time.Second).UTC()
		if _, err := moveDeviceKeys(ctx, sc, devNum, KeyDeactivated, activated, rk.RunID, RekeyNote(rk.RunID)); err != nil {
			return err
		}
		if err := insertKey(ctx, sc, devNum, certNum, rk.Key, rk.Certificate.NotBefore); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE devices SET issuer_num = ? WHERE num = ?`, issuerNum, devNum)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("register the new key of device %q: %w", rk.DeviceSerial, err)
	}
	return already, nil
}
