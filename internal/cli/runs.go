package cli

import (
	"context"
	"flag"
	"fmt"

	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
)

func runCommands() []command {
	return []command{{
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
	}}
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
