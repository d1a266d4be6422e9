package ceremony

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-pki/custos/internal/inputfile/inputfiletest"
)

const goodPlan = `id: acme-root-2026
module: /usr/lib/softhsm/libsofthsm2.so
operations_token: acme-ops
administrator: Ada Admin
witnesses: [Wes Witness]
custodians: [Cara Cruz, Cody Chen, Cleo Costa, Cole Carter, Zoë Ångström]
threshold: 3
key: {algorithm: ecdsa-p384}
certificate: {common_name: Acme Medical Root CA 2026, organization: Acme Medical, country: US, validity_years: 25}
backup: true
`

func TestParsePlan(t *testing.T) {
	p, err := ParsePlan([]byte(goodPlan))
	if err != nil {
		t.Fatal(err)
	}
	if p.Threshold != 3 || len(p.Custodians) != 5 || p.Custodians[4] != "Zoë Ångström" || !p.Backup {
		t.Errorf("plan = %+v", p)
	}
	if words := strings.Fields(p.HashWords()); len(words) != 32 {
		t.Errorf("hash words = %q, want 32 words", p.HashWords())
	}
}

func TestParsePlanRefusesNonsense(t *testing.T) {
	many := make([]string, 256)
	for i := range many {
		many[i] = fmt.Sprintf("Custodian %d", i)
	}
	tests := []struct {
		name, from, to, key string
		says                string // in the problem, when given
	}{
		{"threshold 1", "threshold: 3", "threshold: 1", "threshold", ""},
		{"threshold above N", "threshold: 3", "threshold: 6", "threshold", ""},
		{"duplicate custodian", "Cole Carter, Zoë", "Cara Cruz, Zoë", "custodians[4]", ""},
		{"same person twice, in other case and spacing", "Cole Carter, Zoë Ångström", "Cole Carter, Zoë Ångström, zoë  ÅNGSTRÖM", "custodians[6]", "reads the same as custodians[5]"},
		{"a name not in NFC", "Cole Carter, Zoë Ångström", "Cole Carter, Zoe\u0308 Ångström", "custodians[5]", "normal form C"},
		{"same person twice, full-width (NFKC)", "Cole Carter,", "\"\uff23\uff41\uff52\uff41 \uff23\uff52\uff55\uff5a\",", "custodians[4]", "reads the same as custodians[1]"},
		{"same person twice, folded ß", "Cole Carter,", "Cara Cruß, Cara Cruss,", "custodians[5]", "reads the same as custodians[4]"},
		{"zero-width space in a custodian", "Cole Carter,", "\"Cara\u200b Cruz\",", "custodians[4]", "U+200B"},
		{"bidi override in a witness", "[Wes Witness]", "[\"Wes \u202eWitness\"]", "witnesses[1]", "U+202E"},
		{"zero-width joiner in the administrator", "administrator: Ada Admin", "administrator: \"Ada\u200dAdmin\"", "administrator", "U+200D"},
		{"soft hyphen in a custodian", "Cole Carter,", "\"Cole Car\u00adter\",", "custodians[4]", "U+00AD"},
		{"witness is custodian", "[Wes Witness]", "[Cody Chen]", "custodians[2]", ""},
		{"empty custodian", "Cole Carter,", "'',", "custodians[4]", ""},
		{"256 custodians", "[Cara Cruz, Cody Chen, Cleo Costa, Cole Carter, Zoë Ångström]", "[" + strings.Join(many, ", ") + "]", "custodians", ""},
		{"unknown algorithm", "ecdsa-p384", "dsa-1024", "key.algorithm", ""},
		{"ed25519 with backup", "ecdsa-p384", "ed25519", "backup", ""},
		{"validity zero", "validity_years: 25", "validity_years: 0", "certificate.validity_years", ""},
		{"validity negative", "validity_years: 25", "validity_years: -5", "certificate.validity_years", ""},
		{"bad country", "country: US", "country: USA", "certificate.country", ""},
		{"unknown key", "backup: true", "backup: true\npin: 1234", "pin", ""},
		{"bad id", "id: acme-root-2026", "id: Acme Root!", "id", ""},
		{"no witness", "witnesses: [Wes Witness]", "witnesses: []", "witnesses", ""},
		{"ops token is root token", "operations_token: acme-ops", "operations_token: acme-root-2026", "operations_token", ""},
		{"control character", "Ada Admin", "\"Ada\\u0007Admin\"", "administrator", ""},
		{"not yaml", goodPlan, "{{{", "yaml", ""},
		{"empty", goodPlan, "", "empty", ""},
		// Certificate fields within RFC 5280's upper bounds, checked as pki makes the certificate.
		{"128-character common name", "common_name: Acme Medical Root CA 2026", "common_name: " + strings.Repeat("C", 128),
			"certificate.common_name", "is 128 characters long: at most 64 are allowed (RFC 5280)"},
		{"65-character common name", "common_name: Acme Medical Root CA 2026", "common_name: " + strings.Repeat("Ç", 65),
			"certificate.common_name", "is 65 characters long"},
		{"common name ending in a blank", "common_name: Acme Medical Root CA 2026", `common_name: "Acme Medical Root CA "`,
			"certificate.common_name", "starts or ends with white space"},
		{"65-character organization", "organization: Acme Medical", "organization: " + strings.Repeat("O", 65),
			"certificate.organization", "is 65 characters long"},
		{"organization too long for the record signer's name", "organization: Acme Medical", "organization: " + strings.Repeat("O", 48),
			"certificate.organization", "the record signer's common name would be \"" + strings.Repeat("O", 48) + " Ceremony Records\", 65 characters long"},
		{"record signer name too long", "backup: true", "backup: true\nrecord_signer_name: " + strings.Repeat("R", 65), "record_signer_name", "is 65 characters long"},
		{"country in small letters", "country: US", "country: us", "certificate.country", "two-letter ISO 3166 code in capitals"},
		{"one-letter country", "country: US", "country: U", "certificate.country", ""},
		// Token labels as PKCS#11 holds them: 32 bytes, blank-padded.
		{"operations token ending in a blank", "operations_token: acme-ops", `operations_token: "acme-ops "`, "operations_token", "starts or ends with a blank"},
		{"operations token starting with a blank", "operations_token: acme-ops", `operations_token: " acme-ops"`, "operations_token", "starts or ends with a blank"},
		{"operations token with a newline", "operations_token: acme-ops", `operations_token: "acme\nops"`, "operations_token", "holds a control character"},
		{"operations token with a tab", "operations_token: acme-ops", `operations_token: "acme\tops"`, "operations_token", "holds a control character"},
		{"operations token of 33 bytes", "operations_token: acme-ops", "operations_token: " + strings.Repeat("é", 16) + "x", "operations_token", "is 33 bytes"},
		{"no operations token", "operations_token: acme-ops", "operations_token: ''", "operations_token", "is empty"},
		{"CRL URL without a host", "backup: true", "backup: true\ncrl_distribution_point: http:///root.crl", "crl_distribution_point", ""},
		{"CRL URL of another scheme", "backup: true", "backup: true\ncrl_distribution_point: ftp://pki.acme.example/root.crl", "crl_distribution_point", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := strings.Replace(goodPlan, tt.from, tt.to, 1)
			if bad == goodPlan && tt.from != goodPlan {
				t.Fatalf("test edit %q did not apply", tt.from)
			}
			_, err := ParsePlan([]byte(bad))
			if err == nil {
				t.Fatal("accepted")
			}
			var pe *PlanError
			if errors.As(err, &pe) {
				if pe.Key != tt.key {
					t.Errorf("error names key %q, want %q: %v", pe.Key, tt.key, err)
				}
				if !strings.HasPrefix(err.Error(), "plan: "+tt.key+": ") || !strings.Contains(pe.Problem, tt.says) {
					t.Errorf("error %q, want \"plan: %s: ...%s...\"", err, tt.key, tt.says)
				}
			} else if !strings.Contains(err.Error(), tt.key) {
				t.Errorf("error %q does not name %q", err, tt.key)
			}
		})
	}
}

