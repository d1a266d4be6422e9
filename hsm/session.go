//go:build cgo && !nopkcs11

package hsm

import (
	"context"
	"fmt"
	"sync"

	"github.com/miekg/pkcs11"
)

// Session is a read-write session with one token. Its methods may be called from several
// goroutines: they take turns, since a PKCS#11 session runs one operation at a time.
//
// PKCS#11 keeps login state per token for the whole application, not per session: a
// login or logout on one session applies to every session this process has with the
// token.
type Session struct {
	m     *Module
	slot  uint
	label string

	mu     sync.Mutex // held for each operation, which may be several calls (find, sign)
	h      pkcs11.SessionHandle
	closed bool
}

// OpenSession opens a read-write session with the initialised token labelled label.
func (m *Module) OpenSession(ctx context.Context, label string) (*Session, error) {
	slot, err := m.TokenByLabel(ctx, label)
	if err != nil {
		return nil, err
	}
	return m.OpenSlotSession(ctx, slot.ID)
}

// OpenSlotSession opens a read-write session with the token in slot slotID.
func (m *Module) OpenSlotSession(ctx context.Context, slotID uint) (*Session, error) {
	op := fmt.Sprintf("open a session with slot %d", slotID)
	if err := m.check(ctx, op); err != nil {
		return nil, err
	}
	ti, err := m.p.GetTokenInfo(slotID)
	if err != nil {
		return nil, failure(op, "", err)
	}
	label := trim(ti.Label)
	if ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
		return nil, failf(op, "", ErrTokenNotInitialized, "initialise the token in slot %d first", slotID)
	}
	h, err := m.p.OpenSession(slotID, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return nil, failure(op, label, err)
	}
	s := &Session{m: m, slot: slotID, label: label, h: h}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		_ = m.p.CloseSession(h)
		return nil, failf(op, label, ErrSessionClosed, "the module was closed")
	}
	m.sessions[s] = struct{}{}
	m.mu.Unlock()
	return s, nil
}

// Label is the label of the session's token.
func (s *Session) Label() string { return s.label }

// SlotID is the slot of the session's token.
func (s *Session) SlotID() uint { return s.slot }

// Close ends the session. A token already removed has ended it already, so that is not an
// error. Closing twice is harmless.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.m.mu.Lock()
	delete(s.m.sessions, s)
	s.m.mu.Unlock()
	err := s.m.p.CloseSession(s.h)
	switch code(err) {
	case pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED, pkcs11.CKR_DEVICE_REMOVED,
		pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED:
		return nil
	}
	return s.fail("close session", err)
}

// begin starts an operation: it checks ctx and that the session is open, and takes the
// session's lock, which the caller releases with s.mu.Unlock.
func (s *Session) begin(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return s.fail(op, err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return failf(op, s.label, ErrSessionClosed, "open a new session")
	}
	return nil
}

// next checks ctx between the calls of a multi-call operation.
func (s *Session) next(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return s.fail(op, err)
	}
	return nil
}

func (s *Session) fail(op string, err error) error { return failure(op, s.label, err) }

