//go:build cgo && !nopkcs11

package hsm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/miekg/pkcs11"
)

// A library is one loaded and initialised PKCS#11 module file.
type library struct {
	ctx  *pkcs11.Ctx
	refs int
	// owned is false when the module said it was already initialised by someone else in
	// this process: then it is theirs to finalise, not ours.
	owned bool
	// initsSeen is how many token initialisations the module's lock file recorded when it was
	// loaded (see initlock.go), or -1 with initsErr when the file could not be read.
	initsSeen int
	initsErr  error
}

// libraries holds every module loaded by this process, by resolved path. This is the one
// piece of global state in the package, and PKCS#11 forces it: C_Initialize and
// C_Finalize act on the whole process (a second C_Initialize fails with
// CKR_CRYPTOKI_ALREADY_INITIALIZED, and one user's C_Finalize would end every other
// user's sessions), so every Module opened on the same file shares one context, counted,
// and the last Close finalises it.
var libraries = struct {
	sync.Mutex
	byPath map[string]*library
}{byPath: map[string]*library{}}

// Module is an open PKCS#11 module (the HSM vendor's library, or SoftHSM2). It is safe to
// use from several goroutines.
type Module struct {
	path string
	lib  *library
	p    p11

	tryLimits bool // TryKnownLimits

	mu       sync.Mutex
	closed   bool
	sessions map[*Session]struct{}
}

// Open loads the PKCS#11 module at path and initialises it. Opening the same file twice in
// one process shares one initialised module; each Module must be closed.
func Open(path string, opts ...Option) (*Module, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	const op = "open PKCS#11 module"
	if path == "" {
		return nil, failf(op, "", ErrModuleNotFound, "no module path given: name the HSM vendor's PKCS#11 library (.so, .dylib or .dll)")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, failure(op, "", err)
	}
	info, err := os.Stat(abs)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, failf(op, "", ErrModuleNotFound, "no file at %s: install the HSM's PKCS#11 library or correct the path", abs)
		}
		return nil, failf(op, "", ErrModuleNotFound, "cannot read %s: %v", abs, err)
	}
	if !info.Mode().IsRegular() {
		return nil, failf(op, "", ErrNotPKCS11, "%s is not a regular file: name the library itself", abs)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}

	libraries.Lock()
	defer libraries.Unlock()
	lib := libraries.byPath[abs]
	if lib == nil {
		ctx := pkcs11.New(abs)
		if ctx == nil {
			return nil, failf(op, "", ErrNotPKCS11, "%s could not be loaded as a PKCS#11 library (it is not a shared library exporting C_GetFunctionList for this platform, or a library it needs is missing)", abs)
		}
		lib = &library{ctx: ctx, owned: true}
		// Read before C_Initialize: a token another process initialises from here on may be
		// one this process does not see.
		lib.initsSeen, lib.initsErr = initsSoFar(abs)
		if err := ctx.Initialize(); err != nil {
			if code(err) != pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED {
				ctx.Destroy()
				e := failure(op, "", err).(*Error)
				e.Hint = "the module " + abs + " did not initialise: check its configuration"
				return nil, e
			}
			lib.owned = false
		}
		libraries.byPath[abs] = lib
	}
	lib.refs++

	m := &Module{path: abs, lib: lib, p: lib.ctx, sessions: map[*Session]struct{}{}, tryLimits: o.tryLimits}
	if o.fault != nil {
		m.p = faulty{next: lib.ctx, fault: o.fault}
	}
	return m, nil
}

// Path is the module file's resolved path.
func (m *Module) Path() string { return m.path }

