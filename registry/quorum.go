package registry

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Quorum is the public side of a root ceremony's M-of-N quorum: what the ceremony needs to
// check shares and a reconstruction, and nothing that would help anyone forge or use one.
// The quorum secret, the shares, the PINs and the KEK are never part of it and never stored.
type Quorum struct {
	CeremonyID      string        // the ceremony id, also the root token's label
	ModulePath      string        // the PKCS#11 module the plan names
	OperationsToken string        // label of the operations token (issuing CA and record-signer keys)
	Plan            []byte        // the plan file as reviewed (YAML text)
	PlanSHA256      [32]byte      // of Plan (set by the registry)
	Threshold       int           // M: shares needed
	Shares          []QuorumShare // one per custodian, in the plan's custodian order
	Epoch           int           // 1 after the root ceremony, +1 for each reshare
	SecretDigest    []byte        // a digest of the quorum secret, to check a reconstruction before login
	BackupPath      string        // the wrapped root key blob, "" without backup
	BackupSHA256    []byte        // SHA-256 of the blob, nil without backup
	Status          LifeStatus    // active, or destroyed with the root key
	CreatedAt       time.Time
	UpdatedAt       time.Time // last reshare or status change
	DestroyedAt     time.Time
	// Statement is the newest quorum statement the root signed about this quorum, read in
	// the same snapshot. The registry keeps it and never checks it: a quorum operation
	// verifies it against the root certificate, then holds the rest of Quorum against it.
	Statement Statement
}

// Statement is a quorum statement as kept: its number, the canonical text the root signed
// (package quorum's Statement) and the signature.
type Statement struct {
	Seq       int // 1 for the root ceremony's, +1 for each later one
	Text      []byte
	Signature []byte
	RunID     string // the run that signed it
	CreatedAt time.Time
}

func (s Statement) check(want int) error {
	switch {
	case s.Seq != want:
		return fmt.Errorf("%w: quorum statement %d, but the next is %d", ErrConflict, s.Seq, want)
	case len(s.Text) == 0 || len(s.Signature) == 0:
		return fmt.Errorf("%w: a quorum statement needs its text and signature", ErrInvalid)
	case s.RunID == "":
		return fmt.Errorf("%w: a quorum statement names the run that signed it", ErrInvalid)
	}
	return nil
}

// QuorumShare is one custodian's share as the registry knows it: its number, its holder and
// the commitment one share is checked against at entry. Never the share itself.
type QuorumShare struct {
	Number      int    // the share's number as encoded in it, 1..255
	Custodian   string // who holds it
	Commitment  []byte // the ceremony's hash over ceremony id, number and share
	Destination string // where the share went: "token:LABEL", "age:RECIPIENT", "dir:PATH", ...
}

// Custodians are the holders' names in order.
func (q Quorum) Custodians() []string {
	names := make([]string, len(q.Shares))
	for i, s := range q.Shares {
		names[i] = s.Custodian
	}
	return names
}

// Commitment is the commitment of share number n, nil if there is no such share.
func (q Quorum) Commitment(n int) []byte {
	for _, s := range q.Shares {
		if s.Number == n {
			return s.Commitment
		}
	}
	return nil
}

// QuorumUpdate is what a reshare changes: new custodians, threshold, commitments and secret
// digest, the backup re-wrapped under the new KEK, and the tokens that hold the root: each is
// either given the new epoch's PINs (Rotated) or recorded lost (Lost).
type QuorumUpdate struct {
	Threshold    int
	Shares       []QuorumShare
	SecretDigest []byte
	BackupPath   string
	BackupSHA256 []byte
	Rotated      []string     // labels of the holders whose PINs moved to the new epoch
	Lost         []LostHolder // holders recorded lost, each with why
	RunID        string       // the reshare's run
	Statement    Statement    // the root's statement of the new epoch, stored in the same transaction
	At           time.Time    // zero: now
}

