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

	"github.com/custos-pki/custos/keyalg"
)

// KeyAlgorithmOf tells which supported algorithm a public key is, or why it is none of them.
func KeyAlgorithmOf(pub crypto.PublicKey) (keyalg.Algorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return keyalg.ECDSAP256, nil
		case elliptic.P384():
			return keyalg.ECDSAP384, nil
		}
		return "", fmt.Errorf("ECDSA key on curve %s is not supported: use %s or %s", k.Curve.Params().Name, keyalg.ECDSAP256, keyalg.ECDSAP384)
	case *rsa.PublicKey:
		if k.E < 65537 || k.E%2 == 0 {
			return "", fmt.Errorf("RSA public exponent %d is not allowed: it must be odd and at least 65537", k.E)
		}
		switch k.N.BitLen() {
		case 3072:
			return keyalg.RSA3072, nil
		case 4096:
			return keyalg.RSA4096, nil
		}
		return "", fmt.Errorf("RSA key of %d bits is not supported: use %s or %s", k.N.BitLen(), keyalg.RSA3072, keyalg.RSA4096)
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", fmt.Errorf("Ed25519 public key of %d bytes is malformed", len(k))
		}
		return keyalg.Ed25519, nil
	}
	return "", fmt.Errorf("public key of type %T is not supported: use one of %s", pub, keyalg.List())
}

// CheckPublicKey checks that pub is a key of algorithm want (type, size or curve), as the
// ceremony must after reading a freshly generated key back from a token.
func CheckPublicKey(pub crypto.PublicKey, want keyalg.Algorithm) error {
	if _, err := keyalg.Parse(string(want)); err != nil {
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

// signatureAlgorithm is how a key of algorithm a signs certificates and CRLs: the hash
// matches the key's strength (SHA-384 for P-384 and RSA-4096), RSA uses PKCS #1 v1.5 which
// every verifier understands, and Ed25519 signs the message itself.
func signatureAlgorithm(a keyalg.Algorithm) x509.SignatureAlgorithm {
	switch a {
	case keyalg.ECDSAP256:
		return x509.ECDSAWithSHA256
	case keyalg.ECDSAP384:
		return x509.ECDSAWithSHA384
	case keyalg.RSA3072:
		return x509.SHA256WithRSA
	case keyalg.RSA4096:
		return x509.SHA384WithRSA
	case keyalg.Ed25519:
		return x509.PureEd25519
	}
	return x509.UnknownSignatureAlgorithm
}

// signedHash is the digest a key of algorithm a signs, or 0 for Ed25519, which signs the whole message.
func signedHash(a keyalg.Algorithm) crypto.Hash {
	switch a {
	case keyalg.ECDSAP256, keyalg.RSA3072:
		return crypto.SHA256
	case keyalg.ECDSAP384, keyalg.RSA4096:
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

// signatureAlgorithmDER returns the DER AlgorithmIdentifier a key of algorithm a signs with.
func signatureAlgorithmDER(a keyalg.Algorithm) []byte {
	var oid asn1.ObjectIdentifier
	withNull := false
	switch a {
	case keyalg.ECDSAP256:
		oid = oidECDSAWithSHA256
	case keyalg.ECDSAP384:
		oid = oidECDSAWithSHA384
	case keyalg.RSA3072:
		oid, withNull = oidSHA256WithRSA, true
	case keyalg.RSA4096:
		oid, withNull = oidSHA384WithRSA, true
	case keyalg.Ed25519:
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

// generateKey makes a software key of algorithm a: the throwaway keys that sign what is
// linted before the real key signs it.
func generateKey(a keyalg.Algorithm) (crypto.Signer, error) {
	switch a {
	case keyalg.ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case keyalg.ECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case keyalg.RSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case keyalg.RSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	case keyalg.Ed25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("unknown key algorithm %q", a)
}
