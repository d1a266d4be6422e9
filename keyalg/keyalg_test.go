package keyalg

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, a := range All() {
		for _, s := range []string{string(a), strings.ToUpper(string(a))} {
			if got, err := Parse(s); err != nil || got != a {
				t.Errorf("Parse(%q) = %q, %v", s, got, err)
			}
		}
	}
	for _, s := range []string{"ecdsa-p521", "", "rsa-2048", "ed448"} {
		_, err := Parse(s)
		if err == nil || !strings.Contains(err.Error(), "use one of ecdsa-p256, ecdsa-p384, rsa-3072, rsa-4096, ed25519") {
			t.Errorf("Parse(%q): %v", s, err)
		}
	}
}