func checkQuorumShares(threshold int, shares []QuorumShare, digest []byte, backupPath string, backupSum []byte) error {
	if len(shares) > 255 {
		return fmt.Errorf("%w: %d custodians; at most 255", ErrInvalid, len(shares))
	}
	if threshold < 2 || threshold > len(shares) {
		return fmt.Errorf("%w: threshold %d with %d custodians; need 2 <= threshold <= custodians", ErrInvalid, threshold, len(shares))
	}
	numbers := map[int]bool{}
	names := map[string]bool{}
	for _, s := range shares {
		if s.Number < 1 || s.Number > 255 || numbers[s.Number] {
			return fmt.Errorf("%w: share number %d is out of 1..255 or repeated", ErrInvalid, s.Number)
		}
		if s.Custodian == "" || names[s.Custodian] {
			return fmt.Errorf("%w: custodian name %q is empty or repeated", ErrInvalid, s.Custodian)
		}
		if err := checkHash(fmt.Sprintf("commitment of share %d", s.Number), s.Commitment); err != nil {
			return err
		}
		numbers[s.Number], names[s.Custodian] = true, true
	}
	if err := checkHash("quorum secret digest", digest); err != nil {
		return err
	}
	if (backupPath == "") != (len(backupSum) == 0) {
		return fmt.Errorf("%w: a backup needs both its path and its SHA-256", ErrInvalid)
	}
	if backupPath != "" && len(backupSum) != sha256.Size {
		return fmt.Errorf("%w: backup SHA-256 must be 32 bytes, got %d", ErrInvalid, len(backupSum))
	}
	return nil
}

