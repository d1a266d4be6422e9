// Package audit holds the auditor's commands, the ones custos-verify runs on any computer:
// `verify` checks a signed record or a bare journal, `log verify` the record log against the
// root's checkpoints and records against the log, `log checkpoint` prints its newest
// checkpoint. They read a workspace without changing it. Like cli/command it imports only pure-Go
// packages (record, registry, workspace), so custos-verify builds with CGO_ENABLED=0 into a
// static binary that needs no HSM library and no display. custos offers the same commands.
package audit

import "github.com/custos-pki/custos/cli/command"

// Commands are the auditor's commands.
func Commands() []command.Command {
	return []command.Command{verify(), logCheckpoint(), logVerify(), sum()}
}

// Program is custos-verify: the auditor's commands and nothing else.
func Program() *command.Program {
	return &command.Program{
		Name: "custos-verify",
		Intro: `custos-verify checks the signed PDF records and the journals Custos writes, as an
auditor would. It needs no HSM and no display: give the root certificate with --root.

Usage:
  custos-verify COMMAND [flags]      run one check
  custos-verify COMMAND --help       describe a command and its flags`,
		Outro: `Exit status: 0 every check passed, 1 a check failed, 2 wrong flags or missing
input files.`,
		Commands: Commands(),
	}
}
