//go:build cgo && !nopkcs11

package hsm_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/testhsm"
	"github.com/custos-pki/custos/keyalg"
)

func newKEK(t *testing.T) []byte {
	t.Helper()
	kek := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	return kek
}

// A wrappable key is backed up under a KEK that is trusted only for the moment, restored
// into a second token, and signs there for the same public key; nothing of the KEK stays.
func TestBackupRestore(t *testing.T) {
	ctx := context.Background()
	env := testhsm.New(t)
	env.InitToken(t, "root-hsm", soPIN, userPIN)
	env.InitToken(t, "spare-hsm", soPIN, userPIN)
	m := env.Open(t)
	src := testhsm.UserSession(t, m, "root-hsm", userPIN)
	dst := testhsm.UserSession(t, m, "spare-hsm", userPIN)
	kek := newKEK(t)
	msg := []byte("restored keys sign the same")

	for _, alg := range []keyalg.Algorithm{keyalg.ECDSAP256, keyalg.ECDSAP384, keyalg.RSA3072, keyalg.RSA4096} {
		t.Run(string(alg), func(t *testing.T) {
			if err := src.Login(ctx, hsm.User, []byte(userPIN)); err != nil {
				t.Fatal(err)
			}
			id := randomID(t, src)
			k, err := src.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: alg, ID: id, Label: "root " + string(alg), Wrappable: true})
			if err != nil {
				t.Fatal(err)
			}
			blob, err := src.BackupKey(ctx, []byte(soPIN), []byte(userPIN), kek, id)
			if err != nil {
				t.Fatal(err)
			}
			if len(blob) < 64 {
				t.Fatalf("blob of %d bytes", len(blob))
			}
			// BackupKey logs out: the private key is out of sight again ...
			if _, err := src.Signer(ctx, hsm.Match{ID: id}); !errors.Is(err, hsm.ErrObjectNotFound) {
				t.Fatalf("after BackupKey the private key is still visible: %v", err)
			}
			// ... and no secret key is left on the token, nor the KEK in its files.
			if err := src.Login(ctx, hsm.User, []byte(userPIN)); err != nil {
				t.Fatal(err)
			}
			if left, err := src.Find(ctx, hsm.Match{Class: hsm.ClassSecretKey}); err != nil || len(left) != 0 {
				t.Fatalf("secret keys after backup: %v, %v", left, err)
			}
			if f := grepDir(t, env.Dir, kek); f != "" {
				t.Fatalf("the KEK is in %s", f)
			}

			r, err := dst.RestoreKey(ctx, kek, blob, hsm.UnwrapSpec{ID: id, Label: "restored " + string(alg), Public: k.Public()})
			if err != nil {
				t.Fatal(err)
			}
			if r.Algorithm() != alg {
				t.Fatalf("restored key is %s", r.Algorithm())
			}
			// It signs for the original public key: a certificate it signs verifies
			// with the original key's certificate.
			sigAlg := map[keyalg.Algorithm]x509.SignatureAlgorithm{keyalg.ECDSAP256: x509.ECDSAWithSHA256, keyalg.ECDSAP384: x509.ECDSAWithSHA384, keyalg.RSA3072: x509.SHA256WithRSAPSS, keyalg.RSA4096: x509.SHA384WithRSA}[alg]
			orig := selfSigned(t, k, sigAlg, "original")
			byRestored := selfSigned(t, r, sigAlg, "original")
			if err := byRestored.CheckSignatureFrom(orig); err != nil {
				t.Fatalf("certificate signed by the restored key does not verify under the original: %v", err)
			}
			d := sha512.Sum512(msg)
			sig, err := r.Sign(nil, d[:], crypto.SHA512)
			if err != nil {
				t.Fatal(err)
			}
			verify(t, k.Public(), crypto.SHA512, msg, sig, crypto.SHA512)

			// Restored with the same protection, found again like any key, and with a
			// public key object beside it.
			objs, err := dst.Find(ctx, hsm.Match{ID: id})
			if err != nil || len(objs) != 2 {
				t.Fatalf("restored objects: %v, %v", objs, err)
			}
			for _, o := range objs {
				if o.Class == hsm.ClassPrivateKey && (!o.Token || !o.Private || !o.Sensitive || !o.Extractable || !o.WrapWithTrusted) {
					t.Errorf("restored private key %s: want token, private, sensitive, extractable only wrapped under a trusted key", o)
				}
			}
			again, err := dst.Signer(ctx, hsm.Match{Label: "restored " + string(alg)})
			if err != nil || !again.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(k.Public()) {
				t.Fatalf("restored key found again: %v", err)
			}
			if f := grepDir(t, env.Dir, kek); f != "" {
				t.Fatalf("the KEK is in %s after restore", f)
			}

			// The restored key can itself be backed up again.
			if _, err := dst.BackupKey(ctx, []byte(soPIN), []byte(userPIN), kek, id); err != nil {
				t.Fatalf("backing up the restored key: %v", err)
			}
			if err := dst.Login(ctx, hsm.User, []byte(userPIN)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// SoftHSM 2.6.1 cannot wrap Ed25519 private keys, even under a trusted key: the error says
// so plainly.
func TestBackupEd25519Unsupported(t *testing.T) {
	ctx := context.Background()
	_, _, s := newToken(t, "ed")
	if _, err := s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: keyalg.Ed25519, ID: []byte{1}, Label: "ed", Wrappable: true}); err != nil {
		t.Fatal(err)
	}
	_, err := s.BackupKey(ctx, []byte(soPIN), []byte(userPIN), newKEK(t), []byte{1})
	if !errors.Is(err, hsm.ErrNotWrappable) || !strings.Contains(err.Error(), "this token cannot wrap EC_EDWARDS private keys") {
		t.Fatalf("got %v", err)
	}
}

// Only a key the SO marked trusted can wrap a key made wrap-with-trusted; a key made not
// extractable cannot be wrapped at all.
func TestWrapNeedsTrustedKey(t *testing.T) {
	ctx := context.Background()
	_, _, s := newToken(t, "trust")
	wrappable, err := s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: keyalg.ECDSAP256, ID: []byte{1}, Label: "wrappable", Wrappable: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: keyalg.ECDSAP256, ID: []byte{2}, Label: "fixed"}); err != nil {
		t.Fatal(err)
	}
	kek := newKEK(t)

	// Any user may import an AES key, but it is not trusted, and the token refuses it.
	untrusted, err := s.ImportAESKey(ctx, kek, hsm.AESKeySpec{Label: "user's own key"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Wrap(ctx, untrusted, wrappable.ID())
	if !errors.Is(err, hsm.ErrNotWrappable) || !strings.Contains(err.Error(), "CKR_KEY_NOT_WRAPPABLE") ||
		!strings.Contains(err.Error(), "only under a key the SO marked trusted, and this wrapping key is not") {
		t.Fatalf("wrap under an untrusted key: %v", err)
	}
	// Nor may the user mark a key trusted.
	_, err = s.ImportAESKey(ctx, kek, hsm.AESKeySpec{Label: "self-trusted", Trusted: true})
	if err == nil || !strings.Contains(err.Error(), "only the SO may mark a key trusted") {
		t.Fatalf("user imports a trusted key: %v", err)
	}
	if err := untrusted.Destroy(ctx); err != nil {
		t.Fatal(err)
	}

	// The lower-level pieces of BackupKey: the SO makes the trusted session key, and the
	// user, on the same session, wraps with it.
	if err := s.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Login(ctx, hsm.SO, []byte(soPIN)); err != nil {
		t.Fatal(err)
	}
	trusted, err := s.ImportAESKey(ctx, kek, hsm.AESKeySpec{Label: "kek", Trusted: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Login(ctx, hsm.User, []byte(userPIN)); err != nil {
		t.Fatal(err)
	}
	keys, err := s.Find(ctx, hsm.Match{Class: hsm.ClassSecretKey})
	if err != nil || len(keys) != 1 || !keys[0].Trusted || keys[0].Token || keys[0].Private {
		t.Fatalf("the SO's key after the SO logged out: %v, %v", keys, err)
	}
	blob, err := s.Wrap(ctx, trusted, wrappable.ID())
	if err != nil {
		t.Fatalf("wrap under the trusted key: %v", err)
	}
	if len(blob) == 0 {
		t.Fatal("empty blob")
	}
	_, err = s.Wrap(ctx, trusted, []byte{2})
	if !errors.Is(err, hsm.ErrNotWrappable) || !strings.Contains(err.Error(), "CKR_KEY_UNEXTRACTABLE") {
		t.Fatalf("wrap a non-extractable key: %v", err)
	}
	if err := trusted.Destroy(ctx); err != nil {
		t.Fatal(err)
	}

	// BackupKey refuses a key that was not made to be backed up, and leaves the session
	// logged out.
	_, err = s.BackupKey(ctx, []byte(soPIN), []byte(userPIN), kek, []byte{2})
	if !errors.Is(err, hsm.ErrNotWrappable) || !strings.Contains(err.Error(), "was not generated to be backed up") {
		t.Fatalf("back up a fixed key: %v", err)
	}
	if _, err := s.Signer(ctx, hsm.Match{ID: []byte{2}}); !errors.Is(err, hsm.ErrObjectNotFound) {
		t.Fatalf("still logged in after a failed BackupKey: %v", err)
	}
	if err := s.Login(ctx, hsm.User, []byte(userPIN)); err != nil {
		t.Fatal(err)
	}
	if left, _ := s.Find(ctx, hsm.Match{Class: hsm.ClassSecretKey}); len(left) != 0 {
		t.Fatalf("secret keys left after a failed BackupKey: %v", left)
	}
	// A wrong SO PIN stops BackupKey before anything happens.
	_, err = s.BackupKey(ctx, []byte("wrong-so-pin"), []byte(userPIN), kek, []byte{1})
	if !errors.Is(err, hsm.ErrPINIncorrect) || !strings.Contains(err.Error(), "log") {
		t.Fatalf("BackupKey with a wrong SO PIN: %v", err)
	}
}

func TestRestoreRefuses(t *testing.T) {
	ctx := context.Background()
	env := testhsm.New(t)
	env.InitToken(t, "a", soPIN, userPIN)
	env.InitToken(t, "b", soPIN, userPIN)
	m := env.Open(t)
	a := testhsm.UserSession(t, m, "a", userPIN)
	b := testhsm.UserSession(t, m, "b", userPIN)
	kek := newKEK(t)
	k, err := a.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: keyalg.ECDSAP256, ID: []byte{1}, Label: "k", Wrappable: true})
	if err != nil {
		t.Fatal(err)
	}
	other, err := a.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: keyalg.ECDSAP256, ID: []byte{2}, Label: "other"})
	if err != nil {
		t.Fatal(err)
	}
	blob, err := a.BackupKey(ctx, []byte(soPIN), []byte(userPIN), kek, []byte{1})
	if err != nil {
		t.Fatal(err)
	}
	damaged := bytes.Clone(blob)
	damaged[10] ^= 1

	tests := []struct {
		name string
		kek  []byte
		blob []byte
		spec hsm.UnwrapSpec
		want string
	}{
		{"another KEK", newKEK(t), blob, hsm.UnwrapSpec{ID: []byte{1}, Label: "r", Public: k.Public()}, "the blob is damaged or was wrapped under another key-encryption key"},
		{"damaged blob", kek, damaged, hsm.UnwrapSpec{ID: []byte{1}, Label: "r", Public: k.Public()}, "the blob is damaged or was wrapped under another key-encryption key"},
		{"empty blob", kek, nil, hsm.UnwrapSpec{ID: []byte{1}, Label: "r", Public: k.Public()}, "wrapped key is empty"},
		{"short KEK", kek[:16], blob, hsm.UnwrapSpec{ID: []byte{1}, Label: "r", Public: k.Public()}, "an AES-256 key is 32 bytes"},
		{"no id", kek, blob, hsm.UnwrapSpec{Label: "r", Public: k.Public()}, "no key id given"},
		{"no public key", kek, blob, hsm.UnwrapSpec{ID: []byte{1}, Label: "r"}, "is not supported"},
		{"another key's public key", kek, blob, hsm.UnwrapSpec{ID: []byte{1}, Label: "r", Public: other.Public()}, "the unwrapped key does not match the public key given"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.RestoreKey(ctx, tc.kek, tc.blob, tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
			// Nothing is left behind on the target token.
			if objs, err := b.Objects(ctx); err != nil || len(objs) != 0 {
				t.Fatalf("objects left on the target: %v, %v", objs, err)
			}
		})
	}
}
