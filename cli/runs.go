package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/decommission"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
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
	ws, reg, done, err := registry.OpenWorkspaceReadOnly(ctx, dir)
	if errors.Is(err, registry.ErrEmptyWorkspace) {
		fmt.Fprintln(s.Out, "no unfinished runs")
		return nil
	}
	if err != nil {
		return err
	}
	defer done()
	stopped, err := handlers().Stopped(ctx, run.Env{Workspace: ws, Registry: reg})
	if err != nil {
		return err
	}
	if len(stopped) == 0 {
		fmt.Fprintln(s.Out, "no unfinished runs")
		return nil
	}
	for _, r := range stopped {
		fmt.Fprintf(s.Out, "%s  %s %s  %s  %s since %s\n", r.ID, r.Kind, r.Operation, r.Subject,
			r.Status, r.StartedAt.UTC().Format("2006-01-02 15:04:05Z"))
		if r.Note != "" {
			fmt.Fprintf(s.Out, "    note: %s\n", r.Note)
		}
		switch {
		case r.JournalErr != nil:
			fmt.Fprintf(s.Out, "    journal: %s\n", command.OneLine(r.JournalErr))
		case len(r.Open) == 0:
			fmt.Fprintf(s.Out, "    %s\n", r.Where())
		}
		for _, o := range r.Open {
			fmt.Fprintf(s.Out, "    stopped in step %s (%s; journal line %d, %s)\n", o.Step.Title, o.Step.ID, o.Seq, o.Time.Format("15:04:05Z"))
		}
		for _, m := range r.Made {
			fmt.Fprintf(s.Out, "    made: %s\n", m)
		}
		if !r.CanResume {
			fmt.Fprintf(s.Out, "    cannot resume: %s\n", r.CannotResume)
		}
	}
	return nil
}

// handlers are the kinds of runs the command line resumes and aborts.
func handlers() run.Handlers {
	return run.Handlers{ceremony.Handler(), decommission.Handler(), decommission.RekeyHandler()}
}

func resume() command.Command {
	return stoppedRunCommand("resume", "continue a run that stopped half way",
		`Continues a run from where its journal shows it stopped, as its workflow allows ('custos runs'
says which can resume). A ceremony run whose every step was done but whose record could not be
written (a full disk) resumes by writing its record from the journal, signed with the record
signer (--ops-pin-file); any other ceremony run cannot be resumed (its quorum secret existed only
in the stopped process): abort it.`,
		run.Handlers.Resume)
}

func abort() command.Command {
	return stoppedRunCommand("abort", "clean up after a run that stopped half way",
		`Removes what the run left on tokens (for example a half-made key on the operations token,
which needs --ops-pin-file), says what a person must still deal with, and marks the run
aborted in the journal and registry.`,
		run.Handlers.Abort)
}

// stoppedRunFunc resumes or aborts a stopped run.
type stoppedRunFunc func(h run.Handlers, ctx context.Context, env run.Env, id string, pins run.PINs) (run.Outcome, error)

// stoppedRunCommand is `custos resume RUN` or `custos abort RUN`: it hands the run and the
// PINs a person gave to act, and prints what it did.
func stoppedRunCommand(verb, summary, help string, act stoppedRunFunc) command.Command {
	return command.Command{
		Name:    verb,
		Args:    "RUN",
		Summary: summary,
		Help:    help,
		Setup: func(fs *flag.FlagSet) command.Func {
			ef := addEnvFlags(fs, "the one the run used")
			pf := pinFiles{ops: opsPINFile(fs, ", to clean up or finish keys on it")}
			if verb == "resume" {
				pf.device = addPINFile(fs, "device-pin-file", "`FILE` holding the device tokens' user PIN, for a run whose devices are still to be erased or re-keyed")
			} else {
				pf.device = addPINFile(fs, "device-pin-file", "`FILE` holding the device token's user PIN, for a rekey run whose half-made new key is to be removed")
			}
			deviceModule := fs.String("device-module", "", "PKCS#11 module `PATH` of the device tokens, when it is not the operations token's")
			return func(ctx context.Context, s command.Streams, args []string) error {
				if len(args) != 1 {
					return command.Usagef("name one run (see 'custos runs')")
				}
				p, err := pf.read(false, false)
				if err != nil {
					return err
				}
				defer p.zero()
				env, err := ef.open(ctx, s)
				if err != nil {
					return err
				}
				defer env.Close()
				env.DeviceModule = *deviceModule
				out, err := act(handlers(), ctx, env, args[0], run.PINs{Ops: p.ops, Device: p.device})
				if err != nil {
					return err
				}
				fmt.Fprintf(s.Out, "run %s: %s\n", args[0], out.Summary)
				for _, d := range out.Done {
					fmt.Fprintf(s.Out, "  done: %s\n", d)
				}
				for _, r := range out.Remaining {
					fmt.Fprintf(s.Out, "  ACTION NEEDED: %s\n", r)
				}
				return nil
			}
		},
	}
}
