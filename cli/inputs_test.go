package cli

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/internal/inputfile/inputfiletest"
	"github.com/custos-pki/custos/record"
)

// TestCommandsRefuseHostileInputs gives every file flag and argument of the command line a
// device that never ends, a FIFO nobody writes to, a socket and a folder: each is refused at
// once, naming the file, before anything reads it or opens the workspace or the HSM. Where the
// command reaches the file's read before anything that needs a workspace, a file one byte over
// its kind's limit is given too (the readers' own tests give every kind one).
func TestCommandsRefuseHostileInputs(t *testing.T) {
	dir := t.TempDir()
	ws := filepath.Join(dir, "ws")
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plan := write("plan.yaml", `id: acme-root-2026
module: /nonexistent/libpkcs11.so
operations_token: acme-ops
administrator: Ada Admin
witnesses: [Wes Witness]
custodians: [Cara Cruz, Cody Chen]
threshold: 2
key: {algorithm: ecdsa-p256}
certificate: {common_name: Acme Medical Root CA, organization: Acme Medical, country: US, validity_years: 20}
backup: false
`)
	pin := write("ops.pin", "123456\n")
	shares := filepath.Join(dir, "shares")
	os.Mkdir(shares, 0o700)
	share := write("1.share", "not read\n")
	tests := []struct {
		name      string
		kind      string
		max       int64 // 0: the command does not reach the read of a large file on its own
		args      func(path string) []string
		skipKinds []string
	}{
		{"ceremony root --plan", "plan", 64 << 10, func(p string) []string {
			return []string{"ceremony", "root", "--plan", p, "--shares-dir", shares, "--ops-pin-file", pin, "--workspace", ws}
		}, nil},
		{"ceremony root --ops-pin-file", "PIN file", 256, func(p string) []string {
			return []string{"ceremony", "root", "--plan", plan, "--shares-dir", shares, "--ops-pin-file", p, "--workspace", ws}
		}, nil},
		{"decommission --manifest", "manifest", 256 << 20, func(p string) []string {
			return []string{"decommission", "--manifest", p, "--technician", "Tess Tech", "--validator", "Vic Validator", "--ops-pin-file", pin, "--workspace", ws}
		}, nil},
		{"decommission --device-pin-file", "PIN file", 256, func(p string) []string {
			return []string{"decommission", "--serial", "SN-1", "--method", "erase", "--technician", "Tess Tech", "--validator", "Vic Validator",
				"--ops-pin-file", pin, "--device-pin-file", p, "--workspace", ws}
		}, nil},
		{"ceremony issue-ca --shares", "share file", 0, func(p string) []string {
			return []string{"ceremony", "issue-ca", "--root", "acme-root-2026", "--shares", share + "," + p, "--name", "Devices CA", "--workspace", ws}
		}, nil},
		{"ceremony restore --backup", "backup", 0, func(p string) []string {
			return []string{"ceremony", "restore", "--root", "acme-root-2026", "--shares", share, "--backup", p, "--token", "new", "--workspace", ws}
		}, nil},
		// A folder is a valid input to device import: it imports the certificates in it.
		{"device import", "certificate file", 0, func(p string) []string {
			return []string{"device", "import", "--issuer", "Devices CA", p, "--workspace", ws}
		}, []string{"folder"}},
		{"hsm check --plan", "plan", 64 << 10, func(p string) []string {
			return []string{"hsm", "check", "--plan", p, "--token", "spare"}
		}, nil},
		{"hsm check --module", "PKCS#11 module", 1 << 30, func(p string) []string {
			return []string{"hsm", "check", "--module", p, "--token", "spare"}
		}, nil},
		{"sum", "file", 0, func(p string) []string { return []string{"sum", p} }, nil},
		{"verify", "record or journal", record.MaxFileSize, func(p string) []string {
			return []string{"verify", p, "--workspace", ws}
		}, nil},
	}
	for _, tt := range tests {
		max := tt.max
		if max == 0 {
			max = 1 << 20
		}
		for _, h := range inputfiletest.Inputs(t, tt.kind, max) {
			if h.Name == "oversized" && tt.max == 0 || slices.Contains(tt.skipKinds, h.Name) {
				continue
			}
			t.Run(tt.name+"/"+h.Name, func(t *testing.T) {
				inputfiletest.Refuse(t, h, func(path string) error {
					code, _, errs := custos(t, tt.args(path)...)
					if code == 0 {
						return nil
					}
					return errors.New(errs)
				})
			})
		}
	}
	if _, err := os.Stat(ws); err == nil {
		t.Errorf("a refused input left a workspace at %s", ws)
	}
}

// TestCeremonyRootRefusesAPlanAtLoad: what would fail only after the root key exists (a
// common name past RFC 5280's 64 characters, an operations token label PKCS#11 cannot hold
// as given) is refused when the plan is loaded, naming the key, before the workspace or the
// HSM is opened.
func TestCeremonyRootRefusesAPlanAtLoad(t *testing.T) {
	dir := t.TempDir()
	ws := filepath.Join(dir, "ws")
	pin := filepath.Join(dir, "ops.pin")
	os.WriteFile(pin, []byte("123456\n"), 0o600)
	plan := func(cn, ops string) string {
		return `id: acme-root-2026
module: /nonexistent/libpkcs11.so
operations_token: ` + ops + `
administrator: Ada Admin
witnesses: [Wes Witness]
custodians: [Cara Cruz, Cody Chen]
threshold: 2
key: {algorithm: ecdsa-p256}
certificate: {common_name: ` + cn + `, organization: Acme Medical, country: US, validity_years: 20}
backup: false
`
	}
	for _, tt := range []struct{ name, plan, want string }{
		{"128-character common name", plan(strings.Repeat("C", 128), "acme-ops"),
			"plan: certificate.common_name: is 128 characters long: at most 64 are allowed (RFC 5280)"},
		{"operations token ending in a blank", plan("Acme Root CA", `"acme-ops "`),
			`plan: operations_token: the token label "acme-ops " starts or ends with a blank`},
		{"operations token with a newline", plan("Acme Root CA", `"acme\nops"`),
			`plan: operations_token: the token label "acme\nops" holds a control character`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, "plan.yaml")
			os.WriteFile(p, []byte(tt.plan), 0o644)
			code, _, errs := custos(t, "ceremony", "root", "--plan", p, "--shares-dir", dir, "--ops-pin-file", pin, "--workspace", ws)
			if code != command.ExitFail || !strings.Contains(errs, p+": "+tt.want) {
				t.Errorf("exit %d, stderr %q; want %q", code, errs, tt.want)
			}
			if _, err := os.Stat(ws); err == nil {
				t.Error("the workspace was opened")
			}
		})
	}
}
