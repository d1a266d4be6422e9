package hsm

import (
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/pkcs11"
)

// Sentinel errors, for errors.Is. Every error this package returns is an *Error that wraps
// one of these when the cause is known, and the token's own pkcs11.Error otherwise.
var (
	ErrModuleNotFound       = errors.New("PKCS#11 module not found")
	ErrNotPKCS11            = errors.New("file is not a PKCS#11 module")
	ErrTokenNotFound        = errors.New("token not found")
	ErrNoFreeSlot           = errors.New("no free slot: every token present is already initialised")
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
)

// Error is what every failing call returns: the operation, the token it was on, the
// PKCS#11 return value when the token gave one, and a cause usable with errors.Is.
type Error struct {
	Op    string // what was being done, such as "log in as user"
	Token string // the token's label; empty when no token was involved
	Code  uint   // the PKCS#11 return value (CKR_...), 0 when the error did not come from the module
	Err   error  // a sentinel above, or the underlying error
	Hint  string // a sentence on what to do or what the token reports, such as tries left
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
		fmt.Fprintf(&b, " (%s)", codeName(e.Code))
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
	if e.Code != 0 && !isCode(e.Err, e.Code) {
		return []error{e.Err, pkcs11.Error(e.Code)}
	}
	return []error{e.Err}
}

func isCode(err error, code uint) bool {
	var pe pkcs11.Error
	return errors.As(err, &pe) && uint(pe) == code
}

// codeName is "CKR_PIN_INCORRECT", or the number in hex when the module returned a value
// the standard does not name.
func codeName(code uint) string {
	s := pkcs11.Error(code).Error() // "pkcs11: 0xA0: CKR_PIN_INCORRECT"
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.HasPrefix(s[i+2:], "CKR_") {
		return s[i+2:]
	}
	return fmt.Sprintf("vendor-defined return value 0x%X", code)
}

// sentinels maps return values to the causes a person can act on.
var sentinels = map[uint]error{
	pkcs11.CKR_PIN_INCORRECT:                  ErrPINIncorrect,
	pkcs11.CKR_PIN_LOCKED:                     ErrPINLocked,
	pkcs11.CKR_PIN_LEN_RANGE:                  ErrPINLength,
	pkcs11.CKR_PIN_INVALID:                    ErrPINInvalid,
	pkcs11.CKR_PIN_TOO_WEAK:                   ErrPINInvalid,
	pkcs11.CKR_USER_PIN_NOT_INITIALIZED:       ErrUserPINNotSet,
	pkcs11.CKR_USER_NOT_LOGGED_IN:             ErrNotLoggedIn,
	pkcs11.CKR_USER_ANOTHER_ALREADY_LOGGED_IN: ErrOtherUserLoggedIn,
	pkcs11.CKR_USER_ALREADY_LOGGED_IN:         ErrOtherUserLoggedIn,
	pkcs11.CKR_DEVICE_REMOVED:                 ErrTokenRemoved,
	pkcs11.CKR_TOKEN_NOT_PRESENT:              ErrTokenRemoved,
	pkcs11.CKR_SESSION_HANDLE_INVALID:         ErrTokenRemoved,
	pkcs11.CKR_SESSION_CLOSED:                 ErrTokenRemoved,
	pkcs11.CKR_TOKEN_NOT_RECOGNIZED:           ErrTokenNotInitialized,
	pkcs11.CKR_MECHANISM_INVALID:              ErrMechanismUnsupported,
	pkcs11.CKR_CURVE_NOT_SUPPORTED:            ErrMechanismUnsupported,
	pkcs11.CKR_DOMAIN_PARAMS_INVALID:          ErrMechanismUnsupported,
	pkcs11.CKR_KEY_NOT_WRAPPABLE:              ErrNotWrappable,
	pkcs11.CKR_KEY_UNEXTRACTABLE:              ErrNotWrappable,
	pkcs11.CKR_WRAPPED_KEY_INVALID:            ErrWrappedKeyInvalid,
	pkcs11.CKR_WRAPPED_KEY_LEN_RANGE:          ErrWrappedKeyInvalid,
	pkcs11.CKR_SESSION_EXISTS:                 ErrSessionExists,
	pkcs11.CKR_TOKEN_WRITE_PROTECTED:          ErrWriteProtected,
	pkcs11.CKR_DEVICE_ERROR:                   ErrDevice,
	pkcs11.CKR_DEVICE_MEMORY:                  ErrDevice,
	pkcs11.CKR_GENERAL_ERROR:                  ErrDevice,
	pkcs11.CKR_FUNCTION_FAILED:                ErrDevice,
	pkcs11.CKR_HOST_MEMORY:                    ErrDevice,
	pkcs11.CKR_OBJECT_HANDLE_INVALID:          ErrObjectNotFound,
	pkcs11.CKR_KEY_HANDLE_INVALID:             ErrObjectNotFound,
	pkcs11.CKR_SLOT_ID_INVALID:                ErrTokenNotFound,
}