// Login logs who in with pin. If who is already logged in to this token (by this or
// another session of this process), it returns nil without checking pin: PKCS#11 login
// state is shared by all of an application's sessions with a token. A wrong PIN error
// says what the token's flags say about tries left.
func (s *Session) Login(ctx context.Context, who UserType, pin []byte) error {
	op := "log in as " + who.String()
	if err := s.begin(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	return s.login(op, who, pin)
}

func (s *Session) login(op string, who UserType, pin []byte) error {
	if len(pin) == 0 {
		return failf(op, s.label, ErrPINLength, "the %s PIN is empty", who)
	}
	err := s.m.p.Login(s.h, uint(who), pinString(pin))
	if code(err) == pkcs11.CKR_USER_ALREADY_LOGGED_IN {
		return nil
	}
	if err != nil {
		e := s.fail(op, err)
		s.m.addPINHint(e, s.slot, who)
		return e
	}
	return nil
}

// Logout logs out whoever is logged in. Nobody being logged in is not an error.
func (s *Session) Logout(ctx context.Context) error {
	const op = "log out"
	if err := s.begin(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	return s.logout(op)
}

func (s *Session) logout(op string) error {
	err := s.m.p.Logout(s.h)
	if code(err) == pkcs11.CKR_USER_NOT_LOGGED_IN {
		return nil
	}
	return s.fail(op, err)
}

// ChangePIN logs who in with oldPIN, changes their PIN to newPIN (C_SetPIN) and logs out.
// Anyone else logged in is logged out first. An error means the PIN was not changed.
func (s *Session) ChangePIN(ctx context.Context, who UserType, oldPIN, newPIN []byte) error {
	op := "change the " + who.String() + " PIN"
	if err := s.begin(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := s.checkNewPIN(op, who, newPIN); err != nil {
		return err
	}
	if err := s.logout(op); err != nil {
		return err
	}
	if err := s.next(ctx, op); err != nil {
		return err
	}
	if err := s.login(op, who, oldPIN); err != nil {
		return err
	}
	err := s.m.p.SetPIN(s.h, pinString(oldPIN), pinString(newPIN))
	if err != nil {
		e := s.fail(op, err)
		s.m.addPINHint(e, s.slot, who)
		_ = s.logout(op)
		return e
	}
	// The PIN has changed: an error now would have the caller think it had not.
	_ = s.logout(op)
	return nil
}

// InitUserPIN logs in as SO with soPIN, sets the user PIN to userPIN (C_InitPIN) and logs
// out. This sets the first user PIN and resets a forgotten or locked one. Anyone else
// logged in is logged out first.
func (s *Session) InitUserPIN(ctx context.Context, soPIN, userPIN []byte) error {
	const op = "set the user PIN"
	if err := s.begin(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := s.checkNewPIN(op, User, userPIN); err != nil {
		return err
	}
	if err := s.logout(op); err != nil {
		return err
	}
	if err := s.next(ctx, op); err != nil {
		return err
	}
	if err := s.login(op, SO, soPIN); err != nil {
		return err
	}
	if err := s.m.p.InitPIN(s.h, pinString(userPIN)); err != nil {
		e := s.fail(op, err)
		s.m.addPINHint(e, s.slot, User)
		_ = s.logout(op)
		return e
	}
	return s.logout(op)
}

// checkNewPIN refuses a new PIN the token would not accept, before anything changes.
func (s *Session) checkNewPIN(op string, who UserType, pin []byte) error {
	ti, err := s.m.p.GetTokenInfo(s.slot)
	if err != nil {
		return s.fail(op, err)
	}
	return checkPINLen(op, s.label, tokenInfo(ti), who, pin)
}

// TokenInfo reads the session's token's identity and flags afresh.
func (s *Session) TokenInfo(ctx context.Context) (TokenInfo, error) {
	const op = "read token information"
	if err := s.begin(ctx, op); err != nil {
		return TokenInfo{}, err
	}
	defer s.mu.Unlock()
	ti, err := s.m.p.GetTokenInfo(s.slot)
	if err != nil {
		return TokenInfo{}, s.fail(op, err)
	}
	return tokenInfo(ti), nil
}

// Random returns n bytes from the token's random number generator.
func (s *Session) Random(ctx context.Context, n int) ([]byte, error) {
	const op = "read random bytes from the token"
	if n <= 0 {
		return nil, failf(op, s.label, fmt.Errorf("cannot read %d random bytes", n), "ask for at least one byte")
	}
	if err := s.begin(ctx, op); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	b, err := s.m.p.GenerateRandom(s.h, n)
	if err != nil {
		return nil, s.fail(op, err)
	}
	if len(b) != n {
		return nil, failf(op, s.label, ErrDevice, "the token returned %d bytes instead of %d", len(b), n)
	}
	return b, nil
}
