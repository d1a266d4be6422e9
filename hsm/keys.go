//go:build cgo && !nopkcs11

package hsm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/miekg/pkcs11"

	"github.com/custos-pki/custos/keyalg"
)

// Values from PKCS#11 v3.0 that github.com/miekg/pkcs11 v1.1.2 does not define.
const (
	ckkECEdwards           = 0x00000040 // CKK_EC_EDWARDS
	ckmECEdwardsKeyPairGen = 0x00001055 // CKM_EC_EDWARDS_KEY_PAIR_GEN
	ckmEdDSA               = 0x00001057 // CKM_EDDSA
)

// Curve object identifiers, as CKA_EC_PARAMS carries them (DER of the OID).
var (
	oidP256    = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	oidP384    = asn1.ObjectIdentifier{1, 3, 132, 0, 34}
	oidP521    = asn1.ObjectIdentifier{1, 3, 132, 0, 35}
	oidEd25519 = asn1.ObjectIdentifier{1, 3, 101, 112}
)

// rsaExponent is the public exponent of every RSA key generated: 65537.
var rsaExponent = []byte{0x01, 0x00, 0x01}

// GenerateKeyPair generates a key pair on the token and returns its signer. The private
// key is a token object that is private, sensitive, sign-only and not extractable unless
// spec.Wrappable; the public key is a public token object. The user must be logged in.
// It refuses an ID that objects on the token already have.
func (s *Session) GenerateKeyPair(ctx context.Context, spec KeySpec) (*Signer, error) {
	op := fmt.Sprintf("generate %s key %q", spec.Algorithm, spec.Label)
	if _, err := keyalg.Parse(string(spec.Algorithm)); err != nil {
		return nil, failf(op, s.label, err, "choose a supported algorithm")
	}
	if len(spec.ID) == 0 {
		return nil, failf(op, s.label, errors.New("no key id given"), "give the key a CKA_ID, such as random bytes from the token")
	}
	if err := s.begin(ctx, op); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if err := s.refuseTakenID(ctx, op, spec.ID); err != nil {
		return nil, err
	}

	// An RSA public key is made unable to encrypt or wrap. EC and EdDSA public keys have no
	// such use in PKCS#11, so their templates do not name it: tpm2-pkcs11 refuses
	// CKA_ENCRYPT false on an EC key (its TPM keys carry the decrypt attribute).
	pub := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_ID, spec.ID),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, spec.Label),
	}
	priv := privateKeyTemplate(spec.ID, spec.Label, spec.Wrappable)
	var mech, signMech uint
	switch spec.Algorithm {
	case keyalg.ECDSAP256, keyalg.ECDSAP384:
		oid := oidP256
		if spec.Algorithm == keyalg.ECDSAP384 {
			oid = oidP384
		}
		mech, signMech = pkcs11.CKM_EC_KEY_PAIR_GEN, pkcs11.CKM_ECDSA
		pub = append(pub, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC), pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, mustDER(oid)))
		priv = append(priv, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC), pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false))
	case keyalg.RSA3072, keyalg.RSA4096:
		bits := 3072
		if spec.Algorithm == keyalg.RSA4096 {
			bits = 4096
		}
		mech, signMech = pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, pkcs11.CKM_RSA_PKCS
		pub = append(pub, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA), pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
			pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, bits), pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, rsaExponent))
		priv = append(priv, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA), pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false))
	case keyalg.Ed25519:
		mech, signMech = ckmECEdwardsKeyPairGen, ckmEdDSA
		pub = append(pub, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, ckkECEdwards), pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, mustDER(oidEd25519)))
		priv = append(priv, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, ckkECEdwards), pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false))
	}
	if err := s.next(ctx, op); err != nil {
		return nil, err
	}
	if err := s.checkMechanisms(op, spec.Algorithm, mech, signMech); err != nil {
		return nil, err
	}
	if err := s.next(ctx, op); err != nil {
		return nil, err
	}
	pubH, privH, err := s.m.p.GenerateKeyPair(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}, pub, priv)
	if err != nil {
		e := s.fail(op, err)
		if errors.Is(e, ErrMechanismUnsupported) {
			e.(*Error).Hint = fmt.Sprintf("this token cannot generate %s keys: choose another algorithm or token", spec.Algorithm)
		}
		return nil, e
	}
	key, alg, err := s.publicKey(op, pubH)
	if err == nil && alg != spec.Algorithm {
		err = failf(op, s.label, errors.New("the token made a different key than asked"), "asked for %s, got %s", spec.Algorithm, algName(alg))
	}
	if err != nil {
		// Leave no half-checked key behind. If the token is gone this fails too, and the
		// caller's journal (which named the id before generating) is what accounts for it.
		_ = s.m.p.DestroyObject(s.h, privH)
		_ = s.m.p.DestroyObject(s.h, pubH)
		return nil, err
	}
	return &Signer{s: s, priv: privH, pub: key, alg: alg, id: spec.ID, label: spec.Label}, nil
}