// TestParsePlanAtTheLimits: what is just within each limit is accepted.
func TestParsePlanAtTheLimits(t *testing.T) {
	for _, tt := range []struct{ name, from, to string }{
		{"64-character common name", "common_name: Acme Medical Root CA 2026", "common_name: " + strings.Repeat("Ç", 64)},
		{"organization making a 64-character record signer name", "organization: Acme Medical", "organization: " + strings.Repeat("O", 47)},
		{"long organization with its own record signer name", "organization: Acme Medical, country: US, validity_years: 25}\n",
			"organization: " + strings.Repeat("O", 64) + ", country: US, validity_years: 25}\nrecord_signer_name: Acme Records\n"},
		{"64 characters of four bytes each", "common_name: Acme Medical Root CA 2026", "common_name: " + strings.Repeat("😀", 64)},
		{"32-byte operations token label", "operations_token: acme-ops", "operations_token: " + strings.Repeat("é", 16)},
		{"operations token label with inner blanks", "operations_token: acme-ops", "operations_token: Acme operations 1"},
		{"https CRL URL", "backup: true", "backup: true\ncrl_distribution_point: https://pki.acme.example/root.crl"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			text := strings.Replace(goodPlan, tt.from, tt.to, 1)
			if text == goodPlan {
				t.Fatalf("test edit %q did not apply", tt.from)
			}
			if _, err := ParsePlan([]byte(text)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func FuzzParsePlan(f *testing.F) {
	f.Add([]byte(goodPlan))
	seeds, _ := os.ReadDir("testdata/plans")
	for _, s := range seeds {
		if b, err := os.ReadFile("testdata/plans/" + s.Name()); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePlan(data)
		if err == nil && p.Validate() != nil {
			t.Fatal("ParsePlan accepted a plan that Validate refuses")
		}
		if err != nil && err.Error() == "" {
			t.Fatal("empty error")
		}
	})
}

// TestLoadPlanRefusesHostileInputs: a plan that is a device, a FIFO nobody writes to, a
// socket, a folder or a file over 64 KiB is refused at once, naming the file, before it is read.
func TestLoadPlanRefusesHostileInputs(t *testing.T) {
	for _, h := range inputfiletest.Inputs(t, "plan", maxPlanSize) {
		t.Run(h.Name, func(t *testing.T) {
			inputfiletest.Refuse(t, h, func(path string) error {
				_, err := LoadPlan(context.Background(), path)
				return err
			})
		})
	}
}

func TestLoadPlan(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "plan.yaml"), filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte(goodPlan), 0o644)
	os.WriteFile(bad, []byte(strings.Replace(goodPlan, "threshold: 3", "threshold: 1", 1)), 0o644)
	if p, err := LoadPlan(context.Background(), good); err != nil || p.ID != "acme-root-2026" {
		t.Fatalf("LoadPlan(good) = %v, %v", p, err)
	}
	_, err := LoadPlan(context.Background(), bad)
	var pe *PlanError
	if !errors.As(err, &pe) || pe.Key != "threshold" || !strings.HasPrefix(err.Error(), bad+": plan: threshold: ") {
		t.Errorf("LoadPlan(bad) = %v, want the file and the key named", err)
	}
}
