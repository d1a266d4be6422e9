//go:build !cgo || nopkcs11

package hsm

// This file stands in for the PKCS#11 layer in a build without it (CGO_ENABLED=0, or
// -tags nopkcs11), such as the auditor's static verifier: the packages that use hsm still
// build, and every attempt to reach a token fails with ErrNoPKCS11. Open is the way in, and
// it always fails, so the methods below are never reached; they fail the same way if they are.

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"io"

	"github.com/custos-pki/custos/keyalg"
)

func noPKCS11(op string) error {
	return &Error{Op: op, Err: ErrNoPKCS11, Hint: "use the full build of Custos (made with cgo) to work with tokens"}
}

// Module is an open PKCS#11 module; in this build none can be opened.
type Module struct{}

// Open fails: this build has no PKCS#11 support.
func Open(path string, opts ...Option) (*Module, error) {
	return nil, noPKCS11("open PKCS#11 module " + path)
}

// FailCall returns a Fault that fails every call: this build makes none.
func FailCall(k int, rv uint) Fault { return func(string) error { return noPKCS11("fail a call") } }

// RemoveToken returns a Fault that fails every call: this build makes none.
func RemoveToken(k int) Fault { return func(string) error { return noPKCS11("remove a token") } }

func (m *Module) Path() string { return "" }
func (m *Module) Close() error { return nil }
func (m *Module) Info(ctx context.Context) (ModuleInfo, error) {
	return ModuleInfo{}, noPKCS11("read module information")
}
func (m *Module) Slots(ctx context.Context) ([]Slot, error) { return nil, noPKCS11("list slots") }
func (m *Module) TokenByLabel(ctx context.Context, label string) (Slot, error) {
	return Slot{}, noPKCS11("find token")
}
func (m *Module) FreeSlot(ctx context.Context) (Slot, error) {
	return Slot{}, noPKCS11("find a free slot")
}
func (m *Module) InitToken(ctx context.Context, slotID uint, label string, soPIN, userPIN []byte) (Slot, error) {
	return Slot{}, noPKCS11("initialise token")
}
func (m *Module) ReinitToken(ctx context.Context, label string, soPIN []byte, newLabel string, userPIN []byte) (Slot, error) {
	return Slot{}, noPKCS11("re-initialise token")
}
func (m *Module) OpenSession(ctx context.Context, label string) (*Session, error) {
	return nil, noPKCS11("open a session")
}
func (m *Module) OpenSlotSession(ctx context.Context, slotID uint) (*Session, error) {
	return nil, noPKCS11("open a session")
}

// Session is a session with a token; in this build there are none.
type Session struct{}

func (s *Session) Label() string { return "" }
func (s *Session) SlotID() uint  { return 0 }
func (s *Session) Close() error  { return nil }
func (s *Session) Login(ctx context.Context, who UserType, pin []byte) error {
	return noPKCS11("log in")
}
func (s *Session) Logout(ctx context.Context) error { return noPKCS11("log out") }
func (s *Session) ChangePIN(ctx context.Context, who UserType, oldPIN, newPIN []byte) error {
	return noPKCS11("change PIN")
}
func (s *Session) InitUserPIN(ctx context.Context, soPIN, userPIN []byte) error {
	return noPKCS11("set the user PIN")
}
func (s *Session) TokenInfo(ctx context.Context) (TokenInfo, error) {
	return TokenInfo{}, noPKCS11("read token information")
}
func (s *Session) Random(ctx context.Context, n int) ([]byte, error) {
	return nil, noPKCS11("draw random bytes")
}
func (s *Session) Objects(ctx context.Context) ([]Object, error) {
	return nil, noPKCS11("list objects")
}
func (s *Session) Find(ctx context.Context, q Match) ([]Object, error) {
	return nil, noPKCS11("find objects")
}
func (s *Session) Destroy(ctx context.Context, q Match) (int, error) {
	return 0, noPKCS11("destroy objects")
}
func (s *Session) DestroyObject(ctx context.Context, o Object) error {
	return noPKCS11("destroy object")
}
func (s *Session) Remaining(ctx context.Context, id []byte, label string) ([]Object, error) {
	return nil, noPKCS11("look for remaining objects")
}
func (s *Session) IdentityObjects(ctx context.Context, id []byte, certs []*x509.Certificate) ([]IdentityObject, []IdentitySearch, error) {
	return nil, nil, noPKCS11("look for the objects of a key identity")
}
func (s *Session) StoreCertificate(ctx context.Context, cert *x509.Certificate, id []byte, label string) error {
	return noPKCS11("store certificate")
}
func (s *Session) Certificate(ctx context.Context, q Match) (*x509.Certificate, error) {
	return nil, noPKCS11("read certificate")
}
func (s *Session) StoreData(ctx context.Context, d DataObject) error {
	return noPKCS11("store data object")
}
func (s *Session) Data(ctx context.Context, application, label string) (DataObject, error) {
	return DataObject{}, noPKCS11("read data object")
}
func (s *Session) GenerateKeyPair(ctx context.Context, spec KeySpec) (*Signer, error) {
	return nil, noPKCS11("generate key pair")
}
func (s *Session) Signer(ctx context.Context, q Match) (*Signer, error) {
	return nil, noPKCS11("find key")
}
func (s *Session) ImportAESKey(ctx context.Context, key []byte, spec AESKeySpec) (*SecretKey, error) {
	return nil, noPKCS11("import AES key")
}
func (s *Session) Wrap(ctx context.Context, kek *SecretKey, keyID []byte) ([]byte, error) {
	return nil, noPKCS11("wrap key")
}
func (s *Session) Unwrap(ctx context.Context, kek *SecretKey, blob []byte, spec UnwrapSpec) (*Signer, error) {
	return nil, noPKCS11("unwrap key")
}
func (s *Session) BackupKey(ctx context.Context, soPIN, userPIN, kek, keyID []byte) ([]byte, error) {
	return nil, noPKCS11("back up key")
}
func (s *Session) RestoreKey(ctx context.Context, kek, blob []byte, spec UnwrapSpec) (*Signer, error) {
	return nil, noPKCS11("restore key")
}

// Signer is a private key on a token; in this build there are none.
type Signer struct{}

func (k *Signer) Public() crypto.PublicKey    { return nil }
func (k *Signer) Algorithm() keyalg.Algorithm { return "" }
func (k *Signer) ID() []byte                  { return nil }
func (k *Signer) Label() string               { return "" }
func (k *Signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return nil, noPKCS11("sign")
}
func (k *Signer) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return nil, noPKCS11("sign")
}

// SecretKey is an AES key on a token; in this build there are none.
type SecretKey struct{}

func (k *SecretKey) Destroy(ctx context.Context) error { return noPKCS11("destroy AES key") }

// CanReinit fails: this build has no PKCS#11 support.
func (m *Module) CanReinit(ctx context.Context) error {
	return noPKCS11("check the module can re-initialise tokens")
}

// CodeName is a return value's number in hex: this build does not know their names.
func CodeName(code uint) string { return fmt.Sprintf("return value 0x%X", code) }
