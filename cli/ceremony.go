package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/internal/secret"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/run"
	"github.com/custos-pki/custos/workspace"
)

func ceremonyRoot() command.Command {
	return command.Command{
		Name:    "ceremony root",
		Summary: "run a root key ceremony from a reviewed plan",
		Help: `Generates the root CA key inside the HSM token the plan names, its certificate, the
record-signer key on the operations token, and splits the quorum secret among the plan's
custodians, writing each share to <shares-dir>/<n>-<custodian>.share (mode 0600; hand each
file to its custodian and delete it from this machine). Every share is read back and checked,
the quorum secret is reconstructed and checked, then it and every PIN are forgotten.
The plan, the shares folder and the PIN file are checked before the HSM is opened.`,
		Setup: func(fs *flag.FlagSet) command.Func {
			env := addEnvFlags(fs, "the plan's module")
			planPath := fs.String("plan", "", "the ceremony plan `FILE` (YAML)")
			sharesDir := fs.String("shares-dir", "", "`DIR` to write one share file per custodian into")
			opsPIN := opsPINFile(fs, " (mode 0600)")
			return func(ctx context.Context, s command.Streams, args []string) error {
				if err := command.RequireFile("plan", *planPath); err != nil {
					return err
				}
				if err := command.RequireFile("ops-pin-file", opsPIN.path); err != nil {
					return err
				}
				if err := command.Require(fs, "shares-dir"); err != nil {
					return err
				}
				plan, err := ceremony.LoadPlan(ctx, *planPath)
				if err != nil {
					return err
				}
				files, err := shareFiles(*sharesDir, plan.Custodians)
				if err != nil {
					return err
				}
				pin, err := opsPIN.read(true)
				if err != nil {
					return err
				}
				defer secret.Zero(pin)
				e, err := env.open(ctx)
				if err != nil {
					return err
				}
				defer e.Close()
				fmt.Fprintf(s.Err, "plan %s\n  sha256 %x\n  words  %s\n", *planPath, plan.SHA256(), plan.HashWords())
				e.Progress = stepPrinter(s)
				res, err := ceremony.Root(ctx, e, plan, pin, &fileParticipants{files: files, err: s,
					admin: record.Actor{Name: plan.Administrator, Role: "administrator"}})
				if err != nil {
					return err
				}
				printRoot(s, plan, res, *sharesDir)
				return nil
			}
		},
	}
}

// printRoot is a root ceremony's summary: what was made, its fingerprint, where the shares went.
func printRoot(s command.Streams, plan *ceremony.Plan, res *ceremony.RootResult, sharesDir string) {
	fp := res.Fingerprint()
	fmt.Fprintf(s.Out, "root %s: %s\n", plan.ID, res.Root.Subject.CommonName)
	fmt.Fprintf(s.Out, "  certificate   %s\n  sha256        %s\n  words         %s\n", res.RootPath, fp, fp.Words())
	fmt.Fprintf(s.Out, "  record signer %s\n", res.RecordSignerPath)
	if res.BackupPath != "" {
		fmt.Fprintf(s.Out, "  backup        %s (sha256 %s)\n", res.BackupPath, res.BackupSHA256)
	}
	fmt.Fprintf(s.Out, "  journal       %s (final hash %s)\n", res.JournalPath, journalHash(res.JournalPath))
	if res.RecordPath != "" {
		fmt.Fprintf(s.Out, "  record        %s\n", res.RecordPath)
	}
	fmt.Fprintf(s.Out, "  shares        %d of %d needed, written to %s: hand each to its custodian and delete it here\n",
		plan.Threshold, len(plan.Custodians), sharesDir)
}

// stepPrinter prints each step of a run as it begins, ends or fails, by its title.
func stepPrinter(s command.Streams) func(run.Event) {
	return func(e run.Event) {
		switch e.Status {
		case record.StatusBegin:
			fmt.Fprintf(s.Err, "… %s\n", e.Step.Title)
		case record.StatusDone:
			fmt.Fprintf(s.Err, "✓ %s\n", e.Step.Title)
		case record.StatusFailed:
			fmt.Fprintf(s.Err, "✗ %s: %v\n", e.Step.Title, command.OneLine(e.Err))
		}
	}
}

func journalHash(path string) string {
	jf, err := record.ReadJournalFile(path)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	return jf.FinalHash
}

// shareFiles checks the shares folder before the HSM is opened: it exists, and no share file
// it would write exists yet.
func shareFiles(dir string, custodians []string) ([]string, error) {
	info, err := os.Stat(dir)
	if err != nil || !info.IsDir() {
		return nil, command.Usagef("--shares-dir %s: no such folder", dir)
	}
	var files []string
	for i, c := range custodians {
		p := filepath.Join(dir, ceremony.ShareFileName(i+1, c))
		if _, err := os.Lstat(p); err == nil {
			return nil, fmt.Errorf("%s already exists: a share file is never overwritten; move it away first", p)
		}
		files = append(files, p)
	}
	probe := filepath.Join(dir, ".custos-probe")
	if err := workspace.CreateExclusive(probe, nil, 0o600); err != nil {
		return nil, fmt.Errorf("--shares-dir %s is not writable: %w", dir, err)
	}
	os.Remove(probe)
	return files, nil
}

// fileParticipants is the command line's stand-in for the people: the administrator
// confirms each step by having started the command, and shares go to files.
type fileParticipants struct {
	files []string
	err   command.Streams
	admin record.Actor // who confirms: the plan's administrator, or the custodians present
}

func (p *fileParticipants) Confirm(ctx context.Context, st run.Step) (record.Actor, error) {
	return p.admin, ctx.Err()
}

func (p *fileParticipants) AcknowledgeHorizon(ctx context.Context, h ceremony.Horizon) (record.Actor, error) {
	for _, n := range h.Notices {
		fmt.Fprintf(p.err.Err, "NOTICE: %s\n", n)
	}
	fmt.Fprintf(p.err.Err, "NOTICE: acknowledged by %s, the administrator, by running this command with this plan\n", p.admin.Name)
	return p.admin, ctx.Err()
}

func (p *fileParticipants) DeliverShare(ctx context.Context, d ceremony.ShareDelivery) (string, error) {
	path, err := ceremony.WriteShareFile(filepath.Dir(p.files[d.Number-1]), d)
	if err != nil {
		return "", err
	}
	return "file " + path, nil
}

func (p *fileParticipants) ReadBackShare(ctx context.Context, d ceremony.ShareDelivery) (string, error) {
	return ceremony.ReadShareFile(p.files[d.Number-1])
}
