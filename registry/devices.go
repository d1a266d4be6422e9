package registry

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"
)

// DeviceStatus is whether a device is in service.
type DeviceStatus string

const (
	DeviceActive         DeviceStatus = "active"
	DeviceDecommissioned DeviceStatus = "decommissioned"
)

// Device is a registered device.
type Device struct {
	Serial           string // the manufacturer's device serial number
	Model            string
	Owner            string // who the device belongs to (a customer, a hospital), may be empty
	Site             string // where it is installed, may be empty
	UDI              string // its Unique Device Identifier (the label's UDI string), "" when not known
	IssuerID         string // the issuing CA that certifies it
	Status           DeviceStatus
	RegisteredAt     time.Time
	DecommissionedAt time.Time // zero while active
}

// Certificate is a device certificate. Its fields are given by the caller (CertificateFromX509
// fills them from a parsed certificate) so that a bulk import does not parse a million
// certificates twice; SHA256 is computed by the registry.
type Certificate struct {
	IssuerID     string
	Serial       SerialNumber
	DeviceSerial string // set by the registry when reading
	Subject      string // the subject DN as text
	NotBefore    time.Time
	NotAfter     time.Time
	DER          []byte
	SHA256       [32]byte // of DER (set by the registry)
}

// CertificateFromX509 fills a Certificate from a parsed certificate issued by issuerID.
func CertificateFromX509(issuerID string, c *x509.Certificate) (Certificate, error) {
	serial, err := SerialFromBig(c.SerialNumber)
	if err != nil {
		return Certificate{}, err
	}
	return Certificate{IssuerID: issuerID, Serial: serial, Subject: c.Subject.String(),
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), DER: c.Raw}, nil
}

// PublicKeySHA256 is the fingerprint the registry keeps of a key: SHA-256 of its DER
// SubjectPublicKeyInfo (a certificate's RawSubjectPublicKeyInfo).
func PublicKeySHA256(c *x509.Certificate) [32]byte { return sha256.Sum256(c.RawSubjectPublicKeyInfo) }

// DeviceKey is a key of a device and its life cycle. The private key itself lives only on the
// device; the registry knows where and which it was.
type DeviceKey struct {
	KeyID           []byte       // CKA_ID on the device token; empty when registered from a certificate alone
	PublicKeySHA256 [32]byte     // see PublicKeySHA256
	TokenLabel      string       // the device token's label, may be empty
	CertIssuerID    string       // the certificate that certifies the key (set by the registry)
	CertSerial      SerialNumber //
	State           KeyState     // the current state (set by the registry)
	StateAt         time.Time    // since when (set by the registry)
	History         []KeyStateChange

	// For registration only: when the key was generated (its pre-activation), zero if not
	// known, and when it came into use, by default the certificate's notBefore.
	GeneratedAt time.Time
	ActivatedAt time.Time
}

// KeyStateChange is one entry of a key's history.
type KeyStateChange struct {
	State KeyState
	At    time.Time
	RunID string // the run that made the change, "" if none
	Note  string
}

// NewDevice is one device to register: the device, its certificate and the key it certifies.
type NewDevice struct {
	Device      Device      // Status, RegisteredAt and DecommissionedAt are set by the registry
	Certificate Certificate // IssuerID defaults to Device.IssuerID
	Key         DeviceKey
	// Revoked, if set, records the certificate as already revoked (a fleet imported from an
	// older system; benchmarks). Its IssuerID and Serial default to the certificate's.
	Revoked *Revocation
}

// RegisterDevice registers one device with its certificate and key, in one transaction: what
// `custos device provision` does after the key is made and the certificate stored.
func (r *Registry) RegisterDevice(ctx context.Context, d NewDevice) error {
	_, err := r.ImportDevices(ctx, func(yield func(NewDevice, error) bool) { yield(d, nil) })
	if err != nil {
		return fmt.Errorf("register device %q: %w", d.Device.Serial, err)
	}
	return nil
}

