//go:build cgo && !nopkcs11

package hsm_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/testtpm"
	"github.com/custos-pki/custos/keyalg"
)

// The hsm tests also run on a software TPM through tpm2-pkcs11, one per test binary: a
// second PKCS#11 implementation, with the limits of a device key store.
func TestMain(m *testing.M) { testtpm.Main(m) }

// newTPMToken initialises a fresh token on the TPM and returns the module and a session
// with the user logged in.
func newTPMToken(t *testing.T) (*testtpm.TPM, string, *hsm.Module, *hsm.Session) {
	t.Helper()
	tpm := testtpm.Get(t)
	label := tpm.NewLabel("hsm")
	tpm.InitToken(t, label, soPIN, userPIN)
	m := tpm.Open(t)
	s, err := m.OpenSession(context.Background(), label)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Login(context.Background(), hsm.User, []byte(userPIN)); err != nil {
		t.Fatal(err)
	}
	return tpm, label, m, s
}

// Every TPM token reports serial 0, and an empty slot is always listed: tokens are found by
// label, and a new one goes into the empty slot.
func TestTPMTokensAreKnownByLabel(t *testing.T) {
	ctx := context.Background()
	tpm := testtpm.Get(t)
	a, b := tpm.NewLabel("device-a"), tpm.NewLabel("device-b")
	tpm.InitToken(t, a, soPIN, userPIN)
	tpm.InitToken(t, b, soPIN, userPIN)
	m := tpm.Open(t)
	for _, label := range []string{a, b} {
		sl, err := m.TokenByLabel(ctx, label)
		if err != nil {
			t.Fatal(err)
		}
		if sl.Token.Label != label || sl.Token.HasSerial() {
			t.Errorf("token %q: %+v", label, sl.Token)
		}
		if got := sl.Token.SerialOrNone(); !strings.HasPrefix(got, "none (the module reports serial 0000000000000000") {
			t.Errorf("serial for a record: %q", got)
		}
	}
	free, err := m.FreeSlot(ctx)
	if err != nil {
		t.Fatalf("no empty slot after two tokens: %v", err)
	}
	if free.Token.Flags.Initialized {
		t.Errorf("free slot %+v", free)
	}
}

// ECDSA keys are generated on the TPM with CKA_LOCAL, never extractable, and sign digests
// of every size Custos uses; algorithms the TPM lacks are refused before anything is made.
func TestTPMKeys(t *testing.T) {
	ctx := context.Background()
	tpm, label, _, s := newTPMToken(t)
	for i, alg := range []keyalg.Algorithm{keyalg.ECDSAP256, keyalg.ECDSAP384} {
		id := []byte{0x10, byte(i)}
		k, err := s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: alg, ID: id, Label: "device key"})
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512} {
			d := digest(h, "nonce")
			sig, err := k.Sign(nil, d, h)
			if err != nil {
				t.Fatalf("%s over %v: %v", alg, h, err)
			}
			if !ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), d, sig) {
				t.Errorf("%s over %v: signature does not verify", alg, h)
			}
		}
		blocks := toolObjectsWithID(t, tpm.ModulePath, label, hex.EncodeToString(id))
		var priv string
		for _, b := range blocks {
			if strings.HasPrefix(b, "Private Key Object") {
				priv = b
			}
		}
		for _, want := range []string{"sensitive", "always sensitive", "never extractable", "local"} {
			if !strings.Contains(toolField(priv, "Access"), want) {
				t.Errorf("%s: pkcs11-tool says the private key's access is %q, lacking %q", alg, toolField(priv, "Access"), want)
			}
		}
	}
	for _, alg := range []keyalg.Algorithm{keyalg.Ed25519, keyalg.RSA4096} {
		_, err := s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: alg, ID: []byte{0x20}, Label: "x"})
		if !errors.Is(err, hsm.ErrMechanismUnsupported) {
			t.Errorf("%s: %v, want ErrMechanismUnsupported", alg, err)
		}
	}
	// A sign-only RSA key is refused by tpm2-pkcs11 (its RSA keys also decrypt); nothing is
	// left behind.
	if _, err := s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: keyalg.RSA3072, ID: []byte{0x21}, Label: "x"}); err == nil {
		t.Error("a sign-only RSA-3072 key was generated on the TPM")
	}
	if left, err := s.Remaining(ctx, []byte{0x21}, ""); err != nil || len(left) != 0 {
		t.Errorf("left after a refused generation: %v %v", left, err)
	}
}

