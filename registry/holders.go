package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// HolderState is whether a token still holds a root's key.
type HolderState string

const (
	HolderHolding   HolderState = "holding"   // holds the key, with the PINs of PINEpoch
	HolderLost      HolderState = "lost"      // recorded lost by a reshare that went on without it
	HolderDestroyed HolderState = "destroyed" // the key was destroyed on it
)

// Holder origins: the root ceremony's token, or a token a restore made.
const (
	OriginCeremony = "ceremony"
	OriginRestore  = "restore"
)

// RootHolder is a token that holds, or held, a root's key: the ceremony's token and each one
// a restore made. Every holder in HolderHolding has the PINs of the quorum's epoch, so a
// reshare moves them all, and a destroy destroys the key on all.
type RootHolder struct {
	Token     string // the token's label
	Serial    string // the token's serial as it gave it, "" when not known
	Model     string // its manufacturer and model, "" when not known
	KeyID     []byte // CKA_ID of the root key on it
	Origin    string // OriginCeremony or OriginRestore
	OriginRun string // the run that put the key there, "" when not known
	PINEpoch  int    // the quorum epoch whose secret its PINs derive from; 0: not known
	State     HolderState
	StateAt   time.Time
	StateRun  string // the run that set State, "" when not known
	Note      string // why it was recorded lost
}

// LostHolder is a holder a reshare records as lost, and why.
type LostHolder struct {
	Token string
	Note  string
}

// rootNum is the number of the root issuer id, refusing an issuing CA.
func rootNum(ctx context.Context, q querier, rootID string) (int64, error) {
	var num int64
	var kind string
	err := q.QueryRowContext(ctx, `SELECT num, kind FROM issuers WHERE id = ?`, rootID).Scan(&num, &kind)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("%w: no root has id %q", ErrNotFound, rootID)
	}
	if err != nil {
		return 0, err
	}
	if IssuerKind(kind) != IssuerRoot {
		return 0, fmt.Errorf("%w: %q is an issuing CA, not a root", ErrInvalid, rootID)
	}
	return num, nil
}

// AddRootHolder records that the token h.Token holds the root rootID's key (h.State is
// ignored: it holds it). A token already holding it is ErrExists.
func (r *Registry) AddRootHolder(ctx context.Context, rootID string, h RootHolder, at time.Time) error {
	at = nowOr(at)
	err := r.write(ctx, &RootHolderAdded{Root: rootID, Holder: holderOf(h), At: at}, func(tx *sql.Tx) error {
		return addRootHolder(ctx, tx, rootID, h, at)
	})
	if err != nil {
		return fmt.Errorf("record token %q as a holder of root %q: %w", h.Token, rootID, err)
	}
	return nil
}

func addRootHolder(ctx context.Context, tx *sql.Tx, rootID string, h RootHolder, at time.Time) error {
	if h.Token == "" || len(h.KeyID) == 0 || (h.Origin != OriginCeremony && h.Origin != OriginRestore) || h.PINEpoch < 1 {
		return fmt.Errorf("%w: a holder needs a token label, a key id, an origin and the epoch of its PINs", ErrInvalid)
	}
	num, err := rootNum(ctx, tx, rootID)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO root_holders (issuer_num, token_label, token_serial, token_model, key_id,
		origin, origin_run_id, pin_epoch, state, state_at, state_run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'holding', ?, ?)`,
		num, h.Token, h.Serial, h.Model, h.KeyID, h.Origin, nullString(h.OriginRun), h.PINEpoch, unix(nowOr(at)), nullString(h.OriginRun))
	if isUnique(err) {
		return fmt.Errorf("%w: the token already holds the root", ErrExists)
	}
	return err
}

// RestoreRoot records a restore: the token h.Token holds the root's key (a new holder), the
// registry's key location of the root moves to it, and the root's statement naming it is
// added, in one transaction.
func (r *Registry) RestoreRoot(ctx context.Context, rootID string, h RootHolder, at time.Time, st Statement) error {
	at = nowOr(at)
	if st.CreatedAt.IsZero() {
		st.CreatedAt = at
	}
	err := r.write(ctx, &RootRestored{Root: rootID, Holder: holderOf(h), At: at, Statement: statementOf(st)}, func(tx *sql.Tx) error {
		if err := addRootHolder(ctx, tx, rootID, h, at); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE issuers SET token_label = ?, key_id = ? WHERE id = ?`, h.Token, h.KeyID, rootID); err != nil {
			return err
		}
		return insertStatement(ctx, tx, rootID, &st, at)
	})
	if err != nil {
		return fmt.Errorf("record the restore of root %q into token %q: %w", rootID, h.Token, err)
	}
	return nil
}