// ImportDevices registers a stream of devices in one transaction: all of them or, on the first
// error (from the stream or the registry), none. A device serial or certificate registered
// before is ErrExists, naming it. It is the bulk path, for `custos device import` and for
// building benchmark registries: a million devices with certificates, keys and revocations
// take about 47 s on the 2-core workstation (BenchmarkImportDevices1M).
// It returns how many devices it registered.
func (r *Registry) ImportDevices(ctx context.Context, devices iter.Seq2[NewDevice, error]) (int, error) {
	n := 0
	err := r.writeFacts(ctx, (&DevicesRegistered{}).FactKind(), func(tx *sql.Tx, journal func(Fact) error) error {
		// A large page cache for the duration: inserting random serials into the b-trees
		// otherwise re-reads pages for every row. It is set back before commit.
		if _, err := tx.ExecContext(ctx, `PRAGMA cache_size = -262144`); err != nil {
			return err
		}
		defer tx.ExecContext(context.WithoutCancel(ctx), `PRAGMA cache_size = -2000`)
		ins := &deviceInserts{sc: newStmtCache(tx), issuers: map[string]int64{}}
		defer ins.sc.close()
		// The devices are journaled in parts as they are registered, each part a fact of its
		// own: a journal line holds at most 16 MiB.
		part := &DevicesRegistered{}
		flush := func() error {
			if len(part.Devices) == 0 {
				return nil
			}
			err := journal(part)
			part = &DevicesRegistered{}
			return err
		}
		for d, err := range devices {
			if err != nil {
				return err
			}
			d.Device.RegisteredAt = nowOr(d.Device.RegisteredAt)
			if err := ins.add(ctx, d); err != nil {
				return fmt.Errorf("device %q: %w", d.Device.Serial, err)
			}
			part.Devices = append(part.Devices, registeredDevice(d))
			if len(part.Devices) == importChunk {
				if err := flush(); err != nil {
					return err
				}
			}
			n++
		}
		return flush()
	})
	if err != nil {
		return 0, fmt.Errorf("import devices: %w", err)
	}
	return n, nil
}

// importChunk is how many devices one journal entry of an import carries: about 1.5 MB.
const importChunk = 1000

// registeredDevice is d as its fact carries it.
func registeredDevice(d NewDevice) RegisteredDevice {
	rd := RegisteredDevice{Serial: d.Device.Serial, Model: d.Device.Model, Owner: d.Device.Owner, Site: d.Device.Site, UDI: d.Device.UDI,
		Issuer: d.Device.IssuerID, RegisteredAt: d.Device.RegisteredAt, Certificate: certOf(d.Certificate), Key: deviceKeyOf(d.Key)}
	if rv := d.Revoked; rv != nil {
		rd.Revoked = &Revoked{Issuer: rv.IssuerID, Serial: hexBytes(rv.Serial), RevokedAt: rv.RevokedAt, Reason: rv.Reason,
			InvalidityDate: rv.InvalidityDate}
	}
	return rd
}

// deviceInserts registers devices within one import transaction.
type deviceInserts struct {
	sc      *stmtCache
	issuers map[string]int64
}

// issuer resolves an issuer id to its number once per import.
func (ins *deviceInserts) issuer(ctx context.Context, id string) (int64, error) {
	if num, ok := ins.issuers[id]; ok {
		return num, nil
	}
	var num int64
	var kind, status string
	err := ins.sc.queryRow(ctx, `SELECT num, kind, status FROM issuers WHERE id = ?`, id).Scan(&num, &kind, &status)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("%w: issuer %q is not registered", ErrNotFound, id)
	}
	if err != nil {
		return 0, err
	}
	if IssuerKind(kind) != IssuerIssuing {
		return 0, fmt.Errorf("%w: issuer %q is a root; devices are certified by an issuing CA", ErrInvalid, id)
	}
	ins.issuers[id] = num
	return num, nil
}

