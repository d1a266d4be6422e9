package registry

import (
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// SerialNumber is a certificate serial as the registry keys it: the big-endian bytes of a
// non-negative serial without leading zeros (zero is the single byte 0x00). One canonical form
// makes (issuer, serial) unique however the serial was first written.
type SerialNumber []byte

// SerialFromBig converts a certificate's serial. RFC 5280 serials are positive; a negative
// one cannot be registered.
func SerialFromBig(n *big.Int) (SerialNumber, error) {
	if n == nil || n.Sign() < 0 {
		return nil, fmt.Errorf("%w: certificate serial %v is negative or missing", ErrInvalid, n)
	}
	if n.Sign() == 0 {
		return SerialNumber{0}, nil
	}
	return SerialNumber(n.Bytes()), nil
}

// ParseSerial reads a serial written in hex, as openssl and `custos device show` print it
// (case and colons do not matter, nor an odd number of digits).
func ParseSerial(s string) (SerialNumber, error) {
	h := strings.ReplaceAll(strings.TrimSpace(s), ":", "")
	h = strings.TrimPrefix(strings.TrimPrefix(h, "0x"), "0X")
	if h == "" {
		return nil, fmt.Errorf("%w: empty certificate serial", ErrInvalid)
	}
	n, ok := new(big.Int).SetString(h, 16)
	if !ok {
		return nil, fmt.Errorf("%w: certificate serial %q is not hex", ErrInvalid, s)
	}
	return SerialFromBig(n)
}

// Big is the serial as a number, for x509.
func (s SerialNumber) Big() *big.Int { return new(big.Int).SetBytes(s) }

// String is lower-case hex with an even number of digits.
func (s SerialNumber) String() string { return hex.EncodeToString(s) }

// canonical checks that s is in the registry's form.
func (s SerialNumber) canonical() error {
	switch {
	case len(s) == 0:
		return fmt.Errorf("%w: empty certificate serial", ErrInvalid)
	case len(s) > 1 && s[0] == 0:
		return fmt.Errorf("%w: certificate serial %s has a leading zero byte (use SerialFromBig)", ErrInvalid, s)
	case len(s) > 20:
		// RFC 5280 4.1.2.2: at most 20 octets.
		return fmt.Errorf("%w: certificate serial %s is longer than 20 bytes", ErrInvalid, s)
	}
	return nil
}

// KeyState is a key's state in the life cycle of NIST SP 800-57 Part 1, section 5.3.
type KeyState string

const (
	KeyPreActivation KeyState = "pre-activation" // generated, not yet in use
	KeyActive        KeyState = "active"         // in use: certified, signing
	KeyDeactivated   KeyState = "deactivated"    // no longer used to sign; kept until destroyed
	KeyCompromised   KeyState = "compromised"    // may be known to others (a lost device)
	KeyDestroyed     KeyState = "destroyed"      // erased; cannot be recovered
)

// keyTransitions are the moves SP 800-57 allows between the states Custos uses. Destroyed is
// final; an active key is deactivated before it is destroyed.
var keyTransitions = map[KeyState][]KeyState{
	KeyPreActivation: {KeyActive, KeyCompromised, KeyDestroyed},
	KeyActive:        {KeyDeactivated, KeyCompromised},
	KeyDeactivated:   {KeyCompromised, KeyDestroyed},
	KeyCompromised:   {KeyDestroyed},
	KeyDestroyed:     nil,
}

// Valid reports whether s is one of the five states.
func (s KeyState) Valid() bool { _, ok := keyTransitions[s]; return ok }

// CanBecome reports whether SP 800-57 allows the move from s to next in one step.
func (s KeyState) CanBecome(next KeyState) bool {
	for _, n := range keyTransitions[s] {
		if n == next {
			return true
		}
	}
	return false
}

// pathTo is the states a key passes through from s to target, target last: an active key
// goes through deactivated on its way to destroyed. nil if target cannot be reached or s is
// already target.
func (s KeyState) pathTo(target KeyState) []KeyState {
	if s == target {
		return nil
	}
	if s.CanBecome(target) {
		return []KeyState{target}
	}
	if s == KeyActive && target == KeyDestroyed {
		return []KeyState{KeyDeactivated, KeyDestroyed}
	}
	return nil
}

// LifeStatus is whether a CA, a role certificate's key or a quorum is still in use.
type LifeStatus string

const (
	StatusActive    LifeStatus = "active"
	StatusDestroyed LifeStatus = "destroyed"
)

// KeyLocation says where a private key lives: which PKCS#11 token and which object on it.
// It never holds the PIN that unlocks the token.
type KeyLocation struct {
	TokenLabel string // CKA_LABEL of the token (the root token's label is the ceremony id)
	KeyID      []byte // CKA_ID shared by the key pair's objects and its certificate on the token
	Algorithm  string // the plan's name for it: ecdsa-p256, ecdsa-p384, rsa-3072, rsa-4096, ed25519
}

// String is for messages: `token "acme-ops" key 3f2a... (ecdsa-p384)`.
func (k KeyLocation) String() string {
	return fmt.Sprintf("token %q key %x (%s)", k.TokenLabel, k.KeyID, k.Algorithm)
}

// Times are stored as Unix seconds, UTC; the zero time.Time is stored as NULL.

func unix(t time.Time) int64 { return t.Unix() }

func unixOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Unix()
}

func fromUnix(s int64) time.Time { return time.Unix(s, 0).UTC() }

// nullTime scans a nullable time column.
type nullTime struct{ t *time.Time }

func (n nullTime) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*n.t = time.Time{}
	case int64:
		*n.t = fromUnix(x)
	default:
		return fmt.Errorf("time column holds %T", v)
	}
	return nil
}

// nowOr is t, or the present when t is zero, to the second.
func nowOr(t time.Time) time.Time {
	if t.IsZero() {
		t = time.Now()
	}
	return t.Truncate(time.Second).UTC()
}

// checkID validates an id a person types on the command line (issuer, run, ceremony): not
// empty, no white space, slash or control character, at most 128 bytes.
func checkID(what, id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	}
	if len(id) > 128 {
		return fmt.Errorf("%w: %s %.40q... is longer than 128 bytes", ErrInvalid, what, id)
	}
	for _, c := range id {
		if c <= ' ' || c == '/' || c == '\\' || c == 0x7f {
			return fmt.Errorf("%w: %s %q contains a space, slash or control character", ErrInvalid, what, id)
		}
	}
	return nil
}

func checkHash(what string, h []byte) error {
	if len(h) == 0 || len(h) > 64 {
		return fmt.Errorf("%w: %s must be 1 to 64 bytes, got %d", ErrInvalid, what, len(h))
	}
	return nil
}
