package pki

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/custos-pki/custos/internal/pgpwords"
)

// Fingerprint is a SHA-256 digest that people compare: on screen, in a record, read aloud.
type Fingerprint [sha256.Size]byte

// FingerprintOf returns the SHA-256 of any bytes (a plan file, a backup blob, a CRL).
func FingerprintOf(b []byte) Fingerprint { return sha256.Sum256(b) }

// CertificateFingerprint returns the SHA-256 of a certificate's DER, the value that
// `openssl x509 -fingerprint -sha256` prints.
func CertificateFingerprint(c *x509.Certificate) Fingerprint { return sha256.Sum256(c.Raw) }

// PublicKeyFingerprint returns the SHA-256 of a public key's DER SubjectPublicKeyInfo, which
// names a key independently of any certificate for it.
func PublicKeyFingerprint(pub crypto.PublicKey) (Fingerprint, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return Fingerprint{}, fmt.Errorf("fingerprint public key: %w", err)
	}
	return sha256.Sum256(spki), nil
}

// String returns 64 lowercase hex digits, as sha256sum prints them.
func (f Fingerprint) String() string { return hex.EncodeToString(f[:]) }

// Grouped returns uppercase hex in groups of four digits ("E582 94F2 ..."), for reading aloud
// and comparing by eye.
func (f Fingerprint) Grouped() string {
	const digits = "0123456789ABCDEF"
	var sb strings.Builder
	sb.Grow(len(f)*2 + len(f)/2)
	for i, c := range f {
		if i > 0 && i%2 == 0 {
			sb.WriteByte(' ')
		}
		sb.WriteByte(digits[c>>4])
		sb.WriteByte(digits[c&0x0F])
	}
	return sb.String()
}

// Words returns the fingerprint in the PGP word list, 32 words that a witness can compare
// with a reviewed copy as the DNS root key ceremonies do.
func (f Fingerprint) Words() string { return pgpwords.Encode(f[:]) }