func (ins *deviceInserts) add(ctx context.Context, d NewDevice) error {
	dev, cert, key := d.Device, d.Certificate, d.Key
	if dev.Serial == "" || strings.TrimSpace(dev.Serial) != dev.Serial || strings.ContainsAny(dev.Serial, "\x00\n\r\t") {
		return fmt.Errorf("%w: device serial %q is empty or has white space at its ends or inside", ErrInvalid, dev.Serial)
	}
	if cert.IssuerID == "" {
		cert.IssuerID = dev.IssuerID
	}
	if cert.IssuerID != dev.IssuerID {
		return fmt.Errorf("%w: certificate issuer %q is not the device's issuer %q", ErrInvalid, cert.IssuerID, dev.IssuerID)
	}
	num, err := ins.issuer(ctx, dev.IssuerID)
	if err != nil {
		return err
	}
	now := nowOr(dev.RegisteredAt)
	res, err := ins.sc.exec(ctx, `INSERT INTO devices (serial, model, owner, site, udi, issuer_num, status, registered_at)
		VALUES (?, ?, ?, ?, ?, ?, 'active', ?)`, dev.Serial, dev.Model, dev.Owner, dev.Site, dev.UDI, num, unix(now))
	if isUnique(err) {
		return fmt.Errorf("%w: a device with serial %q is registered", ErrExists, dev.Serial)
	}
	if err != nil {
		return err
	}
	devNum, _ := res.LastInsertId()
	certNum, err := insertCertificate(ctx, ins.sc, num, devNum, cert)
	if err != nil {
		return err
	}
	if err := insertKey(ctx, ins.sc, devNum, certNum, key, cert.NotBefore); err != nil {
		return err
	}
	if d.Revoked != nil {
		rv := *d.Revoked
		if rv.IssuerID == "" {
			rv.IssuerID = cert.IssuerID
		}
		if rv.Serial == nil {
			rv.Serial = cert.Serial
		}
		rv.RevokedAt = rv.RevokedAt.Truncate(time.Second).UTC()
		if rv.IssuerID != cert.IssuerID || string(rv.Serial) != string(cert.Serial) {
			return fmt.Errorf("%w: the revocation is of serial %s of %q, not of the device's certificate", ErrInvalid, rv.Serial, rv.IssuerID)
		}
		if err := rv.check(); err != nil {
			return err
		}
		if _, err := ins.sc.exec(ctx, `INSERT INTO revocations (issuer_num, serial_len, serial, revoked_at, reason, invalidity_at)
			VALUES (?, ?, ?, ?, ?, ?)`, num, len(rv.Serial), []byte(rv.Serial), unix(rv.RevokedAt), int(rv.Reason), unixOrNil(rv.InvalidityDate)); err != nil {
			return err
		}
	}
	return nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// insertCertificate stores a device certificate and returns its row number.
func insertCertificate(ctx context.Context, sc *stmtCache, issuerNum, devNum int64, cert Certificate) (int64, error) {
	if err := cert.Serial.canonical(); err != nil {
		return 0, err
	}
	if len(cert.DER) == 0 || cert.NotBefore.IsZero() || !cert.NotAfter.After(cert.NotBefore) {
		return 0, fmt.Errorf("%w: certificate %s needs its DER and a validity that ends after it starts", ErrInvalid, cert.Serial)
	}
	sum := sha256.Sum256(cert.DER)
	res, err := sc.exec(ctx, `INSERT INTO certificates (issuer_num, serial, device_num, subject, not_before, not_after, der, sha256)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, issuerNum, []byte(cert.Serial), devNum, cert.Subject, unix(cert.NotBefore), unix(cert.NotAfter), cert.DER, sum[:])
	if isUnique(err) {
		return 0, fmt.Errorf("%w: certificate serial %s of issuer %q is registered", ErrExists, cert.Serial, cert.IssuerID)
	}
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// insertKey stores a new device key, active from key.ActivatedAt (by default notBefore), and
// pre-activation from key.GeneratedAt when that is known; the triggers write its history.
func insertKey(ctx context.Context, sc *stmtCache, devNum, certNum int64, key DeviceKey, notBefore time.Time) error {
	if key.PublicKeySHA256 == ([32]byte{}) {
		return fmt.Errorf("%w: the device key needs its public key fingerprint", ErrInvalid)
	}
	activated := key.ActivatedAt
	if activated.IsZero() {
		activated = notBefore
	}
	activated = activated.Truncate(time.Second).UTC()
	state, at, note := KeyActive, activated, "certified"
	if !key.GeneratedAt.IsZero() {
		gen := key.GeneratedAt.Truncate(time.Second).UTC()
		if gen.After(activated) {
			return fmt.Errorf("%w: key generated at %s, after it came into use at %s", ErrInvalid, gen.Format(time.RFC3339), activated.Format(time.RFC3339))
		}
		state, at, note = KeyPreActivation, gen, "generated"
	}
	res, err := sc.exec(ctx, `INSERT INTO device_keys (device_num, key_id, public_key_sha256, token_label, certificate_num, state, state_at, state_note)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, devNum, nonNil(key.KeyID), key.PublicKeySHA256[:], key.TokenLabel, certNum, string(state), unix(at), note)
	if isUnique(err) {
		return fmt.Errorf("%w: the device already has the key %x", ErrExists, key.PublicKeySHA256[:8])
	}
	if err != nil || state == KeyActive {
		return err
	}
	keyNum, _ := res.LastInsertId()
	_, err = sc.exec(ctx, `UPDATE device_keys SET state = 'active', state_at = ?, state_note = 'certified' WHERE num = ?`, unix(activated), keyNum)
	return err
}

// AddDeviceCertificate adds a renewed certificate, and the key it certifies, to an active
// device. When the key is new, the device's other active keys are deactivated as it comes
// into use; when it is a key the device already has, the key now points to the new
// certificate.
func (r *Registry) AddDeviceCertificate(ctx context.Context, deviceSerial string, cert Certificate, key DeviceKey) error {
	fact := &DeviceCertificateAdded{Device: deviceSerial, Certificate: certOf(cert), Key: deviceKeyOf(key)}
	err := r.write(ctx, fact, func(tx *sql.Tx) error {
		var devNum, issuerNum int64
		var issuerID, status string
		err := tx.QueryRowContext(ctx, `SELECT d.num, d.issuer_num, i.id, d.status FROM devices d JOIN issuers i ON i.num = d.issuer_num
			WHERE d.serial = ?`, deviceSerial).Scan(&devNum, &issuerNum, &issuerID, &status)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: the device is not registered", ErrNotFound)
		}
		if err != nil {
			return err
		}
		if DeviceStatus(status) != DeviceActive {
			return fmt.Errorf("%w: the device is %s", ErrConflict, status)
		}
		if cert.IssuerID == "" {
			cert.IssuerID = issuerID
		}
		if cert.IssuerID != issuerID {
			return fmt.Errorf("%w: certificate issuer %q is not the device's issuer %q", ErrInvalid, cert.IssuerID, issuerID)
		}
		sc := newStmtCache(tx)
		defer sc.close()
		certNum, err := insertCertificate(ctx, sc, issuerNum, devNum, cert)
		if err != nil {
			return err
		}
		var keyNum int64
		var keyState string
		err = tx.QueryRowContext(ctx, `SELECT num, state FROM device_keys WHERE device_num = ? AND public_key_sha256 = ?`,
			devNum, key.PublicKeySHA256[:]).Scan(&keyNum, &keyState)
		switch {
		case err == nil: // renewal of the same key
			if KeyState(keyState) != KeyActive {
				return fmt.Errorf("%w: the key is %s; only an active key is renewed", ErrConflict, keyState)
			}
			_, err = tx.ExecContext(ctx, `UPDATE device_keys SET certificate_num = ? WHERE num = ?`, certNum, keyNum)
			return err
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		// A new key: the old active ones stop being used when it starts.
		activated := key.ActivatedAt
		if activated.IsZero() {
			activated = cert.NotBefore
		}
		if _, err := moveDeviceKeys(ctx, sc, devNum, KeyDeactivated, activated.Truncate(time.Second).UTC(), "", "superseded by a new key"); err != nil {
			return err
		}
		return insertKey(ctx, sc, devNum, certNum, key, cert.NotBefore)
	})
	if err != nil {
		return fmt.Errorf("add certificate %s to device %q: %w", cert.Serial, deviceSerial, err)
	}
	return nil
}

const deviceColumns = `d.serial, d.model, d.owner, d.site, d.udi, i.id, d.status, d.registered_at, d.decommissioned_at
	FROM devices d JOIN issuers i ON i.num = d.issuer_num `

func scanDevice(s rowScanner) (Device, error) {
	var d Device
	var status string
	var reg int64
	if err := s.Scan(&d.Serial, &d.Model, &d.Owner, &d.Site, &d.UDI, &d.IssuerID, &status, &reg, nullTime{&d.DecommissionedAt}); err != nil {
		return Device{}, err
	}
	d.Status, d.RegisteredAt = DeviceStatus(status), fromUnix(reg)
	return d, nil
}

// Device finds a device by its serial.
func (r *Registry) Device(ctx context.Context, serial string) (Device, error) {
	d, err := scanDevice(r.db.QueryRowContext(ctx, `SELECT `+deviceColumns+`WHERE d.serial = ?`, serial))
	if errors.Is(err, sql.ErrNoRows) {
		err = fmt.Errorf("%w: no device has that serial", ErrNotFound)
	}
	if err != nil {
		return Device{}, fmt.Errorf("find device %q: %w", serial, err)
	}
	return d, nil
}

// DeviceByCertificate finds the device a certificate belongs to by the certificate's SHA-256,
// as the identify step of a decommission does with the certificate read from a token.
func (r *Registry) DeviceByCertificate(ctx context.Context, certSHA256 [32]byte) (Device, Certificate, error) {
	var d Device
	var c Certificate
	err := r.read(ctx, func(tx *sql.Tx) error {
		var devNum int64
		row := tx.QueryRowContext(ctx, `SELECT c.device_num, `+certColumns+`WHERE c.sha256 = ?`, certSHA256[:])
		var err error
		c, err = scanCertificate(row, &devNum)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: no registered device has this certificate", ErrNotFound)
		}
		if err != nil {
			return err
		}
		d, err = scanDevice(tx.QueryRowContext(ctx, `SELECT `+deviceColumns+`WHERE d.num = ?`, devNum))
		return err
	})
	if err != nil {
		return Device{}, Certificate{}, fmt.Errorf("find the device of certificate SHA-256 %x: %w", certSHA256, err)
	}
	return d, c, nil
}

