package hsm

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors, for errors.Is. Every error this package returns is an *Error that wraps
// one of these when the cause is known, and the token's own pkcs11.Error otherwise.
var (
	ErrModuleNotFound       = errors.New("PKCS#11 module not found")
	ErrNotPKCS11            = errors.New("file is not a PKCS#11 module")
	ErrTokenNotFound        = errors.New("token not found")
	ErrNoFreeSlot           = errors.New("no free slot: every token present is already initialised")
	ErrLabelInUse           = errors.New("token label already in use")
	ErrTokenNotInitialized  = errors.New("token is not initialised")
	ErrObjectNotFound       = errors.New("object not found")
	ErrPINIncorrect         = errors.New("wrong PIN")
	ErrPINLocked            = errors.New("PIN is locked")
	ErrPINLength            = errors.New("PIN is too short or too long for this token")
	ErrPINInvalid           = errors.New("PIN has characters or a form this token does not accept")
	ErrUserPINNotSet        = errors.New("the token's user PIN has not been set")
	ErrNotLoggedIn          = errors.New("not logged in")
	ErrOtherUserLoggedIn    = errors.New("another user type is logged in to this token")
	ErrTokenRemoved         = errors.New("token removed or no longer present")
	ErrMechanismUnsupported = errors.New("mechanism not supported by this token")
	ErrNotWrappable         = errors.New("key may not be wrapped with this wrapping key")
	ErrWrappedKeyInvalid    = errors.New("wrapped key does not unwrap: it is damaged or was wrapped under another key")
	ErrSessionExists        = errors.New("the token has open sessions")
	ErrSessionClosed        = errors.New("session is closed")
	ErrWriteProtected       = errors.New("token is write-protected")
	ErrDevice               = errors.New("the token failed")
	ErrNoPKCS11             = errors.New("this build of Custos has no PKCS#11 support (built without cgo or with -tags nopkcs11)")
)

// Error is what every failing call returns: the operation, the token it was on, the
// PKCS#11 return value when the token gave one, and a cause usable with errors.Is.
type Error struct {
	Op    string // what was being done, such as "log in as user"
	Token string // the token's label; empty when no token was involved
	Code  uint   // the PKCS#11 return value (CKR_...), 0 when the error did not come from the module
	Err   error  // a sentinel above, or the underlying error
	Hint  string // a sentence on what to do or what the token reports, such as tries left

	module error // the module's own pkcs11.Error, when it gave one
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("hsm: ")
	b.WriteString(e.Op)
	if e.Token != "" {
		fmt.Fprintf(&b, " on token %q", e.Token)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	if e.Code != 0 {
		fmt.Fprintf(&b, " (%s)", e.codeName())
	}
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Unwrap returns the cause and, when the module gave one, its pkcs11.Error, so both
// errors.Is(err, hsm.ErrPINIncorrect) and errors.As(err, &pkcs11.Error) work.
func (e *Error) Unwrap() []error {
	if e.module != nil {
		return []error{e.Err, e.module}
	}
	return []error{e.Err}
}

// codeName is "CKR_PIN_INCORRECT", or the number in hex when the module returned a value
// the standard does not name.
func (e *Error) codeName() string {
	if e.module != nil {
		s := e.module.Error() // "pkcs11: 0xA0: CKR_PIN_INCORRECT"
		if i := strings.LastIndex(s, ": "); i >= 0 && strings.HasPrefix(s[i+2:], "CKR_") {
			return s[i+2:]
		}
	}
	return fmt.Sprintf("vendor-defined return value 0x%X", e.Code)
}

// failf is failure with a cause of this package's own and a hint in words.
func failf(op, token string, cause error, format string, args ...any) error {
	return &Error{Op: op, Token: token, Err: cause, Hint: fmt.Sprintf(format, args...)}
}

// ReturnCode is the PKCS#11 return value a failed call gave (CKR_...), or 0 when err did not
// come from the module.
func ReturnCode(err error) uint {
	var he *Error
	if errors.As(err, &he) {
		return he.Code
	}
	return 0
}
