// Package command is the framework under Custos's command lines: a Program is a list of
// Commands named by one or two words ("verify", "ceremony root"), each with its flags, its
// --help and a function that runs it. A wrong flag, a missing argument or a missing input
// file is a usage error: one line and exit status 2. An operation that fails is one line
// and exit status 1. Flags may follow positional arguments (`verify RECORD.pdf --root R`).
//
// It imports only the standard library and Custos's version, so the auditor's static
// custos-verify (CGO_ENABLED=0) is built on it as well as custos.
//
// # Hints: from a workflow's field to a flag
//
// Workflows know nothing of flags: an error about a request says which field was wrong. An
// error in the chain (errors.Unwrap, or errors.Join's list) with a method
//
//	Field() string // the request field's Go name, e.g. "Technician"
//
// is a field error. When a command fails, Run looks each field error's name up in the
// Program's FieldFlags table and, if the command has that flag and the message does not
// name it yet, ends the printed line with it: a workflow's "decommission: the technician
// must be named" is printed as
//
//	custos decommission: decommission: the technician must be named (--technician)
//
// A workflow only has to return typed field errors; the table is the one place where the
// command line's names for those fields live. The GUI does the same with its own labels.
package command

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/custos-pki/custos/internal/version"
)

// Exit statuses.
const (
	ExitOK    = 0 // the command did what it was asked; for verify, every check passed
	ExitFail  = 1 // the operation failed
	ExitUsage = 2 // wrong flags or arguments, or a missing input file
)

// Streams are where a command writes: its results to Out, progress and errors to Err.
type Streams struct {
	Out, Err io.Writer
}

// Func runs a command once its flags are parsed; args are its positional arguments.
type Func func(ctx context.Context, s Streams, args []string) error

// Command is one command of a Program.
type Command struct {
	Name    string // one or two words: "verify", "ceremony root"
	Args    string // synopsis of its positional arguments, e.g. "RECORD.pdf"; empty: it takes none
	Summary string // one line for the command list
	Help    string // a paragraph for --help
	// Setup registers the command's flags on fs and returns the Func that reads them, so each
	// invocation has its own flag values.
	Setup func(fs *flag.FlagSet) Func
}

// Program is a command line: custos, or custos-verify.
type Program struct {
	Name     string // the word every usage line and error starts with
	Intro    string // what --help prints above the list of commands
	Outro    string // and below it
	Commands []Command
	// FieldFlags maps a workflow request field's name (see the package doc) to the flag, without
	// its dashes, that sets it.
	FieldFlags map[string]string
	// Advice, when set, is appended to a failure's line: the way out of an error another
	// command of the program gets a person out of ("" for none).
	Advice func(err error) string
}

// usageError is a mistake in how a command was called; it exits with status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// Usagef reports a wrong or missing argument: Run prints it with a pointer to --help and
// exits with status 2.
func Usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// Run executes the command in args (without the program's name) and returns the exit status.
func (p *Program) Run(ctx context.Context, args []string, s Streams) int {
	if len(args) == 0 || isHelp(args[0]) {
		p.printOverview(s.Out)
		return ExitOK
	}
	if args[0] == "--version" || args[0] == "version" {
		// The version, commit, modified flag, Go version and SHA-256 of this very binary: what
		// an auditor compares with a record's tool line and the published SHA256SUMS.
		fmt.Fprint(s.Out, version.Current().Text(p.Name))
		return ExitOK
	}
	cmd, rest, group := p.lookup(args)
	if cmd == nil {
		if len(group) > 0 {
			if len(rest) == 0 || isHelp(rest[0]) {
				p.printGroup(s.Out, args[0], group)
				return ExitOK
			}
			fmt.Fprintf(s.Err, "%s: unknown command %q (run '%s %s --help')\n", p.Name, args[0]+" "+rest[0], p.Name, args[0])
			return ExitUsage
		}
		fmt.Fprintf(s.Err, "%s: unknown command %q (run '%s --help')\n", p.Name, args[0], p.Name)
		return ExitUsage
	}
	fs := flag.NewFlagSet(p.Name+" "+cmd.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	run := cmd.Setup(fs)
	positional, err := parseInterspersed(fs, rest)
	switch {
	case errors.Is(err, flag.ErrHelp):
		p.printCommand(s.Out, cmd, fs)
		return ExitOK
	case err != nil:
		err = usageError{err.Error()}
	case cmd.Args == "" && len(positional) > 0:
		err = Usagef("unexpected argument %q", positional[0])
	default:
		err = run(ctx, s, positional)
	}
	if err == nil {
		return ExitOK
	}
	if errors.As(err, new(usageError)) {
		fmt.Fprintf(s.Err, "%s %s: %v (run '%s %s --help')\n", p.Name, cmd.Name, err, p.Name, cmd.Name)
		return ExitUsage
	}
	advice := ""
	if p.Advice != nil {
		advice = p.Advice(err)
	}
	fmt.Fprintf(s.Err, "%s %s: %s%s%s\n", p.Name, cmd.Name, OneLine(err), p.hints(err, fs), advice)
	return ExitFail
}

// OneLine keeps a wrapped error on one line so scripts can grep it.
func OneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

func isHelp(a string) bool { return a == "-h" || a == "--help" || a == "-help" || a == "help" }

// lookup finds the command named by the first one or two words of args. When the first word
// is only a group ("ceremony"), it returns the group's commands instead.
func (p *Program) lookup(args []string) (*Command, []string, []Command) {
	if len(args) >= 2 {
		for i := range p.Commands {
			if p.Commands[i].Name == args[0]+" "+args[1] {
				return &p.Commands[i], args[2:], nil
			}
		}
	}
	for i := range p.Commands {
		if p.Commands[i].Name == args[0] {
			return &p.Commands[i], args[1:], nil
		}
	}
	var group []Command
	for _, c := range p.Commands {
		if strings.HasPrefix(c.Name, args[0]+" ") {
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
