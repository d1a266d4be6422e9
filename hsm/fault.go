package hsm

import "sync"

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
	fault     Fault
	tryLimits bool
}

// TryKnownLimits makes the Module attempt what its module is known not to do (re-initialising
// an initialised token on tpm2-pkcs11), instead of refusing before the token is asked: for
// custos hsm check, which measures what a module does on a spare token.
func TryKnownLimits() Option {
	return func(o *options) { o.tryLimits = true }
}

// WithFault makes the Module consult f before every PKCS#11 call. f may be called from
// several goroutines at once.
func WithFault(f Fault) Option {
	return func(o *options) { o.fault = f }
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
