// Package cli is Custos's command line: the same workflows the GUI drives, for scripts, tests
// and auditors. A wrong flag or a missing input file is a one-line error and exit status 2;
// an operation that fails is exit status 1.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/custos-pki/custos/internal/version"
	"github.com/custos-pki/custos/workspace"
)

// Exit statuses.
const (
	ExitOK    = 0
	ExitFail  = 1
	ExitUsage = 2
)

// GUIFunc opens the main window. The cli package never imports the GUI; main passes it in.
type GUIFunc func(ctx context.Context, cfg GUIConfig) error

// GUIConfig is what `custos` and `custos demo` hand to the GUI.
type GUIConfig struct {
	Workspace string // workspace folder; empty for the default
	Module    string // PKCS#11 module path; empty for the workspace's setting
	Demo      bool   // a fresh demo workspace with SoftHSM2 tokens
	// Screenshots, when set, makes the GUI save a PNG of each main screen there and quit.
	Screenshots string
}

// Streams are where a command writes: its results to Out, progress and errors to Err.
type Streams struct {
	Out, Err io.Writer
}

// runFunc runs a command once its flags are parsed; args are the positional arguments.
type runFunc func(ctx context.Context, s Streams, args []string) error

// command is one `custos ...` command. setup registers its flags on fs and returns the runner
// that reads them, so each invocation has its own flag values.
type command struct {
	name    string // "ceremony root"
	args    string // positional synopsis, e.g. "RECORD.pdf"
	summary string // one line for the command list
	help    string // paragraph for --help
	setup   func(fs *flag.FlagSet) runFunc
}

// usageError is a mistake in how a command was called; it exits with status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// usagef reports a wrong or missing argument.
func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// Run executes the command in args (without the program name) and returns the exit status.
func Run(ctx context.Context, args []string, s Streams, gui GUIFunc) int {
	cmds := commands(gui)
	if len(args) == 0 || isHelp(args[0]) {
		printOverview(s.Out, cmds)
		return ExitOK
	}
	if args[0] == "--version" || args[0] == "version" {
		fmt.Fprintln(s.Out, version.String())
		return ExitOK
	}
	cmd, rest, group := lookup(cmds, args)
	if cmd == nil {
		if len(group) > 0 {
			if len(rest) == 0 || isHelp(rest[0]) {
				printGroup(s.Out, args[0], group)
				return ExitOK
			}
			fmt.Fprintf(s.Err, "custos: unknown command %q (run 'custos %s --help')\n", args[0]+" "+rest[0], args[0])
			return ExitUsage
		}
		fmt.Fprintf(s.Err, "custos: unknown command %q (run 'custos --help')\n", args[0])
		return ExitUsage
	}
	fs := flag.NewFlagSet("custos "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	run := cmd.setup(fs)
	positional, err := parseInterspersed(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		printCommand(s.Out, cmd, fs)
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(s.Err, "custos %s: %v (run 'custos %s --help')\n", cmd.name, err, cmd.name)
		return ExitUsage
	}
	if err := run(ctx, s, positional); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(s.Err, "custos %s: %v (run 'custos %s --help')\n", cmd.name, err, cmd.name)
			return ExitUsage
		}
		fmt.Fprintf(s.Err, "custos %s: %s\n", cmd.name, oneLine(err))
		return ExitFail
	}
	return ExitOK
}

// oneLine keeps a wrapped error on one line so scripts can grep it.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

func isHelp(a string) bool { return a == "-h" || a == "--help" || a == "-help" || a == "help" }

// lookup finds the command named by the first one or two words of args. When the first word
// is only a group ("ceremony"), it returns the group's commands instead.
func lookup(cmds []command, args []string) (*command, []string, []command) {
	if len(args) >= 2 {
		for i := range cmds {
			if cmds[i].name == args[0]+" "+args[1] {
				return &cmds[i], args[2:], nil
			}
		}
	}
	for i := range cmds {
		if cmds[i].name == args[0] {
			return &cmds[i], args[1:], nil
		}
	}
	var group []command
	for _, c := range cmds {
		if strings.HasPrefix(c.name, args[0]+" ") {
			group = append(group, c)
		}
	}
	return nil, args[1:], group
}

// parseInterspersed lets flags follow positional arguments, as in
// `custos verify RECORD.pdf --root ROOT.pem`.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		if args[0] == "--" {
			return append(positional, args[1:]...), nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

func printOverview(w io.Writer, cmds []command) {
	fmt.Fprintf(w, `Custos runs a medical-device manufacturer's private CA on an air-gapped workstation:
root key ceremonies under M-of-N custodian quorum, device decommissioning, and signed
PDF records an auditor can verify.

Usage:
  custos [--workspace DIR] [--module PATH]   open the main window
  custos COMMAND [flags]                     run one operation
  custos COMMAND --help                      describe a command and its flags

Commands:
`)
	sorted := append([]command(nil), cmds...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, c := range sorted {
		fmt.Fprintf(w, "  %-24s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, `
Every command that uses a workspace takes --workspace DIR (default: $CUSTOS_WORKSPACE,
else the user's data folder). Exit status: 0 success, 1 the operation failed, 2 wrong
flags or missing input files.
`)
}

func printGroup(w io.Writer, group string, cmds []command) {
	fmt.Fprintf(w, "Commands under 'custos %s':\n", group)
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-24s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'custos %s COMMAND --help' for a command's flags.\n", group)
}

func printCommand(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: custos %s [flags]", c.name)
	if c.args != "" {
		fmt.Fprintf(w, " %s", c.args)
	}
	fmt.Fprintf(w, "\n\n%s\n", c.summary)
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.help))
	}
	var n int
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintf(w, "\nFlags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		if name != "" {
			name = " " + name
		}
		def := ""
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "  --%s%s\n        %s%s\n", f.Name, name, usage, def)
	})
}

// workspaceFlag registers --workspace with the documented default.
func workspaceFlag(fs *flag.FlagSet) *string {
	return fs.String("workspace", "", "workspace `DIR` (default: $CUSTOS_WORKSPACE, else the user's data folder)")
}

// openWorkspace opens and locks the workspace named by --workspace or the default.
func openWorkspace(dir string) (*workspace.Workspace, error) {
	if dir == "" {
		d, err := workspace.DefaultDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	return workspace.Open(dir)
}

// requireFile checks that a flag was given and names an existing file; otherwise it is a
// usage error naming the flag.
func requireFile(flagName, path string) error {
	if path == "" {
		return usagef("--%s is required", flagName)
	}
	return existingFile(path)
}

// existingFile is a usage error when path does not exist.
func existingFile(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return usagef("%s: no such file", path)
		}
		return usagef("%s: %v", path, err)
	}
	if info.IsDir() {
		return usagef("%s is a folder, not a file", path)
	}
	return nil
}

// requireValue is a usage error when a required flag is empty.
func requireValue(flagName, value string) error {
	if strings.TrimSpace(value) == "" {
		return usagef("--%s is required", flagName)
	}
	return nil
}
