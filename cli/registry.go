package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/rebuild"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/workspace"
)

func registryRebuild() command.Command {
	return command.Command{
		Name:    "registry rebuild",
		Summary: "rebuild the registry from the journals, check it against the records, compare it with the live one",
		Help: `The registry (custos.db) is derived from the journals: every change to it is journaled
first. This replays every journal of the workspace into a new file beside the live registry,
custos-rebuilt-TIME.db, without touching the live one; checks each record under records/
against the journal of its run (the journal it carries must equal the journal file, byte for
byte, and its signature verify) and that every record belongs to a journal; and compares
the rebuilt registry with the live one, table by table, printing each difference.

With --replace, and only when nothing is missing (every journal replayed, every record
accounted for), the rebuilt registry is put in place of custos.db, and the old one is kept
beside it as custos-replaced-TIME.db. Exit status 1 when anything is missing, or when the
live registry differs and --replace was not given.`,
		Setup: func(fs *flag.FlagSet) command.Func {
			ws := command.WorkspaceFlag(fs)
			replace := fs.Bool("replace", false, "put the rebuilt registry in place of custos.db, keeping the old one beside it")
			return func(ctx context.Context, s command.Streams, args []string) error {
				dir, err := workspaceDir(*ws)
				if err != nil {
					return err
				}
				if _, err := os.Stat(dir); err != nil {
					return fmt.Errorf("rebuild the registry: %w", err)
				}
				w, err := workspace.Open(dir)
				if err != nil {
					return err
				}
				defer w.Close()
				saySwept(s, w)
				now := time.Now()
				rep, err := rebuild.Rebuild(ctx, w, now)
				if err != nil {
					return err
				}
				fmt.Fprintf(s.Out, "rebuilt %s: %s\n", rep.Rebuilt, rep.Summary())
				for _, n := range rep.Notes {
					fmt.Fprintf(s.Out, "  note: %s\n", n)
				}
				for _, p := range rep.Problems {
					fmt.Fprintf(s.Out, "  MISSING: %s\n", p)
				}
				for _, d := range rep.Diffs {
					fmt.Fprintf(s.Out, "  differs (- live, + rebuilt): %s\n", d)
				}
				if !rep.Complete() {
					return fmt.Errorf("the rebuilt registry lacks what the lines marked MISSING say; %s is left as it was", filepath.Base(w.DBPath()))
				}
				if !*replace {
					if len(rep.Diffs) > 0 {
						return errors.New("the live registry differs from the journals; rebuild again with --replace to put the rebuilt one in its place")
					}
					return nil
				}
				if err := rebuild.Replace(w, rep, now); err != nil {
					return err
				}
				if rep.Replaced != "" {
					fmt.Fprintf(s.Out, "the rebuilt registry is now %s; the old one is kept as %s\n", rep.Rebuilt, rep.Replaced)
				} else {
					fmt.Fprintf(s.Out, "the rebuilt registry is now %s\n", rep.Rebuilt)
				}
				return nil
			}
		},
	}
}

func registryBackup() command.Command {
	return command.Command{
		Name:    "registry backup",
		Summary: "a consistent copy of the registry, checked by opening it",
		Help: `Copies the registry (custos.db) into DIR as custos-TIME.db with SQLite's VACUUM INTO: one
consistent snapshot, even beside a Custos at work. The copy is then opened read-only and must
pass SQLite's integrity check, carry the registry's identity and, when no other Custos is at
work, hold the same rows as the registry, table by table. A copy that fails is removed.
The journals, records and the rest of the workspace are files: copy them as they are.`,
		Setup: func(fs *flag.FlagSet) command.Func {
			ws := command.WorkspaceFlag(fs)
			to := fs.String("to", "", "the folder `DIR` to write the copy into")
			return func(ctx context.Context, s command.Streams, args []string) error {
				if err := command.Require(fs, "to"); err != nil {
					return err
				}
				if info, err := os.Stat(*to); err != nil || !info.IsDir() {
					return command.Usagef("--to %s: not a folder", *to)
				}
				w, reg, done, err := registry.OpenWorkspaceReadOnly(ctx, *ws)
				if err != nil {
					return err
				}
				defer done()
				dir, err := filepath.Abs(*to)
				if err != nil {
					return err
				}
				dst := filepath.Join(dir, "custos-"+time.Now().UTC().Format("20060102T150405Z")+".db")
				if err := reg.Backup(ctx, dst, w.NoWriter()); err != nil {
					return err
				}
				fmt.Fprintf(s.Out, "registry copied to %s and checked\n", dst)
				return nil
			}
		},
	}
}

// workspaceDir is the folder --workspace names, or the default one.
func workspaceDir(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	return workspace.DefaultDir()
}

// advice is what the command line adds to an error a person can get out of with another
// command.
func advice(err error) string {
	switch {
	case errors.Is(err, registry.ErrRegistryLost):
		return "; run 'custos registry rebuild' to rebuild it from the journals, then 'custos registry rebuild --replace' to put it in place"
	case errors.Is(err, registry.ErrRegistryGone):
		return "; run 'custos registry rebuild --replace' to put back a registry rebuilt from the journals, then resume the run ('custos runs' lists it)"
	}
	return ""
}
