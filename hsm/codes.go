//go:build cgo && !nopkcs11

package hsm

import (
	"errors"

	"github.com/miekg/pkcs11"
)

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
		e.Code, e.module = uint(pe), pe
		if s, ok := sentinels[e.Code]; ok {
			e.Err = s
		} else {
			e.Err = errors.New("the token refused the operation")
		}
		e.Hint = hints[e.Code]
	}
	return e
}

// code is the PKCS#11 return value inside err, or 0.
func code(err error) uint {
	var pe pkcs11.Error
	if errors.As(err, &pe) {
		return uint(pe)
	}
	return 0
}

// CodeName is a return value's name, such as "CKR_MECHANISM_INVALID", or its number in hex
// when the standard does not name it.
func CodeName(code uint) string {
	return (&Error{Code: code, module: pkcs11.Error(code)}).codeName()
}
