package command

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
)

// fieldErr is an error as a workflow reports a bad request field: it names the field, not a flag.
type fieldErr struct{ field, msg string }

func (e fieldErr) Error() string { return e.msg }
func (e fieldErr) Field() string { return e.field }

// testProgram has a command "decommission" whose run returns err, and a group "device".
func testProgram(err error) *Program {
	return &Program{
		Name:  "custos",
		Intro: "Custos.\n\nUsage:\n  custos COMMAND",
		Commands: []Command{
			{Name: "decommission", Summary: "retire a device", Setup: func(fs *flag.FlagSet) Func {
				fs.String("technician", "", "the technician's `NAME`")
				fs.String("ops-pin-file", "", "`FILE`")
				return func(context.Context, Streams, []string) error { return err }
			}},
			{Name: "device show", Args: "SERIAL", Summary: "one device", Setup: func(fs *flag.FlagSet) Func {
				return func(_ context.Context, s Streams, args []string) error {
					fmt.Fprintln(s.Out, strings.Join(args, "|"))
					return nil
				}
			}},
		},
		FieldFlags: map[string]string{"Technician": "technician", "OpsPIN": "ops-pin-file", "Witness": "witness"},
	}
}

func run(p *Program, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := p.Run(context.Background(), args, Streams{Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

func TestRun(t *testing.T) {
	tests := []struct {
		name      string
		err       error // what decommission returns
		args      []string
		code      int
		out, errs string // exact stdout and stderr, when not empty
	}{
		{"success", nil, []string{"decommission"}, ExitOK, "", ""},
		{"failure on one line", errors.New("token gone:\nretry"), []string{"decommission"}, ExitFail, "", "custos decommission: token gone:; retry\n"},
		{"usage error", Usagef("--technician is required"), []string{"decommission"}, ExitUsage, "",
			"custos decommission: --technician is required (run 'custos decommission --help')\n"},
		{"wrapped usage error", fmt.Errorf("x: %w", Usagef("bad")), []string{"decommission"}, ExitUsage, "", "custos decommission: x: bad (run 'custos decommission --help')\n"},
		{"unknown flag", nil, []string{"decommission", "--tech", "T"}, ExitUsage, "",
			"custos decommission: flag provided but not defined: -tech (run 'custos decommission --help')\n"},
		{"no positional arguments", nil, []string{"decommission", "SN-1"}, ExitUsage, "",
			"custos decommission: unexpected argument \"SN-1\" (run 'custos decommission --help')\n"},
		{"flags after arguments", nil, []string{"device", "show", "SN-1", "--", "-x"}, ExitOK, "SN-1|-x\n", ""},
		{"unknown command", nil, []string{"frob"}, ExitUsage, "", "custos: unknown command \"frob\" (run 'custos --help')\n"},
		{"unknown in group", nil, []string{"device", "frob"}, ExitUsage, "", "custos: unknown command \"device frob\" (run 'custos device --help')\n"},
		{"group help", nil, []string{"device"}, ExitOK,
			"Commands under 'custos device':\n  device show              one device\n\nRun 'custos device COMMAND --help' for a command's flags.\n", ""},
		{"overview", nil, []string{"--help"}, ExitOK,
			"Custos.\n\nUsage:\n  custos COMMAND\n\nCommands:\n  decommission             retire a device\n  device show              one device\n", ""},
		{"command help", nil, []string{"decommission", "-h"}, ExitOK,
			"Usage: custos decommission [flags]\n\nretire a device\n\nFlags:\n  --ops-pin-file FILE\n        FILE\n  --technician NAME\n        the technician's NAME\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := run(testProgram(tt.err), tt.args...)
			if code != tt.code || out != tt.out || errs != tt.errs {
				t.Errorf("exit %d, want %d\nstdout %q\nwant   %q\nstderr %q\nwant   %q", code, tt.code, out, tt.out, errs, tt.errs)
			}
		})
	}
}

// A workflow's field error is printed with the flag of that field, once, when the command has
// it and the message does not already name it.
func TestFieldErrorHints(t *testing.T) {
	technician := fieldErr{"Technician", "decommission: the technician must be named"}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"the real example", technician, "custos decommission: decommission: the technician must be named (--technician)\n"},
		{"wrapped", fmt.Errorf("fleet: %w", technician), "custos decommission: fleet: decommission: the technician must be named (--technician)\n"},
		{"joined, each field once", errors.Join(technician, fieldErr{"OpsPIN", "the operator PIN is needed"}, technician),
			"custos decommission: decommission: the technician must be named; the operator PIN is needed; decommission: the technician must be named (--technician, --ops-pin-file)\n"},
		{"a field without a flag", fieldErr{"Note", "the note is too long"}, "custos decommission: the note is too long\n"},
		{"a flag this command lacks", fieldErr{"Witness", "a witness must attest"}, "custos decommission: a witness must attest\n"},
		{"already named", fieldErr{"Technician", "name the technician (--technician)"}, "custos decommission: name the technician (--technician)\n"},
		{"no field", errors.New("token gone"), "custos decommission: token gone\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := run(testProgram(tt.err), "decommission")
			if code != ExitFail || errs != tt.want {
				t.Errorf("exit %d, stderr\n%q, want\n%q", code, errs, tt.want)
			}
		})
	}
}

func TestRequire(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.String("issuer", "ica-1", "")
	fs.String("serial", " ", "")
	if err := Require(fs, "issuer"); err != nil {
		t.Errorf("issuer given: %v", err)
	}
	err := Require(fs, "issuer", "serial")
	if !errors.As(err, new(usageError)) || err.Error() != "--serial is required" {
		t.Errorf("blank serial: %v", err)
	}
}

func TestExistingFile(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ path, want string }{
		{dir + "/missing.pdf", dir + "/missing.pdf: no such file"},
		{dir, dir + " is a folder, not a regular file"},
		{"/dev/zero", "/dev/zero is a character device, not a regular file"},
	} {
		err := ExistingFile(tt.path)
		if !errors.As(err, new(usageError)) || err.Error() != tt.want {
			t.Errorf("ExistingFile(%s) = %v, want usage error %q", tt.path, err, tt.want)
		}
	}
	if err := RequireFile("plan", ""); err == nil || err.Error() != "--plan is required" {
		t.Errorf("RequireFile without a path: %v", err)
	}
}