var mechanismNames = map[uint]string{
	pkcs11.CKM_EC_KEY_PAIR_GEN:       "CKM_EC_KEY_PAIR_GEN",
	pkcs11.CKM_ECDSA:                 "CKM_ECDSA",
	pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN: "CKM_RSA_PKCS_KEY_PAIR_GEN",
	pkcs11.CKM_RSA_PKCS:              "CKM_RSA_PKCS",
	ckmECEdwardsKeyPairGen:           "CKM_EC_EDWARDS_KEY_PAIR_GEN",
	ckmEdDSA:                         "CKM_EDDSA",
}

// checkMechanisms makes sure, before anything is generated, that the token lists both
// the key generation and the signing mechanism for alg, and for RSA that it takes the key
// size. A key the token could make but not use would be worse than none. (SoftHSM2's
// slots.mechanisms setting, for one, only filters the list and would let generation pass.)
func (s *Session) checkMechanisms(op string, alg keyalg.Algorithm, gen, sign uint) error {
	list, err := s.m.p.GetMechanismList(s.slot)
	if err != nil {
		return s.fail(op, err)
	}
	has := map[uint]bool{}
	for _, m := range list {
		has[m.Mechanism] = true
	}
	for _, m := range []uint{gen, sign} {
		if !has[m] {
			return failf(op, s.label, ErrMechanismUnsupported, "this token cannot generate %s keys (it does not offer %s): choose another algorithm or token", alg, mechanismNames[m])
		}
	}
	if alg != keyalg.RSA3072 && alg != keyalg.RSA4096 {
		return nil
	}
	bits := 3072
	if alg == keyalg.RSA4096 {
		bits = 4096
	}
	info, err := s.m.p.GetMechanismInfo(s.slot, []*pkcs11.Mechanism{pkcs11.NewMechanism(gen, nil)})
	if err != nil {
		return s.fail(op, err)
	}
	if info.MaxKeySize != 0 && (uint(bits) < info.MinKeySize || uint(bits) > info.MaxKeySize) {
		return failf(op, s.label, ErrMechanismUnsupported, "this token makes RSA keys of %d to %d bits, not %d: choose another algorithm or token", info.MinKeySize, info.MaxKeySize, bits)
	}
	return nil
}

// privateKeyTemplate is the protection every private key Custos makes or unwraps gets:
// on the token, private, sensitive, sign-only, and either never extractable or
// extractable only wrapped under a trusted key.
func privateKeyTemplate(id []byte, label string, wrappable bool) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, wrappable),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP_WITH_TRUSTED, true),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}
}

// refuseTakenID fails when any key or certificate on the token already has id, which
// would make finding the new key ambiguous.
func (s *Session) refuseTakenID(ctx context.Context, op string, id []byte) error {
	objs, err := s.find(ctx, op, Match{ID: id})
	if err != nil {
		return err
	}
	if len(objs) > 0 {
		return failf(op, s.label, errors.New("key id already in use"), "%s already has id %x: choose another id", objs[0], id)
	}
	return nil
}

func mustDER(v any) []byte {
	b, err := asn1.Marshal(v)
	if err != nil {
		panic("hsm: cannot encode a constant: " + err.Error())
	}
	return b
}