const certColumns = `i.id, c.serial, d.serial, c.subject, c.not_before, c.not_after, c.der, c.sha256
	FROM certificates c JOIN issuers i ON i.num = c.issuer_num JOIN devices d ON d.num = c.device_num `

func scanCertificate(s rowScanner, prefix ...any) (Certificate, error) {
	var c Certificate
	var nb, na int64
	var sum []byte
	dest := append(prefix, &c.IssuerID, (*[]byte)(&c.Serial), &c.DeviceSerial, &c.Subject, &nb, &na, &c.DER, &sum)
	if err := s.Scan(dest...); err != nil {
		return Certificate{}, err
	}
	c.NotBefore, c.NotAfter = fromUnix(nb), fromUnix(na)
	copy(c.SHA256[:], sum)
	return c, nil
}

// DeviceQuery selects devices for ListDevices.
type DeviceQuery struct {
	Status   DeviceStatus // "" for any
	IssuerID string       // "" for any
	After    string       // list serials after this one (the last of the previous page)
	Limit    int          // at most this many; 0 for all
}

// ListDevices streams devices in serial order. For pages, pass the last serial of one page as
// After of the next. It holds one connection while the loop runs, never the whole list.
func (r *Registry) ListDevices(ctx context.Context, q DeviceQuery) iter.Seq2[Device, error] {
	return func(yield func(Device, error) bool) {
		fail := func(err error) { yield(Device{}, fmt.Errorf("list devices: %w", err)) }
		if q.Status != "" && q.Status != DeviceActive && q.Status != DeviceDecommissioned {
			fail(fmt.Errorf("%w: status %q (want active or decommissioned)", ErrInvalid, q.Status))
			return
		}
		where := []string{"d.serial > ?"}
		args := []any{q.After}
		if q.Status != "" {
			// A literal, not a parameter: only then can SQLite use the partial index of
			// decommissioned devices. q.Status is one of the two constants.
			where = append(where, "d.status = '"+string(q.Status)+"'")
		}
		if q.IssuerID != "" {
			num, err := issuerNum(ctx, r.db, q.IssuerID)
			if err != nil {
				fail(err)
				return
			}
			where = append(where, "d.issuer_num = ?")
			args = append(args, num)
		}
		query := `SELECT ` + deviceColumns + `WHERE ` + strings.Join(where, " AND ") + ` ORDER BY d.serial`
		if q.Limit > 0 {
			query += ` LIMIT ?`
			args = append(args, q.Limit)
		}
		rows, err := r.db.QueryContext(ctx, query, args...)
		if err != nil {
			fail(err)
			return
		}
		defer rows.Close()
		for rows.Next() {
			d, err := scanDevice(rows)
			if err != nil {
				fail(err)
				return
			}
			if !yield(d, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			fail(err)
		}
	}
}

// CountDevices is how many devices have the status ("" for all).
func (r *Registry) CountDevices(ctx context.Context, status DeviceStatus) (int64, error) {
	var n int64
	var err error
	if status != "" && status != DeviceActive && status != DeviceDecommissioned {
		return 0, fmt.Errorf("count devices: %w: status %q (want active or decommissioned)", ErrInvalid, status)
	}
	if status == "" {
		err = r.db.QueryRowContext(ctx, `SELECT count(*) FROM devices`).Scan(&n)
	} else {
		err = r.db.QueryRowContext(ctx, `SELECT count(*) FROM devices WHERE status = '`+string(status)+`'`).Scan(&n)
	}
	if err != nil {
		return 0, fmt.Errorf("count %s devices: %w", status, err)
	}
	return n, nil
}

// DeviceLookup is one device of a lookup by serials: the device, if it is registered, the run
// that decommissioned it, if one did, and what the run asked about recorded for it.
type DeviceLookup struct {
	Device
	Registered       bool    // false: no device has the serial asked for (Device is zero)
	DecommissionedBy string  // the run whose result decommissioned it; "" while active or when no run did
	InRun            Outcome // the result the run asked about holds for it; "" when it has none
}

// LookupDevices finds many devices by their serials in one query, as a fleet of thousands
// checks its manifest, with what the run runID ("" for none) recorded for each: the answer has
// one entry per serial, in the order asked. It is meant for a page of a manifest at a time (a
// thousand serials), not for all of it at once.
func (r *Registry) LookupDevices(ctx context.Context, runID string, serials []string) ([]DeviceLookup, error) {
	out := make([]DeviceLookup, len(serials))
	if len(serials) == 0 {
		return out, nil
	}
	fail := func(err error) ([]DeviceLookup, error) {
		return nil, fmt.Errorf("look up %d devices: %w", len(serials), err)
	}
	list, err := json.Marshal(serials)
	if err != nil {
		return fail(err)
	}
	// json_each numbers the serials as asked; each is found through the serial index. The run
	// that retired a device is looked for only for a decommissioned one.
	rows, err := r.db.QueryContext(ctx, `SELECT j.key, d.serial, d.model, d.owner, d.site, d.udi, i.id, d.status, d.registered_at,
		d.decommissioned_at, CASE WHEN d.status = 'decommissioned' THEN (SELECT x.run_id FROM decommission_results x
			WHERE x.device_num = d.num AND x.outcome = 'decommissioned' ORDER BY x.at DESC LIMIT 1) END,
		(SELECT x.outcome FROM decommission_results x WHERE x.run_id = ?1 AND x.device_num = d.num)
		FROM json_each(?2) j JOIN devices d ON d.serial = j.value JOIN issuers i ON i.num = d.issuer_num`, runID, string(list))
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	for rows.Next() {
		var at int
		var d Device
		var status string
		var reg int64
		var by, outcome sql.NullString
		if err := rows.Scan(&at, &d.Serial, &d.Model, &d.Owner, &d.Site, &d.UDI, &d.IssuerID, &status, &reg,
			nullTime{&d.DecommissionedAt}, &by, &outcome); err != nil {
			return fail(err)
		}
		if at < 0 || at >= len(out) {
			return fail(fmt.Errorf("the database answered for serial %d", at))
		}
		d.Status, d.RegisteredAt = DeviceStatus(status), fromUnix(reg)
		out[at] = DeviceLookup{Device: d, Registered: true, DecommissionedBy: by.String, InRun: Outcome(outcome.String)}
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	return out, nil
}

// Done says whether the run asked about has finished with the device (decommissioned it, or
// found it already decommissioned), as RunDoneSerials does: a failure is not done.
func (l DeviceLookup) Done() bool { return l.InRun != "" && l.InRun != OutcomeFailed }
