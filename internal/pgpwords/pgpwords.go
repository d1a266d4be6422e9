// Package pgpwords encodes bytes in the PGP word list, so that people can read a hash aloud
// and compare it word by word, as the DNS root key-signing-key ceremonies do.
//
// Byte i is written with the even (two-syllable) list when i is even and the odd
// (three-syllable) list when i is odd. A listener who hears the wrong rhythm, and a decoder
// that finds a word in the wrong list, both know a word was dropped, repeated or swapped.
package pgpwords

import (
	"fmt"
	"strings"
)

// Encode returns the words for b, separated by single spaces, with the capitalisation of the
// published list (for example "topmost Istanbul Pluto").
func Encode(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b) * 11)
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(Word(i, c))
	}
	return sb.String()
}

// Word returns the word for byte c at position i of the input (0-based).
func Word(i int, c byte) string {
	if i%2 == 0 {
		return evenWords[c]
	}
	return oddWords[c]
}

// Decode reads words separated by white space, ignoring case, back into bytes. A word that
// is not in either list, or that is in the list of the other parity (a sign that a word was
// skipped or said twice), is an error naming its position.
func Decode(s string) ([]byte, error) {
	words := strings.Fields(s)
	out := make([]byte, 0, len(words))
	for i, w := range words {
		want, other, wantName, otherName := &evenWords, &oddWords, "even", "odd"
		if i%2 == 1 {
			want, other, wantName, otherName = &oddWords, &evenWords, "odd", "even"
		}
		if c, ok := lookup(want, w); ok {
			out = append(out, c)
			continue
		}
		if _, ok := lookup(other, w); ok {
			return nil, fmt.Errorf("word %d (%q) is from the %s list but position %d takes a word from the %s list: a word before it was probably skipped or repeated",
				i+1, w, otherName, i+1, wantName)
		}
		return nil, fmt.Errorf("word %d (%q) is not in the PGP word list: check its spelling", i+1, w)
	}
	return out, nil
}

// lookup finds w in list, ignoring case. A linear scan of 256 short words costs nothing
// next to a person reading them and keeps the package free of lookup tables built at init.
func lookup(list *[256]string, w string) (byte, bool) {
	for c, word := range list {
		if strings.EqualFold(word, w) {
			return byte(c), true
		}
	}
	return 0, false
}
