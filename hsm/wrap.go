//go:build cgo && !nopkcs11

package hsm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"

	"github.com/custos-pki/custos/keyalg"
)

// ckmAESKeyWrapPad is CKM_AES_KEY_WRAP_PAD (RFC 5649), which wraps keys of any length, such
// as PKCS #8 private keys. github.com/miekg/pkcs11 defines it with this, the PKCS#11 v2.40
// value (0x210A), which SoftHSM2 uses too; the older 0x1091 is not used.
const ckmAESKeyWrapPad = pkcs11.CKM_AES_KEY_WRAP_PAD

// SecretKey is an AES key on the token that wraps and unwraps private keys. Unless made
// with Token, it is a session object: it never reaches the token's storage and is gone
// when its session closes.
type SecretKey struct {
	s       *Session
	h       pkcs11.ObjectHandle
	label   string
	trusted bool
}

// ImportAESKey puts key, a 32-byte AES-256 key, on the token as a sensitive,
// non-extractable key that can only wrap and unwrap. The caller zeroes key afterwards.
func (s *Session) ImportAESKey(ctx context.Context, key []byte, spec AESKeySpec) (*SecretKey, error) {
	op := fmt.Sprintf("import AES key %q", spec.Label)
	if err := s.begin(ctx, op); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return s.importAESKey(op, key, spec)
}

func (s *Session) importAESKey(op string, key []byte, spec AESKeySpec) (*SecretKey, error) {
	if len(key) != 32 {
		return nil, failf(op, s.label, fmt.Errorf("AES key is %d bytes", len(key)), "an AES-256 key is 32 bytes")
	}
	t := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, spec.Token),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, !spec.Trusted),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, spec.Label),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, key),
	}
	if len(spec.ID) > 0 {
		t = append(t, pkcs11.NewAttribute(pkcs11.CKA_ID, spec.ID))
	}
	notSO := failf(op, s.label, errors.New("not logged in as SO"), "only the SO may mark a key trusted: log in as SO first")
	if spec.Trusted {
		info, err := s.m.p.GetSessionInfo(s.h)
		if err != nil {
			return nil, s.fail(op, err)
		}
		if info.State != pkcs11.CKS_RW_SO_FUNCTIONS {
			return nil, notSO
		}
		t = append(t, pkcs11.NewAttribute(pkcs11.CKA_TRUSTED, true))
	}
	h, err := s.m.p.CreateObject(s.h, t)
	if err != nil {
		e := s.fail(op, err)
		if spec.Trusted && (code(err) == pkcs11.CKR_ATTRIBUTE_READ_ONLY || code(err) == pkcs11.CKR_USER_NOT_LOGGED_IN) {
			return nil, notSO
		}
		return nil, e
	}
	if spec.Trusted {
		// SoftHSM2 2.6.1 silently drops CKA_TRUSTED from a template when the SO is not
		// logged in, so check the key really is trusted.
		a, err := s.attributes(op, h, pkcs11.CKA_TRUSTED)
		if err != nil || !boolAttr(a[pkcs11.CKA_TRUSTED]) {
			_ = s.m.p.DestroyObject(s.h, h)
			if err != nil {
				return nil, err
			}
			return nil, notSO
		}
	}
	return &SecretKey{s: s, h: h, label: spec.Label, trusted: spec.Trusted}, nil
}

// Destroy removes the key from the token.
func (k *SecretKey) Destroy(ctx context.Context) error {
	op := fmt.Sprintf("destroy AES key %q", k.label)
	if err := k.s.begin(ctx, op); err != nil {
		return err
	}
	defer k.s.mu.Unlock()
	return k.s.fail(op, k.s.m.p.DestroyObject(k.s.h, k.h))
}

// Wrap wraps the private key with CKA_ID keyID under kek (CKM_AES_KEY_WRAP_PAD) and returns
// the blob. The user must be logged in. The token refuses (ErrNotWrappable) a key made
// not extractable, and a key made wrap-with-trusted when kek is not trusted.
func (s *Session) Wrap(ctx context.Context, kek *SecretKey, keyID []byte) ([]byte, error) {
	op := fmt.Sprintf("wrap key %x", keyID)
	if err := s.begin(ctx, op); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return s.wrap(ctx, op, kek, keyID)
}

