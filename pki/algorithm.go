package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"strings"
)

// KeyAlgorithm names a key type, size or curve that Custos generates and certifies. The names
// are those of ceremony plans and of hsm.Algorithm, so either converts with a plain
// conversion or ParseKeyAlgorithm.
type KeyAlgorithm string

// The key algorithms Custos supports.
const (
	ECDSAP256 KeyAlgorithm = "ecdsa-p256"
	ECDSAP384 KeyAlgorithm = "ecdsa-p384"
	RSA3072   KeyAlgorithm = "rsa-3072"
	RSA4096   KeyAlgorithm = "rsa-4096"
	Ed25519   KeyAlgorithm = "ed25519"
)

// KeyAlgorithms returns every supported key algorithm, in the order a menu shows them.
func KeyAlgorithms() []KeyAlgorithm {
	return []KeyAlgorithm{ECDSAP256, ECDSAP384, RSA3072, RSA4096, Ed25519}
}

// ParseKeyAlgorithm reads an algorithm name such as "ecdsa-p384", ignoring case.
func ParseKeyAlgorithm(s string) (KeyAlgorithm, error) {
	for _, a := range KeyAlgorithms() {
		if strings.EqualFold(s, string(a)) {
			return a, nil
		}
	}
	return "", fmt.Errorf("unknown key algorithm %q: use one of %s", s, algorithmList())
}

func algorithmList() string {
	names := make([]string, 0, 5)
	for _, a := range KeyAlgorithms() {
		names = append(names, string(a))
	}
	return strings.Join(names, ", ")
}

// KeyAlgorithmOf tells which supported algorithm a public key is, or why it is none of them.
func KeyAlgorithmOf(pub crypto.PublicKey) (KeyAlgorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return ECDSAP256, nil
		case elliptic.P384():
			return ECDSAP384, nil
		}
		return "", fmt.Errorf("ECDSA key on curve %s is not supported: use %s or %s", k.Curve.Params().Name, ECDSAP256, ECDSAP384)
	case *rsa.PublicKey:
		if k.E < 65537 || k.E%2 == 0 {
			return "", fmt.Errorf("RSA public exponent %d is not allowed: it must be odd and at least 65537", k.E)
		}
		switch k.N.BitLen() {
		case 3072:
			return RSA3072, nil
		case 4096:
			return RSA4096, nil
		}
		return "", fmt.Errorf("RSA key of %d bits is not supported: use %s or %s", k.N.BitLen(), RSA3072, RSA4096)
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", fmt.Errorf("Ed25519 public key of %d bytes is malformed", len(k))
		}
		return Ed25519, nil
	}
	return "", fmt.Errorf("public key of type %T is not supported: use one of %s", pub, algorithmList())
}

// CheckPublicKey checks that pub is a key of algorithm want (type, size or curve), as the
// ceremony must after reading a freshly generated key back from a token.
func CheckPublicKey(pub crypto.PublicKey, want KeyAlgorithm) error {
	if _, err := ParseKeyAlgorithm(string(want)); err != nil {
		return err
	}
	got, err := KeyAlgorithmOf(pub)
	if err != nil {
		return fmt.Errorf("public key is not the %s key asked for: %w", want, err)
	}
	if got != want {
		return fmt.Errorf("public key is %s, not the %s key asked for", got, want)
	}
	return nil
}

// signatureAlgorithm is how a key of this algorithm signs certificates and CRLs: the hash
// matches the key's strength (SHA-384 for P-384 and RSA-4096), RSA uses PKCS #1 v1.5 which
// every verifier understands, and Ed25519 signs the message itself.
func (a KeyAlgorithm) signatureAlgorithm() x509.SignatureAlgorithm {
	switch a {
	case ECDSAP256:
		return x509.ECDSAWithSHA256
	case ECDSAP384:
		return x509.ECDSAWithSHA384
	case RSA3072:
		return x509.SHA256WithRSA
	case RSA4096:
		return x509.SHA384WithRSA
	case Ed25519:
		return x509.PureEd25519
	}
	return x509.UnknownSignatureAlgorithm
}

// hash is the digest signed, or 0 for Ed25519, which signs the whole message.
func (a KeyAlgorithm) hash() crypto.Hash {
	switch a {
	case ECDSAP256, RSA3072:
		return crypto.SHA256
	case ECDSAP384, RSA4096:
		return crypto.SHA384
	}
	return 0
}

// DER encodings of the AlgorithmIdentifier for each signature algorithm. RFC 4055 requires
// NULL parameters for RSA; RFC 5758 and RFC 8410 require them absent for ECDSA and Ed25519.
var (
	oidECDSAWithSHA256  = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSAWithSHA384  = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidSHA256WithRSA    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSHA384WithRSA    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidEd25519Signature = asn1.ObjectIdentifier{1, 3, 101, 112}
)

// signatureAlgorithmDER returns the DER AlgorithmIdentifier this algorithm signs with.
func (a KeyAlgorithm) signatureAlgorithmDER() []byte {
	var oid asn1.ObjectIdentifier
	withNull := false
	switch a {
	case ECDSAP256:
		oid = oidECDSAWithSHA256
	case ECDSAP384:
		oid = oidECDSAWithSHA384
	case RSA3072:
		oid, withNull = oidSHA256WithRSA, true
	case RSA4096:
		oid, withNull = oidSHA384WithRSA, true
	case Ed25519:
		oid = oidEd25519Signature
	default:
		return nil
	}
	oidDER, err := asn1.Marshal(oid)
	if err != nil {
		panic("pki: cannot encode a constant OID: " + err.Error())
	}
	var content []byte
	content = append(content, oidDER...)
	if withNull {
		content = append(content, 0x05, 0x00)
	}
	return appendTLV(nil, tagSequence, content)
}

// generateKey makes a software key of this algorithm: the throwaway keys that sign what is
// linted before the real key signs it.
func (a KeyAlgorithm) generateKey() (crypto.Signer, error) {
	switch a {
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case RSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case RSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	case Ed25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("unknown key algorithm %q", a)
}
