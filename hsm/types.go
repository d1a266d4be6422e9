package hsm

import (
	"crypto"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/custos-pki/custos/keyalg"
)

// The values this package takes and returns. They need no PKCS#11 library, so they are the
// same in a build without one.

// UserType is who logs in to a token: its security officer or its user.
type UserType uint

const (
	SO   UserType = 0 // CKU_SO: the security officer, who initialises the token and sets the user PIN
	User UserType = 1 // CKU_USER: the user, who uses the keys
)

func (u UserType) String() string {
	switch u {
	case SO:
		return "SO"
	case User:
		return "user"
	}
	return fmt.Sprintf("user type %d", uint(u))
}

// Class is the kind of a token object.
type Class uint

// The object classes Custos reads and writes. AnyClass, the zero value, matches every class.
const (
	AnyClass Class = iota
	ClassPrivateKey
	ClassPublicKey
	ClassSecretKey
	ClassCertificate
	ClassData
)

func (c Class) String() string {
	switch c {
	case AnyClass:
		return "any"
	case ClassPrivateKey:
		return "private-key"
	case ClassPublicKey:
		return "public-key"
	case ClassSecretKey:
		return "secret-key"
	case ClassCertificate:
		return "certificate"
	case ClassData:
		return "data"
	}
	return fmt.Sprintf("class %d", uint(c))
}

// Object describes one object on a token: what it is and how it is protected.
type Object struct {
	Class       Class
	Label       string
	ID          []byte
	KeyType     string // for keys: "EC", "RSA", "EC_EDWARDS", "AES", ... (CKK_ names without the prefix)
	Application string // for data objects: CKA_APPLICATION

	Token            bool // stored on the token (not a session object)
	Private          bool // readable only after user login
	Sensitive        bool // key value never readable in clear
	Extractable      bool // key may be wrapped out of the token
	AlwaysSensitive  bool // sensitive since the key was made
	NeverExtractable bool // never extractable since the key was made
	WrapWithTrusted  bool // may be wrapped only under a key marked trusted
	Trusted          bool // marked trusted by the SO (a wrapping key that may wrap such keys)
	Local            bool // generated on the token (CKA_LOCAL), not imported or unwrapped

	handle uint // the PKCS#11 object handle, valid in the session that found it
}

// IDHex is the object's CKA_ID in lower-case hex.
func (o Object) IDHex() string { return hex.EncodeToString(o.ID) }

// String is one line such as `private-key "root" id=0a1b EC private,sensitive,...`.
func (o Object) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q", o.Class, o.Label)
	if len(o.ID) > 0 {
		fmt.Fprintf(&b, " id=%s", o.IDHex())
	}
	if o.KeyType != "" {
		fmt.Fprintf(&b, " %s", o.KeyType)
	}
	if o.Application != "" {
		fmt.Fprintf(&b, " application=%q", o.Application)
	}
	var flags []string
	add := func(on bool, name string) {
		if on {
			flags = append(flags, name)
		}
	}
	add(o.Token, "token")
	add(o.Private, "private")
	add(o.Sensitive, "sensitive")
	add(o.Extractable, "extractable")
	add(o.AlwaysSensitive, "always-sensitive")
	add(o.NeverExtractable, "never-extractable")
	add(o.WrapWithTrusted, "wrap-with-trusted")
	add(o.Trusted, "trusted")
	add(o.Local, "local")
	if len(flags) > 0 {
		b.WriteString(" ")
		b.WriteString(strings.Join(flags, ","))
	}
	return b.String()
}

// Match selects objects: every field that is set must match. The zero Match matches
// every object the session can see.
type Match struct {
	Class Class
	ID    []byte
	Label string
}

func (q Match) String() string {
	var s []string
	if q.Class != AnyClass {
		s = append(s, q.Class.String())
	}
	if len(q.ID) > 0 {
		s = append(s, "id "+hex.EncodeToString(q.ID))
	}
	if q.Label != "" {
		s = append(s, fmt.Sprintf("label %q", q.Label))
	}
	if len(s) == 0 {
		return "every object"
	}
	return strings.Join(s, ", ")
}

// DataObject is a CKO_DATA object: bytes an application keeps on a token. A private data
// object is readable only after user login, which is how a custodian's share is kept on
// the custodian's own PIN-protected token.
type DataObject struct {
	Application string // CKA_APPLICATION: who wrote it, such as "custos"
	Label       string
	Value       []byte
	Private     bool
	ReadOnly    bool // CKA_MODIFIABLE false: its value can never be changed, only the object destroyed
}

