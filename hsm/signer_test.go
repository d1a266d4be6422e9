//go:build cgo && !nopkcs11

package hsm_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/testhsm"
	"github.com/custos-pki/custos/keyalg"
)

// keyCases are the five key types with how each should look and sign.
var keyCases = []struct {
	alg      keyalg.Algorithm
	keyType  string // pkcs11-tool's and Object.KeyType's name
	sigAlgs  []x509.SignatureAlgorithm
	hashes   []crypto.Hash
	checkPub func(crypto.PublicKey) bool
}{
	{keyalg.ECDSAP256, "EC", []x509.SignatureAlgorithm{x509.ECDSAWithSHA256, x509.ECDSAWithSHA384},
		[]crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512},
		func(p crypto.PublicKey) bool { k, ok := p.(*ecdsa.PublicKey); return ok && k.Curve == elliptic.P256() }},
	{keyalg.ECDSAP384, "EC", []x509.SignatureAlgorithm{x509.ECDSAWithSHA384, x509.ECDSAWithSHA256},
		[]crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512},
		func(p crypto.PublicKey) bool { k, ok := p.(*ecdsa.PublicKey); return ok && k.Curve == elliptic.P384() }},
	{keyalg.RSA3072, "RSA", []x509.SignatureAlgorithm{x509.SHA256WithRSA, x509.SHA384WithRSA, x509.SHA256WithRSAPSS, x509.SHA512WithRSAPSS},
		[]crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512},
		func(p crypto.PublicKey) bool {
			k, ok := p.(*rsa.PublicKey)
			return ok && k.N.BitLen() == 3072 && k.E == 65537
		}},
	{keyalg.RSA4096, "RSA", []x509.SignatureAlgorithm{x509.SHA384WithRSA, x509.SHA384WithRSAPSS},
		[]crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512},
		func(p crypto.PublicKey) bool {
			k, ok := p.(*rsa.PublicKey)
			return ok && k.N.BitLen() == 4096 && k.E == 65537
		}},
	{keyalg.Ed25519, "EC_EDWARDS", []x509.SignatureAlgorithm{x509.PureEd25519},
		[]crypto.Hash{0},
		func(p crypto.PublicKey) bool {
			k, ok := p.(ed25519.PublicKey)
			return ok && len(k) == ed25519.PublicKeySize
		}},
}

func digestOf(h crypto.Hash, msg []byte) []byte {
	if h == 0 {
		return msg
	}
	d := h.New()
	d.Write(msg)
	return d.Sum(nil)
}

// verify checks sig over msg with Go's own crypto, independent of the token.
func verify(t *testing.T, pub crypto.PublicKey, h crypto.Hash, msg, sig []byte, opts crypto.SignerOpts) {
	t.Helper()
	digest := digestOf(h, msg)
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, digest, sig) {
			t.Errorf("ECDSA signature with %v does not verify", h)
		}
	case *rsa.PublicKey:
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			// Verify with the salt length asked for, and with Auto, which accepts any.
			want := &rsa.PSSOptions{Hash: h, SaltLength: pss.SaltLength}
			if err := rsa.VerifyPSS(k, h, digest, sig, want); err != nil {
				t.Errorf("RSA-PSS signature with %v, salt %d does not verify: %v", h, pss.SaltLength, err)
			}
			if err := rsa.VerifyPSS(k, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}); err != nil {
				t.Errorf("RSA-PSS signature with %v does not verify with salt Auto: %v", h, err)
			}
			return
		}
		if err := rsa.VerifyPKCS1v15(k, h, digest, sig); err != nil {
			t.Errorf("RSA PKCS #1 v1.5 signature with %v does not verify: %v", h, err)
		}
	case ed25519.PublicKey:
		if !ed25519.Verify(k, msg, sig) {
			t.Errorf("Ed25519 signature does not verify")
		}
	default:
		t.Fatalf("unexpected public key %T", pub)
	}
}

