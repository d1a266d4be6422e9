package quorum

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
)

// testRoot stands for the SHA-256 of the root certificate the test shares are made for.
var testRoot = bytes.Repeat([]byte{0x5C}, sha256.Size)

// testQuorum splits a fresh secret 3 of 5 and returns the shares as text and the collector's
// parameters.
func testQuorum(t *testing.T) (s []byte, texts []string, p Params) {
	t.Helper()
	s, err := NewSecret(make([]byte, SecretLen))
	if err != nil {
		t.Fatal(err)
	}
	shares, err := Split(s, "acme-root-2026", testRoot, 2, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	p = Params{CeremonyID: "acme-root-2026", RootSHA256: testRoot, Epoch: 2, Threshold: 3, Digest: Digest(s, "acme-root-2026", 2)}
	for i, sh := range shares {
		texts = append(texts, sh.Encode())
		p.Custodians = append(p.Custodians, Custodian{Name: []string{"Cara", "Cody", "Cleo", "Cole", "Cruz"}[i], Number: sh.Number, Commitment: sh.Commitment()})
		sh.Wipe()
	}
	return s, texts, p
}

// tamper changes the share's body as someone with a text editor and this source could: the
// edit keeps every group's check character and the whole-share checksum right.
func tamper(t *testing.T, text string, edit func(body []byte)) string {
	t.Helper()
	lines := strings.Split(text, "\n")
	groups := strings.Split(lines[len(lines)-1], "-")
	var digits []byte
	for g, f := range groups {
		d, err := decodeGroup(g, f)
		if err != nil {
			t.Fatal(err)
		}
		digits = append(digits, d...)
	}
	body := fromBase32(digits)
	edit(body)
	sum := sha256.Sum256(body[:shareBodyLen-4])
	copy(body[shareBodyLen-4:], sum[:4])
	return strings.Join(groupsOf(body), "-")
}

func TestCollectorRefuses(t *testing.T) {
	_, texts, p := testQuorum(t)
	other := Share{CeremonyID: "other-root", Epoch: 2, Number: 1, Threshold: 3, Bytes: make([]byte, shareLen)}
	tests := []struct {
		name, text, want string
		refused          bool // wraps ErrRefused (a parse error names its group instead)
	}{
		{"mistyped group", texts[0][:len(texts[0])-5] + "00000", "share group 19 of 19", false},
		{"another ceremony", other.Encode(), "belongs to another ceremony", true},
		{"older epoch", tamper(t, texts[1], func(b []byte) { b[6] = 1 }), "from epoch 1, but acme-root-2026 is at epoch 2", true},
		{"no such number", tamper(t, texts[1], func(b []byte) { b[7] = 9 }), "has shares 1 to 5", true},
		{"threshold byte altered", tamper(t, texts[1], func(b []byte) { b[8] = 2 }), "share #2 (Cody) does not match its commitment", true},
		{"share byte altered", tamper(t, texts[1], func(b []byte) { b[20] ^= 1 }), "does not match its commitment", true},
		{"number swapped to another custodian's", tamper(t, texts[1], func(b []byte) { b[7] = 3 }), "share #3 (Cleo) does not match its commitment", true},
		{"format version 1", tamper(t, texts[1], func(b []byte) { b[0] = 1 }), "format version 1; this Custos reads version 3", false},
		{"format version 2", tamper(t, texts[1], func(b []byte) { b[0] = 2 }), "format version 2; this Custos reads version 3", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCollector(p)
			_, err := c.Add(tt.text)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Add: %v, want %q", err, tt.want)
			}
			if errors.Is(err, ErrRefused) != tt.refused {
				t.Errorf("errors.Is(err, ErrRefused) = %v, want %v", !tt.refused, tt.refused)
			}
			if c.Present() != 0 {
				t.Errorf("a refused share was kept")
			}
		})
	}
}

// A collector for another root certificate (a workspace whose root certificate was replaced,
// with a statement signed by another key and the real commitments copied) takes none of the
// real shares: their commitments bind them to the root they were made for.
func TestCollectorRefusesAnotherRoot(t *testing.T) {
	_, texts, p := testQuorum(t)
	p.RootSHA256 = bytes.Repeat([]byte{0x5D}, sha256.Size)
	c := NewCollector(p)
	for i, text := range texts {
		if _, err := c.Add(text); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "does not match its commitment") {
			t.Errorf("share #%d under another root: %v", i+1, err)
		}
	}
}

