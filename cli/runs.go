package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/decommission"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
)

func runs() command.Command {
	return command.Command{
		Name:    "runs",
		Summary: "list ceremonies and decommissionings that stopped half way",
		Help: `A run that was killed, lost its token or failed stays open until it is resumed or
aborted. For each open run this prints its id, kind, operation, what it acts on, its
status, and the steps its journal shows as begun but never finished: the place where it
stopped. Resume it with 'custos resume RUN' or clean up with 'custos abort RUN'.`,
		Setup: func(fs *flag.FlagSet) command.Func {
			ws := command.WorkspaceFlag(fs)
			return func(ctx context.Context, s command.Streams, args []string) error {
				return listRuns(ctx, s, *ws)
			}
		},
	}
}

func listRuns(ctx context.Context, s command.Streams, dir string) error {
	_, reg, done, err := command.OpenWorkspaceReadOnly(ctx, dir)
	if errors.Is(err, command.ErrEmptyWorkspace) {
		fmt.Fprintln(s.Out, "no unfinished runs")
		return nil
	}
	if err != nil {
		return err
	}
	defer done()
	runs, err := reg.UnfinishedRuns(ctx)
	if err != nil {
		return err
	}
	if len(runs) == 0 {
		fmt.Fprintln(s.Out, "no unfinished runs")
		return nil
	}
	for _, r := range runs {
		fmt.Fprintf(s.Out, "%s  %s %s  %s  %s since %s\n", r.ID, r.Kind, r.Operation, r.Subject,
			r.Status, r.StartedAt.UTC().Format("2006-01-02 15:04:05Z"))
		if r.Note != "" {
			fmt.Fprintf(s.Out, "    note: %s\n", r.Note)
		}
		jf, err := record.ReadJournalFile(r.JournalPath)
		if err != nil {
			fmt.Fprintf(s.Out, "    journal: %s\n", command.OneLine(err))
			continue
		}
		for _, e := range record.OpenSteps(jf.Entries) {
			fmt.Fprintf(s.Out, "    stopped in step %s (journal line %d, %s)\n", e.Step, e.Seq, e.Time.Format("15:04:05Z"))
		}
	}
	return nil
}

func resume() command.Command {
	return stoppedRunCommand("resume", "continue a run that stopped half way",
		`Continues a decommissioning run from where its journal shows it stopped. A ceremony run
cannot be resumed (its quorum secret existed only in the stopped process): abort it.`,
		resumeRun)
}

func abort() command.Command {
	return stoppedRunCommand("abort", "clean up after a run that stopped half way",
		`Removes what the run left on tokens (for example a half-made key on the operations token,
which needs --ops-pin-file), says what a person must still deal with, and marks the run
aborted in the journal and registry.`,
		abortRun)
}

// stoppedRunFunc resumes or aborts a stopped run with the PINs a person gave (either may be nil)
// and the device tokens' module when it is not the operations token's ("" otherwise).
type stoppedRunFunc func(ctx context.Context, env ceremony.Env, s command.Streams, run registry.Run, p pins, deviceModule string) error

// stoppedRunCommand is `custos resume RUN` or `custos abort RUN`: it finds the run in the
// registry and hands it to act.
func stoppedRunCommand(verb, summary, help string, act stoppedRunFunc) command.Command {
	return command.Command{
		Name:    verb,
		Args:    "RUN",
		Summary: summary,
		Help:    help,
		Setup: func(fs *flag.FlagSet) command.Func {
			ef := addEnvFlags(fs, "the one the run used")
			pf := pinFiles{ops: opsPINFile(fs, ", to clean up or finish keys on it")}
			deviceModule := new(string)
			if verb == "resume" {
				pf.device = addPINFile(fs, "device-pin-file", "`FILE` holding the device tokens' user PIN, for a fleet whose remaining devices are erased")
				deviceModule = fs.String("device-module", "", "PKCS#11 module `PATH` of the device tokens, when it is not the operations token's")
			}
			return func(ctx context.Context, s command.Streams, args []string) error {
				if len(args) != 1 {
					return command.Usagef("name one run (see 'custos runs')")
				}
				p, err := pf.read(false, false)
				if err != nil {
					return err
				}
				defer p.zero()
				env, done, err := ef.ceremonyEnv(ctx)
				if err != nil {
					return err
				}
				defer done()
				run, err := env.Registry.Run(ctx, args[0])
				if err != nil {
					return err
				}
				return act(ctx, env, s, run, p, *deviceModule)
			}
		},
	}
}

// resumeRun finishes a decommissioning; a ceremony cannot be resumed, and says so.
func resumeRun(ctx context.Context, env ceremony.Env, s command.Streams, run registry.Run, p pins, deviceModule string) error {
	switch run.Kind {
	case registry.RunDecommission:
		if len(p.ops) == 0 {
			return command.Usagef("--ops-pin-file is required to resume a decommissioning (its CRL and record are signed)")
		}
		// decommission.Resume zeroes the PINs it is given; p keeps its own, zeroed by the caller.
		denv := decommissionEnv(env)
		denv.DeviceModule = deviceModule
		msg, err := decommission.Resume(ctx, denv, run.ID, bytes.Clone(p.ops), bytes.Clone(p.device))
		if err != nil {
			return err
		}
		fmt.Fprintln(s.Out, msg)
		return nil
	case registry.RunCeremony:
		return ceremony.Resume(ctx, env, run.ID)
	}
	return fmt.Errorf("run %s is of kind %q, which this Custos cannot resume", run.ID, run.Kind)
}

// abortRun cleans up after a stopped run and says what a person must still clear.
func abortRun(ctx context.Context, env ceremony.Env, s command.Streams, run registry.Run, p pins, _ string) error {
	switch run.Kind {
	case registry.RunDecommission:
		msg, err := decommission.Abort(ctx, decommissionEnv(env), run.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(s.Out, "run %s %s\n", run.ID, msg)
		return nil
	case registry.RunCeremony:
		res, err := ceremony.Abort(ctx, env, run.ID, p.ops)
		if err != nil {
			return err
		}
		fmt.Fprintf(s.Out, "run %s aborted\n", run.ID)
		for _, d := range res.Destroyed {
			fmt.Fprintf(s.Out, "  destroyed: %s\n", d)
		}
		for _, r := range res.Remaining {
			fmt.Fprintf(s.Out, "  ACTION NEEDED: %s\n", r)
		}
		return nil
	}
	return fmt.Errorf("run %s is of kind %q, which this Custos cannot abort", run.ID, run.Kind)
}

// decommissionEnv is env for the decommission package, whose Env has the same fields.
func decommissionEnv(env ceremony.Env) decommission.Env {
	return decommission.Env{Workspace: env.Workspace, Registry: env.Registry, Module: env.Module}
}