// Close closes the sessions opened through m and, when m is the last user of the module in
// this process, finalises and unloads it. Closing twice is harmless.
func (m *Module) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	open := make([]*Session, 0, len(m.sessions))
	for s := range m.sessions {
		open = append(open, s)
	}
	m.mu.Unlock()
	var errs []error
	for _, s := range open {
		errs = append(errs, s.Close())
	}

	libraries.Lock()
	defer libraries.Unlock()
	m.lib.refs--
	if m.lib.refs == 0 {
		delete(libraries.byPath, m.path)
		if m.lib.owned {
			if err := m.lib.ctx.Finalize(); err != nil {
				errs = append(errs, failure("finalise PKCS#11 module", "", err))
			}
		}
		m.lib.ctx.Destroy()
	}
	return errors.Join(errs...)
}

func (m *Module) check(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return failure(op, "", err)
	}
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return failf(op, "", ErrSessionClosed, "the module %s was closed", m.path)
	}
	return nil
}

// Info reads the library's own description, for records of which software drove the HSM.
func (m *Module) Info(ctx context.Context) (ModuleInfo, error) {
	const op = "read module information"
	if err := m.check(ctx, op); err != nil {
		return ModuleInfo{}, err
	}
	i, err := m.p.GetInfo()
	if err != nil {
		return ModuleInfo{}, failure(op, "", err)
	}
	return ModuleInfo{
		Manufacturer:    trim(i.ManufacturerID),
		Description:     trim(i.LibraryDescription),
		LibraryVersion:  Version(i.LibraryVersion),
		CryptokiVersion: Version(i.CryptokiVersion),
	}, nil
}

func tokenFlags(f uint) TokenFlags {
	return TokenFlags{
		Initialized:        f&pkcs11.CKF_TOKEN_INITIALIZED != 0,
		LoginRequired:      f&pkcs11.CKF_LOGIN_REQUIRED != 0,
		WriteProtected:     f&pkcs11.CKF_WRITE_PROTECTED != 0,
		UserPINInitialized: f&pkcs11.CKF_USER_PIN_INITIALIZED != 0,
		UserPINCountLow:    f&pkcs11.CKF_USER_PIN_COUNT_LOW != 0,
		UserPINFinalTry:    f&pkcs11.CKF_USER_PIN_FINAL_TRY != 0,
		UserPINLocked:      f&pkcs11.CKF_USER_PIN_LOCKED != 0,
		UserPINToBeChanged: f&pkcs11.CKF_USER_PIN_TO_BE_CHANGED != 0,
		SOPINCountLow:      f&pkcs11.CKF_SO_PIN_COUNT_LOW != 0,
		SOPINFinalTry:      f&pkcs11.CKF_SO_PIN_FINAL_TRY != 0,
		SOPINLocked:        f&pkcs11.CKF_SO_PIN_LOCKED != 0,
		SOPINToBeChanged:   f&pkcs11.CKF_SO_PIN_TO_BE_CHANGED != 0,
	}
}

func tokenInfo(t pkcs11.TokenInfo) TokenInfo {
	return TokenInfo{
		Label:           trim(t.Label),
		Manufacturer:    trim(t.ManufacturerID),
		Model:           trim(t.Model),
		Serial:          trim(t.SerialNumber),
		HardwareVersion: Version(t.HardwareVersion),
		FirmwareVersion: Version(t.FirmwareVersion),
		MinPINLen:       int(t.MinPinLen),
		MaxPINLen:       int(t.MaxPinLen),
		Flags:           tokenFlags(t.Flags),
	}
}

// trim drops the blank padding of PKCS#11's fixed-width strings (and the NULs some
// modules pad with instead).
func trim(s string) string { return strings.TrimRight(s, " \x00") }

// Slots lists every slot of the module with the token in it, in slot order. It waits for
// another Custos process initialising a token on the module (see initlock.go).
func (m *Module) Slots(ctx context.Context) ([]Slot, error) {
	defer m.shareInitLock()()
	return m.slots(ctx)
}

