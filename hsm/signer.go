//go:build cgo && !nopkcs11

package hsm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/miekg/pkcs11"

	"github.com/custos-pki/custos/keyalg"
)

// Signer is a private key on a token, usable as a crypto.Signer. It signs through the
// session it was found with, so it may be used from several goroutines, which take turns;
// the user must stay logged in.
type Signer struct {
	s     *Session
	priv  pkcs11.ObjectHandle
	pub   crypto.PublicKey
	alg   keyalg.Algorithm
	id    []byte
	label string
}

var _ crypto.Signer = (*Signer)(nil)

// Public returns the public key, as read from the token: *ecdsa.PublicKey,
// *rsa.PublicKey or ed25519.PublicKey.
func (k *Signer) Public() crypto.PublicKey { return k.pub }

// Algorithm is the key's algorithm, or "" for a key of a type or size Custos does not
// generate (such as RSA-2048 on a device being decommissioned).
func (k *Signer) Algorithm() keyalg.Algorithm { return k.alg }

// ID is the key's CKA_ID.
func (k *Signer) ID() []byte { return append([]byte(nil), k.id...) }

// Label is the key's CKA_LABEL.
func (k *Signer) Label() string { return k.label }

// Sign signs digest as crypto.Signer says: ECDSA signatures come back ASN.1 DER encoded,
// RSA uses PKCS #1 v1.5 unless opts is *rsa.PSSOptions, and Ed25519 signs the whole
// message (opts.HashFunc() must be 0). rand is ignored: the token uses its own RNG.
func (k *Signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return k.SignContext(context.Background(), digest, opts)
}

// SignContext is Sign with a context, checked before the token is asked.
func (k *Signer) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	op := fmt.Sprintf("sign with key %q", k.label)
	if opts == nil {
		return nil, failf(op, k.s.label, errors.New("no signer options"), "pass the hash used, such as crypto.SHA256")
	}
	h := opts.HashFunc()
	var mech *pkcs11.Mechanism
	input := digest
	switch pub := k.pub.(type) {
	case *ecdsa.PublicKey:
		// CKM_ECDSA signs its input as given. Only a whole digest is passed: tpm2-pkcs11
		// refuses input that is not of a digest's size.
		if err := checkDigest(h, digest); err != nil {
			return nil, failf(op, k.s.label, err, "hash the message first and pass the hash in opts")
		}
		mech = pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)
	case *rsa.PublicKey:
		if err := checkDigest(h, digest); err != nil {
			return nil, failf(op, k.s.label, err, "hash the message first and pass the hash in opts")
		}
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			m, err := pssMechanism(pub, h, pss.SaltLength)
			if err != nil {
				return nil, failf(op, k.s.label, err, "use SHA-256, SHA-384 or SHA-512 and a salt no longer than the key allows")
			}
			mech = m
		} else {
			prefix, ok := digestInfoPrefix[h]
			if !ok {
				return nil, failf(op, k.s.label, fmt.Errorf("hash %v is not supported for RSA signatures", h), "use SHA-256, SHA-384 or SHA-512")
			}
			input = append(append(make([]byte, 0, len(prefix)+len(digest)), prefix...), digest...)
			mech = pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil)
		}
	case ed25519.PublicKey:
		if h != 0 {
			return nil, failf(op, k.s.label, errors.New("Ed25519ph (pre-hashed Ed25519) is not supported"), "pass the whole message and crypto.Hash(0)")
		}
		if eo, ok := opts.(*ed25519.Options); ok && eo.Context != "" {
			return nil, failf(op, k.s.label, errors.New("Ed25519ctx (Ed25519 with a context string) is not supported"), "sign without a context")
		}
		mech = pkcs11.NewMechanism(ckmEdDSA, nil)
	default:
		return nil, failf(op, k.s.label, errors.New("unsupported key type"), "the key is %T", k.pub)
	}

	s := k.s
	if err := s.begin(ctx, op); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	err := s.m.p.SignInit(s.h, []*pkcs11.Mechanism{mech}, k.priv)
	if c := code(err); c == pkcs11.CKR_OBJECT_HANDLE_INVALID || c == pkcs11.CKR_KEY_HANDLE_INVALID {
		// Modules may drop the handles of private objects at logout (SoftHSM2 does), so a
		// Signer that outlived a logout and login finds its key again, once.
		h, ferr := k.refind(op)
		if ferr != nil {
			return nil, ferr
		}
		err = s.m.p.SignInit(s.h, []*pkcs11.Mechanism{mech}, h)
	}
	if err != nil {
		e := s.fail(op, err)
		if errors.Is(e, ErrMechanismUnsupported) {
			e.(*Error).Hint = "this token cannot make this kind of signature with this key"
		}
		return nil, e
	}
	sig, err := s.m.p.Sign(s.h, input)
	if err != nil {
		return nil, s.fail(op, err)
	}
	if _, ok := k.pub.(*ecdsa.PublicKey); ok {
		der, err := ecdsaDER(sig)
		if err != nil {
			return nil, failf(op, s.label, ErrDevice, "the token returned a malformed ECDSA signature: %v", err)
		}
		return der, nil
	}
	return sig, nil
}

