// Custos-verify checks Custos's signed PDF records and journals as an auditor would, on any
// computer: a static binary (CGO_ENABLED=0) with the auditor's commands alone, no HSM library
// and no GUI. See `custos-verify --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/custos-pki/custos/cli/audit"
	"github.com/custos-pki/custos/cli/command"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := audit.Program().Run(ctx, os.Args[1:], command.Streams{Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}
