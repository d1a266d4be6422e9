// Package keyalg names the kinds of key Custos generates and certifies: ECDSA on P-256 and
// P-384, RSA of 3072 and 4096 bits, and Ed25519. The names are those a ceremony plan's
// key.algorithm takes. It is the one place both hsm (which generates keys on a token) and pki
// (which checks public keys and picks how each kind signs) take them from.
package keyalg

import (
	"fmt"
	"strings"
)

// Algorithm names a key type with its size or curve, such as "ecdsa-p384".
type Algorithm string

// The algorithms Custos supports.
const (
	ECDSAP256 Algorithm = "ecdsa-p256"
	ECDSAP384 Algorithm = "ecdsa-p384"
	RSA3072   Algorithm = "rsa-3072"
	RSA4096   Algorithm = "rsa-4096"
	Ed25519   Algorithm = "ed25519"
)

// All lists every supported algorithm, in the order a menu shows them.
func All() []Algorithm {
	return []Algorithm{ECDSAP256, ECDSAP384, RSA3072, RSA4096, Ed25519}
}

// Parse reads an algorithm name such as "ecdsa-p384", ignoring case. The error names the
// valid values.
func Parse(s string) (Algorithm, error) {
	for _, a := range All() {
		if strings.EqualFold(s, string(a)) {
			return a, nil
		}
	}
	return "", fmt.Errorf("unknown key algorithm %q: use one of %s", s, List())
}

// List is the supported names, comma-separated, for messages and help texts.
func List() string {
	names := make([]string, 0, len(All()))
	for _, a := range All() {
		names = append(names, string(a))
	}
	return strings.Join(names, ", ")
}

func (a Algorithm) String() string { return string(a) }
