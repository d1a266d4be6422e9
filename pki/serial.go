package pki

import (
	"fmt"
	"io"
	"math/big"
	"strings"
)

// serialRandomBytes is how much randomness a serial number carries: 128 bits, well above
// the 64 bits the CA/Browser Forum asks for.
const serialRandomBytes = 16

// NewSerial returns a certificate serial number of 16 random bytes from rng (the HSM's
// RNG) behind a leading 0x01 byte: always positive, always 17 bytes, so it never shrinks
// when the random bytes start with zeros and never needs a sign byte.
func NewSerial(rng io.Reader) (*big.Int, error) {
	var b [1 + serialRandomBytes]byte
	b[0] = 0x01
	if _, err := io.ReadFull(rng, b[1:]); err != nil {
		return nil, fmt.Errorf("read random serial number: %w", err)
	}
	return new(big.Int).SetBytes(b[:]), nil
}

// SerialHex formats a serial number as uppercase hex with an even number of digits, the way
// `openssl x509 -serial` and `openssl crl -text` show it.
func SerialHex(serial *big.Int) string {
	s := strings.ToUpper(serial.Text(16))
	if len(s)%2 == 1 {
		s = "0" + s
	}
	return s
}

// ParseSerial reads a serial number written in hex, as SerialHex or openssl print it; an
// optional 0x prefix and colons or spaces between bytes are ignored.
func ParseSerial(s string) (*big.Int, error) {
	h := strings.NewReplacer(":", "", " ", "").Replace(strings.TrimSpace(s))
	h = strings.TrimPrefix(strings.TrimPrefix(h, "0x"), "0X")
	n, ok := new(big.Int).SetString(h, 16)
	if !ok || h == "" || strings.HasPrefix(h, "-") || strings.HasPrefix(h, "+") {
		return nil, fmt.Errorf("serial number %q is not hex: write it as openssl shows it, for example 01A2B3", s)
	}
	if err := checkSerial(n); err != nil {
		return nil, err
	}
	return n, nil
}

// checkSerial applies RFC 5280 section 4.1.2.2: positive, and at most 20 octets encoded.
func checkSerial(n *big.Int) error {
	if n == nil {
		return fmt.Errorf("serial number is missing")
	}
	if n.Sign() <= 0 {
		return fmt.Errorf("serial number %s is not positive (RFC 5280 4.1.2.2)", n)
	}
	if size := integerContentSize(n); size > 20 {
		return fmt.Errorf("serial number %s takes %d octets, more than the 20 RFC 5280 allows", SerialHex(n), size)
	}
	return nil
}