func algName(a keyalg.Algorithm) string {
	if a == "" {
		return "a key of another type or size"
	}
	return string(a)
}

// Signer finds the one private key matching q (its Class is ignored: usually Match{ID: id})
// and returns a crypto.Signer for it. The public key comes from the public key object with
// the same CKA_ID (or, lacking an id, label); an RSA private key without one gives its
// own modulus. The user must be logged in to see the private key.
func (s *Session) Signer(ctx context.Context, q Match) (*Signer, error) {
	q.Class = ClassPrivateKey
	op := "find signing key: " + q.String()
	if err := s.begin(ctx, op); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	priv, err := s.findOne(ctx, op, q)
	if err != nil {
		return nil, err
	}
	pq := Match{Class: ClassPublicKey, ID: priv.ID}
	if len(priv.ID) == 0 {
		pq.Label = priv.Label
	}
	pubs, err := s.find(ctx, op, pq)
	if err != nil {
		return nil, err
	}
	var key crypto.PublicKey
	var alg keyalg.Algorithm
	switch {
	case len(pubs) == 1:
		key, alg, err = s.publicKey(op, pkcs11.ObjectHandle(pubs[0].handle))
	case len(pubs) > 1:
		return nil, failf(op, s.label, errors.New("more than one public key matches"), "%d public keys match %s", len(pubs), pq)
	case priv.KeyType == "RSA":
		key, alg, err = s.publicKey(op, pkcs11.ObjectHandle(priv.handle))
	default:
		return nil, failf(op, s.label, ErrObjectNotFound, "the %s private key %s has no public key object with the same id, so its public key cannot be read", priv.KeyType, priv)
	}
	if err != nil {
		return nil, err
	}
	return &Signer{s: s, priv: pkcs11.ObjectHandle(priv.handle), pub: key, alg: alg, id: priv.ID, label: priv.Label}, nil
}

// publicKey reads the public key of object h (a public key, or an RSA private key) and
// says which Algorithm it is ("" when it is none of them).
func (s *Session) publicKey(op string, h pkcs11.ObjectHandle) (crypto.PublicKey, keyalg.Algorithm, error) {
	a, err := s.attributes(op, h, pkcs11.CKA_KEY_TYPE)
	if err != nil {
		return nil, "", err
	}
	switch kt := ulongAttr(a[pkcs11.CKA_KEY_TYPE]); kt {
	case pkcs11.CKK_RSA:
		a, err := s.attributes(op, h, pkcs11.CKA_MODULUS, pkcs11.CKA_PUBLIC_EXPONENT)
		if err != nil {
			return nil, "", err
		}
		n := new(big.Int).SetBytes(a[pkcs11.CKA_MODULUS])
		e := new(big.Int).SetBytes(a[pkcs11.CKA_PUBLIC_EXPONENT])
		if n.Sign() == 0 || !e.IsInt64() || e.Int64() > 1<<31-1 || e.Int64() < 3 {
			return nil, "", failf(op, s.label, errors.New("malformed RSA public key"), "the token returned modulus of %d bits and exponent %v", n.BitLen(), e)
		}
		key := &rsa.PublicKey{N: n, E: int(e.Int64())}
		var alg keyalg.Algorithm
		switch n.BitLen() {
		case 3072:
			alg = keyalg.RSA3072
		case 4096:
			alg = keyalg.RSA4096
		}
		return key, alg, nil
	case pkcs11.CKK_EC, ckkECEdwards:
		a, err := s.attributes(op, h, pkcs11.CKA_EC_PARAMS, pkcs11.CKA_EC_POINT)
		if err != nil {
			return nil, "", err
		}
		key, alg, err := parseECPoint(a[pkcs11.CKA_EC_PARAMS], a[pkcs11.CKA_EC_POINT], kt == ckkECEdwards)
		if err != nil {
			return nil, "", failf(op, s.label, errors.New("malformed public key"), "%v", err)
		}
		return key, alg, nil
	default:
		return nil, "", failf(op, s.label, errors.New("unsupported key type"), "key type %s cannot sign certificates: Custos uses RSA, ECDSA and Ed25519 keys", keyTypeName(kt))
	}
}