func (s *Session) wrap(ctx context.Context, op string, kek *SecretKey, keyID []byte) ([]byte, error) {
	if kek.s.slot != s.slot {
		return nil, failf(op, s.label, errors.New("wrapping key is on another token"), "import the wrapping key into this token")
	}
	if len(keyID) == 0 {
		return nil, failf(op, s.label, errors.New("no key id given"), "name the private key by its CKA_ID")
	}
	key, err := s.findOne(ctx, op, Match{Class: ClassPrivateKey, ID: keyID})
	if err != nil {
		return nil, err
	}
	if err := s.next(ctx, op); err != nil {
		return nil, err
	}
	blob, err := s.m.p.WrapKey(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(ckmAESKeyWrapPad, nil)}, kek.h, pkcs11.ObjectHandle(key.handle))
	if err != nil {
		e := s.fail(op, err)
		if code(err) == pkcs11.CKR_KEY_NOT_WRAPPABLE {
			if key.WrapWithTrusted && !kek.trusted {
				e.(*Error).Hint = "the key may be wrapped only under a key the SO marked trusted, and this wrapping key is not"
			} else {
				// SoftHSM 2.6.1, for one, cannot wrap Ed25519 private keys at all.
				e.(*Error).Hint = fmt.Sprintf("this token cannot wrap %s private keys with CKM_AES_KEY_WRAP_PAD: a key that must be backed up needs an algorithm the token can wrap", key.KeyType)
			}
		}
		return nil, e
	}
	return blob, nil
}

// Unwrap unwraps blob under kek into the token as a private key with the same protection
// as a wrappable generated key (token, private, sensitive, sign-only, extractable only
// wrapped under a trusted key), stores spec.Public beside it as its public key object,
// and checks that the two belong together by signing with one and verifying with the
// other; a mismatch removes both. The user must be logged in.
func (s *Session) Unwrap(ctx context.Context, kek *SecretKey, blob []byte, spec UnwrapSpec) (*Signer, error) {
	op := fmt.Sprintf("unwrap key %q", spec.Label)
	if err := s.begin(ctx, op); err != nil {
		return nil, err
	}
	locked := true
	defer func() {
		if locked {
			s.mu.Unlock()
		}
	}()
	if kek.s.slot != s.slot {
		return nil, failf(op, s.label, errors.New("unwrapping key is on another token"), "import the unwrapping key into this token")
	}
	if len(blob) == 0 {
		return nil, failf(op, s.label, errors.New("wrapped key is empty"), "give the backup blob's contents")
	}
	if len(spec.ID) == 0 {
		return nil, failf(op, s.label, errors.New("no key id given"), "give the restored key a CKA_ID")
	}
	kt, ok := keyTypeOf(spec.Public)
	if !ok {
		return nil, failf(op, s.label, fmt.Errorf("public key of type %T is not supported", spec.Public), "give the RSA, ECDSA or Ed25519 public key of the wrapped key")
	}
	pubT, err := publicKeyTemplate(spec.Public, spec.ID, spec.Label)
	if err != nil {
		return nil, failf(op, s.label, err, "give the RSA, ECDSA or Ed25519 public key of the wrapped key")
	}
	if err := s.refuseTakenID(ctx, op, spec.ID); err != nil {
		return nil, err
	}
	privT := append(privateKeyTemplate(spec.ID, spec.Label, true), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, kt))
	if err := s.next(ctx, op); err != nil {
		return nil, err
	}
	privH, err := s.m.p.UnwrapKey(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(ckmAESKeyWrapPad, nil)}, kek.h, blob, privT)
	if err != nil {
		e := s.fail(op, err).(*Error)
		switch code(err) {
		case pkcs11.CKR_WRAPPED_KEY_INVALID, pkcs11.CKR_WRAPPED_KEY_LEN_RANGE, pkcs11.CKR_ENCRYPTED_DATA_INVALID,
			pkcs11.CKR_GENERAL_ERROR, pkcs11.CKR_FUNCTION_FAILED:
			// SoftHSM2 reports a failed RFC 5649 integrity check as CKR_GENERAL_ERROR.
			e.Err = ErrWrappedKeyInvalid
			e.Hint = "the blob is damaged or was wrapped under another key-encryption key: compare its SHA-256 with the one recorded at backup"
		case pkcs11.CKR_TEMPLATE_INCONSISTENT, pkcs11.CKR_ATTRIBUTE_VALUE_INVALID, pkcs11.CKR_KEY_TYPE_INCONSISTENT:
			e.Hint = "the wrapped key is not of the same type as the public key given"
		}
		return nil, e
	}
	pubH, err := s.m.p.CreateObject(s.h, pubT)
	if err != nil {
		_ = s.m.p.DestroyObject(s.h, privH)
		return nil, s.fail(op, err)
	}
	k := &Signer{s: s, priv: privH, pub: spec.Public, alg: algorithmOf(spec.Public), id: spec.ID, label: spec.Label}
	locked = false
	s.mu.Unlock()
	if err := checkPair(ctx, k); err != nil {
		s.mu.Lock()
		_ = s.m.p.DestroyObject(s.h, privH)
		_ = s.m.p.DestroyObject(s.h, pubH)
		s.mu.Unlock()
		return nil, failf(op, s.label, errors.New("the unwrapped key does not match the public key given"), "%v", err)
	}
	return k, nil
}