func (m *Module) slots(ctx context.Context) ([]Slot, error) {
	const op = "list slots"
	if err := m.check(ctx, op); err != nil {
		return nil, err
	}
	ids, err := m.p.GetSlotList(false)
	if err != nil {
		return nil, failure(op, "", err)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	slots := make([]Slot, 0, len(ids))
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return nil, failure(op, "", err)
		}
		si, err := m.p.GetSlotInfo(id)
		if err != nil {
			return nil, failure(op, "", err)
		}
		s := Slot{ID: id, Description: trim(si.SlotDescription)}
		if si.Flags&pkcs11.CKF_TOKEN_PRESENT != 0 {
			ti, err := m.p.GetTokenInfo(id)
			switch {
			case err == nil:
				s.TokenPresent = true
				s.Token = tokenInfo(ti)
			case code(err) == pkcs11.CKR_TOKEN_NOT_PRESENT || code(err) == pkcs11.CKR_DEVICE_REMOVED:
				// Removed between the two calls: report the slot as empty.
			default:
				return nil, failure(op, "", err)
			}
		}
		slots = append(slots, s)
	}
	return slots, nil
}

// TokenByLabel finds the initialised token labelled label. The error names the labels that
// are present when none matches, and refuses when two tokens share the label.
func (m *Module) TokenByLabel(ctx context.Context, label string) (Slot, error) {
	slots, err := m.Slots(ctx)
	if err != nil {
		return Slot{}, err
	}
	return m.labelled(slots, label)
}

