package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/custos-pki/custos/pki"
)

// State is what a CA or a role certificate may still sign. Status, beside it, says only
// whether its key exists.
type State string

const (
	StateActive    State = "active"    // signs what its kind signs
	StateRevoked   State = "revoked"   // signs nothing: its certificate is on its issuer's CRL
	StateRetired   State = "retired"   // an issuing CA signs only CRLs; a record signer nothing
	StateDestroyed State = "destroyed" // its key is gone
)

// stateMoves are the changes of state allowed: none goes back, destroyed is final.
var stateMoves = map[State][]State{
	StateActive:    {StateRevoked, StateRetired, StateDestroyed},
	StateRetired:   {StateRevoked, StateDestroyed},
	StateRevoked:   {StateDestroyed},
	StateDestroyed: nil,
}

// Valid reports whether s is one of the four states.
func (s State) Valid() bool { _, ok := stateMoves[s]; return ok }

// CanBecome reports whether a CA or role certificate in state s may move to next.
func (s State) CanBecome(next State) bool {
	for _, n := range stateMoves[s] {
		if n == next {
			return true
		}
	}
	return false
}

// Standing is the state of a CA or role certificate, and when, why and by which run it came
// to be in it.
type Standing struct {
	State  State
	At     time.Time  // zero while active since it was made
	Reason pki.Reason // why it was revoked (the CRL's reason code); only for StateRevoked
	RunID  string     // the run that set it, "" when not known
}

// String is for messages: "revoked (keyCompromise) on 2027-03-01 by run X".
func (s Standing) String() string {
	out := string(s.State)
	if s.State == StateRevoked {
		out += " (" + s.Reason.String() + ")"
	}
	if !s.At.IsZero() {
		out += " on " + s.At.UTC().Format(time.DateOnly)
	}
	if s.RunID != "" {
		out += " by run " + s.RunID
	}
	return out
}

// standingColumns are the state columns of issuers and role_certs, in scanStanding's order.
const standingColumns = `state, state_at, state_reason, state_run_id`

// scanStanding holds the destinations of the state columns of one row.
type scanStanding struct {
	state  string
	reason sql.NullInt64
	run    sql.NullString
	st     *Standing
}

func (s *scanStanding) dest() []any {
	return []any{&s.state, nullTime{&s.st.At}, &s.reason, &s.run}
}

func (s *scanStanding) fill() {
	s.st.State = State(s.state)
	s.st.Reason = pki.Reason(s.reason.Int64)
	s.st.RunID = s.run.String
}

// setStanding moves the row of table (issuers or role_certs) numbered num to the standing
// to, if its state allows: a state it cannot leave for to is ErrConflict naming both. Moving
// to destroyed also records its key as destroyed.
func setStanding(ctx context.Context, tx *sql.Tx, table string, num int64, what string, to Standing) error {
	if !to.State.Valid() || to.State == StateActive {
		return fmt.Errorf("%w: %s cannot be set to state %q", ErrInvalid, what, to.State)
	}
	if to.State == StateRevoked && !to.Reason.Valid() {
		return fmt.Errorf("%w: revocation reason %d", ErrInvalid, int(to.Reason))
	}
	var cur string
	if err := tx.QueryRowContext(ctx, `SELECT state FROM `+table+` WHERE num = ?`, num).Scan(&cur); err != nil {
		return err
	}
	if !State(cur).CanBecome(to.State) {
		return fmt.Errorf("%w: %s is %s and cannot become %s", ErrConflict, what, cur, to.State)
	}
	at := nowOr(to.At)
	var reason any
	if to.State == StateRevoked {
		reason = int(to.Reason)
	}
	_, err := tx.ExecContext(ctx, `UPDATE `+table+` SET state = ?, state_at = ?, state_reason = ?, state_run_id = ? WHERE num = ?`,
		string(to.State), unix(at), reason, nullString(to.RunID), num)
	if err != nil {
		return err
	}
	if to.State == StateDestroyed {
		_, err = tx.ExecContext(ctx, `UPDATE `+table+` SET status = 'destroyed', destroyed_at = coalesce(destroyed_at, ?) WHERE num = ?`, unix(at), num)
	}
	return err
}

// SetIssuerState moves the CA id to the standing to (revoked, retired or destroyed). A move
// its state does not allow (back to active, out of destroyed, from revoked to retired) is
// ErrConflict.
func (r *Registry) SetIssuerState(ctx context.Context, id string, to Standing) error {
	to.At = nowOr(to.At)
	err := r.write(ctx, &IssuerStateSet{ID: id, To: standingOf(to)}, func(tx *sql.Tx) error {
		num, err := issuerNum(ctx, tx, id)
		if err != nil {
			return err
		}
		return setStanding(ctx, tx, "issuers", num, "issuer "+id, to)
	})
	if err != nil {
		return fmt.Errorf("set issuer %q %s: %w", id, to.State, err)
	}
	return nil
}

// SetRoleCertState moves the role certificate with that serial, signed by issuerID, to the
// standing to, as SetIssuerState does for a CA.
func (r *Registry) SetRoleCertState(ctx context.Context, issuerID string, serial SerialNumber, to Standing) error {
	to.At = nowOr(to.At)
	err := r.write(ctx, &RoleCertStateSet{Issuer: issuerID, Serial: hexBytes(serial), To: standingOf(to)}, func(tx *sql.Tx) error {
		num, err := issuerNum(ctx, tx, issuerID)
		if err != nil {
			return err
		}
		var rc int64
		err = tx.QueryRowContext(ctx, `SELECT num FROM role_certs WHERE issuer_num = ? AND serial = ?`, num, []byte(serial)).Scan(&rc)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: no role certificate with that serial", ErrNotFound)
		}
		if err != nil {
			return err
		}
		return setStanding(ctx, tx, "role_certs", rc, "role certificate "+serial.String(), to)
	})
	if err != nil {
		return fmt.Errorf("set role certificate %s of issuer %q %s: %w", serial, issuerID, to.State, err)
	}
	return nil
}

// revokeStanding marks the CA or role certificate that issuer issuerNum signed with serial as
// revoked, when it is one and its state allows (a device certificate has no state; a
// destroyed CA stays destroyed).
func revokeStanding(ctx context.Context, tx *sql.Tx, issuerNum int64, rv Revocation) error {
	for _, q := range []string{
		`UPDATE issuers SET state = 'revoked', state_at = ?1, state_reason = ?2, state_run_id = ?3
			WHERE parent_num = ?4 AND serial = ?5 AND state IN ('active', 'retired')`,
		`UPDATE role_certs SET state = 'revoked', state_at = ?1, state_reason = ?2, state_run_id = ?3
			WHERE issuer_num = ?4 AND serial = ?5 AND state IN ('active', 'retired')`,
	} {
		if _, err := tx.ExecContext(ctx, q, unix(rv.RevokedAt), int(rv.Reason), nullString(rv.RunID), issuerNum, []byte(rv.Serial)); err != nil {
			return err
		}
	}
	return nil
}
