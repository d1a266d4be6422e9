package hsm

import (
	"errors"
	"strings"
)

// ErrCannotReinit is the cause when a module cannot re-initialise a token that is already
// initialised.
var ErrCannotReinit = errors.New("this module cannot re-initialise an initialised token through PKCS#11")

// noReinit names the modules known, by running them (custos hsm check and Custos's own tests
// on a software TPM), to refuse C_InitToken on an initialised token, by the manufacturer
// C_GetInfo reports, with why. PKCS#11 has no flag that says so.
var noReinit = map[string]string{
	"tpm2-software.github.io": "tpm2-pkcs11 initialises only its empty slot; C_InitToken on an initialised token fails with CKR_ARGUMENTS_BAD, and such a token is cleared only with tpm2-pkcs11's own tools",
}

// HasSerial reports whether the token reports a serial number of its own. Some modules give
// every token the same serial of zeros (tpm2-pkcs11 does): such tokens are known by their
// label alone, as Custos always finds them.
func (t TokenInfo) HasSerial() bool {
	return strings.Trim(t.Serial, "0 ") != ""
}

// SerialOrNone is the serial for a record, or words saying there is none.
func (t TokenInfo) SerialOrNone() string {
	if t.HasSerial() {
		return t.Serial
	}
	return "none (the module reports " + orEmpty(t.Serial) + " for its tokens; the token is known by its label)"
}

func orEmpty(s string) string {
	if s == "" {
		return "an empty serial"
	}
	return "serial " + s
}