// labelled is the one initialised token of slots labelled label.
func (m *Module) labelled(slots []Slot, label string) (Slot, error) {
	op := fmt.Sprintf("find token %q", label)
	var found []Slot
	var labels []string
	for _, s := range slots {
		if !s.TokenPresent || !s.Token.Flags.Initialized {
			continue
		}
		labels = append(labels, fmt.Sprintf("%q", s.Token.Label))
		if s.Token.Label == label {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		if len(labels) == 0 {
			return Slot{}, failf(op, "", ErrTokenNotFound, "module %s has no initialised token", m.path)
		}
		return Slot{}, failf(op, "", ErrTokenNotFound, "tokens present: %s", strings.Join(labels, ", "))
	}
	return Slot{}, failf(op, "", errors.New("label is ambiguous"), "%d tokens are labelled %q (slots %s): relabel or remove all but one", len(found), label, slotIDs(found))
}

func slotIDs(slots []Slot) string {
	ids := make([]string, len(slots))
	for i, s := range slots {
		ids[i] = fmt.Sprint(s.ID)
	}
	return strings.Join(ids, ", ")
}

// FreeSlot finds a slot holding a token that is present but not yet initialised (SoftHSM2
// always keeps one such slot free).
func (m *Module) FreeSlot(ctx context.Context) (Slot, error) {
	slots, err := m.Slots(ctx)
	if err != nil {
		return Slot{}, err
	}
	for _, s := range slots {
		if s.TokenPresent && !s.Token.Flags.Initialized {
			return s, nil
		}
	}
	return Slot{}, failf("find a free slot", "", ErrNoFreeSlot, "connect a new token, or re-initialise one that is no longer needed")
}

// InitToken initialises the uninitialised token in slot slotID with label and SO PIN, then
// sets its user PIN as the SO. It returns the token's slot as found afterwards by label:
// modules may renumber slots on initialisation (SoftHSM2 moves the token to a new slot id
// derived from its serial). It refuses a label another token already has.
func (m *Module) InitToken(ctx context.Context, slotID uint, label string, soPIN, userPIN []byte) (Slot, error) {
	op := fmt.Sprintf("initialise token %q in slot %d", label, slotID)
	if err := checkLabel(op, label); err != nil {
		return Slot{}, err
	}
	if err := m.check(ctx, op); err != nil {
		return Slot{}, err
	}
	ti, err := m.p.GetTokenInfo(slotID)
	if err != nil {
		return Slot{}, failure(op, "", err)
	}
	if ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED != 0 {
		return Slot{}, failf(op, "", errors.New("slot already holds an initialised token"), "it holds %q: re-initialise that token explicitly if it is to be erased", trim(ti.Label))
	}
	return m.initToken(ctx, op, slotID, tokenInfo(ti), label, "", soPIN, userPIN)
}

// ReinitToken re-initialises the initialised token labelled label, proving the SO PIN:
// every object on it is destroyed and the user PIN is unset. The token is labelled
// newLabel afterwards (which may equal label), and gets userPIN as its user PIN unless
// userPIN is nil. It returns the token's slot as found afterwards. This is how a device's
// whole key store is erased. A module known not to re-initialise tokens (CanReinit) is
// refused before anything is sent to the token.
func (m *Module) ReinitToken(ctx context.Context, label string, soPIN []byte, newLabel string, userPIN []byte) (Slot, error) {
	const op = "re-initialise token"
	if err := checkLabel(op, newLabel); err != nil {
		return Slot{}, err
	}
	slot, err := m.TokenByLabel(ctx, label)
	if err != nil {
		return Slot{}, err
	}
	if err := m.CanReinit(ctx); err != nil {
		e := err.(*Error)
		e.Op, e.Token = op, label
		return Slot{}, e
	}
	return m.initToken(ctx, op, slot.ID, slot.Token, newLabel, label, soPIN, userPIN)
}

func (m *Module) initToken(ctx context.Context, op string, slotID uint, info TokenInfo, label, oldLabel string, soPIN, userPIN []byte) (Slot, error) {
	// SoftHSM2 answers a PIN of the wrong length with CKR_PIN_INCORRECT, so lengths are
	// checked here against what the token says it accepts.
	if err := checkPINLen(op, oldLabel, info, SO, soPIN); err != nil {
		return Slot{}, err
	}
	if userPIN != nil {
		if err := checkPINLen(op, oldLabel, info, User, userPIN); err != nil {
			return Slot{}, err
		}
	}
	if err := m.check(ctx, op); err != nil {
		return Slot{}, err
	}
	// Another Custos process may be initialising a token on this module right now: wait for
	// it, then check the label and the slot again, as they are now.
	lock, err := m.lockInits(op)
	if err != nil {
		return Slot{}, err
	}
	defer lock.release()
	if label != oldLabel {
		if e, ok := lock.unseenLabel(label); ok {
			return Slot{}, failf(op, "", ErrLabelInUse, "Custos process %d initialised a token labelled %q on this module at %s, after this process loaded the module, which cannot see it: start again (a token exists with that label now), or choose another label",
				e.pid, label, e.at.Format(time.RFC3339))
		}
		slots, err := m.slots(ctx) // the lock is held: not Slots, which would wait for it
		if err != nil {
			return Slot{}, err
		}
		_, err = m.labelled(slots, label)
		if err == nil {
			return Slot{}, failf(op, "", ErrLabelInUse, "another token is already labelled %q: choose another label", label)
		}
		if !errors.Is(err, ErrTokenNotFound) {
			return Slot{}, err
		}
	}
	ti, err := m.p.GetTokenInfo(slotID)
	if err != nil {
		return Slot{}, failure(op, oldLabel, err)
	}
	if oldLabel == "" && ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED != 0 {
		return Slot{}, failf(op, "", errors.New("slot already holds an initialised token"), "it holds %q, initialised since the slot was chosen: choose a free slot again", trim(ti.Label))
	}
	if oldLabel != "" && trim(ti.Label) != oldLabel {
		return Slot{}, failf(op, oldLabel, ErrTokenNotFound, "slot %d now holds %q: find the token again", slotID, trim(ti.Label))
	}
	if err := m.p.InitToken(slotID, pinString(soPIN), label); err != nil {
		e := failure(op, oldLabel, err)
		m.addPINHint(e, slotID, SO)
		return Slot{}, e
	}
	if err := lock.record(label); err != nil {
		return Slot{}, failf(op, label, err, "the token was initialised, but the lock file could not record it: other Custos processes may not know of it")
	}
	lock.release()
	slot, err := m.TokenByLabel(ctx, label)
	if err != nil {
		return Slot{}, err
	}
	if userPIN == nil {
		return slot, nil
	}
	s, err := m.OpenSlotSession(ctx, slot.ID)
	if err != nil {
		return Slot{}, err
	}
	err = s.InitUserPIN(ctx, soPIN, userPIN)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Slot{}, err
	}
	return m.TokenByLabel(ctx, label) // again, for the flags as they are now
}

