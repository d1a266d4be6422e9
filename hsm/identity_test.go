//go:build cgo && !nopkcs11

package hsm_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/keyalg"
)

// IdentityObjects finds every object of a key identity whatever its id: an imported EC key
// stored twice (the second copy under another id and label, with no certificate or public
// key beside it) is found by signing under the certificate's key; a certificate copy by
// value; an unrelated key pair is left alone.
func TestIdentityObjectsWhateverTheirID(t *testing.T) {
	ctx := context.Background()
	env, _, s := newToken(t, "ident")
	dir := t.TempDir()
	key, certPEM := filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
	if out, err := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", key, "-out", certPEM, "-subj", "/CN=device SN-7", "-days", "30").CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	keyDER, certDER := filepath.Join(dir, "key.der"), filepath.Join(dir, "cert.der")
	for _, c := range [][]string{{"pkey", "-in", key, "-outform", "DER", "-out", keyDER}, {"x509", "-in", certPEM, "-outform", "DER", "-out", certDER}} {
		if out, err := exec.Command("openssl", c...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", c, err, out)
		}
	}
	login := []string{"--token-label", "ident", "--login", "--pin", userPIN}
	write := func(file, typ, id, label string) {
		pkcs11Tool(t, env.ModulePath, append(login, "--write-object", file, "--type", typ, "--id", id, "--label", label)...)
	}
	write(keyDER, "privkey", "0a01", "device key")
	write(certDER, "cert", "0a01", "device cert")
	write(keyDER, "privkey", "0b02", "hidden copy")
	write(certDER, "cert", "0c03", "cert copy")
	if _, err := s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: keyalg.ECDSAP256, ID: []byte{0xdd}, Label: "other"}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(certPEM)
	b, _ := pem.Decode(raw)
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	found, searches, err := s.IdentityObjects(ctx, []byte{0x0a, 0x01}, []*x509.Certificate{cert})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, o := range found {
		got[o.Label] = o.FoundBy
	}
	want := map[string]string{"device key": "key id", "device cert": "certificate value", "hidden copy": "public key", "cert copy": "certificate value"}
	for label, by := range want {
		if !slices.Contains(got[label], by) {
			t.Errorf("%s found by %v, want %q", label, got[label], by)
		}
	}
	if len(found) != len(want) {
		t.Errorf("found %d objects, want %d: %v", len(found), len(want), got)
	}
	if len(searches) < 5 {
		t.Errorf("searches: %+v", searches)
	}
	for _, o := range found {
		if err := s.DestroyObject(ctx, o.Object); err != nil {
			t.Fatal(err)
		}
	}
	left, _, err := s.IdentityObjects(ctx, []byte{0x0a, 0x01}, []*x509.Certificate{cert})
	if err != nil || len(left) != 0 {
		t.Errorf("after destroying: %v %v", left, err)
	}
	if objs := toolObjects(t, env.ModulePath, "ident"); len(objs) != 2 {
		t.Errorf("pkcs11-tool lists %d objects, want the unrelated key pair:\n%v", len(objs), objs)
	}

}