// selfSigned makes and parses a certificate signed by k with sigAlg.
func selfSigned(t *testing.T, k crypto.Signer, sigAlg x509.SignatureAlgorithm, cn string) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Custos test"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SignatureAlgorithm:    sigAlg,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatalf("create certificate with %v: %v", sigAlg, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestGenerateSignVerify(t *testing.T) {
	ctx := context.Background()
	env, _, s := newToken(t, "keys")
	msg := []byte("Custos signs this message with a key that never leaves the token")

	for _, tc := range keyCases {
		t.Run(string(tc.alg), func(t *testing.T) {
			id := randomID(t, s)
			k, err := s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: tc.alg, ID: id, Label: "key " + string(tc.alg)})
			if err != nil {
				t.Fatal(err)
			}
			if k.Algorithm() != tc.alg || !tc.checkPub(k.Public()) {
				t.Fatalf("generated %s key reads back as %s %T", tc.alg, k.Algorithm(), k.Public())
			}
			if !bytes.Equal(k.ID(), id) || k.Label() != "key "+string(tc.alg) {
				t.Errorf("key id %x label %q, want %x %q", k.ID(), k.Label(), id, "key "+string(tc.alg))
			}

			// Direct signatures with each hash, verified by Go's crypto.
			for _, h := range tc.hashes {
				sig, err := k.Sign(nil, digestOf(h, msg), h)
				if err != nil {
					t.Fatalf("sign with %v: %v", h, err)
				}
				verify(t, k.Public(), h, msg, sig, h)
				if _, ok := k.Public().(*rsa.PublicKey); ok {
					for _, salt := range []int{rsa.PSSSaltLengthEqualsHash, rsa.PSSSaltLengthAuto, 20} {
						opts := &rsa.PSSOptions{Hash: h, SaltLength: salt}
						sig, err := k.Sign(nil, digestOf(h, msg), opts)
						if err != nil {
							t.Fatalf("sign PSS with %v salt %d: %v", h, salt, err)
						}
						if salt == rsa.PSSSaltLengthAuto {
							opts = &rsa.PSSOptions{Hash: h, SaltLength: rsa.PSSSaltLengthEqualsHash} // what Auto signs with
						}
						verify(t, k.Public(), h, msg, sig, opts)
					}
				}
			}

			// Certificates signed through crypto/x509, checked by crypto/x509.
			for _, sigAlg := range tc.sigAlgs {
				cert := selfSigned(t, k, sigAlg, string(tc.alg))
				if err := cert.CheckSignatureFrom(cert); err != nil {
					t.Errorf("%v certificate does not verify: %v", sigAlg, err)
				}
				if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
					t.Errorf("%v: x509.CheckSignature: %v", sigAlg, err)
				}
			}

			// The private key reads back private, sensitive and never extractable ...
			objs, err := s.Find(ctx, hsm.Match{ID: id})
			if err != nil {
				t.Fatal(err)
			}
			if len(objs) != 2 {
				t.Fatalf("found %d objects with the key's id, want 2: %v", len(objs), objs)
			}
			for _, o := range objs {
				if o.KeyType != tc.keyType || o.Label != k.Label() || !o.Token {
					t.Errorf("object %s: want a %s token object labelled %q", o, tc.keyType, k.Label())
				}
				switch o.Class {
				case hsm.ClassPrivateKey:
					if !o.Private || !o.Sensitive || o.Extractable || !o.AlwaysSensitive || !o.NeverExtractable {
						t.Errorf("private key %s: want private, sensitive, not extractable, always sensitive, never extractable", o)
					}
				case hsm.ClassPublicKey:
					if o.Private {
						t.Errorf("public key %s is private", o)
					}
				default:
					t.Errorf("unexpected object %s", o)
				}
			}
			// ... and pkcs11-tool, reading the token on its own, agrees.
			blocks := toolObjectsWithID(t, env.ModulePath, "keys", hex.EncodeToString(id))
			var sawPrivate bool
			for _, b := range blocks {
				if !strings.HasPrefix(b, "Private Key Object; "+tc.keyType) {
					continue
				}
				sawPrivate = true
				access := toolField(b, "Access")
				for _, want := range []string{"sensitive", "always sensitive", "never extractable"} {
					if !strings.Contains(access, want) {
						t.Errorf("pkcs11-tool says the private key's access is %q, missing %q", access, want)
					}
				}
				if toolField(b, "label") != k.Label() {
					t.Errorf("pkcs11-tool label %q, want %q", toolField(b, "label"), k.Label())
				}
			}
			if !sawPrivate || len(blocks) != 2 {
				t.Errorf("pkcs11-tool lists %d objects with id %x and private key %v:\n%s", len(blocks), id, sawPrivate, strings.Join(blocks, "\n"))
			}

			// Found again by id and by label, with the same public key.
			for _, q := range []hsm.Match{{ID: id}, {Label: k.Label()}} {
				again, err := s.Signer(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if !again.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(k.Public()) || again.Algorithm() != tc.alg {
					t.Errorf("signer found by %v has another public key", q)
				}
			}
		})
	}
}

