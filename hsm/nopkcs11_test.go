//go:build !cgo || nopkcs11

package hsm_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/custos-pki/custos/hsm"
)

// A build without PKCS#11 says so when a module is opened, whatever the path.
func TestOpenWithoutPKCS11(t *testing.T) {
	for _, path := range []string{"/usr/lib/softhsm/libsofthsm2.so", ""} {
		m, err := hsm.Open(path)
		if m != nil || !errors.Is(err, hsm.ErrNoPKCS11) {
			t.Fatalf("Open(%q) = %v, %v; want ErrNoPKCS11", path, m, err)
		}
		if !strings.Contains(err.Error(), "this build of Custos has no PKCS#11 support (built without cgo or with -tags nopkcs11)") {
			t.Errorf("error %q does not say the build has no PKCS#11", err)
		}
	}
}