// hints are the sentence added for return values whose cause alone does not say what to do.
var hints = map[uint]string{
	pkcs11.CKR_PIN_LOCKED:                     "the security officer must reset the user PIN, or the token be re-initialised",
	pkcs11.CKR_PIN_LEN_RANGE:                  "choose a PIN whose length the token accepts",
	pkcs11.CKR_USER_PIN_NOT_INITIALIZED:       "the security officer must set the user PIN first",
	pkcs11.CKR_USER_NOT_LOGGED_IN:             "log in to the token first",
	pkcs11.CKR_USER_ANOTHER_ALREADY_LOGGED_IN: "log out first: PKCS#11 allows one user type at a time per application",
	pkcs11.CKR_DEVICE_REMOVED:                 "reconnect the token and start the operation again",
	pkcs11.CKR_TOKEN_NOT_PRESENT:              "reconnect the token and start the operation again",
	pkcs11.CKR_SESSION_HANDLE_INVALID:         "the session ended (token removed or module finalised): reconnect and start again",
	pkcs11.CKR_SESSION_CLOSED:                 "the session ended (token removed or module finalised): reconnect and start again",
	pkcs11.CKR_SESSION_EXISTS:                 "close every other program and session using this token, then try again",
	pkcs11.CKR_KEY_NOT_WRAPPABLE:              "a key generated to be wrapped only under a trusted key needs a wrapping key the security officer marked trusted",
	pkcs11.CKR_KEY_UNEXTRACTABLE:              "the key was generated not to leave the token, even wrapped",
	pkcs11.CKR_DEVICE_ERROR:                   "check the token's connection and its own logs",
	pkcs11.CKR_DEVICE_MEMORY:                  "the token is out of memory: remove unused objects",
	pkcs11.CKR_TOKEN_NOT_RECOGNIZED:           "initialise the token first",
}

// failure builds the *Error for op on token from what the module returned. Errors that are
// already an *Error pass through unchanged, and context errors keep their identity.
func failure(op, token string, err error) error {
	if err == nil {
		return nil
	}
	var he *Error
	if errors.As(err, &he) {
		return err
	}
	e := &Error{Op: op, Token: token, Err: err}
	var pe pkcs11.Error
	if errors.As(err, &pe) {
		e.Code = uint(pe)
		if s, ok := sentinels[e.Code]; ok {
			e.Err = s
		} else {
			e.Err = errors.New("the token refused the operation")
		}
		e.Hint = hints[e.Code]
	}
	return e
}

// failf is failure with a cause of this package's own and a hint in words.
func failf(op, token string, cause error, format string, args ...any) error {
	return &Error{Op: op, Token: token, Err: cause, Hint: fmt.Sprintf(format, args...)}
}

// code is the PKCS#11 return value inside err, or 0.
func code(err error) uint {
	var pe pkcs11.Error
	if errors.As(err, &pe) {
		return uint(pe)
	}
	return 0
}
