//go:build cgo && !nopkcs11

package hsm_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/keyalg"
)

func TestCertificateRoundTrip(t *testing.T) {
	ctx := context.Background()
	env, _, s := newToken(t, "certs")
	id := randomID(t, s)
	k, err := s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: keyalg.ECDSAP384, ID: id, Label: "root"})
	if err != nil {
		t.Fatal(err)
	}
	cert := selfSigned(t, k, x509.ECDSAWithSHA384, "Acme Medical Root CA — Zoë")
	if err := s.StoreCertificate(ctx, cert, id, "root certificate"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []hsm.Match{{ID: id}, {Label: "root certificate"}, {ID: id, Label: "root certificate"}} {
		got, err := s.Certificate(ctx, q)
		if err != nil {
			t.Fatalf("read by %v: %v", q, err)
		}
		if !got.Equal(cert) {
			t.Fatalf("certificate read by %v differs", q)
		}
	}
	if _, err := s.Certificate(ctx, hsm.Match{Label: "nope"}); !errors.Is(err, hsm.ErrObjectNotFound) {
		t.Fatalf("missing certificate: %v", err)
	}
	objs, err := s.Find(ctx, hsm.Match{Class: hsm.ClassCertificate})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || !bytes.Equal(objs[0].ID, id) || objs[0].Private || !objs[0].Token {
		t.Fatalf("certificate objects: %v", objs)
	}

	// pkcs11-tool reads the same DER back, and openssl parses it with the same subject.
	der := filepath.Join(t.TempDir(), "cert.der")
	pkcs11Tool(t, env.ModulePath, "--token-label", "certs", "--read-object", "--type", "cert", "--id", hex.EncodeToString(id), "--output-file", der)
	raw, err := os.ReadFile(der)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, cert.Raw) {
		t.Fatal("pkcs11-tool reads back other certificate bytes")
	}
	out, err := exec.Command("openssl", "x509", "-inform", "DER", "-in", der, "-noout", "-subject", "-nameopt", "utf8").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Acme Medical Root CA — Zoë") {
		t.Fatalf("openssl x509: %v\n%s", err, out)
	}
	found := false
	for _, b := range toolObjects(t, env.ModulePath, "certs") {
		if strings.HasPrefix(b, "Certificate Object") && toolField(b, "label") == "root certificate" && toolField(b, "ID") == hex.EncodeToString(id) {
			found = true
		}
	}
	if !found {
		t.Fatal("pkcs11-tool does not list the certificate")
	}
}

