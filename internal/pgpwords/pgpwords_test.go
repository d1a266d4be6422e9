package pgpwords

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

type vector struct {
	line  int
	data  []byte
	words string
}

func readVectors(t *testing.T) []vector {
	t.Helper()
	f, err := os.Open("testdata/vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vs []vector
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		h, words, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("testdata/vectors.txt:%d: no tab", n)
		}
		data, err := hex.DecodeString(h)
		if err != nil {
			t.Fatalf("testdata/vectors.txt:%d: %v", n, err)
		}
		vs = append(vs, vector{n, data, words})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 2 {
		t.Fatalf("only %d vectors read", len(vs))
	}
	return vs
}

func TestVectors(t *testing.T) {
	for _, v := range readVectors(t) {
		if got := Encode(v.data); got != v.words {
			t.Errorf("line %d: Encode(%X) = %q, want %q", v.line, v.data, got, v.words)
		}
		got, err := Decode(v.words)
		if err != nil {
			t.Errorf("line %d: Decode: %v", v.line, err)
			continue
		}
		if !bytes.Equal(got, v.data) {
			t.Errorf("line %d: Decode = %X, want %X", v.line, got, v.data)
		}
	}
}

func TestListsHave256UniqueWords(t *testing.T) {
	seen := make(map[string]string)
	for name, list := range map[string]*[256]string{"even": &evenWords, "odd": &oddWords} {
		for i, w := range list {
			if w == "" || strings.ContainsAny(w, " \t") {
				t.Errorf("%s[%02X] = %q: empty or has white space", name, i, w)
			}
			key := strings.ToLower(w)
			if prev, dup := seen[key]; dup {
				t.Errorf("%s[%02X] = %q already used in %s", name, i, w, prev)
			}
			seen[key] = name
		}
	}
	if len(seen) != 512 {
		t.Errorf("%d distinct words, want 512", len(seen))
	}
}

func TestRoundTrip(t *testing.T) {
	all := make([]byte, 512)
	for i := range all {
		all[i] = byte(i / 2) // every byte value at an even and at an odd position
	}
	random := make([]byte, 1000)
	rand.Read(random)
	for _, data := range [][]byte{nil, {0}, {0xFF}, all, random} {
		words := Encode(data)
		got, err := Decode(words)
		if err != nil {
			t.Fatalf("Decode(Encode(%X)): %v", data, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("round trip of %X gave %X", data, got)
		}
		// People type in any case and with any spacing.
		got, err = Decode("  " + strings.ReplaceAll(strings.ToUpper(words), " ", "\n\t "))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round trip in upper case of %X gave %X, %v", data, got, err)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"topmost Pluto", `word 2 ("Pluto") is from the even list`},
		{"Istanbul", `word 1 ("Istanbul") is from the odd list`},
		{"topmost Istanbul Plato", `word 3 ("Plato") is not in the PGP word list`},
		{"topmost, Istanbul", `word 1 ("topmost,") is not in the PGP word list`},
	}
	for _, tt := range tests {
		_, err := Decode(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Decode(%q) error = %v, want it to contain %q", tt.in, err, tt.want)
		}
	}
}
