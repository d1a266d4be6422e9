package registry

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/custos-pki/custos/pki"
)

// IssuerKind tells a root CA from an issuing CA.
type IssuerKind string

const (
	IssuerRoot    IssuerKind = "root"    // self-signed, key on the root token under quorum
	IssuerIssuing IssuerKind = "issuing" // signed by a root, key on the operations token; signs devices and CRLs
)

// Issuer is a CA a ceremony made: its certificate and where its key lives. No PIN or other
// secret is part of it.
type Issuer struct {
	ID            string       // short stable id, see NewIssuerID; `--issuer` takes it or the common name
	Kind          IssuerKind   // root or issuing
	CommonName    string       // the certificate's subject CN (set from Certificate)
	Certificate   []byte       // DER
	SHA256        [32]byte     // of Certificate (set by the registry)
	Serial        SerialNumber // the certificate's serial (set from Certificate)
	ParentID      string       // the root that signed an issuing CA; "" for a root
	CeremonyID    string       // the root ceremony it belongs to (for a root, its own)
	Key           KeyLocation  // where its private key lives
	Status        LifeStatus   // whether its key exists: active, or destroyed at the end of the CA's life
	Standing      Standing     // what it may still sign: active, revoked, retired, destroyed
	CreatedAt     time.Time
	DestroyedAt   time.Time // zero while active
	LastCRLNumber int64     // the last CRL number allocated, 0 before the first CRL
	// CRLBaseURL and CRLShards say how an issuing CA splits its device CRL (pki.CRLShards):
	// shard i is published at CRLBaseURL/ID/i.crl, and each device certificate names its own.
	// Set when the CA is made and never changed; "" and 0 for a CA without shards.
	CRLBaseURL string
	CRLShards  int
}

// Shards is how the CA splits its device CRL, as pki signs and names the shards; ok is false
// for a CA without shards.
func (iss Issuer) Shards() (s pki.CRLShards, ok bool) {
	if iss.CRLBaseURL == "" {
		return pki.CRLShards{}, false
	}
	return pki.CRLShards{BaseURL: iss.CRLBaseURL, IssuerID: iss.ID, Count: iss.CRLShards}, true
}

// NewIssuerID proposes the id of a CA. A root's id is its ceremony id, which is also the root
// token's label and what `--root` takes. An issuing CA's is "ica-" and the first five bytes of
// its subject key identifier in hex (the SHA-256 of its public key when it has none), e.g.
// "ica-3f2a9c01b4": stable, short enough to type, and distinct for every key.
func NewIssuerID(kind IssuerKind, ceremonyID string, cert *x509.Certificate) string {
	if kind == IssuerRoot {
		return ceremonyID
	}
	ski := cert.SubjectKeyId
	if len(ski) < 5 {
		h := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
		ski = h[:]
	}
	return "ica-" + hex.EncodeToString(ski[:5])
}

