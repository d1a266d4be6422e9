// Package cli is Custos's command line: the same workflows the GUI drives, for scripts, tests
// and auditors. Each command is one function (its flags, its checks, the workflow it calls
// and what it prints), one file per workflow: ceremony.go, quorum.go, device.go,
// decommission.go, runs.go, hsm.go; the auditor's verify comes from cli/audit, and the
// framework (dispatch, --help, usage errors, exit statuses) from cli/command.
//
// A wrong flag or a missing input file is a one-line error and exit status 2; an operation
// that fails is exit status 1. A workflow's error about a request field (a *run.FieldError)
// gets the flag that sets it from fieldFlags (see cli/command's package doc). The scenarios in
// testdata/script are run by `go test` with testscript.
//
// The owner zeroes: a command zeroes the PINs and shares it read from files once the workflow
// it called returns; workflows never zero them.
package cli

import (
	"context"
	"errors"
	"flag"

	"github.com/custos-pki/custos/cli/audit"
	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/pki"
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

// Run executes the command in args (without the program name) and returns the exit status.
func Run(ctx context.Context, args []string, s command.Streams, gui GUIFunc) int {
	return program(gui).Run(ctx, args, s)
}

// program is custos: every command.
func program(gui GUIFunc) *command.Program {
	cmds := []command.Command{
		demo(gui),
		hsmList(), hsmCheck(),
		runs(), resume(), abort(),
		ceremonyRoot(), ceremonyIssueCA(), ceremonyCRL(), ceremonyReshare(), ceremonyRestore(), ceremonyDestroy(),
		ceremonyRecordSigner(), ceremonyRetireCA(), ceremonySetModule(), ceremonyCheckShares(),
		backupList(), backupCopy(), backupRetire(),
		deviceProvision(), deviceRekey(), deviceImport(), deviceList(), deviceShow(), deviceFind(), deviceHistoryCmd(),
		decommissionCmd(), crlPublish(),
		settingsShow(), settingsSet(),
		registryRebuild(), registryBackup(),
	}
	for i := range cmds {
		cmds[i] = limitsAreUsage(cmds[i])
	}
	return &command.Program{
		Name: "custos",
		Intro: `Custos runs a medical-device manufacturer's private CA on an air-gapped workstation:
root key ceremonies under M-of-N custodian quorum, device decommissioning, and signed
PDF records an auditor can verify.

Usage:
  custos [--workspace DIR] [--module PATH]   open the main window
  custos COMMAND [flags]                     run one operation
  custos COMMAND --help                      describe a command and its flags`,
		Outro: `Every command that uses a workspace takes --workspace DIR (default: $CUSTOS_WORKSPACE,
else the user's data folder). Exit status: 0 success, 1 the operation failed, 2 wrong
flags or missing input files.`,
		Commands:   append(cmds, audit.Commands()...),
		FieldFlags: fieldFlags,
		Advice:     advice,
	}
}

// limitsAreUsage makes a date past its limit (a *pki.LimitError: a certificate that would
// outlive its issuer, a CRL whose nextUpdate would pass its issuer's notAfter or the policy's
// bound) a usage error, exit status 2, like any other value a person must choose again:
// nothing was signed, and the message names the limit and what sets it.
func limitsAreUsage(c command.Command) command.Command {
	setup := c.Setup
	c.Setup = func(fs *flag.FlagSet) command.Func {
		run := setup(fs)
		return func(ctx context.Context, s command.Streams, args []string) error {
			err := run(ctx, s, args)
			if le := new(pki.LimitError); errors.As(err, &le) {
				return command.Usagef("%s", command.OneLine(err))
			}
			return err
		}
	}
	return c
}

// fieldFlags names the flag that sets each field of a workflow request (the requests'
// Go field names), so a workflow's field error is printed with its flag.
var fieldFlags = map[string]string{
	"CAIssuersURL":   "ca-issuers-url",
	"CRLBaseURL":     "crl-base-url",
	"CRLShards":      "crl-shards",
	"ExtKeyUsages":   "eku",
	"Policies":       "policy",
	"Backup":         "backup",
	"By":             "by",
	"Copy":           "copy",
	"CommonName":     "name",
	"Custodians":     "custodians",
	"Destinations":   "deliver",
	"DevicePIN":      "device-pin-file",
	"Issuer":         "issuer",
	"LostReason":     "lost-reason",
	"LostTokens":     "lost-token",
	"Manifest":       "manifest",
	"Media":          "media",
	"Method":         "method",
	"Model":          "model",
	"Module":         "module",
	"OpsPIN":         "ops-pin-file",
	"Reason":         "reason",
	"Revoke":         "revoke",
	"Serial":         "serial",
	"Technician":     "technician",
	"Threshold":      "threshold",
	"To":             "to",
	"Token":          "token",
	"Witness":        "witness",
	"Validator":      "validator",
	"Destination":    "destination",
	"UDI":            "udi",
	"Workspace":      "workspace",
	"InvalidityDate": "compromised-at",
	"Identities":     "identity",
	"Shares":         "shares",
}

func demo(gui GUIFunc) command.Command {
	return command.Command{
		Name:    "demo",
		Summary: "open the window on a fresh demo workspace with SoftHSM2 tokens",
		Help: `Creates a temporary workspace and a SoftHSM2 token folder, sets up tokens for trying
every workflow, and opens the main window on them. Nothing outside the temporary folder
is touched; real HSMs are never used.`,
		Setup: func(fs *flag.FlagSet) command.Func {
			shots := fs.String("screenshots", "", "save a PNG of each main screen into `DIR` and quit")
			return func(ctx context.Context, s command.Streams, args []string) error {
				if gui == nil {
					return command.Usagef("this build has no GUI")
				}
				return gui(ctx, GUIConfig{Demo: true, Screenshots: *shots})
			}
		},
	}
}