// KeySpec says what key pair GenerateKeyPair makes.
type KeySpec struct {
	Algorithm keyalg.Algorithm
	ID        []byte // CKA_ID of both halves: how the key is found again
	Label     string // CKA_LABEL of both halves
	// Wrappable lets the private key leave the token, but only wrapped under a key the SO
	// marked trusted (CKA_EXTRACTABLE and CKA_WRAP_WITH_TRUSTED). Otherwise it can never
	// leave (CKA_EXTRACTABLE false).
	Wrappable bool
}

// AESKeySpec says how ImportAESKey stores a key.
type AESKeySpec struct {
	Label string
	ID    []byte
	// Trusted marks the key CKA_TRUSTED, so that it may wrap keys made with
	// CKA_WRAP_WITH_TRUSTED. Only the SO may set it: the SO must be logged in, and the key
	// is then a public object (the SO cannot create private ones), still sensitive.
	Trusted bool
	// Token keeps the key on the token. Leave it false for a key-encryption key derived
	// from a quorum secret: it should exist only while it is used.
	Token bool
}

// UnwrapSpec says what Unwrap makes of a wrapped private key.
type UnwrapSpec struct {
	ID     []byte           // CKA_ID of the restored key pair
	Label  string           // CKA_LABEL of the restored key pair
	Public crypto.PublicKey // the key's public half, such as from its certificate
}

// ModuleInfo describes the PKCS#11 library itself.
type ModuleInfo struct {
	Manufacturer    string
	Description     string
	LibraryVersion  Version
	CryptokiVersion Version // the PKCS#11 version the library implements
}

// Version is a hardware, firmware or library version.
type Version struct{ Major, Minor byte }

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// Slot is a reader or partition of the module, with the token in it if one is present.
type Slot struct {
	ID           uint
	Description  string
	TokenPresent bool
	Token        TokenInfo // zero when no token is present
}

// TokenInfo identifies a token and says what state it is in.
type TokenInfo struct {
	Label           string
	Manufacturer    string
	Model           string
	Serial          string
	HardwareVersion Version
	FirmwareVersion Version
	MinPINLen       int
	MaxPINLen       int
	Flags           TokenFlags
}

// TokenFlags are the token's state flags that matter to a person at the workstation.
type TokenFlags struct {
	Initialized        bool // CKF_TOKEN_INITIALIZED: has a label and SO PIN
	LoginRequired      bool // CKF_LOGIN_REQUIRED
	WriteProtected     bool // CKF_WRITE_PROTECTED
	UserPINInitialized bool // CKF_USER_PIN_INITIALIZED
	UserPINCountLow    bool // CKF_USER_PIN_COUNT_LOW: a wrong user PIN was entered since the last good one
	UserPINFinalTry    bool // CKF_USER_PIN_FINAL_TRY: one more wrong user PIN locks it
	UserPINLocked      bool // CKF_USER_PIN_LOCKED
	UserPINToBeChanged bool // CKF_USER_PIN_TO_BE_CHANGED
	SOPINCountLow      bool // CKF_SO_PIN_COUNT_LOW
	SOPINFinalTry      bool // CKF_SO_PIN_FINAL_TRY
	SOPINLocked        bool // CKF_SO_PIN_LOCKED
	SOPINToBeChanged   bool // CKF_SO_PIN_TO_BE_CHANGED
}

// String lists the flags that are set, such as "initialized,login-required,user-pin-initialized".
func (f TokenFlags) String() string {
	var s []string
	add := func(on bool, name string) {
		if on {
			s = append(s, name)
		}
	}
	add(f.Initialized, "initialized")
	add(f.LoginRequired, "login-required")
	add(f.WriteProtected, "write-protected")
	add(f.UserPINInitialized, "user-pin-initialized")
	add(f.UserPINCountLow, "user-pin-count-low")
	add(f.UserPINFinalTry, "user-pin-final-try")
	add(f.UserPINLocked, "user-pin-locked")
	add(f.UserPINToBeChanged, "user-pin-to-be-changed")
	add(f.SOPINCountLow, "so-pin-count-low")
	add(f.SOPINFinalTry, "so-pin-final-try")
	add(f.SOPINLocked, "so-pin-locked")
	add(f.SOPINToBeChanged, "so-pin-to-be-changed")
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ",")
}

// IdentityObject is an object of a key identity found on a token, with every way it was found.
type IdentityObject struct {
	Object
	FoundBy []string // "key id", "certificate value", "public key", "id of a found object"
}

// IdentitySearch is one search for a key identity's objects, as a record lists it.
type IdentitySearch struct {
	Search string // what was looked for, in words
	Found  int    // how many objects it found
}
