package cli

import (
	"context"
	"flag"
	"fmt"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/decommission"
	"github.com/custos-pki/custos/internal/secret"

	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
)

func runCommands() []command {
	return append(stoppedRunCommands(), command{
		name:    "runs",
		summary: "list ceremonies and decommissionings that stopped half way",
		help: `A run that was killed, lost its token or failed stays open until it is resumed or
aborted. For each open run this prints its id, kind, operation, what it acts on, its
status, and the steps its journal shows as begun but never finished: the place where it
stopped. Resume it with 'custos resume RUN' or clean up with 'custos abort RUN'.`,
		setup: func(fs *flag.FlagSet) runFunc {
			wsDir := workspaceFlag(fs)
			return func(ctx context.Context, s Streams, args []string) error {
				if len(args) > 0 {
					return usagef("unexpected argument %q", args[0])
				}
				return listRuns(ctx, s, *wsDir)
			}
		},
	})
}

func listRuns(ctx context.Context, s Streams, dir string) error {
	ws, err := openWorkspace(dir)
	if err != nil {
		return err
	}
	defer ws.Close()
	reg, err := registry.Open(ctx, ws.DBPath())
	if err != nil {
		return err
	}
	defer reg.Close()
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
			fmt.Fprintf(s.Out, "    journal: %s\n", oneLine(err))
			continue
		}
		for _, e := range record.OpenSteps(jf.Entries) {
			fmt.Fprintf(s.Out, "    stopped in step %s (journal line %d, %s)\n", e.Step, e.Seq, e.Time.Format("15:04:05Z"))
		}
	}
	return nil
}

// stoppedRunHandlers resume and abort a stopped run of each kind.
type stoppedRunHandlers struct {
	resume stoppedRunFunc
	abort  stoppedRunFunc
}

type stoppedRunFunc func(ctx context.Context, env ceremony.Env, s Streams, runID string, pins runPINs) error

// runPINs are the PINs a person gave for finishing or cleaning up a run; either may be empty.
type runPINs struct{ ops, device []byte }

var runHandlers = map[registry.RunKind]stoppedRunHandlers{
	registry.RunDecommission: {
		resume: func(ctx context.Context, env ceremony.Env, s Streams, runID string, pins runPINs) error {
			if len(pins.ops) == 0 {
				return usagef("--ops-pin-file is required to resume a decommissioning (its CRL and record are signed)")
			}
			msg, err := decommission.Resume(ctx, decommission.Env{Workspace: env.Workspace, Registry: env.Registry, Module: env.Module}, runID,
				append([]byte(nil), pins.ops...), append([]byte(nil), pins.device...))
			if err != nil {
				return err
			}
			fmt.Fprintln(s.Out, msg)
			return nil
		},
		abort: func(ctx context.Context, env ceremony.Env, s Streams, runID string, _ runPINs) error {
			msg, err := decommission.Abort(ctx, decommission.Env{Workspace: env.Workspace, Registry: env.Registry, Module: env.Module}, runID)
			if err != nil {
				return err
			}
			fmt.Fprintf(s.Out, "run %s %s\n", runID, msg)
			return nil
		},
	},
	registry.RunCeremony: {
		resume: func(ctx context.Context, env ceremony.Env, s Streams, runID string, _ runPINs) error {
			return ceremony.Resume(ctx, env, runID)
		},
		abort: func(ctx context.Context, env ceremony.Env, s Streams, runID string, pins runPINs) error {
			res, err := ceremony.Abort(ctx, env, runID, pins.ops)
			if err != nil {
				return err
			}
			fmt.Fprintf(s.Out, "run %s aborted\n", runID)
			for _, d := range res.Destroyed {
				fmt.Fprintf(s.Out, "  destroyed: %s\n", d)
			}
			for _, r := range res.Remaining {
				fmt.Fprintf(s.Out, "  ACTION NEEDED: %s\n", r)
			}
			return nil
		},
	},
}

func stoppedRunCommands() []command {
	mk := func(verb, summary, help string, pick func(stoppedRunHandlers) stoppedRunFunc) command {
		return command{
			name:    verb,
			args:    "RUN",
			summary: summary,
			help:    help,
			setup: func(fs *flag.FlagSet) runFunc {
				wsDir := workspaceFlag(fs)
				pinFile := fs.String("ops-pin-file", "", "`FILE` holding the operations token's operator PIN, to clean up or finish keys on it")
				var devicePINFile *string
				if verb == "resume" {
					devicePINFile = fs.String("device-pin-file", "", "`FILE` holding the device tokens' user PIN, for a fleet whose remaining devices are erased")
				}
				module := fs.String("module", "", "PKCS#11 module `PATH` (default: the one the run used)")
				return func(ctx context.Context, s Streams, args []string) error {
					if len(args) != 1 {
						return usagef("name one run (see 'custos runs')")
					}
					var pins runPINs
					var err error
					if pins.ops, err = pinFlag("ops-pin-file", *pinFile, false); err != nil {
						return err
					}
					defer secret.Zero(pins.ops)
					if devicePINFile != nil {
						if pins.device, err = pinFlag("device-pin-file", *devicePINFile, false); err != nil {
							return err
						}
						defer secret.Zero(pins.device)
					}
					env, done, err := ceremonyEnv(ctx, *wsDir, *module)
					if err != nil {
						return err
					}
					defer done()
					run, err := env.Registry.Run(ctx, args[0])
					if err != nil {
						return err
					}
					h, ok := runHandlers[run.Kind]
					if !ok {
						return fmt.Errorf("run %s is of kind %q, which this Custos cannot %s", run.ID, run.Kind, verb)
					}
					return pick(h)(ctx, env, s, run.ID, pins)
				}
			},
		}
	}
	return []command{
		mk("resume", "continue a run that stopped half way",
			`Continues a decommissioning run from where its journal shows it stopped. A ceremony run
cannot be resumed (its quorum secret existed only in the stopped process): abort it.`,
			func(h stoppedRunHandlers) stoppedRunFunc { return h.resume }),
		mk("abort", "clean up after a run that stopped half way",
			`Removes what the run left on tokens (for example a half-made key on the operations token,
which needs --ops-pin-file), says what a person must still deal with, and marks the run
aborted in the journal and registry.`,
			func(h stoppedRunHandlers) stoppedRunFunc { return h.abort }),
	}
}