// AddQuorum records a root ceremony's quorum at epoch 1 with its first statement (Seq 1). A
// ceremony id seen before is ErrExists.
func (r *Registry) AddQuorum(ctx context.Context, q Quorum) (Quorum, error) {
	fail := func(err error) (Quorum, error) {
		return Quorum{}, fmt.Errorf("record quorum of ceremony %q: %w", q.CeremonyID, err)
	}
	if err := checkID("ceremony id", q.CeremonyID); err != nil {
		return fail(err)
	}
	if q.ModulePath == "" || q.OperationsToken == "" || len(q.Plan) == 0 {
		return fail(fmt.Errorf("%w: module path, operations token and plan are required", ErrInvalid))
	}
	if err := checkQuorumShares(q.Threshold, q.Shares, q.SecretDigest, q.BackupPath, q.BackupSHA256); err != nil {
		return fail(err)
	}
	if err := q.Statement.check(1); err != nil {
		return fail(err)
	}
	q.PlanSHA256 = sha256.Sum256(q.Plan)
	q.Epoch = 1
	q.Status = StatusActive
	q.CreatedAt = nowOr(q.CreatedAt)
	q.UpdatedAt = q.CreatedAt
	q.DestroyedAt = time.Time{}
	if !utf8.Valid(q.Plan) {
		return fail(fmt.Errorf("%w: the plan is not UTF-8 text", ErrInvalid))
	}
	if q.Statement.CreatedAt.IsZero() {
		q.Statement.CreatedAt = q.CreatedAt
	}
	fact := &QuorumAdded{Ceremony: q.CeremonyID, Module: q.ModulePath, OperationsToken: q.OperationsToken, Plan: string(q.Plan),
		Threshold: q.Threshold, Shares: sharesOf(q.Shares), SecretDigest: q.SecretDigest, BackupPath: q.BackupPath,
		BackupSHA256: q.BackupSHA256, CreatedAt: q.CreatedAt, Statement: statementOf(q.Statement)}
	err := r.write(ctx, fact, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO quorums (ceremony_id, module_path, ops_token, plan, plan_sha256,
			threshold, epoch, secret_digest, backup_path, backup_sha256, status, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, 'active', ?, ?)`,
			q.CeremonyID, q.ModulePath, q.OperationsToken, q.Plan, q.PlanSHA256[:], q.Threshold,
			q.SecretDigest, q.BackupPath, nilIfEmpty(q.BackupSHA256), unix(q.CreatedAt), unix(q.UpdatedAt))
		if isUnique(err) {
			return fmt.Errorf("%w: the ceremony already has a quorum", ErrExists)
		}
		if err != nil {
			return err
		}
		if q.BackupPath != "" {
			if err := addBackupBlob(ctx, tx, q.CeremonyID, BackupBlob{Epoch: 1, SHA256: [32]byte(q.BackupSHA256), Path: q.BackupPath}, q.CreatedAt); err != nil {
				return err
			}
		}
		if err := insertShares(ctx, tx, q.CeremonyID, q.Shares); err != nil {
			return err
		}
		return insertStatement(ctx, tx, q.CeremonyID, &q.Statement, q.CreatedAt)
	})
	if err != nil {
		return fail(err)
	}
	return q, nil
}

// insertStatement stores st as the next statement of the quorum of ceremonyID, setting its
// CreatedAt to at (now, when at is zero) when it has none.
func insertStatement(ctx context.Context, tx *sql.Tx, ceremonyID string, st *Statement, at time.Time) error {
	var newest int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM quorum_statements WHERE ceremony_id = ?`, ceremonyID).Scan(&newest); err != nil {
		return err
	}
	if err := st.check(newest + 1); err != nil {
		return err
	}
	if st.CreatedAt.IsZero() {
		st.CreatedAt = nowOr(at)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO quorum_statements (ceremony_id, seq, statement, signature, run_id, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, ceremonyID, st.Seq, st.Text, st.Signature, st.RunID, unix(st.CreatedAt))
	return err
}

func nilIfEmpty(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func insertShares(ctx context.Context, tx *sql.Tx, ceremonyID string, shares []QuorumShare) error {
	st, err := tx.PrepareContext(ctx, `INSERT INTO quorum_shares (ceremony_id, number, position, custodian, commitment, destination) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer st.Close()
	for i, s := range shares {
		if _, err := st.ExecContext(ctx, ceremonyID, s.Number, i+1, s.Custodian, s.Commitment, s.Destination); err != nil {
			return fmt.Errorf("share %d of %s: %w", s.Number, s.Custodian, err)
		}
	}
	return nil
}

// Quorum reads a ceremony's quorum, the quorum row and its shares from one snapshot.
func (r *Registry) Quorum(ctx context.Context, ceremonyID string) (Quorum, error) {
	var q Quorum
	err := r.read(ctx, func(tx *sql.Tx) error {
		var err error
		q, err = readQuorum(ctx, tx, ceremonyID)
		return err
	})
	if err != nil {
		return Quorum{}, fmt.Errorf("read quorum of ceremony %q: %w", ceremonyID, err)
	}
	return q, nil
}

func readQuorum(ctx context.Context, tx *sql.Tx, ceremonyID string) (Quorum, error) {
	var q Quorum
	var planSum []byte
	var status string
	var created, updated int64
	err := tx.QueryRowContext(ctx, `SELECT ceremony_id, module_path, ops_token, plan, plan_sha256, threshold, epoch,
		secret_digest, backup_path, backup_sha256, status, created_at, updated_at, destroyed_at
		FROM quorums WHERE ceremony_id = ?`, ceremonyID).Scan(&q.CeremonyID, &q.ModulePath, &q.OperationsToken,
		&q.Plan, &planSum, &q.Threshold, &q.Epoch, &q.SecretDigest, &q.BackupPath, &q.BackupSHA256, &status,
		&created, &updated, nullTime{&q.DestroyedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return Quorum{}, fmt.Errorf("%w: no quorum recorded for that ceremony", ErrNotFound)
	}
	if err != nil {
		return Quorum{}, err
	}
	copy(q.PlanSHA256[:], planSum)
	q.Status, q.CreatedAt, q.UpdatedAt = LifeStatus(status), fromUnix(created), fromUnix(updated)
	rows, err := tx.QueryContext(ctx, `SELECT number, custodian, commitment, destination FROM quorum_shares
		WHERE ceremony_id = ? ORDER BY position`, ceremonyID)
	if err != nil {
		return Quorum{}, err
	}
	defer rows.Close()
	for rows.Next() {
		var s QuorumShare
		if err := rows.Scan(&s.Number, &s.Custodian, &s.Commitment, &s.Destination); err != nil {
			return Quorum{}, err
		}
		q.Shares = append(q.Shares, s)
	}
	if err := rows.Err(); err != nil {
		return Quorum{}, err
	}
	st := &q.Statement
	var at int64
	err = tx.QueryRowContext(ctx, `SELECT seq, statement, signature, run_id, created_at FROM quorum_statements
		WHERE ceremony_id = ? ORDER BY seq DESC LIMIT 1`, ceremonyID).Scan(&st.Seq, &st.Text, &st.Signature, &st.RunID, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return q, nil // a quorum without a statement is refused by whoever verifies it
	}
	if err != nil {
		return Quorum{}, err
	}
	st.CreatedAt = fromUnix(at)
	return q, nil
}

// Reshare replaces the custodians, threshold, commitments, secret digest and backup of a
// ceremony's quorum and adds the root's statement of the new epoch, in one transaction, and
// moves it to the next epoch. fromEpoch is the epoch
// the caller's shares belonged to: if another reshare got there first, the result is
// ErrConflict and nothing changes. It returns the quorum as stored.
func (r *Registry) Reshare(ctx context.Context, ceremonyID string, fromEpoch int, u QuorumUpdate) (Quorum, error) {
	fail := func(err error) (Quorum, error) {
		return Quorum{}, fmt.Errorf("record reshare of ceremony %q from epoch %d: %w", ceremonyID, fromEpoch, err)
	}
	if err := checkQuorumShares(u.Threshold, u.Shares, u.SecretDigest, u.BackupPath, u.BackupSHA256); err != nil {
		return fail(err)
	}
	at := nowOr(u.At)
	var q Quorum
	if u.Statement.CreatedAt.IsZero() {
		u.Statement.CreatedAt = at
	}
	fact := &QuorumReshared{Ceremony: ceremonyID, FromEpoch: fromEpoch, Threshold: u.Threshold, Shares: sharesOf(u.Shares),
		SecretDigest: u.SecretDigest, BackupPath: u.BackupPath, BackupSHA256: u.BackupSHA256, At: at,
		Rotated: u.Rotated, Lost: lostOf(u.Lost), Run: u.RunID, Statement: statementOf(u.Statement)}
	err := r.write(ctx, fact, func(tx *sql.Tx) error {
		cur, err := readQuorum(ctx, tx, ceremonyID)
		if err != nil {
			return err
		}
		if cur.Status != StatusActive {
			return fmt.Errorf("%w: the quorum is %s", ErrConflict, cur.Status)
		}
		if cur.Epoch != fromEpoch {
			return fmt.Errorf("%w: the quorum is at epoch %d", ErrConflict, cur.Epoch)
		}
		if (u.BackupPath == "") != (cur.BackupPath == "") {
			return fmt.Errorf("%w: a reshare keeps the backup choice of the ceremony (backup %q)", ErrConflict, cur.BackupPath)
		}
		num, err := rootNum(ctx, tx, ceremonyID)
		if err != nil {
			return err
		}
		if err := moveHolders(ctx, tx, num, fromEpoch+1, u.Rotated, u.Lost, at, u.RunID); err != nil {
			return err
		}
		if u.BackupPath != "" {
			if err := addBackupBlob(ctx, tx, ceremonyID, BackupBlob{Epoch: fromEpoch + 1, SHA256: [32]byte(u.BackupSHA256),
				Path: u.BackupPath, RunID: u.RunID}, at); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE quorums SET threshold = ?, epoch = epoch + 1, secret_digest = ?,
			backup_path = ?, backup_sha256 = ?, updated_at = ? WHERE ceremony_id = ?`,
			u.Threshold, u.SecretDigest, u.BackupPath, nilIfEmpty(u.BackupSHA256), unix(at), ceremonyID)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM quorum_shares WHERE ceremony_id = ?`, ceremonyID); err != nil {
			return err
		}
		if err := insertShares(ctx, tx, ceremonyID, u.Shares); err != nil {
			return err
		}
		if err := insertStatement(ctx, tx, ceremonyID, &u.Statement, at); err != nil {
			return err
		}
		q, err = readQuorum(ctx, tx, ceremonyID)
		return err
	})
	if err != nil {
		return fail(err)
	}
	return q, nil
}

// SetQuorumModule makes path the PKCS#11 module of a ceremony's quorum and adds the root's
// statement naming it, in one transaction. It returns the quorum as stored.
func (r *Registry) SetQuorumModule(ctx context.Context, ceremonyID, path string, st Statement) (Quorum, error) {
	var q Quorum
	st.CreatedAt = nowOr(st.CreatedAt)
	fact := &QuorumModuleSet{Ceremony: ceremonyID, Module: path, Statement: statementOf(st)}
	err := r.write(ctx, fact, func(tx *sql.Tx) error {
		if path == "" {
			return fmt.Errorf("%w: no module path", ErrInvalid)
		}
		cur, err := readQuorum(ctx, tx, ceremonyID)
		if err != nil {
			return err
		}
		if cur.Status != StatusActive {
			return fmt.Errorf("%w: the quorum is %s", ErrConflict, cur.Status)
		}
		at := st.CreatedAt
		if _, err := tx.ExecContext(ctx, `UPDATE quorums SET module_path = ?, updated_at = ? WHERE ceremony_id = ?`, path, unix(at), ceremonyID); err != nil {
			return err
		}
		if err := insertStatement(ctx, tx, ceremonyID, &st, at); err != nil {
			return err
		}
		q, err = readQuorum(ctx, tx, ceremonyID)
		return err
	})
	if err != nil {
		return Quorum{}, fmt.Errorf("record the PKCS#11 module of ceremony %q: %w", ceremonyID, err)
	}
	return q, nil
}

// MoveRootKey records that the root of ceremonyID now lives at to (a restore), with the
// root's statement naming its new token, in one transaction.
func (r *Registry) MoveRootKey(ctx context.Context, ceremonyID string, to KeyLocation, st Statement) error {
	st.CreatedAt = nowOr(st.CreatedAt)
	err := r.write(ctx, &RootKeyMoved{Ceremony: ceremonyID, To: keyOf(to), Statement: statementOf(st)}, func(tx *sql.Tx) error {
		if err := moveIssuerKey(ctx, tx, ceremonyID, to); err != nil {
			return err
		}
		return insertStatement(ctx, tx, ceremonyID, &st, st.CreatedAt)
	})
	if err != nil {
		return fmt.Errorf("move the root key of %q to %s: %w", ceremonyID, to, err)
	}
	return nil
}

// DestroyRoot records the end of a root: its key destroyed on every token that held it, by the
// run runID. The quorum and the root issuer are marked destroyed in one transaction.
func (r *Registry) DestroyRoot(ctx context.Context, ceremonyID string, at time.Time, runID string) error {
	at = nowOr(at)
	err := r.write(ctx, &RootDestroyed{Ceremony: ceremonyID, At: at, Run: runID}, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE quorums SET status = 'destroyed', destroyed_at = ?, updated_at = ?
			WHERE ceremony_id = ? AND status = 'active'`, unix(at), unix(at), ceremonyID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if _, err := readQuorum(ctx, tx, ceremonyID); err != nil {
				return err
			}
			return fmt.Errorf("%w: the quorum is already destroyed", ErrConflict)
		}
		var rootID string
		err = tx.QueryRowContext(ctx, `SELECT id FROM issuers WHERE kind = 'root' AND ceremony_id = ?`, ceremonyID).Scan(&rootID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // the ceremony stopped before its root certificate was registered
		}
		if err != nil {
			return err
		}
		return destroyIssuer(ctx, tx, rootID, at, runID)
	})
	if err != nil {
		return fmt.Errorf("record destruction of root %q: %w", ceremonyID, err)
	}
	return nil
}
