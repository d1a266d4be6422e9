//go:build cgo && !nopkcs11

package hsm

import (
	"sync"

	"github.com/miekg/pkcs11"
)

// FailCall returns a Fault that fails the k-th call (counting from 1) with the PKCS#11
// return value rv (a pkcs11.CKR_... constant) and lets every other call through.
func FailCall(k int, rv uint) Fault {
	var mu sync.Mutex
	n := 0
	return func(string) error {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n == k {
			return pkcs11.Error(rv)
		}
		return nil
	}
}

// RemoveToken returns a Fault that acts as if the token were pulled out just before the
// k-th call (counting from 1): from then on, calls on the slot fail with
// CKR_TOKEN_NOT_PRESENT, calls on a session with CKR_DEVICE_REMOVED (C_CloseSession with
// CKR_SESSION_HANDLE_INVALID), and only the module-wide C_GetInfo, C_GetSlotList and
// C_GetSlotInfo still answer.
func RemoveToken(k int) Fault {
	var mu sync.Mutex
	n := 0
	return func(call string) error {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n < k {
			return nil
		}
		switch call {
		case "C_GetInfo", "C_GetSlotList", "C_GetSlotInfo":
			return nil
		case "C_GetTokenInfo", "C_GetMechanismList", "C_GetMechanismInfo", "C_InitToken", "C_OpenSession":
			return pkcs11.Error(pkcs11.CKR_TOKEN_NOT_PRESENT)
		case "C_CloseSession":
			return pkcs11.Error(pkcs11.CKR_SESSION_HANDLE_INVALID)
		}
		return pkcs11.Error(pkcs11.CKR_DEVICE_REMOVED)
	}
}