// refind finds k's private key again by its id and label; the session lock is held.
func (k *Signer) refind(op string) (pkcs11.ObjectHandle, error) {
	t := Match{Class: ClassPrivateKey, ID: k.id, Label: k.label}.template()
	hs, err := k.s.findHandles(op, t)
	if err != nil {
		return 0, err
	}
	switch len(hs) {
	case 0:
		return 0, failf(op, k.s.label, ErrObjectNotFound, "the key is gone, or the user is not logged in")
	case 1:
		k.priv = hs[0]
		return hs[0], nil
	}
	return 0, failf(op, k.s.label, errors.New("more than one object matches"), "%d private keys have this key's id and label", len(hs))
}

func checkDigest(h crypto.Hash, digest []byte) error {
	if h == 0 {
		return errors.New("no hash given: this key signs a digest")
	}
	if h > crypto.BLAKE2b_512 { // Size panics on hashes crypto does not know
		return fmt.Errorf("unknown hash %v", h)
	}
	if len(digest) != h.Size() {
		return fmt.Errorf("digest is %d bytes, but %v digests are %d", len(digest), h, h.Size())
	}
	return nil
}

// digestInfoPrefix is the DER DigestInfo header (RFC 8017, section 9.2, note 1) that
// CKM_RSA_PKCS needs in front of the digest.
var digestInfoPrefix = map[crypto.Hash][]byte{
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

var pssHash = map[crypto.Hash]struct{ hash, mgf uint }{
	crypto.SHA256: {pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256},
	crypto.SHA384: {pkcs11.CKM_SHA384, pkcs11.CKG_MGF1_SHA384},
	crypto.SHA512: {pkcs11.CKM_SHA512, pkcs11.CKG_MGF1_SHA512},
}

// pssMechanism builds CKM_RSA_PKCS_PSS with MGF1 over the same hash. A salt as long as
// the hash is used for PSSSaltLengthEqualsHash and also for PSSSaltLengthAuto: Go's
// verifier with Auto accepts any length, crypto/x509 requires the hash length, and the
// PSS profile of RFC 4055 recommends it.
func pssMechanism(pub *rsa.PublicKey, h crypto.Hash, saltLength int) (*pkcs11.Mechanism, error) {
	p, ok := pssHash[h]
	if !ok {
		return nil, fmt.Errorf("hash %v is not supported for RSA-PSS", h)
	}
	salt := saltLength
	if salt == rsa.PSSSaltLengthEqualsHash || salt == rsa.PSSSaltLengthAuto {
		salt = h.Size()
	}
	emLen := (pub.N.BitLen() - 1 + 7) / 8
	if salt < 0 || salt > emLen-h.Size()-2 {
		return nil, fmt.Errorf("PSS salt length %d is out of range for a %d-bit key and %v", saltLength, pub.N.BitLen(), h)
	}
	return pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_PSS, pkcs11.NewPSSParams(p.hash, p.mgf, uint(salt))), nil
}

// ecdsaDER turns PKCS#11's r||s (each as long as the curve order) into the ASN.1
// ECDSA-Sig-Value that crypto/x509 and crypto/ecdsa expect.
func ecdsaDER(raw []byte) ([]byte, error) {
	if len(raw) == 0 || len(raw)%2 != 0 {
		return nil, fmt.Errorf("raw signature of %d bytes", len(raw))
	}
	n := len(raw) / 2
	return asn1.Marshal(struct{ R, S *big.Int }{
		new(big.Int).SetBytes(raw[:n]),
		new(big.Int).SetBytes(raw[n:]),
	})
}