// AddIssuer registers a CA. CommonName, Serial and SHA256 are taken from the certificate,
// which must be a CA certificate; a root's must be self-signed, and an issuing CA's must be
// signed by its registered parent. An id or certificate registered before is refused with
// ErrExists. It returns the issuer as stored.
func (r *Registry) AddIssuer(ctx context.Context, iss Issuer) (Issuer, error) {
	fail := func(err error) (Issuer, error) {
		return Issuer{}, fmt.Errorf("register issuer %q: %w", iss.ID, err)
	}
	if err := checkID("issuer id", iss.ID); err != nil {
		return fail(err)
	}
	if err := checkID("ceremony id", iss.CeremonyID); err != nil {
		return fail(err)
	}
	if err := checkKey(iss.Key); err != nil {
		return fail(err)
	}
	if err := iss.checkShards(); err != nil {
		return fail(err)
	}
	cert, err := x509.ParseCertificate(iss.Certificate)
	if err != nil {
		return fail(fmt.Errorf("%w: certificate: %v", ErrInvalid, err))
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return fail(fmt.Errorf("%w: the certificate of %q is not a CA certificate", ErrInvalid, cert.Subject.CommonName))
	}
	serial, err := SerialFromBig(cert.SerialNumber)
	if err != nil {
		return fail(err)
	}
	iss.CommonName = cert.Subject.CommonName
	iss.Serial = serial
	iss.SHA256 = sha256.Sum256(iss.Certificate)
	iss.Status = StatusActive
	iss.Standing = Standing{State: StateActive}
	iss.CreatedAt = nowOr(iss.CreatedAt)
	iss.DestroyedAt = time.Time{}
	iss.LastCRLNumber = 0

	fact := &IssuerAdded{ID: iss.ID, Kind: iss.Kind, Certificate: iss.Certificate, Parent: iss.ParentID,
		Ceremony: iss.CeremonyID, Key: keyOf(iss.Key), CreatedAt: iss.CreatedAt, CRLBaseURL: iss.CRLBaseURL, CRLShards: iss.CRLShards}
	err = r.write(ctx, fact, func(tx *sql.Tx) error {
		var parentNum any
		switch iss.Kind {
		case IssuerRoot:
			if iss.ParentID != "" {
				return fmt.Errorf("%w: a root has no parent, got %q", ErrInvalid, iss.ParentID)
			}
			if err := cert.CheckSignatureFrom(cert); err != nil {
				return fmt.Errorf("%w: root certificate is not self-signed: %v", ErrInvalid, err)
			}
		case IssuerIssuing:
			var num int64
			var der []byte
			var kind string
			err := tx.QueryRowContext(ctx, `SELECT num, cert_der, kind FROM issuers WHERE id = ?`, iss.ParentID).Scan(&num, &der, &kind)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: parent issuer %q is not registered", ErrNotFound, iss.ParentID)
			}
			if err != nil {
				return err
			}
			if IssuerKind(kind) != IssuerRoot {
				return fmt.Errorf("%w: parent %q is an issuing CA; an issuing CA's parent is a root", ErrInvalid, iss.ParentID)
			}
			parent, err := x509.ParseCertificate(der)
			if err != nil {
				return fmt.Errorf("parent %q certificate: %w", iss.ParentID, err)
			}
			if err := cert.CheckSignatureFrom(parent); err != nil {
				return fmt.Errorf("%w: the certificate was not signed by parent %q: %v", ErrInvalid, iss.ParentID, err)
			}
			parentNum = num
		default:
			return fmt.Errorf("%w: issuer kind %q (want root or issuing)", ErrInvalid, iss.Kind)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO issuers (id, kind, common_name, serial, cert_der, cert_sha256,
			parent_num, ceremony_id, token_label, key_id, key_algorithm, status, created_at, crl_base_url, crl_shards)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?)`,
			iss.ID, string(iss.Kind), iss.CommonName, []byte(iss.Serial), iss.Certificate, iss.SHA256[:],
			parentNum, iss.CeremonyID, iss.Key.TokenLabel, iss.Key.KeyID, iss.Key.Algorithm, unix(iss.CreatedAt),
			iss.CRLBaseURL, iss.CRLShards)
		if isUnique(err) {
			return fmt.Errorf("%w: an issuer with id %q or this certificate (SHA-256 %x) exists", ErrExists, iss.ID, iss.SHA256)
		}
		return err
	})
	if err != nil {
		return fail(err)
	}
	return iss, nil
}

// checkShards refuses CRL shards on a root, and a base URL or count that pki would not sign.
func (iss Issuer) checkShards() error {
	if iss.CRLBaseURL == "" && iss.CRLShards == 0 {
		return nil
	}
	if iss.Kind != IssuerIssuing {
		return fmt.Errorf("%w: only an issuing CA splits its CRL into shards", ErrInvalid)
	}
	s, _ := iss.Shards()
	if err := s.Check(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

func checkKey(k KeyLocation) error {
	if k.TokenLabel == "" || len(k.KeyID) == 0 || k.Algorithm == "" {
		return fmt.Errorf("%w: key location needs a token label, a CKA_ID and an algorithm, got %s", ErrInvalid, k)
	}
	return nil
}

const issuerColumns = `i.id, i.kind, i.common_name, i.serial, i.cert_der, i.cert_sha256,
	coalesce(p.id, ''), i.ceremony_id, i.token_label, i.key_id, i.key_algorithm, i.status,
	i.created_at, i.destroyed_at, i.last_crl_number, i.crl_base_url, i.crl_shards, i.state, i.state_at, i.state_reason, i.state_run_id`

const issuerFrom = ` FROM issuers i LEFT JOIN issuers p ON p.num = i.parent_num `

type rowScanner interface{ Scan(dest ...any) error }

func scanIssuer(s rowScanner) (Issuer, error) {
	var iss Issuer
	var kind, status string
	var sum []byte
	var created int64
	st := scanStanding{st: &iss.Standing}
	err := s.Scan(append([]any{&iss.ID, &kind, &iss.CommonName, (*[]byte)(&iss.Serial), &iss.Certificate, &sum,
		&iss.ParentID, &iss.CeremonyID, &iss.Key.TokenLabel, &iss.Key.KeyID, &iss.Key.Algorithm, &status,
		&created, nullTime{&iss.DestroyedAt}, &iss.LastCRLNumber, &iss.CRLBaseURL, &iss.CRLShards}, st.dest()...)...)
	if err != nil {
		return Issuer{}, err
	}
	st.fill()
	iss.Kind, iss.Status, iss.CreatedAt = IssuerKind(kind), LifeStatus(status), fromUnix(created)
	copy(iss.SHA256[:], sum)
	return iss, nil
}

// Issuer finds a CA by its id or, failing that, by its common name (ASCII case ignored). When
// the name fits several CAs and exactly one of them is active, that one is meant; otherwise
// the answer is ErrAmbiguous, listing the ids to choose from.
func (r *Registry) Issuer(ctx context.Context, ref string) (Issuer, error) {
	var found Issuer
	err := r.read(ctx, func(tx *sql.Tx) error {
		var err error
		found, err = issuerByRef(ctx, tx, ref)
		return err
	})
	if err != nil {
		return Issuer{}, fmt.Errorf("find issuer %q: %w", ref, err)
	}
	return found, nil
}

func issuerByRef(ctx context.Context, tx *sql.Tx, ref string) (Issuer, error) {
	iss, err := scanIssuer(tx.QueryRowContext(ctx, `SELECT `+issuerColumns+issuerFrom+`WHERE i.id = ?`, ref))
	if err == nil {
		return iss, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return Issuer{}, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+issuerColumns+issuerFrom+`WHERE i.common_name = ? COLLATE NOCASE ORDER BY i.num`, ref)
	if err != nil {
		return Issuer{}, err
	}
	defer rows.Close()
	var all, active []Issuer
	for rows.Next() {
		iss, err := scanIssuer(rows)
		if err != nil {
			return Issuer{}, err
		}
		all = append(all, iss)
		if iss.Standing.State == StateActive {
			active = append(active, iss)
		}
	}
	if err := rows.Err(); err != nil {
		return Issuer{}, err
	}
	switch {
	case len(active) == 1:
		return active[0], nil
	case len(all) == 1:
		return all[0], nil
	case len(all) == 0:
		return Issuer{}, fmt.Errorf("%w: no issuer has that id or common name", ErrNotFound)
	}
	ids := make([]string, len(all))
	for i, iss := range all {
		ids[i] = fmt.Sprintf("%s (%s)", iss.ID, iss.Standing.State)
	}
	return Issuer{}, fmt.Errorf("%w: %d issuers have that common name: %s; give the id instead", ErrAmbiguous, len(all), strings.Join(ids, ", "))
}

// issuerNum is the compact number of the issuer with this id (ids only, not names: the
// workflows resolve a name with Issuer once and then use the id).
func issuerNum(ctx context.Context, q querier, id string) (int64, error) {
	var num int64
	err := q.QueryRowContext(ctx, `SELECT num FROM issuers WHERE id = ?`, id).Scan(&num)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("%w: no issuer has id %q", ErrNotFound, id)
	}
	return num, err
}

// Issuers lists every CA, roots first, in the order they were registered.
func (r *Registry) Issuers(ctx context.Context) ([]Issuer, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT `+issuerColumns+issuerFrom+`ORDER BY i.kind = 'issuing', i.num`)
	if err != nil {
		return nil, fmt.Errorf("list issuers: %w", err)
	}
	defer rows.Close()
	var out []Issuer
	for rows.Next() {
		iss, err := scanIssuer(rows)
		if err != nil {
			return nil, fmt.Errorf("list issuers: %w", err)
		}
		out = append(out, iss)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list issuers: %w", err)
	}
	return out, nil
}

