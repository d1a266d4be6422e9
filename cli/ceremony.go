package cli

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/internal/secret"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/run"
)

func ceremonyRoot() command.Command {
	return command.Command{
		Name:    "ceremony root",
		Summary: "run a root key ceremony from a reviewed plan",
		Help: `Generates the root CA key inside the HSM token the plan names, its certificate, the
record-signer key on the operations token, and splits the quorum secret among the plan's
custodians. Each share goes where its custodian's deliver says: their own token
(token:LABEL, its PIN from --custodian-pin-file "NAME=FILE" or asked on the terminal), a
file encrypted to their age recipient (age:RECIPIENT, <n>-<custodian>.share.age), their own
folder (dir:PATH), or, by default, <shares-dir>/<n>-<custodian>.share (mode 0600; hand each
file to its custodian and delete it from this machine). Every share is read back and checked,
the quorum secret is reconstructed and checked, then it and every PIN are forgotten.
The plan, the shares folder and the PIN files are checked before the HSM is opened; the
custodians' tokens and folders before the root token is made.`,
		Setup: func(fs *flag.FlagSet) command.Func {
			env := addEnvFlags(fs, "the plan's module")
			planPath := fs.String("plan", "", "the ceremony plan `FILE` (YAML)")
			sharesDir := fs.String("shares-dir", "", "`DIR` to write the share files into of the custodians whose deliver names no token or folder of theirs")
			opsPIN := opsPINFile(fs, " (mode 0600)")
			pins := addCustodianPINFiles(fs)
			return func(ctx context.Context, s command.Streams, args []string) error {
				if err := command.RequireFile("plan", *planPath); err != nil {
					return err
				}
				if err := command.RequireFile("ops-pin-file", opsPIN.path); err != nil {
					return err
				}
				if err := pins.check(); err != nil {
					return err
				}
				plan, err := ceremony.LoadPlan(ctx, *planPath)
				if err != nil {
					return err
				}
				if err := checkSharesDir(fs, *sharesDir, plan.Custodians, plan.Deliveries); err != nil {
					return err
				}
				pin, err := opsPIN.read(true)
				if err != nil {
					return err
				}
				defer secret.Zero(pin)
				e, err := env.open(ctx, s)
				if err != nil {
					return err
				}
				defer e.Close()
				fmt.Fprintf(s.Err, "plan %s\n  sha256 %x\n  words  %s\n", *planPath, plan.SHA256(), plan.HashWords())
				e.Progress = stepPrinter(s)
				res, err := ceremony.Root(ctx, e, plan, pin, &fileParticipants{dir: *sharesDir, pins: pins, err: s,
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
	fmt.Fprintf(s.Out, "  shares        %d of %d needed\n", plan.Threshold, len(plan.Custodians))
	for _, sh := range res.Delivered {
		fmt.Fprintf(s.Out, "    #%d %-20s %s\n", sh.Number, sh.Custodian, sh.Destination)
	}
	printWarnings(s, res.Warnings)
}

// printWarnings says what the people must act on, on both streams' ends: last on stdout, and
// on stderr where the steps were followed.
func printWarnings(s command.Streams, warnings []string) {
	for _, w := range warnings {
		fmt.Fprintf(s.Out, "WARNING: %s\n", w)
		fmt.Fprintf(s.Err, "WARNING: %s\n", w)
	}
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

// checkSharesDir checks --shares-dir before the HSM is opened, when a custodian's share goes
// there: it is given, exists, is writable, and none of the share files exists yet.
func checkSharesDir(fs *flag.FlagSet, dir string, custodians []string, dests []ceremony.Destination) error {
	needed := false
	for i := range custodians {
		if i >= len(dests) || (dests[i].Token == "" && dests[i].Dir == "") {
			needed = true
		}
	}
	if !needed {
		return nil
	}
	if err := command.Require(fs, "shares-dir"); err != nil {
		return err
	}
	return checkShareFolder(dir, custodians, dests)
}

// checkShareFolder refuses --shares-dir as a usage error when it is not a folder, and as a
// failure when a share file in it exists or it is not writable.
func checkShareFolder(dir string, custodians []string, dests []ceremony.Destination) error {
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		return command.Usagef("--shares-dir %s: no such folder", dir)
	}
	return ceremony.CheckShareFolder(dir, custodians, dests)
}

// fileParticipants is the command line's stand-in for the people: the administrator
// confirms each step by having started the command, and shares go to files.
type fileParticipants struct {
	dir   string // --shares-dir
	pins  custodianPINFiles
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

// SharesDir is --shares-dir, where the ceremony writes the shares of custodians who named no
// token or folder of theirs.
func (p *fileParticipants) SharesDir() string { return p.dir }

// CustodianPIN reads the custodian's --custodian-pin-file, or asks on the terminal.
func (p *fileParticipants) CustodianPIN(ctx context.Context, custodian, token string) ([]byte, error) {
	return p.pins.pin(p.err, fmt.Sprintf("PIN of %s's token %s", custodian, token), custodian, token)
}

// DeliverShare is never asked: every share the command line hands out goes to a file or a
// token, which the ceremony writes itself.
func (p *fileParticipants) DeliverShare(ctx context.Context, d ceremony.ShareDelivery) (string, error) {
	return "", fmt.Errorf("share #%d of %s: the command line has no screen to show it on: give --shares-dir", d.Number, d.Custodian)
}

// ReadBackShare is never asked, as DeliverShare.
func (p *fileParticipants) ReadBackShare(ctx context.Context, d ceremony.ShareDelivery) (string, error) {
	return "", fmt.Errorf("share #%d of %s: the command line has no screen to read it from", d.Number, d.Custodian)
}