// The signer of a key is found again after the module is closed and opened anew, when
// SoftHSM2 has renumbered the token's slot.
func TestSignerAfterReopen(t *testing.T) {
	ctx := context.Background()
	env := testhsm.New(t)
	slot := env.InitToken(t, "reopen", soPIN, userPIN)
	m, err := hsm.Open(env.ModulePath)
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.OpenSession(ctx, "reopen")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Login(ctx, hsm.User, []byte(userPIN)); err != nil {
		t.Fatal(err)
	}
	k, err := s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: keyalg.ECDSAP256, ID: []byte{7}, Label: "kept"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	m2 := env.Open(t)
	s2 := testhsm.UserSession(t, m2, "reopen", userPIN)
	if s2.SlotID() != slot.ID {
		t.Logf("SoftHSM2 renumbered the token from slot %d to %d on re-initialisation", slot.ID, s2.SlotID())
	}
	k2, err := s2.Signer(ctx, hsm.Match{ID: []byte{7}})
	if err != nil {
		t.Fatal(err)
	}
	if !k2.Public().(*ecdsa.PublicKey).Equal(k.Public()) {
		t.Fatal("the key found after reopening has another public key")
	}
	d := sha256.Sum256([]byte("after reopen"))
	sig, err := k2.Sign(nil, d[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), d[:], sig) {
		t.Fatal("signature after reopen does not verify")
	}
}

