package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"io"
	"math/big"
	"strings"
	"testing"

	"github.com/custos-pki/custos/internal/pgpwords"
	"github.com/custos-pki/custos/keyalg"
)

func TestCheckPublicKey(t *testing.T) {
	keys := map[keyalg.Algorithm]crypto.PublicKey{}
	for _, a := range keyalg.All() {
		keys[a] = newKey(t, a).Public()
	}
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsa3072 := keys[keyalg.RSA3072].(*rsa.PublicKey)
	exp3 := &rsa.PublicKey{N: rsa3072.N, E: 3}
	tests := []struct {
		name string
		pub  crypto.PublicKey
		want keyalg.Algorithm
		err  string
	}{
		{"P-384 as P-256", keys[keyalg.ECDSAP384], keyalg.ECDSAP256, "public key is ecdsa-p384, not the ecdsa-p256 key asked for"},
		{"P-256 as P-384", keys[keyalg.ECDSAP256], keyalg.ECDSAP384, "is ecdsa-p256, not the ecdsa-p384"},
		{"RSA-3072 as RSA-4096", keys[keyalg.RSA3072], keyalg.RSA4096, "is rsa-3072, not the rsa-4096"},
		{"RSA-4096 as RSA-3072", keys[keyalg.RSA4096], keyalg.RSA3072, "is rsa-4096, not the rsa-3072"},
		{"Ed25519 as P-256", keys[keyalg.Ed25519], keyalg.ECDSAP256, "is ed25519, not the ecdsa-p256"},
		{"P-521", p521.Public(), keyalg.ECDSAP384, "curve P-521 is not supported"},
		{"RSA-2048", rsa2048.Public(), keyalg.RSA3072, "RSA key of 2048 bits is not supported"},
		{"exponent 3", exp3, keyalg.RSA3072, "RSA public exponent 3 is not allowed"},
		{"not a key", "hello", keyalg.Ed25519, "public key of type string is not supported"},
		{"unknown algorithm asked", keys[keyalg.Ed25519], "ed448", `unknown key algorithm "ed448"`},
	}
	for _, a := range keyalg.All() {
		tests = append(tests, struct {
			name string
			pub  crypto.PublicKey
			want keyalg.Algorithm
			err  string
		}{string(a), keys[a], a, ""})
	}
	for _, tt := range tests {
		err := CheckPublicKey(tt.pub, tt.want)
		if tt.err == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: error = %v, want it to contain %q", tt.name, err, tt.err)
		}
	}
}

func TestFingerprint(t *testing.T) {
	// SHA-256("abc") from FIPS 180-2, appendix B.1.
	f := FingerprintOf([]byte("abc"))
	if got, want := f.String(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Fatalf("String() = %s, want %s", got, want)
	}
	if got, want := f.Grouped(), "BA78 16BF 8F01 CFEA 4141 40DE 5DAE 2223 B003 61A3 9617 7A9C B410 FF61 F200 15AD"; got != want {
		t.Errorf("Grouped() = %s, want %s", got, want)
	}
	words := f.Words()
	if n := len(strings.Fields(words)); n != 32 {
		t.Errorf("Words() has %d words", n)
	}
	// BA, 78, 16, BF: even, odd, even, odd.
	if !strings.HasPrefix(words, "shadow indigo backward rebellion ") {
		t.Errorf("Words() = %q", words)
	}
	back, err := pgpwords.Decode(words)
	if err != nil || !bytes.Equal(back, f[:]) {
		t.Errorf("Words() = %q does not decode back: %v", words, err)
	}
}

// TestCertificateFingerprintMatchesOpenSSL compares with `openssl x509 -fingerprint`.
func TestCertificateFingerprintMatchesOpenSSL(t *testing.T) {
	h := newHierarchy(t, keyalg.ECDSAP256)
	path := writeCert(t, t.TempDir(), "root.pem", h.root)
	out := openssl(t, "x509", "-noout", "-fingerprint", "-sha256", "-in", path)
	want := strings.ReplaceAll(strings.TrimSpace(out[strings.Index(out, "=")+1:]), ":", "")
	got := CertificateFingerprint(h.root)
	if !strings.EqualFold(got.String(), want) {
		t.Errorf("fingerprint %s, openssl says %s", got, want)
	}
	spki := openssl(t, "x509", "-noout", "-pubkey", "-in", path)
	der := openssl(t, "pkey", "-pubin", "-outform", "DER", "-in", writeString(t, spki))
	pf, err := PublicKeyFingerprint(h.root.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if pf != FingerprintOf([]byte(der)) {
		t.Errorf("public key fingerprint differs from the SHA-256 of openssl's SPKI")
	}
}

func TestNewSerial(t *testing.T) {
	tests := []struct {
		name   string
		random []byte
		want   string
	}{
		{"zeros do not shrink it", make([]byte, 16), "0100000000000000000000000000000000"},
		{"high bit needs no sign byte", bytes.Repeat([]byte{0xFF}, 16), "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"},
	}
	for _, tt := range tests {
		s, err := NewSerial(bytes.NewReader(tt.random))
		if err != nil {
			t.Fatal(err)
		}
		if got := SerialHex(s); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
		if integerContentSize(s) != 17 {
			t.Errorf("%s: %d octets encoded", tt.name, integerContentSize(s))
		}
	}
	_, err := NewSerial(bytes.NewReader(make([]byte, 15)))
	if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short RNG: %v", err)
	}
	a, b := newSerial(t), newSerial(t)
	if a.Cmp(b) == 0 {
		t.Error("two serials are equal")
	}
}

func TestParseSerial(t *testing.T) {
	tests := []struct {
		in   string
		want string
		err  string
	}{
		{"01A2B3", "01A2B3", ""},
		{"0x1a2b3", "01A2B3", ""},
		{"01:a2:b3", "01A2B3", ""},
		{" 01 A2 B3 ", "01A2B3", ""},
		{"80", "80", ""},
		{"", "", "is not hex"},
		{"xyz", "", "is not hex"},
		{"-01", "", "is not hex"},
		{"00", "", "not positive"},
		{strings.Repeat("7F", 20), strings.Repeat("7F", 20), ""},
		{strings.Repeat("80", 20), "", "takes 21 octets"},
	}
	for _, tt := range tests {
		got, err := ParseSerial(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseSerial(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || SerialHex(got) != tt.want {
			t.Errorf("ParseSerial(%q) = %v, %v, want %s", tt.in, got, err, tt.want)
		}
	}
	if got := SerialHex(big.NewInt(0xABC)); got != "0ABC" {
		t.Errorf("SerialHex pads to whole bytes: %s", got)
	}
}
