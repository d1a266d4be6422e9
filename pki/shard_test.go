package pki

import (
	"bufio"
	"math/big"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestShardOfVectors checks ShardOf against vectors computed outside Custos (Python's
// hashlib): the shard of a serial is fixed forever, since certificates name it.
func TestShardOfVectors(t *testing.T) {
	f, err := os.Open("testdata/crl-shards.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 3 {
			t.Fatalf("crl-shards.txt:%d: want serial, count, shard: %q", line, text)
		}
		serial, err := ParseSerial(fields[0])
		if err != nil {
			t.Fatalf("crl-shards.txt:%d: %v", line, err)
		}
		count, err1 := strconv.Atoi(fields[1])
		want, err2 := strconv.Atoi(fields[2])
		if err1 != nil || err2 != nil {
			t.Fatalf("crl-shards.txt:%d: bad numbers in %q", line, text)
		}
		if got := ShardOf(serial, count); got != want {
			t.Errorf("crl-shards.txt:%d: ShardOf(%s, %d) = %d, want %d", line, fields[0], count, got, want)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 100 {
		t.Fatalf("only %d vectors read", n)
	}
}

// TestShardOfSpreads: serials as NewSerial makes them, and sequential ones, spread evenly
// over 1,000 shards (no shard far from the mean).
func TestShardOfSpreads(t *testing.T) {
	const shards, per = 1000, 200
	for name, serial := range map[string]func(i int) *big.Int{
		"random":     func(i int) *big.Int { return newSerial(t) },
		"sequential": func(i int) *big.Int { return big.NewInt(int64(i + 1)) },
	} {
		counts := make([]int, shards)
		for i := range shards * per {
			counts[ShardOf(serial(i), shards)]++
		}
		for s, c := range counts {
			// The mean is 200 with a standard deviation of about 14: 6 of them either way.
			if c < per-85 || c > per+85 {
				t.Errorf("%s: shard %d holds %d of %d serials", name, s, c, shards*per)
			}
		}
	}
	if ShardOf(big.NewInt(5), 1) != 0 || ShardOf(big.NewInt(5), 0) != 0 {
		t.Error("a single shard (or none) is not shard 0")
	}
}

func TestCRLShardsCheck(t *testing.T) {
	ok := CRLShards{BaseURL: "http://pki.acme.example/crl", IssuerID: "ica-0a1b2c3d4e", Count: 1000}
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
	if got := ok.URL(17); got != "http://pki.acme.example/crl/ica-0a1b2c3d4e/17.crl" {
		t.Errorf("URL(17) = %s", got)
	}
	with := func(edit func(*CRLShards)) CRLShards { s := ok; edit(&s); return s }
	tests := []struct {
		name   string
		shards CRLShards
		want   string
	}{
		{"no base", with(func(s *CRLShards) { s.BaseURL = "" }), "CRLShards.BaseURL is empty"},
		{"ldap", with(func(s *CRLShards) { s.BaseURL = "ldap://dir.acme.example/cn=crl" }), "must be an http or https URL"},
		{"no host", with(func(s *CRLShards) { s.BaseURL = "http:///crl" }), "has no host"},
		{"trailing slash", with(func(s *CRLShards) { s.BaseURL = "http://pki.acme.example/crl/" }), "ends with /: leave it out"},
		{"query", with(func(s *CRLShards) { s.BaseURL = "http://pki.acme.example/crl?x=1" }), "has a query or fragment"},
		{"fragment", with(func(s *CRLShards) { s.BaseURL = "http://pki.acme.example/crl#x" }), "has a query or fragment"},
		{"user", with(func(s *CRLShards) { s.BaseURL = "http://me@pki.acme.example/crl" }), "carries a user name"},
		{"not ASCII", with(func(s *CRLShards) { s.BaseURL = "http://pki.acme.example/crl/zürich" }), "outside ASCII"},
		{"space", with(func(s *CRLShards) { s.BaseURL = "http://pki.acme.example/my crl" }), "has a space"},
		{"no issuer", with(func(s *CRLShards) { s.IssuerID = "" }), "CRLShards.IssuerID"},
		{"issuer with slash", with(func(s *CRLShards) { s.IssuerID = "ica/1" }), `CRLShards.IssuerID "ica/1" must be the issuing CA's id`},
		{"issuer dot dot", with(func(s *CRLShards) { s.IssuerID = ".." }), "must be the issuing CA's id"},
		{"zero shards", with(func(s *CRLShards) { s.Count = 0 }), "CRLShards.Count is 0: it must be between 1 and 65536"},
		{"too many shards", with(func(s *CRLShards) { s.Count = MaxCRLShards + 1 }), "CRLShards.Count is 65537"},
	}
	if err := (CRLShards{BaseURL: ok.BaseURL, Count: 1}).CheckBase(); err != nil {
		t.Errorf("CheckBase without an issuer id: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.shards.Check()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
