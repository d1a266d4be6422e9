package quorum

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "write new test vectors to testdata (a new format needs them)")

// vectors are a known secret, its shares as custodians hold them, and everything derived:
// the share format, the commitments and the derivations can never change silently.
type vectors struct {
	Comment     string        `json:"comment"`
	CeremonyID  string        `json:"ceremony_id"`
	RootSHA256  string        `json:"root_sha256"`
	Epoch       int           `json:"epoch"`
	Threshold   int           `json:"threshold"`
	Secret      string        `json:"secret"`
	Digest      string        `json:"digest"`
	RootSOPIN   string        `json:"root_so_pin"`
	RootUserPIN string        `json:"root_user_pin"`
	OpsSOPIN    string        `json:"ops_so_pin"`
	BackupKEK   string        `json:"backup_kek"`
	Shares      []vectorShare `json:"shares"`
}

type vectorShare struct {
	Number     int    `json:"number"`
	Custodian  string `json:"custodian"`
	Bytes      string `json:"bytes"`
	Text       string `json:"text"`
	Commitment string `json:"commitment"`
}

const vectorsFile = "vectors.json"

func TestVectors(t *testing.T) {
	path := filepath.Join("testdata", vectorsFile)
	if *update {
		writeVectors(t, path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	s := unhex(t, v.Secret)
	for name, c := range map[string]struct{ got, want string }{
		"digest":        {hex.EncodeToString(Digest(s, v.CeremonyID, v.Epoch)), v.Digest},
		"root SO PIN":   {string(RootSOPIN.Derive(s, v.CeremonyID)), v.RootSOPIN},
		"root user PIN": {string(RootUserPIN.Derive(s, v.CeremonyID)), v.RootUserPIN},
		"ops SO PIN":    {string(OpsSOPIN.Derive(s, v.CeremonyID)), v.OpsSOPIN},
		"backup KEK":    {hex.EncodeToString(KEK(s, v.CeremonyID)), v.BackupKEK},
	} {
		if c.got != c.want {
			t.Errorf("%s = %s, the vectors say %s", name, c.got, c.want)
		}
	}
	root := unhex(t, v.RootSHA256)
	p := Params{CeremonyID: v.CeremonyID, RootSHA256: root, Epoch: v.Epoch, Threshold: v.Threshold, Digest: unhex(t, v.Digest)}
	for _, sh := range v.Shares {
		p.Custodians = append(p.Custodians, Custodian{Name: sh.Custodian, Number: sh.Number, Commitment: unhex(t, sh.Commitment)})
		want := Share{CeremonyID: v.CeremonyID, RootSHA256: root, Epoch: v.Epoch, Number: sh.Number, Threshold: v.Threshold, Bytes: unhex(t, sh.Bytes)}
		if got := want.Encode(); got != sh.Text {
			t.Errorf("share #%d encodes as\n%s\nthe vectors say\n%s", sh.Number, got, sh.Text)
		}
		if got := hex.EncodeToString(want.Commitment()); got != sh.Commitment {
			t.Errorf("share #%d commitment %s, the vectors say %s", sh.Number, got, sh.Commitment)
		}
		got := mustParse(t, sh.Text)
		if got.CeremonyID != v.CeremonyID || got.Epoch != v.Epoch || got.Number != sh.Number || got.Threshold != v.Threshold || hex.EncodeToString(got.Bytes) != sh.Bytes {
			t.Errorf("share #%d parses as %+v", sh.Number, got)
		}
	}
	// Every set of Threshold shares rebuilds the secret.
	n := len(v.Shares)
	for mask := 0; mask < 1<<n; mask++ {
		var texts []string
		for i := 0; i < n; i++ {
			if mask&(1<<i) != 0 {
				texts = append(texts, v.Shares[i].Text)
			}
		}
		if len(texts) != v.Threshold {
			continue
		}
		c := NewCollector(p)
		for _, text := range texts {
			if _, err := c.Add(text); err != nil {
				t.Fatal(err)
			}
		}
		got, err := c.Secret()
		if err != nil || hex.EncodeToString(got) != v.Secret {
			t.Errorf("shares %b: secret %x, %v", mask, got, err)
		}
	}
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeVectors splits a fixed secret anew (the shares differ each time) and writes it all.
func writeVectors(t *testing.T, path string) {
	s := make([]byte, SecretLen)
	for i := range s {
		s[i] = byte(i*37 + 11)
	}
	v := vectors{Comment: "A known quorum secret, its shares and everything derived from it; go test ./quorum -update writes new ones (only for a new format).",
		CeremonyID: "acme-root-2026", Epoch: 3, Threshold: 3, Secret: hex.EncodeToString(s)}
	root := sha256.Sum256([]byte("a root certificate"))
	v.RootSHA256 = hex.EncodeToString(root[:])
	v.Digest = hex.EncodeToString(Digest(s, v.CeremonyID, v.Epoch))
	v.RootSOPIN = string(RootSOPIN.Derive(s, v.CeremonyID))
	v.RootUserPIN = string(RootUserPIN.Derive(s, v.CeremonyID))
	v.OpsSOPIN = string(OpsSOPIN.Derive(s, v.CeremonyID))
	v.BackupKEK = hex.EncodeToString(KEK(s, v.CeremonyID))
	shares, err := Split(s, v.CeremonyID, root[:], v.Epoch, 5, v.Threshold)
	if err != nil {
		t.Fatal(err)
	}
	for i, sh := range shares {
		v.Shares = append(v.Shares, vectorShare{sh.Number, []string{"Cara Cruz", "Cody Chen", "Cleo Costa", "Cole Carter", "Cruz Castro"}[i], hex.EncodeToString(sh.Bytes), sh.Encode(), hex.EncodeToString(sh.Commitment())})
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
