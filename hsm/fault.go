package hsm

import (
	"sync"

	"github.com/miekg/pkcs11"
)

// A Fault is consulted before every PKCS#11 call a Module makes, with the call's name
// ("C_Login", "C_Sign", "C_GenerateKeyPair", ...). A non-nil result fails that call as if
// the module had returned it (return a pkcs11.Error to act like the token); nil lets the
// call through. C_Initialize and C_Finalize, which Open and Close make once per process,
// are not consulted. Faults are for tests: they let a workflow's error paths run against
// a real token.
type Fault func(call string) error

// An Option changes how Open sets up a Module.
type Option func(*options)

type options struct {
	fault Fault
}

// WithFault makes the Module consult f before every PKCS#11 call. f may be called from
// several goroutines at once.
func WithFault(f Fault) Option {
	return func(o *options) { o.fault = f }
}

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

// CallLog records the PKCS#11 calls a Module makes, so a test can learn how many calls a
// workflow makes and then fail each of them in turn with FailCall or RemoveToken. Pass
// its Fault method to WithFault.
type CallLog struct {
	mu    sync.Mutex
	calls []string
}

// Fault records call and lets it through.
func (l *CallLog) Fault(call string) error {
	l.mu.Lock()
	l.calls = append(l.calls, call)
	l.mu.Unlock()
	return nil
}

// Count is the number of calls recorded.
func (l *CallLog) Count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.calls)
}

// Calls returns the names of the calls recorded, in order.
func (l *CallLog) Calls() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.calls...)
}