func TestSignRejectsBadInput(t *testing.T) {
	ctx := context.Background()
	_, _, s := newToken(t, "bad-input")
	keys := map[keyalg.Algorithm]*hsm.Signer{}
	for _, alg := range []keyalg.Algorithm{keyalg.ECDSAP256, keyalg.RSA3072, keyalg.Ed25519} {
		k, err := s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: alg, ID: []byte(alg), Label: string(alg)})
		if err != nil {
			t.Fatal(err)
		}
		keys[alg] = k
	}
	d256 := sha256.Sum256([]byte("x"))
	tests := []struct {
		name   string
		alg    keyalg.Algorithm
		digest []byte
		opts   crypto.SignerOpts
		want   string
	}{
		{"ecdsa digest too short", keyalg.ECDSAP256, d256[:20], crypto.SHA256, "digest is 20 bytes"},
		{"ecdsa digest of other hash", keyalg.ECDSAP256, d256[:], crypto.SHA384, "SHA-384 digests are 48"},
		{"ecdsa without hash", keyalg.ECDSAP256, d256[:], crypto.Hash(0), "no hash given"},
		{"no options", keyalg.ECDSAP256, d256[:], nil, "no signer options"},
		{"rsa sha1", keyalg.RSA3072, d256[:20], crypto.SHA1, "not supported for RSA"},
		{"rsa pss salt too long", keyalg.RSA3072, d256[:], &rsa.PSSOptions{Hash: crypto.SHA256, SaltLength: 400}, "salt length 400 is out of range"},
		{"rsa pss sha1", keyalg.RSA3072, d256[:20], &rsa.PSSOptions{Hash: crypto.SHA1}, "not supported for RSA-PSS"},
		{"ed25519ph", keyalg.Ed25519, d256[:], crypto.SHA256, "Ed25519ph"},
		{"ed25519ctx", keyalg.Ed25519, []byte("m"), &ed25519.Options{Context: "ctx"}, "Ed25519ctx"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := keys[tc.alg].Sign(nil, tc.digest, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

func TestGenerateKeyPairRefuses(t *testing.T) {
	ctx := context.Background()
	_, _, s := newToken(t, "refuse")
	if _, err := s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: keyalg.ECDSAP256, ID: []byte{1}, Label: "first"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		spec hsm.KeySpec
		want string
	}{
		{"unknown algorithm", hsm.KeySpec{Algorithm: "dsa-1024", ID: []byte{2}}, `unknown key algorithm "dsa-1024": use one of ecdsa-p256, ecdsa-p384, rsa-3072, rsa-4096, ed25519`},
		{"no id", hsm.KeySpec{Algorithm: keyalg.ECDSAP256}, "no key id given"},
		{"id taken", hsm.KeySpec{Algorithm: keyalg.ECDSAP384, ID: []byte{1}, Label: "second"}, "key id already in use"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.GenerateKeyPair(ctx, tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
	// Without a login there is nowhere to put a private key.
	if err := s.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: keyalg.ECDSAP256, ID: []byte{3}})
	if !errors.Is(err, hsm.ErrNotLoggedIn) {
		t.Fatalf("generate while logged out: got %v, want ErrNotLoggedIn", err)
	}
}

func TestParseAlgorithm(t *testing.T) {
	for _, a := range keyalg.All() {
		got, err := keyalg.Parse(strings.ToUpper(string(a)))
		if err != nil || got != a {
			t.Errorf("ParseAlgorithm(%q) = %q, %v", strings.ToUpper(string(a)), got, err)
		}
	}
	_, err := keyalg.Parse("rsa-2048")
	want := `unknown key algorithm "rsa-2048": use one of ecdsa-p256, ecdsa-p384, rsa-3072, rsa-4096, ed25519`
	if err == nil || err.Error() != want {
		t.Errorf("ParseAlgorithm(rsa-2048): %v, want %q", err, want)
	}
}

// A token whose module lacks a mechanism says so: SoftHSM2 configured to offer only ECDSA
// (2.6.1 takes a list of allowed mechanisms, not exclusions) refuses to make Ed25519 keys,
// and ECDSA keys still work.
func TestMechanismUnsupported(t *testing.T) {
	ctx := context.Background()
	env := testhsm.New(t)
	conf, err := os.OpenFile(env.ConfPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conf.WriteString("slots.mechanisms = CKM_EC_KEY_PAIR_GEN,CKM_ECDSA\n"); err != nil {
		t.Fatal(err)
	}
	conf.Close()
	env.InitToken(t, "no-ed25519", soPIN, userPIN)
	m := env.Open(t)
	s := testhsm.UserSession(t, m, "no-ed25519", userPIN)
	_, err = s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: keyalg.Ed25519, ID: []byte{1}, Label: "ed"})
	if !errors.Is(err, hsm.ErrMechanismUnsupported) || !strings.Contains(err.Error(), "this token cannot generate ed25519 keys (it does not offer CKM_EC_EDWARDS_KEY_PAIR_GEN): choose another algorithm or token") {
		t.Fatalf("got %v", err)
	}
	if _, err := s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: keyalg.ECDSAP256, ID: []byte{2}, Label: "ec"}); err != nil {
		t.Fatal(err)
	}
}