// checkPINLen refuses a PIN whose length the token says it does not accept.
func checkPINLen(op, label string, info TokenInfo, who UserType, pin []byte) error {
	if len(pin) == 0 {
		return failf(op, label, ErrPINLength, "the %s PIN is empty", who)
	}
	if info.MaxPINLen > 0 && (len(pin) < info.MinPINLen || len(pin) > info.MaxPINLen) {
		return failf(op, label, ErrPINLength, "the %s PIN is %d bytes; this token accepts PINs of %d to %d bytes", who, len(pin), info.MinPINLen, info.MaxPINLen)
	}
	return nil
}

// checkLabel refuses labels a token cannot hold as given (see TokenLabelProblem).
func checkLabel(op, label string) error {
	if p := TokenLabelProblem(label); p != "" {
		return failf(op, "", errors.New("unusable token label"), "the label %s", p)
	}
	return nil
}

// pinString lends pin to the PKCS#11 binding as a string without copying it: the string
// aliases the caller's bytes, lives only for the call, and is wiped when the caller zeroes
// pin. A conversion with string(pin) would leave an immutable copy on the heap.
func pinString(pin []byte) string {
	if len(pin) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(pin), len(pin))
}

// addPINHint completes a PIN error with what the token's flags say: tries running low,
// the final try, a lock, or the PIN lengths the token accepts.
func (m *Module) addPINHint(err error, slotID uint, who UserType) {
	var e *Error
	if !errors.As(err, &e) {
		return
	}
	switch e.Code {
	case pkcs11.CKR_PIN_INCORRECT, pkcs11.CKR_PIN_LOCKED, pkcs11.CKR_PIN_LEN_RANGE:
	default:
		return
	}
	ti, terr := m.p.GetTokenInfo(slotID)
	if terr != nil {
		return
	}
	info := tokenInfo(ti)
	if e.Token == "" {
		e.Token = info.Label
	}
	f := info.Flags
	if !f.Initialized {
		// An uninitialised token's flags say nothing about tries (SoftHSM2 even reports
		// its SO PIN locked).
		f = TokenFlags{}
	}
	countLow, finalTry, locked := f.UserPINCountLow, f.UserPINFinalTry, f.UserPINLocked
	if who == SO {
		countLow, finalTry, locked = f.SOPINCountLow, f.SOPINFinalTry, f.SOPINLocked
	}
	switch e.Code {
	case pkcs11.CKR_PIN_LOCKED:
		if who == SO {
			e.Hint = "the SO PIN is locked: the token can only be reset by its vendor's procedure"
		}
	case pkcs11.CKR_PIN_LEN_RANGE:
		e.Hint = fmt.Sprintf("this token accepts PINs of %d to %d bytes", info.MinPINLen, info.MaxPINLen)
	case pkcs11.CKR_PIN_INCORRECT:
		switch {
		case locked:
			e.Err = ErrPINLocked
			e.Hint = "that was the last try: the " + who.String() + " PIN is now locked"
		case finalTry:
			e.Hint = "final try: one more wrong " + who.String() + " PIN locks it"
		case countLow:
			e.Hint = "the token has counted a wrong PIN since the last good login and locks the PIN after a few: check the PIN before trying again"
		default:
			e.Hint = "check the PIN before trying again: tokens lock the PIN after a few wrong tries"
		}
	}
}