// DestroyIssuer records that a CA's key was destroyed (the end of its life): its state is
// destroyed. Its certificate, CRLs and revocations stay. Destroying it twice is ErrConflict.
func (r *Registry) DestroyIssuer(ctx context.Context, id string, at time.Time) error {
	at = nowOr(at)
	err := r.write(ctx, &IssuerDestroyed{ID: id, At: at}, func(tx *sql.Tx) error {
		return destroyIssuer(ctx, tx, id, at, "")
	})
	if err != nil {
		return fmt.Errorf("record destruction of issuer %q: %w", id, err)
	}
	return nil
}

func destroyIssuer(ctx context.Context, tx *sql.Tx, id string, at time.Time, runID string) error {
	var status string
	err := tx.QueryRowContext(ctx, `SELECT status FROM issuers WHERE id = ?`, id).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: no issuer has id %q", ErrNotFound, id)
	}
	if err != nil {
		return err
	}
	if LifeStatus(status) == StatusDestroyed {
		return fmt.Errorf("%w: its key is already recorded as destroyed", ErrConflict)
	}
	_, err = tx.ExecContext(ctx, `UPDATE issuers SET status = 'destroyed', destroyed_at = ?1,
		state = 'destroyed', state_at = ?1, state_reason = NULL, state_run_id = ?2 WHERE id = ?3`, unix(at), nullString(runID), id)
	return err
}

