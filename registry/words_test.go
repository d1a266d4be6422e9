package registry

import (
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

func TestParseMomentAndFindQuery(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{"2026-03-01T14:30:00Z", time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC), false},
		{"2026-03-01T16:30:00+02:00", time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC), false},
		{" 2026-03-01 ", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), false},
		{"yesterday", time.Time{}, true},
	} {
		got, err := ParseMoment(tc.in)
		if (err != nil) != tc.bad || !got.Equal(tc.want) {
			t.Errorf("ParseMoment(%q) = %v, %v", tc.in, got, err)
		}
	}
	sum := strings.Repeat("0a", 32)
	for _, tc := range []struct {
		in          string
		serial, key string
		bad         bool
	}{
		{"0A:1B:2c", "0a1b2c", "", false},
		{"7f", "7f", "", false},
		{sum, "", sum, false},
		{strings.Repeat("0a:", 31) + "0a", "", sum, false},
		{"not hex", "", "", true},
	} {
		q, err := ParseFindQuery(tc.in)
		if (err != nil) != tc.bad || q.CertSerial.String() != tc.serial || hex.EncodeToString(q.KeySHA256) != tc.key {
			t.Errorf("ParseFindQuery(%q) = %+v, %v", tc.in, q, err)
		}
	}
}