// The commitment covers every field a share carries and the root it was made for: changing
// any one changes it.
func TestCommitmentCoversEveryField(t *testing.T) {
	base := Share{CeremonyID: "acme-root-2026", RootSHA256: testRoot, Epoch: 2, Number: 4, Threshold: 3, Bytes: bytes.Repeat([]byte{7}, shareLen)}
	edits := map[string]func(s *Share){
		"ceremony id": func(s *Share) { s.CeremonyID = "acme-root-2027" },
		"root":        func(s *Share) { s.RootSHA256 = bytes.Repeat([]byte{8}, sha256.Size) },
		"epoch":       func(s *Share) { s.Epoch = 3 },
		"number":      func(s *Share) { s.Number = 5 },
		"threshold":   func(s *Share) { s.Threshold = 2 },
		"bytes":       func(s *Share) { s.Bytes = append(bytes.Repeat([]byte{7}, shareLen-1), 8) },
	}
	for field, edit := range edits {
		s := base
		edit(&s)
		if bytes.Equal(s.Commitment(), base.Commitment()) {
			t.Errorf("changing the %s leaves the commitment as it was", field)
		}
	}
}

func TestCollectorReconstructs(t *testing.T) {
	s, texts, p := testQuorum(t)
	c := NewCollector(p)
	if _, err := c.Secret(); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "0 of 5 shares present; acme-root-2026 needs 3") {
		t.Errorf("Secret with no shares: %v", err)
	}
	for _, i := range []int{4, 0, 2} {
		if n, err := c.Add(texts[i]); err != nil || n != i+1 {
			t.Fatalf("Add share %d: %d, %v", i+1, n, err)
		}
	}
	if _, err := c.Add(texts[2]); err == nil || !strings.Contains(err.Error(), "share #3 (Cleo) was already entered") {
		t.Errorf("duplicate: %v", err)
	}
	if c.Present() != 3 || c.Needed() != 3 || strings.Join(c.Holders(), ",") != "Cara,Cleo,Cruz" {
		t.Errorf("present %d needed %d holders %v", c.Present(), c.Needed(), c.Holders())
	}
	got, err := c.Secret()
	if err != nil || !bytes.Equal(got, s) {
		t.Fatalf("Secret = %x, %v; want %x", got, err, s)
	}
	kept := [][]byte{}
	for _, sh := range c.shares {
		kept = append(kept, sh.Bytes)
	}
	c.Wipe()
	if c.Present() != 0 {
		t.Error("Wipe kept shares")
	}
	for _, b := range kept {
		if !bytes.Equal(b, make([]byte, len(b))) {
			t.Error("Wipe left a share's bytes in memory")
		}
	}

	// Shares that match their commitments but not the digest (the registry's digest was
	// replaced) never yield a secret.
	p.Digest = bytes.Repeat([]byte{1}, 32)
	c = NewCollector(p)
	for _, text := range texts[:3] {
		if _, err := c.Add(text); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Secret(); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "does not match acme-root-2026's digest; no login was tried") {
		t.Errorf("wrong digest: %v", err)
	}
}

// Functions that borrow a secret leave the caller's copy as it was: its owner zeroes it.
func TestBorrowedSecretsStay(t *testing.T) {
	rnd := bytes.Repeat([]byte{0xA5}, SecretLen)
	s, err := NewSecret(rnd)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rnd, bytes.Repeat([]byte{0xA5}, SecretLen)) {
		t.Error("NewSecret changed the token's random bytes")
	}
	if bytes.Equal(s, rnd) {
		t.Error("NewSecret returned the token's bytes unmixed")
	}
	keep := bytes.Clone(s)
	shares, err := Split(s, "acme-root-2026", testRoot, 1, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	RootUserPIN.Derive(s, "acme-root-2026")
	KEK(s, "acme-root-2026")
	Digest(s, "acme-root-2026", 1)
	if !bytes.Equal(s, keep) {
		t.Error("a function that borrows the secret changed it")
	}
	text := shares[0].Encode()
	shares[0].Commitment()
	if !bytes.Equal(shares[0].Bytes, mustParse(t, text).Bytes) {
		t.Error("encoding a share changed its bytes")
	}
	if _, err := NewSecret(make([]byte, 16)); err == nil || !strings.Contains(err.Error(), "16 random bytes, not 32") {
		t.Errorf("NewSecret with 16 bytes: %v", err)
	}
}

func mustParse(t *testing.T, text string) Share {
	t.Helper()
	s, err := ParseShare(text)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
