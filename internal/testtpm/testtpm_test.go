package testtpm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/keyalg"
)

func TestMain(m *testing.M) { Main(m) }

// A token made on the TPM signs, and pkcs11-tool, through the same environment, sees it and
// its key where the fixture says.
func TestTokenOnTheTPM(t *testing.T) {
	tpm := Get(t)
	ctx := context.Background()
	label := tpm.NewLabel("fixture")
	tpm.InitToken(t, label, "so-pin-1234", "user-pin-1234")
	m := tpm.Open(t)
	s, err := m.OpenSession(ctx, label)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Login(ctx, hsm.User, []byte("user-pin-1234")); err != nil {
		t.Fatal(err)
	}
	k, err := s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: keyalg.ECDSAP256, ID: []byte{1, 2}, Label: "k"})
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("hello"))
	sig, err := k.Sign(nil, d[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), d[:], sig) {
		t.Error("signature does not verify")
	}
	out, err := exec.Command("pkcs11-tool", "--module", tpm.ModulePath, "--token-label", label,
		"--login", "--pin", "user-pin-1234", "--list-objects", "--type", "privkey").CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "ID:         0102") || !strings.Contains(string(out), "never extractable") {
		t.Errorf("pkcs11-tool lists:\n%s", out)
	}
}

// The module is configured for this TPM only: its store is the fixture's folder and its TCTI
// the fixture's resource manager, never a device.
func TestNeverARealTPM(t *testing.T) {
	tpm := Get(t)
	if got := os.Getenv("TPM2_PKCS11_TCTI"); got != tcti {
		t.Errorf("TPM2_PKCS11_TCTI = %q", got)
	}
	if got := os.Getenv("TPM2_PKCS11_STORE"); !strings.HasPrefix(got, tpm.Dir) {
		t.Errorf("TPM2_PKCS11_STORE = %q, outside %s", got, tpm.Dir)
	}
	if err := tpm.checkSoftware(); err != nil {
		t.Error(err)
	}
}
