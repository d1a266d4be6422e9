package audit

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/internal/inputfile"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
)

func logCheckpoint() command.Command {
	return command.Command{
		Name:    "log checkpoint",
		Summary: "print the record log's newest checkpoint (a signed note)",
		Help: `Prints the newest checkpoint of the workspace's record log, as it was signed: the log's
origin, its size and root hash (C2SP tlog-checkpoint), a blank line, and a line per signature
(the record signer's, and the root's after a quorum operation). Reads the workspace without
changing anything.`,
		Setup: func(fs *flag.FlagSet) command.Func {
			wsDir := command.WorkspaceFlag(fs)
			return func(ctx context.Context, s command.Streams, args []string) error {
				_, reg, closeAll, err := registry.OpenWorkspaceReadOnly(ctx, *wsDir)
				if err != nil {
					return err
				}
				defer closeAll()
				cps, err := reg.LogCheckpoints(ctx, false)
				if err != nil {
					return err
				}
				if len(cps) == 0 {
					return errors.New("the record log has no checkpoint yet: no run has written a record")
				}
				newest := cps[0]
				for _, c := range cps[1:] {
					if c.Size >= newest.Size {
						newest = c
					}
				}
				_, err = s.Out.Write(newest.Note)
				return err
			}
		},
	}
}

func logVerify() command.Command {
	return command.Command{
		Name:    "log verify",
		Args:    "[RECORD.pdf ...]",
		Summary: "check the record log against every checkpoint the root signed, and records against the log",
		Help: `Rebuilds the workspace's record log from its entries alone and checks that it agrees with
every checkpoint the root signed (those in the registry, and those in the records given: a
quorum operation's record carries one). Then, for each record given: it verifies (as verify
does), its entry is the log's at its place, and the log agrees with the checkpoint it
carries. Says which root it checked against, and which records and entries no checkpoint the
root signed covers yet (the next quorum operation will). A record forged later with the
operator's PIN alone is either not in the log, or the log no longer agrees with the root's
checkpoints. Reads the workspace without changing anything; exits 0 only if every check
passes.`,
		Setup: func(fs *flag.FlagSet) command.Func {
			rootFile := fs.String("root", "", "the root certificate `ROOT.pem` the log's checkpoints are signed by")
			wsDir := command.WorkspaceFlag(fs)
			return func(ctx context.Context, s command.Streams, args []string) error {
				for _, f := range append([]string{*rootFile}, args...) {
					if f == "" {
						continue
					}
					if err := command.ExistingFile(f); err != nil {
						return err
					}
				}
				tr, err := openTrust(ctx, *rootFile, "", *wsDir)
				if err != nil {
					return err
				}
				defer tr.close()
				if tr.reg == nil {
					return errors.New("no workspace, so no record log: give the workspace with --workspace")
				}
				if len(tr.roots) != 1 {
					return command.Usagef("--root must hold one root: the one whose checkpoints the log is checked against")
				}
				return verifyLog(ctx, s, tr, args)
			}
		},
	}
}

// verifyLog is `log verify`: the log against the root's checkpoints, the records against it.
func verifyLog(ctx context.Context, s command.Streams, tr *trust, files []string) error {
	root := tr.roots[0]
	origin, ok, err := tr.reg.LogOrigin(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("the workspace's record log is empty: no run has written a record yet")
	}
	leaves, err := tr.reg.LogLeaves(ctx)
	if err != nil {
		return err
	}
	kept, err := tr.reg.LogCheckpoints(ctx, false)
	if err != nil {
		return err
	}
	var notes []record.SignedNote
	for _, c := range kept {
		notes = append(notes, record.SignedNote{Note: c.Note, Source: "the registry"})
	}
	reports := make([]*record.Report, len(files))
	for i, f := range files {
		data, err := inputfile.Read(ctx, "record", f, record.MaxFileSize)
		if err != nil {
			return err
		}
		if reports[i], err = cancellable(ctx, func() *record.Report { return record.Verify(data, tr.roots) }); err != nil {
			return err
		}
		if lp := reports[i].Log; lp != nil && reports[i].RootSignedCheckpoint {
			notes = append(notes, record.SignedNote{Note: lp.Checkpoint, Source: f})
		}
	}
	var data [][]byte
	for _, l := range leaves {
		data = append(data, l.Leaf)
	}
	a, err := record.AuditLog(origin, data, notes, root)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.Out, "root  %s, SHA-256 %s (%s)\n", root.Subject, fingerprint(root), tr.from)
	fmt.Fprintf(s.Out, "log   %s: %d entries, root hash %s\n", origin, a.Tree.N, hex.EncodeToString(a.Tree.Hash[:]))
	failed := 0
	mark := func(ok bool) string {
		if ok {
			return "PASS"
		}
		failed++
		return "FAIL"
	}
	if len(a.RootCheckpoints) == 0 {
		fmt.Fprintln(s.Out, "NOTE  no checkpoint signed by this root was found: nothing in the log is covered by the root yet")
	}
	for _, c := range a.RootCheckpoints {
		if c.Err != nil {
			fmt.Fprintf(s.Out, "%s  the log agrees with the root's checkpoint of %d entries (from %s): %v\n", mark(false), c.Size, c.Source, c.Err)
			continue
		}
		fmt.Fprintf(s.Out, "%s  the log agrees with the root's checkpoint of %d entries (from %s)\n", mark(true), c.Size, c.Source)
	}
	for i, f := range files {
		rep := reports[i]
		switch {
		case !rep.OK():
			fmt.Fprintf(s.Out, "%s  %s: the record does not verify: %s\n", mark(false), f, firstFailure(rep))
		case rep.Log == nil:
			fmt.Fprintf(s.Out, "%s  %s: the record carries no entry of the record log\n", mark(false), f)
		default:
			if err := a.Holds(rep.Log, rep.Checkpoint); err != nil {
				fmt.Fprintf(s.Out, "%s  %s: %v\n", mark(false), f, err)
				continue
			}
			cover := "not yet covered by a checkpoint the root signed"
			if n := a.CoveredBy(rep.Log.Index); n > 0 {
				cover = fmt.Sprintf("covered by the root's checkpoint of %d entries", n)
			}
			fmt.Fprintf(s.Out, "%s  %s: entry %d of the log (%s run %s), %s\n", mark(true), f, rep.Log.Index, rep.Log.Entry.Kind, rep.Log.Entry.Run, cover)
		}
	}
	var uncovered []string
	for i, e := range a.Entries {
		if a.CoveredBy(int64(i)) == 0 {
			uncovered = append(uncovered, fmt.Sprintf("%d (%s %s)", i, e.Kind, e.Run))
		}
	}
	if len(uncovered) > 0 {
		fmt.Fprintf(s.Out, "NOTE  not yet covered by a checkpoint the root signed: entries %s\n", strings.Join(uncovered, ", "))
	}
	if failed > 0 {
		return fmt.Errorf("%d check(s) of the record log failed", failed)
	}
	fmt.Fprintln(s.Out, "the record log verifies")
	return nil
}

// firstFailure is the first failed check of rep, with its reason.
func firstFailure(rep *record.Report) string {
	for _, c := range rep.Checks {
		if !c.OK {
			return c.Name + ": " + c.Detail
		}
	}
	return "no check ran"
}
