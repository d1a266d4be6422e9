package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/registry"
)

func backupList() command.Command {
	return command.Command{
		Name:    "backup list",
		Summary: "list a root's backup blobs and every copy of them, with their states",
		Help: `Lists every backup blob of the root in the workspace and every copy people made of one,
with its epoch, SHA-256, where it is and its state: current (M custodians of today open it),
superseded (the shares of its old epoch open it: destroy it, then backup retire), or retired.`,
		Setup: func(fs *flag.FlagSet) command.Func {
			ws := command.WorkspaceFlag(fs)
			root := fs.String("root", "", "the root's `ID`")
			return func(ctx context.Context, s command.Streams, args []string) error {
				if err := command.Require(fs, "root"); err != nil {
					return err
				}
				_, reg, done, err := registry.OpenWorkspaceReadOnly(ctx, *ws)
				if errors.Is(err, registry.ErrEmptyWorkspace) {
					return fmt.Errorf("root %s: %w", *root, err)
				}
				if err != nil {
					return err
				}
				defer done()
				entries, err := ceremony.ListBackups(ctx, reg, *root)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "COPY\tEPOCH\tSTATE\tSHA-256\tWHERE\tDETAIL")
				for _, e := range entries {
					c := "workspace"
					if e.Copy > 0 {
						c = fmt.Sprint(e.Copy)
					}
					fmt.Fprintf(tw, "%s\t%d\t%s\t%x\t%s\t%s\n", c, e.Epoch, e.State, e.SHA256, e.Where, e.Detail)
				}
				return tw.Flush()
			}
		},
	}
}

func backupCopy() command.Command {
	return command.Command{
		Name:    "backup copy",
		Summary: "copy a root's current backup to removable media and record the copy",
		Help: `Copies the root's current backup blob into DIR (mode 0600, never over a file), reads it
back and checks it, and records the copy as a run. M custodians of its epoch with this copy
recover the root key, also outside an HSM: keep it as the shares are kept, and when it is
destroyed, record that with backup retire.`,
		Setup: func(fs *flag.FlagSet) command.Func {
			env := addEnvFlags(fs, "the workspace's")
			req := ceremony.BackupCopyRequest{}
			fs.StringVar(&req.Root, "root", "", "the root's `ID`")
			fs.StringVar(&req.To, "to", "", "the folder `DIR` on the removable media")
			fs.StringVar(&req.By, "by", "", "`NAME` of the person who makes and carries the copy")
			fs.StringVar(&req.Media, "media", "", "the medium's `LABEL`, as written on it")
			return func(ctx context.Context, s command.Streams, args []string) error {
				for _, f := range []string{"root", "to", "by"} {
					if err := command.Require(fs, f); err != nil {
						return err
					}
				}
				e, err := env.open(ctx, s)
				if err != nil {
					return err
				}
				defer e.Close()
				res, err := ceremony.CopyBackup(ctx, e, req)
				if err != nil {
					return err
				}
				c := res.Copy
				fmt.Fprintf(s.Out, "backup copy %d of %s: epoch %d, sha256 %x\n  written to %s (read back and checked)\n  run         %s\n",
					c.Copy, req.Root, c.Epoch, c.SHA256, c.Location, res.RunID)
				fmt.Fprintf(s.Out, "M custodians of epoch %d with this copy recover the root key: when it is destroyed, record it with backup retire --copy %d\n", c.Epoch, c.Copy)
				return nil
			}
		},
	}
}

func backupRetire() command.Command {
	return command.Command{
		Name:    "backup retire",
		Summary: "record that a person destroyed a backup copy, before a witness",
		Setup: func(fs *flag.FlagSet) command.Func {
			env := addEnvFlags(fs, "the workspace's")
			req := ceremony.BackupRetireRequest{}
			fs.StringVar(&req.Root, "root", "", "the root's `ID`")
			fs.IntVar(&req.Copy, "copy", 0, "the copy's number `N`, as backup list shows it")
			fs.StringVar(&req.By, "by", "", "`NAME` of the person who destroyed it")
			fs.StringVar(&req.Witness, "witness", "", "`NAME` of another person who saw it destroyed")
			return func(ctx context.Context, s command.Streams, args []string) error {
				for _, f := range []string{"root", "by", "witness"} {
					if err := command.Require(fs, f); err != nil {
						return err
					}
				}
				if req.Copy <= 0 {
					return command.Usagef("--copy N is required: the copy's number, as backup list shows it")
				}
				e, err := env.open(ctx, s)
				if err != nil {
					return err
				}
				defer e.Close()
				rid, err := ceremony.RetireBackup(ctx, e, req)
				if err != nil {
					return err
				}
				fmt.Fprintf(s.Out, "backup copy %d of %s retired: destroyed by %s, witnessed by %s\n  run         %s\n", req.Copy, req.Root, req.By, req.Witness, rid)
				return nil
			}
		},
	}
}
