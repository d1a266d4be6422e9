package quorum

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func testShare() Share {
	b := make([]byte, shareLen)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return Share{CeremonyID: "acme-root-2026", Epoch: 1, Number: 4, Threshold: 3, Bytes: b}
}

func TestShareRoundTrip(t *testing.T) {
	s := testShare()
	text := s.Encode()
	if got := len(s.Groups()); got != ShareGroups {
		t.Fatalf("%d groups, want %d", got, ShareGroups)
	}
	for _, variant := range []string{
		text,
		strings.ToLower(text),
		strings.Join(s.Groups(), " "), // groups only, spaces
		strings.ReplaceAll(strings.Join(s.Groups(), "\n"), "0", "O"), // one per line, O for 0
	} {
		got, err := ParseShare(variant)
		if err != nil {
			t.Fatalf("ParseShare(%q): %v", variant, err)
		}
		if got.Number != 4 || got.Epoch != 1 || got.Threshold != 3 || !bytes.Equal(got.Bytes, s.Bytes) || !got.belongsTo("acme-root-2026") {
			t.Errorf("round trip = %+v", got)
		}
	}
}

// Every single-character error in every group is caught, in that group.
func TestShareTypoNamesItsGroup(t *testing.T) {
	groups := testShare().Groups()
	for g := range groups {
		for pos := 0; pos < 5; pos++ {
			for _, c := range []byte("0Z7M") {
				bad := []byte(groups[g])
				if bad[pos] == c {
					continue
				}
				bad[pos] = c
				typed := append(append([]string{}, groups[:g]...), string(bad))
				typed = append(typed, groups[g+1:]...)
				_, err := ParseShare(strings.Join(typed, "-"))
				var se *ShareError
				if !errors.As(err, &se) || se.Group != g+1 {
					t.Fatalf("group %d position %d → %q: err = %v, want group %d named", g+1, pos, c, err, g+1)
				}
				if CheckGroup(g+1, string(bad)) == nil {
					t.Fatalf("CheckGroup passed a mistyped group %d", g+1)
				}
			}
		}
		if err := CheckGroup(g+1, groups[g]); err != nil {
			t.Errorf("CheckGroup(%d) refused the right group: %v", g+1, err)
		}
	}
}

func TestShareRefusesDamage(t *testing.T) {
	s := testShare()
	g := s.Groups()
	swapped := append([]string{}, g...)
	swapped[2], swapped[3] = swapped[3], swapped[2]
	neighbours := append([]string{}, g...)
	b := []byte(neighbours[5])
	b[1], b[2] = b[2], b[1]
	neighbours[5] = string(b)
	other := testShare()
	other.Number = 5
	tests := []struct {
		name, text, want string
	}{
		{"missing group", strings.Join(g[1:], "-"), "groups where"},
		{"swapped groups", strings.Join(swapped, "-"), "group 3 of"},
		{"swapped neighbours", strings.Join(neighbours, "-"), "group 6 of"},
		{"header of another share", strings.Replace(s.Encode(), "#4", "#5", 1), "does not match"},
		{"bad header", "custos-share x\n" + strings.Join(g, "-"), "header line"},
		{"empty", "", "groups where"},
		{"foreign symbol", strings.Replace(strings.Join(g, "-"), g[0][:1], "%", 1), "group 1 of"},
	}
	if bytes.Equal([]byte(strings.Join(other.Groups(), "")), []byte(strings.Join(g, ""))) {
		t.Fatal("different shares encode the same")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseShare(tt.text)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func FuzzParseShare(f *testing.F) {
	s := testShare()
	f.Add(s.Encode())
	f.Add(strings.Join(s.Groups(), " "))
	f.Add("custos-share a #1 epoch 1\n00000")
	f.Fuzz(func(t *testing.T, text string) {
		sh, err := ParseShare(text)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if len(sh.Bytes) != shareLen {
			t.Fatalf("accepted share with %d bytes", len(sh.Bytes))
		}
		again, err := ParseShare(strings.Join(sh.Groups(), "-"))
		if err != nil || !bytes.Equal(again.Bytes, sh.Bytes) {
			t.Fatal(fmt.Sprint("re-encoding does not round trip: ", err))
		}
	})
}