func TestDataObjects(t *testing.T) {
	ctx := context.Background()
	env, _, s := newToken(t, "custodian")
	share := []byte("share 3 of 5: not really secret in a test")
	objects := []hsm.DataObject{
		{Application: "custos", Label: "share acme-root-2026 #3", Value: share, Private: true},
		{Application: "custos", Label: "note", Value: []byte("public note"), Private: false},
	}
	for _, d := range objects {
		if err := s.StoreData(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range objects {
		got, err := s.Data(ctx, d.Application, d.Label)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Value, d.Value) || got.Private != d.Private || got.Label != d.Label || got.Application != d.Application {
			t.Fatalf("read back %+v, want %+v", got, d)
		}
	}
	if _, err := s.Data(ctx, "other-app", "note"); !errors.Is(err, hsm.ErrObjectNotFound) {
		t.Fatalf("data of another application: %v", err)
	}

	// Without the custodian's PIN the private share cannot be seen, by us or by pkcs11-tool.
	if err := s.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Data(ctx, "custos", "share acme-root-2026 #3"); !errors.Is(err, hsm.ErrObjectNotFound) {
		t.Fatalf("private data object read without login: %v", err)
	}
	if _, err := s.Data(ctx, "custos", "note"); err != nil {
		t.Fatalf("public data object without login: %v", err)
	}
	public := pkcs11Tool(t, env.ModulePath, "--token-label", "custodian", "--list-objects")
	if strings.Contains(public, "share acme-root-2026") || !strings.Contains(public, "note") {
		t.Fatalf("pkcs11-tool without login:\n%s", public)
	}
	private := pkcs11Tool(t, env.ModulePath, "--token-label", "custodian", "--login", "--pin", userPIN, "--list-objects")
	if !strings.Contains(private, "share acme-root-2026 #3") || !strings.Contains(private, "custos") {
		t.Fatalf("pkcs11-tool with login:\n%s", private)
	}
	// The token stores private objects encrypted: the share is not in its files.
	if found := grepDir(t, env.Dir, share); found != "" {
		t.Fatalf("the private share is readable in %s", found)
	}
}

// grepDir returns the first file under dir containing needle, or "".
func grepDir(t *testing.T, dir string, needle []byte) string {
	t.Helper()
	found := ""
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || found != "" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, needle) {
			found = path
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func TestObjectsListing(t *testing.T) {
	ctx := context.Background()
	_, _, s := newToken(t, "listing")
	id := []byte{0xca, 0xfe}
	k, err := s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: keyalg.Ed25519, ID: id, Label: "signer", Wrappable: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.StoreCertificate(ctx, selfSigned(t, k, x509.PureEd25519, "signer"), id, "signer"); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreData(ctx, hsm.DataObject{Application: "custos", Label: "data", Value: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImportAESKey(ctx, bytes.Repeat([]byte{7}, 32), hsm.AESKeySpec{Label: "aes", ID: []byte{9}}); err != nil {
		t.Fatal(err)
	}
	objs, err := s.Objects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, o := range objs {
		got[o.String()] = true
	}
	want := []string{
		`private-key "signer" id=cafe EC_EDWARDS token,private,sensitive,extractable,always-sensitive,wrap-with-trusted,local`, // generated on the token
		`public-key "signer" id=cafe EC_EDWARDS token`,
		`certificate "signer" id=cafe token`,
		`data "data" application="custos" token`,
		`secret-key "aes" id=09 AES private,sensitive`, // imported, so never "always sensitive",
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("missing %s in %v", w, objs)
		}
	}
	if len(objs) != len(want) {
		t.Logf("%v", objs)
		t.Errorf("listed %d objects, want %d: %v", len(objs), len(want), objs)
	}
}

func TestDestroyAndRemaining(t *testing.T) {
	ctx := context.Background()
	env, _, s := newToken(t, "device-7")
	id := []byte{0xde, 0x71, 0xce}
	k, err := s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: keyalg.ECDSAP256, ID: id, Label: "device identity"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.StoreCertificate(ctx, selfSigned(t, k, x509.ECDSAWithSHA256, "device 7"), id, "device identity"); err != nil {
		t.Fatal(err)
	}
	keep, err := s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: keyalg.ECDSAP256, ID: []byte{1}, Label: "other key"})
	if err != nil {
		t.Fatal(err)
	}

	left, err := s.Remaining(ctx, id, "device identity")
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 3 {
		t.Fatalf("before destroy: %d objects, want 3: %v", len(left), left)
	}
	if _, err := s.Destroy(ctx, hsm.Match{}); err == nil || !strings.Contains(err.Error(), "refusing to destroy every object") {
		t.Fatalf("destroy with an empty match: %v", err)
	}
	n, err := s.Destroy(ctx, hsm.Match{ID: id})
	if err != nil || n != 3 {
		t.Fatalf("destroyed %d, %v; want 3", n, err)
	}
	left, err = s.Remaining(ctx, id, "device identity")
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("left after destroy: %v", left)
	}
	if b := toolObjectsWithID(t, env.ModulePath, "device-7", hex.EncodeToString(id)); len(b) != 0 {
		t.Fatalf("pkcs11-tool still lists:\n%s", strings.Join(b, "\n"))
	}
	if _, err := s.Signer(ctx, hsm.Match{ID: id}); !errors.Is(err, hsm.ErrObjectNotFound) {
		t.Fatalf("signer of the destroyed key: %v", err)
	}
	// The other key is untouched; destroying it object by object works too.
	objs, err := s.Find(ctx, hsm.Match{Label: keep.Label()})
	if err != nil || len(objs) != 2 {
		t.Fatalf("other key: %v, %v", objs, err)
	}
	for _, o := range objs {
		if err := s.DestroyObject(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if left, err := s.Remaining(ctx, nil, keep.Label()); err != nil || len(left) != 0 {
		t.Fatalf("after DestroyObject: %v, %v", left, err)
	}
	if _, err := s.Remaining(ctx, nil, ""); err == nil {
		t.Fatal("Remaining with neither id nor label")
	}
	if out := pkcs11Tool(t, env.ModulePath, "--token-label", "device-7", "--login", "--pin", userPIN, "--list-objects"); strings.Contains(out, "Object;") {
		t.Fatalf("pkcs11-tool lists objects on the emptied token:\n%s", out)
	}
}

func TestRandom(t *testing.T) {
	ctx := context.Background()
	_, _, s := newToken(t, "rng")
	a, err := s.Random(ctx, 32)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Random(ctx, 32)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 32 || bytes.Equal(a, b) || bytes.Equal(a, make([]byte, 32)) {
		t.Fatalf("random bytes %x, %x", a, b)
	}
	if _, err := s.Random(ctx, 0); err == nil {
		t.Fatal("zero random bytes")
	}
}