func digest(h crypto.Hash, msg string) []byte {
	switch h {
	case crypto.SHA384:
		d := sha512.Sum384([]byte(msg))
		return d[:]
	case crypto.SHA512:
		d := sha512.Sum512([]byte(msg))
		return d[:]
	}
	d := sha256.Sum256([]byte(msg))
	return d[:]
}

// Certificates and private data objects are stored, read and destroyed; a public data
// object is refused with a hint to store it private.
func TestTPMObjects(t *testing.T) {
	ctx := context.Background()
	_, _, _, s := newTPMToken(t)
	if err := s.StoreData(ctx, hsm.DataObject{Application: "custos", Label: "share", Value: []byte("secret"), Private: true}); err != nil {
		t.Fatal(err)
	}
	d, err := s.Data(ctx, "custos", "share")
	if err != nil || string(d.Value) != "secret" || !d.Private {
		t.Fatalf("read back %+v, %v", d, err)
	}
	err = s.StoreData(ctx, hsm.DataObject{Application: "custos", Label: "public", Value: []byte{1}})
	var he *hsm.Error
	if !errors.As(err, &he) || he.Code == 0 || !strings.Contains(err.Error(), "refuses public data objects") {
		t.Errorf("public data object: %v", err)
	}
	k, err := s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: keyalg.ECDSAP256, ID: []byte{7}, Label: "device"})
	if err != nil {
		t.Fatal(err)
	}
	cert := selfSigned(t, k, x509.ECDSAWithSHA256, "device")
	if err := s.StoreCertificate(ctx, cert, []byte{7}, "device cert"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Certificate(ctx, hsm.Match{ID: []byte{7}})
	if err != nil || !got.Equal(cert) {
		t.Fatalf("certificate read back: %v", err)
	}
	// The device identity: key pair and certificate, as erase destroys it.
	if n, err := s.Destroy(ctx, hsm.Match{ID: []byte{7}}); err != nil || n != 3 {
		t.Errorf("destroy: %d, %v", n, err)
	}
	if n, err := s.Destroy(ctx, hsm.Match{Class: hsm.ClassData, Label: "share"}); err != nil || n != 1 {
		t.Errorf("destroy data: %d, %v", n, err)
	}
	if left, err := s.Objects(ctx); err != nil || len(left) != 0 {
		t.Errorf("left: %v %v", left, err)
	}
}

// tpm2-pkcs11 cannot re-initialise an initialised token: ReinitToken refuses before the token
// is asked, and the token keeps its objects.
func TestTPMReinitRefused(t *testing.T) {
	ctx := context.Background()
	_, label, m, s := newTPMToken(t)
	if _, err := s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: keyalg.ECDSAP256, ID: []byte{1}, Label: "k"}); err != nil {
		t.Fatal(err)
	}
	if err := m.CanReinit(ctx); !errors.Is(err, hsm.ErrCannotReinit) {
		t.Fatalf("CanReinit: %v", err)
	}
	log := &hsm.CallLog{}
	lm, err := hsm.Open(m.Path(), hsm.WithFault(log.Fault))
	if err != nil {
		t.Fatal(err)
	}
	defer lm.Close()
	_, err = lm.ReinitToken(ctx, label, []byte(soPIN), label, nil)
	if !errors.Is(err, hsm.ErrCannotReinit) || !strings.Contains(err.Error(), "CKR_ARGUMENTS_BAD") {
		t.Errorf("ReinitToken: %v", err)
	}
	for _, c := range log.Calls() {
		if c == "C_InitToken" {
			t.Error("ReinitToken called C_InitToken")
		}
	}
	if left, err := s.Objects(ctx); err != nil || len(left) != 2 {
		t.Errorf("the token lost its key: %v %v", left, err)
	}
}
