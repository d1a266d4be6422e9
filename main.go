// Custos runs a medical-device manufacturer's private CA on an air-gapped workstation: root key
// ceremonies under M-of-N custodian quorum, device decommissioning, and signed PDF records.
//
// With no command it opens the main window; with a command it runs that operation from the
// command line (see `custos --help`).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/custos-pki/custos/app"
	"github.com/custos-pki/custos/cli"
	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/internal/demo"
	_ "github.com/custos-pki/custos/internal/locale" // before Fyne reads the locale
	"github.com/custos-pki/custos/internal/nodump"
)

func main() {
	// Before any secret exists: no core file, no ptrace attach (internal/nodump).
	if err := nodump.Apply(); err != nil {
		fmt.Fprintf(os.Stderr, "custos: %v\n", err)
		os.Exit(command.ExitFail)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

func run(ctx context.Context, args []string) int {
	streams := command.Streams{Out: os.Stdout, Err: os.Stderr}
	if len(args) == 0 || (strings.HasPrefix(args[0], "-") && !isHelpOrVersion(args[0])) {
		return openWindow(ctx, args, streams)
	}
	return cli.Run(ctx, args, streams, openGUI)
}

// openWindow handles `custos [--workspace DIR] [--module PATH]`.
func openWindow(ctx context.Context, args []string, s command.Streams) int {
	fs := flag.NewFlagSet("custos", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	ws := fs.String("workspace", "", "workspace folder")
	module := fs.String("module", "", "PKCS#11 module path")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(s.Err, "custos: %v (run 'custos --help')\n", err)
		return command.ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(s.Err, "custos: unknown command %q (run 'custos --help')\n", fs.Arg(0))
		return command.ExitUsage
	}
	if err := openGUI(ctx, cli.GUIConfig{Workspace: *ws, Module: *module}); err != nil {
		fmt.Fprintf(s.Err, "custos: %v\n", err)
		return command.ExitFail
	}
	return command.ExitOK
}

// openGUI opens the window the command line asked for; for `custos demo` it first prepares
// the demo workspace and tokens.
func openGUI(ctx context.Context, c cli.GUIConfig) error {
	cfg := app.Config{Workspace: c.Workspace, Module: c.Module, Screenshots: c.Screenshots}
	if c.Demo {
		d, err := demo.Prepare(ctx, os.Stderr)
		if err != nil {
			return err
		}
		cfg.Workspace, cfg.Module, cfg.Banner = d.Workspace, d.Module, d.Banner
	}
	return app.Run(ctx, cfg)
}

func isHelpOrVersion(a string) bool {
	switch a {
	case "-h", "-help", "--help", "--version":
		return true
	}
	return false
}