// checkPair signs a random message with k and verifies it with k's public key.
func checkPair(ctx context.Context, k *Signer) error {
	msg := make([]byte, 32)
	if _, err := rand.Read(msg); err != nil {
		return err
	}
	digest := sha256.Sum256(msg)
	switch pub := k.pub.(type) {
	case *ecdsa.PublicKey:
		sig, err := k.SignContext(ctx, digest[:], crypto.SHA256)
		if err != nil {
			return err
		}
		if !ecdsa.VerifyASN1(pub, digest[:], sig) {
			return errors.New("test signature does not verify")
		}
	case *rsa.PublicKey:
		sig, err := k.SignContext(ctx, digest[:], crypto.SHA256)
		if err != nil {
			return err
		}
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
			return errors.New("test signature does not verify")
		}
	case ed25519.PublicKey:
		sig, err := k.SignContext(ctx, msg, crypto.Hash(0))
		if err != nil {
			return err
		}
		if !ed25519.Verify(pub, msg, sig) {
			return errors.New("test signature does not verify")
		}
	}
	return nil
}

// algorithmOf names pub's Algorithm, or "" when it is none of them.
func algorithmOf(pub crypto.PublicKey) keyalg.Algorithm {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 3072:
			return keyalg.RSA3072
		case 4096:
			return keyalg.RSA4096
		}
	case *ecdsa.PublicKey:
		switch k.Curve.Params().Name {
		case "P-256":
			return keyalg.ECDSAP256
		case "P-384":
			return keyalg.ECDSAP384
		}
	case ed25519.PublicKey:
		return keyalg.Ed25519
	}
	return ""
}

// BackupKey wraps the private key with CKA_ID keyID under kek, a 32-byte AES-256
// key-encryption key, and returns the blob. The key must have been generated Wrappable
// (CKA_WRAP_WITH_TRUSTED), so only a trusted key can wrap it; BackupKey makes kek that
// trusted key for the moment it is needed and never stores it:
//
//  1. log out whoever is logged in, and log in as SO with soPIN;
//  2. import kek as a trusted session object (only the SO may set CKA_TRUSTED; the SO can
//     only make public objects, and public session objects survive logout);
//  3. log out the SO and log in as the user with userPIN, on the same session;
//  4. wrap the key under kek (CKM_AES_KEY_WRAP_PAD);
//  5. destroy kek and log out.
//
// The session is left logged out, whatever happens. Use it on one session only while it
// runs: PKCS#11 login state is shared by every session of the process with the token.
func (s *Session) BackupKey(ctx context.Context, soPIN, userPIN, kek, keyID []byte) ([]byte, error) {
	op := fmt.Sprintf("back up key %x", keyID)
	if err := s.begin(ctx, op); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	defer func() { _ = s.logout(op) }()

	if err := s.logout(op); err != nil {
		return nil, err
	}
	if err := s.next(ctx, op); err != nil {
		return nil, err
	}
	if err := s.login(op, SO, soPIN); err != nil {
		return nil, err
	}
	k, err := s.importAESKey(op, kek, AESKeySpec{Label: "custos backup key-encryption key", Trusted: true})
	if err != nil {
		return nil, err
	}
	// Destroyed on every path. Should that fail (token gone), the session object still
	// dies with the session and was never in the token's storage.
	defer func() { _ = s.m.p.DestroyObject(s.h, k.h) }()
	if err := s.logout(op); err != nil {
		return nil, err
	}
	if err := s.next(ctx, op); err != nil {
		return nil, err
	}
	if err := s.login(op, User, userPIN); err != nil {
		return nil, err
	}
	key, err := s.findOne(ctx, op, Match{Class: ClassPrivateKey, ID: keyID})
	if err != nil {
		return nil, err
	}
	if !key.WrapWithTrusted || !key.Extractable {
		return nil, failf(op, s.label, ErrNotWrappable, "%s was not generated to be backed up (it must be extractable only under a trusted key)", key)
	}
	return s.wrap(ctx, op, k, keyID)
}

// RestoreKey unwraps blob, made by BackupKey, under kek into the token as Unwrap does. The
// key-encryption key exists on the token only for the call, as a session object. The
// user must be logged in.
func (s *Session) RestoreKey(ctx context.Context, kek, blob []byte, spec UnwrapSpec) (*Signer, error) {
	op := fmt.Sprintf("restore key %q", spec.Label)
	if err := s.begin(ctx, op); err != nil {
		return nil, err
	}
	k, err := s.importAESKey(op, kek, AESKeySpec{Label: "custos restore key-encryption key"})
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	defer func() {
		s.mu.Lock()
		_ = s.m.p.DestroyObject(s.h, k.h)
		s.mu.Unlock()
	}()
	return s.Unwrap(ctx, k, blob, spec)
}