// parseECPoint reads CKA_EC_PARAMS and CKA_EC_POINT. PKCS#11 says the point is DER
// wrapped in an OCTET STRING; some modules give it bare, so both are accepted.
func parseECPoint(params, point []byte, edwards bool) (crypto.PublicKey, keyalg.Algorithm, error) {
	if inner, ok := unwrapOctetString(point); ok {
		point = inner
	}
	var oid asn1.ObjectIdentifier
	if rest, err := asn1.Unmarshal(params, &oid); err != nil || len(rest) != 0 {
		// PKCS#11 v3.0 also lets Edwards curves be named by a PrintableString.
		var name string
		if rest, err := asn1.Unmarshal(params, &name); err == nil && len(rest) == 0 && name == "edwards25519" {
			oid = oidEd25519
		} else {
			return nil, "", fmt.Errorf("curve parameters %x are not a named curve", params)
		}
	}
	switch {
	case oid.Equal(oidEd25519):
		if !edwards {
			return nil, "", errors.New("an EC key names the Ed25519 curve")
		}
		if len(point) != ed25519.PublicKeySize {
			return nil, "", fmt.Errorf("Ed25519 public key is %d bytes, not %d", len(point), ed25519.PublicKeySize)
		}
		return ed25519.PublicKey(append([]byte(nil), point...)), keyalg.Ed25519, nil
	case edwards:
		return nil, "", fmt.Errorf("Edwards curve %v is not supported: use Ed25519", oid)
	}
	var curve elliptic.Curve
	var alg keyalg.Algorithm
	switch {
	case oid.Equal(oidP256):
		curve, alg = elliptic.P256(), keyalg.ECDSAP256
	case oid.Equal(oidP384):
		curve, alg = elliptic.P384(), keyalg.ECDSAP384
	case oid.Equal(oidP521):
		curve = elliptic.P521()
	default:
		return nil, "", fmt.Errorf("curve %v is not supported: use P-256 or P-384", oid)
	}
	key, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return nil, "", fmt.Errorf("EC point: %v", err)
	}
	return key, alg, nil
}

func unwrapOctetString(b []byte) ([]byte, bool) {
	var inner []byte
	rest, err := asn1.Unmarshal(b, &inner)
	if err != nil || len(rest) != 0 {
		return nil, false
	}
	return inner, true
}

// publicKeyTemplate describes pub as a public key token object, for a key restored from a
// wrapped blob (unwrapping makes only the private half).
func publicKeyTemplate(pub crypto.PublicKey, id []byte, label string) ([]*pkcs11.Attribute, error) {
	t := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return append(t, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false), pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, k.N.Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, big.NewInt(int64(k.E)).Bytes())), nil
	case *ecdsa.PublicKey:
		var oid asn1.ObjectIdentifier
		switch k.Curve {
		case elliptic.P256():
			oid = oidP256
		case elliptic.P384():
			oid = oidP384
		case elliptic.P521():
			oid = oidP521
		default:
			return nil, fmt.Errorf("curve %s is not supported", k.Curve.Params().Name)
		}
		point, err := k.Bytes()
		if err != nil {
			return nil, err
		}
		return append(t, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, mustDER(oid)),
			pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, mustDER(point))), nil
	case ed25519.PublicKey:
		return append(t, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, ckkECEdwards),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, mustDER(oidEd25519)),
			pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, mustDER([]byte(k)))), nil
	}
	return nil, fmt.Errorf("public key of type %T is not supported: use RSA, ECDSA or Ed25519", pub)
}

// keyTypeOf is the CKK_ value for the private half of pub.
func keyTypeOf(pub crypto.PublicKey) (uint, bool) {
	switch pub.(type) {
	case *rsa.PublicKey:
		return pkcs11.CKK_RSA, true
	case *ecdsa.PublicKey:
		return pkcs11.CKK_EC, true
	case ed25519.PublicKey:
		return ckkECEdwards, true
	}
	return 0, false
}