// Role is what a non-CA certificate Custos keeps is for.
type Role string

// RoleRecordSigner signs the PDF records (extended key usage id-kp-documentSigning).
const RoleRecordSigner Role = "record-signer"

// RoleCert is a certificate with a role, such as the record signer's, and where its key lives.
// No PIN or other secret is part of it.
type RoleCert struct {
	Role        Role
	IssuerID    string       // the CA that signed it
	CeremonyID  string       // the root ceremony that made it
	CommonName  string       // set from Certificate
	Serial      SerialNumber // set from Certificate
	Certificate []byte       // DER
	SHA256      [32]byte     // of Certificate (set by the registry)
	Key         KeyLocation
	Status      LifeStatus // whether its key exists
	Standing    Standing   // what it may still sign: active, revoked, retired, destroyed
	CreatedAt   time.Time
	DestroyedAt time.Time
}

// AddRoleCert registers a role certificate. It must be signed by its registered issuer.
func (r *Registry) AddRoleCert(ctx context.Context, rc RoleCert) (RoleCert, error) {
	fail := func(err error) (RoleCert, error) {
		return RoleCert{}, fmt.Errorf("register %s certificate of ceremony %q: %w", rc.Role, rc.CeremonyID, err)
	}
	if rc.Role != RoleRecordSigner {
		return fail(fmt.Errorf("%w: role %q (want %s)", ErrInvalid, rc.Role, RoleRecordSigner))
	}
	if err := checkID("ceremony id", rc.CeremonyID); err != nil {
		return fail(err)
	}
	if err := checkKey(rc.Key); err != nil {
		return fail(err)
	}
	cert, err := x509.ParseCertificate(rc.Certificate)
	if err != nil {
		return fail(fmt.Errorf("%w: certificate: %v", ErrInvalid, err))
	}
	if rc.Serial, err = SerialFromBig(cert.SerialNumber); err != nil {
		return fail(err)
	}
	rc.CommonName = cert.Subject.CommonName
	rc.SHA256 = sha256.Sum256(rc.Certificate)
	rc.Status = StatusActive
	rc.Standing = Standing{State: StateActive}
	rc.CreatedAt = nowOr(rc.CreatedAt)
	rc.DestroyedAt = time.Time{}
	fact := &RoleCertAdded{Role: rc.Role, Issuer: rc.IssuerID, Ceremony: rc.CeremonyID, Certificate: rc.Certificate,
		Key: keyOf(rc.Key), CreatedAt: rc.CreatedAt}
	err = r.write(ctx, fact, func(tx *sql.Tx) error {
		var num int64
		var der []byte
		err := tx.QueryRowContext(ctx, `SELECT num, cert_der FROM issuers WHERE id = ?`, rc.IssuerID).Scan(&num, &der)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: issuer %q is not registered", ErrNotFound, rc.IssuerID)
		}
		if err != nil {
			return err
		}
		parent, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("issuer %q certificate: %w", rc.IssuerID, err)
		}
		if err := cert.CheckSignatureFrom(parent); err != nil {
			return fmt.Errorf("%w: the certificate was not signed by issuer %q: %v", ErrInvalid, rc.IssuerID, err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO role_certs (role, issuer_num, ceremony_id, common_name, serial,
			cert_der, cert_sha256, token_label, key_id, key_algorithm, status, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?)`,
			string(rc.Role), num, rc.CeremonyID, rc.CommonName, []byte(rc.Serial), rc.Certificate, rc.SHA256[:],
			rc.Key.TokenLabel, rc.Key.KeyID, rc.Key.Algorithm, unix(rc.CreatedAt))
		if isUnique(err) {
			return fmt.Errorf("%w: certificate serial %s of issuer %q (SHA-256 %x)", ErrExists, rc.Serial, rc.IssuerID, rc.SHA256)
		}
		return err
	})
	if err != nil {
		return fail(err)
	}
	return rc, nil
}

const roleCertColumns = `c.role, i.id, c.ceremony_id, c.common_name, c.serial, c.cert_der, c.cert_sha256,
	c.token_label, c.key_id, c.key_algorithm, c.status, c.created_at, c.destroyed_at,
	c.state, c.state_at, c.state_reason, c.state_run_id
	FROM role_certs c JOIN issuers i ON i.num = c.issuer_num `

func scanRoleCert(s rowScanner) (RoleCert, error) {
	var rc RoleCert
	var role, status string
	var sum []byte
	var created int64
	st := scanStanding{st: &rc.Standing}
	err := s.Scan(append([]any{&role, &rc.IssuerID, &rc.CeremonyID, &rc.CommonName, (*[]byte)(&rc.Serial), &rc.Certificate, &sum,
		&rc.Key.TokenLabel, &rc.Key.KeyID, &rc.Key.Algorithm, &status, &created, nullTime{&rc.DestroyedAt}}, st.dest()...)...)
	if err != nil {
		return RoleCert{}, err
	}
	st.fill()
	rc.Role, rc.Status, rc.CreatedAt = Role(role), LifeStatus(status), fromUnix(created)
	copy(rc.SHA256[:], sum)
	return rc, nil
}

// ActiveRoleCert is the newest certificate with that role made by the ceremony whose state is
// active, e.g. the record signer a decommission under that root signs its record with.
func (r *Registry) ActiveRoleCert(ctx context.Context, role Role, ceremonyID string) (RoleCert, error) {
	rc, err := scanRoleCert(r.db.QueryRowContext(ctx, `SELECT `+roleCertColumns+`
		WHERE c.role = ? AND c.ceremony_id = ? AND c.state = 'active' ORDER BY c.created_at DESC, c.num DESC LIMIT 1`,
		string(role), ceremonyID))
	if errors.Is(err, sql.ErrNoRows) {
		err = fmt.Errorf("%w: no active %s certificate", ErrNotFound, role)
	}
	if err != nil {
		return RoleCert{}, fmt.Errorf("find %s of ceremony %q: %w", role, ceremonyID, err)
	}
	return rc, nil
}

// NewestRoleCert is the newest certificate with that role made by the ceremony, whatever its
// state: the one that signs, or the one whose state says why none does.
func (r *Registry) NewestRoleCert(ctx context.Context, role Role, ceremonyID string) (RoleCert, error) {
	rc, err := scanRoleCert(r.db.QueryRowContext(ctx, `SELECT `+roleCertColumns+`
		WHERE c.role = ? AND c.ceremony_id = ? ORDER BY c.created_at DESC, c.num DESC LIMIT 1`,
		string(role), ceremonyID))
	if errors.Is(err, sql.ErrNoRows) {
		err = fmt.Errorf("%w: no %s certificate", ErrNotFound, role)
	}
	if err != nil {
		return RoleCert{}, fmt.Errorf("find %s of ceremony %q: %w", role, ceremonyID, err)
	}
	return rc, nil
}

// RoleCerts lists every role certificate, oldest first.
func (r *Registry) RoleCerts(ctx context.Context) ([]RoleCert, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT `+roleCertColumns+`ORDER BY c.num`)
	if err != nil {
		return nil, fmt.Errorf("list role certificates: %w", err)
	}
	defer rows.Close()
	var out []RoleCert
	for rows.Next() {
		rc, err := scanRoleCert(rows)
		if err != nil {
			return nil, fmt.Errorf("list role certificates: %w", err)
		}
		out = append(out, rc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list role certificates: %w", err)
	}
	return out, nil
}

// DestroyRoleCert records that the key of a role certificate was destroyed. Its state becomes
// destroyed, unless it is revoked, which it stays.
func (r *Registry) DestroyRoleCert(ctx context.Context, issuerID string, serial SerialNumber, at time.Time) error {
	at = nowOr(at)
	err := r.write(ctx, &RoleCertDestroyed{Issuer: issuerID, Serial: hexBytes(serial), At: at}, func(tx *sql.Tx) error {
		num, err := issuerNum(ctx, tx, issuerID)
		if err != nil {
			return err
		}
		// A revoked certificate stays revoked (its key gone too); any other is destroyed.
		res, err := tx.ExecContext(ctx, `UPDATE role_certs SET status = 'destroyed', destroyed_at = ?1,
			state_at = CASE state WHEN 'revoked' THEN state_at ELSE ?1 END,
			state = CASE state WHEN 'revoked' THEN 'revoked' ELSE 'destroyed' END
			WHERE issuer_num = ?2 AND serial = ?3 AND status = 'active'`, unix(at), num, []byte(serial))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: no active role certificate with that serial", ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record destruction of role certificate %s of issuer %q: %w", serial, issuerID, err)
	}
	return nil
}

// MoveIssuerKey records that a CA's key now lives elsewhere, as after `custos ceremony
// restore` into a replacement HSM. The certificate does not change; the journal keeps where the
// key was before.
func (r *Registry) MoveIssuerKey(ctx context.Context, id string, to KeyLocation) error {
	err := r.write(ctx, &IssuerKeyMoved{ID: id, To: keyOf(to)}, func(tx *sql.Tx) error {
		return moveIssuerKey(ctx, tx, id, to)
	})
	if err != nil {
		return fmt.Errorf("move the key of issuer %q to %s: %w", id, to, err)
	}
	return nil
}

func moveIssuerKey(ctx context.Context, tx *sql.Tx, id string, to KeyLocation) error {
	if err := checkKey(to); err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `UPDATE issuers SET token_label = ?, key_id = ?, key_algorithm = ? WHERE id = ? AND status = 'active'`,
		to.TokenLabel, to.KeyID, to.Algorithm, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := issuerNum(ctx, tx, id); err != nil {
			return err
		}
		return fmt.Errorf("%w: the issuer's key is destroyed", ErrConflict)
	}
	return nil
}
