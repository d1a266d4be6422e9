package cli

import (
	"github.com/custos-pki/custos/cli/command"

	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-pki/custos/internal/testhsm"
)

// custos executes the command line and returns its exit status and what it printed.
func custos(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, command.Streams{Out: &out, Err: &errb}, nil)
	return code, out.String(), errb.String()
}

func TestUsageAndExitStatus(t *testing.T) {
	notALibrary := filepath.Join(t.TempDir(), "not-pkcs11.so")
	if err := os.WriteFile(notALibrary, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		code    int
		out     string // substring of stdout
		errLine string // substring of stderr, which must be one line
	}{
		{"overview", []string{"--help"}, command.ExitOK, "hsm list", ""},
		{"no args prints overview", nil, command.ExitOK, "Commands:", ""},
		{"command help", []string{"hsm", "list", "--help"}, command.ExitOK, "--module PATH", ""},
		{"group help", []string{"hsm"}, command.ExitOK, "hsm list", ""},
		{"version", []string{"--version"}, command.ExitOK, "\nbinary sha256  ", ""},
		{"unknown command", []string{"frobnicate"}, command.ExitUsage, "", `unknown command "frobnicate"`},
		{"unknown subcommand", []string{"hsm", "frob"}, command.ExitUsage, "", `unknown command "hsm frob"`},
		{"wrong flag", []string{"hsm", "list", "--modul", "x"}, command.ExitUsage, "", "flag provided but not defined: -modul"},
		{"missing flag", []string{"hsm", "list"}, command.ExitUsage, "", "--module is required"},
		{"missing file", []string{"hsm", "list", "--module", "/nonexistent/lib.so"}, command.ExitUsage, "", "/nonexistent/lib.so: no such file"},
		{"not a module", []string{"hsm", "list", "--module", notALibrary}, command.ExitFail, "", "not-pkcs11.so"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := custos(t, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.code, errs)
			}
			if !strings.Contains(out, tt.out) {
				t.Errorf("stdout %q lacks %q", out, tt.out)
			}
			if !strings.Contains(errs, tt.errLine) {
				t.Errorf("stderr %q lacks %q", errs, tt.errLine)
			}
			if tt.errLine != "" && strings.Count(strings.TrimSpace(errs), "\n") != 0 {
				t.Errorf("error is not one line: %q", errs)
			}
		})
	}
}

func TestHSMList(t *testing.T) {
	env := testhsm.New(t)
	env.InitToken(t, "acme-ops", "so-pin-1234", "user-pin-1234")
	env.InitToken(t, "Zoë's token", "so-pin-1234", "user-pin-1234")
	code, out, errs := custos(t, "hsm", "list", "--module", env.ModulePath)
	if code != command.ExitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.HasPrefix(lines[0], "module ") || !strings.Contains(lines[0], "SoftHSM") {
		t.Errorf("first line %q does not name the module", lines[0])
	}
	for _, want := range []string{`token "acme-ops"`, `token "Zoë's token"`, "(not initialised)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
	for _, l := range lines[1:] {
		if strings.Contains(l, `"acme-ops"`) && !(strings.Contains(l, "serial ") &&
			strings.Contains(l, "firmware ") && strings.Contains(l, "initialized,login-required")) {
			t.Errorf("token line lacks identity or flags: %q", l)
		}
	}
}
