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
	}{
		{"threshold 1", "threshold: 3", "threshold: 1", "threshold"},
		{"threshold above N", "threshold: 3", "threshold: 6", "threshold"},
		{"duplicate custodian", "Cole Carter, Zoë", "Cara Cruz, Zoë", "custodians[4]"},
		{"same person twice, written two ways", "Cole Carter, Zoë Ångström", "Cole Carter, Zoe\u0308 Ångström, zoë  ångström", "custodians[6]"},
		{"witness is custodian", "[Wes Witness]", "[Cody Chen]", "custodians[2]"},
		{"empty custodian", "Cole Carter,", "'',", "custodians[4]"},
		{"256 custodians", "[Cara Cruz, Cody Chen, Cleo Costa, Cole Carter, Zoë Ångström]", "[" + strings.Join(many, ", ") + "]", "custodians"},
		{"unknown algorithm", "ecdsa-p384", "dsa-1024", "key.algorithm"},
		{"ed25519 with backup", "ecdsa-p384", "ed25519", "backup"},
		{"validity zero", "validity_years: 25", "validity_years: 0", "certificate.validity_years"},
		{"validity negative", "validity_years: 25", "validity_years: -5", "certificate.validity_years"},
		{"bad country", "country: US", "country: USA", "certificate.country"},
		{"unknown key", "backup: true", "backup: true\npin: 1234", "pin"},
		{"bad id", "id: acme-root-2026", "id: Acme Root!", "id"},
		{"no witness", "witnesses: [Wes Witness]", "witnesses: []", "witnesses"},
		{"ops token is root token", "operations_token: acme-ops", "operations_token: acme-root-2026", "operations_token"},
		{"control character", "Ada Admin", "\"Ada\\u0007Admin\"", "administrator"},
		{"not yaml", goodPlan, "{{{", "yaml"},
		{"empty", goodPlan, "", "empty"},
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
			} else if !strings.Contains(err.Error(), tt.key) {
				t.Errorf("error %q does not name %q", err, tt.key)
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
