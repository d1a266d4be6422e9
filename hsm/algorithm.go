package hsm

import (
	"fmt"
	"strings"
)

// Algorithm names a key type with its size or curve. The names are those of ceremony plans
// (and of pki.KeyAlgorithm, which converts with a plain conversion).
type Algorithm string

// The algorithms a token generates keys for.
const (
	ECDSAP256 Algorithm = "ecdsa-p256"
	ECDSAP384 Algorithm = "ecdsa-p384"
	RSA3072   Algorithm = "rsa-3072"
	RSA4096   Algorithm = "rsa-4096"
	Ed25519   Algorithm = "ed25519"
)

// Algorithms lists every supported algorithm, in the order a menu shows them.
func Algorithms() []Algorithm {
	return []Algorithm{ECDSAP256, ECDSAP384, RSA3072, RSA4096, Ed25519}
}

// ParseAlgorithm reads an algorithm name such as "ecdsa-p384", ignoring case. The error
// names the valid values.
func ParseAlgorithm(s string) (Algorithm, error) {
	for _, a := range Algorithms() {
		if strings.EqualFold(s, string(a)) {
			return a, nil
		}
	}
	names := make([]string, 0, 5)
	for _, a := range Algorithms() {
		names = append(names, string(a))
	}
	return "", fmt.Errorf("unknown key algorithm %q: use one of %s", s, strings.Join(names, ", "))
}

func (a Algorithm) String() string { return string(a) }