// RootHolders lists every token that holds or held the root rootID, newest first.
func (r *Registry) RootHolders(ctx context.Context, rootID string) ([]RootHolder, error) {
	var out []RootHolder
	err := r.read(ctx, func(tx *sql.Tx) error {
		num, err := rootNum(ctx, tx, rootID)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT token_label, token_serial, token_model, key_id, origin,
			coalesce(origin_run_id, ''), pin_epoch, state, state_at, coalesce(state_run_id, ''), state_note
			FROM root_holders WHERE issuer_num = ? ORDER BY num DESC`, num)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var h RootHolder
			var state string
			var at int64
			if err := rows.Scan(&h.Token, &h.Serial, &h.Model, &h.KeyID, &h.Origin, &h.OriginRun, &h.PINEpoch,
				&state, &at, &h.StateRun, &h.Note); err != nil {
				return err
			}
			h.State, h.StateAt = HolderState(state), fromUnix(at)
			out = append(out, h)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list the holders of root %q: %w", rootID, err)
	}
	return out, nil
}

// DestroyRootHolder records that the root's key was destroyed on the holder token by runID.
func (r *Registry) DestroyRootHolder(ctx context.Context, rootID, token string, at time.Time, runID string) error {
	at = nowOr(at)
	err := r.write(ctx, &RootHolderDestroyed{Root: rootID, Token: token, At: at, Run: runID}, func(tx *sql.Tx) error {
		num, err := rootNum(ctx, tx, rootID)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE root_holders SET state = 'destroyed', state_at = ?, state_run_id = ?
			WHERE issuer_num = ? AND token_label = ? AND state = 'holding'`, unix(at), nullString(runID), num, token)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: the token does not hold the root", ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record the root %q destroyed on token %q: %w", rootID, token, err)
	}
	return nil
}

// moveHolders is a reshare's change to the holders of the root num: each rotated one has the
// new epoch's PINs, each lost one is recorded lost; a holder left out of both is ErrConflict,
// as is a name that is not a holder.
func moveHolders(ctx context.Context, tx *sql.Tx, num int64, epoch int, rotated []string, lost []LostHolder, at time.Time, runID string) error {
	rows, err := tx.QueryContext(ctx, `SELECT token_label FROM root_holders WHERE issuer_num = ? AND state = 'holding'`, num)
	if err != nil {
		return err
	}
	holding := map[string]bool{}
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		holding[t] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, t := range rotated {
		if !holding[t] {
			return fmt.Errorf("%w: token %q does not hold the root", ErrConflict, t)
		}
		delete(holding, t)
		if _, err := tx.ExecContext(ctx, `UPDATE root_holders SET pin_epoch = ? WHERE issuer_num = ? AND token_label = ? AND state = 'holding'`,
			epoch, num, t); err != nil {
			return err
		}
	}
	for _, l := range lost {
		if !holding[l.Token] {
			return fmt.Errorf("%w: token %q does not hold the root, or was named twice", ErrConflict, l.Token)
		}
		if l.Note == "" {
			return fmt.Errorf("%w: token %q is recorded lost without a reason", ErrInvalid, l.Token)
		}
		delete(holding, l.Token)
		if _, err := tx.ExecContext(ctx, `UPDATE root_holders SET state = 'lost', state_at = ?, state_run_id = ?, state_note = ?
			WHERE issuer_num = ? AND token_label = ? AND state = 'holding'`, unix(at), nullString(runID), l.Note, num, l.Token); err != nil {
			return err
		}
	}
	for t := range holding {
		return fmt.Errorf("%w: token %q holds the root and was neither given the new PINs nor recorded lost", ErrConflict, t)
	}
	return nil
}
