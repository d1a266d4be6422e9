package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/hsmcheck"
	"github.com/custos-pki/custos/internal/workstation"
	"github.com/custos-pki/custos/keyalg"
)

func hsmList() command.Command {
	return command.Command{
		Name:    "hsm list",
		Summary: "list the slots of a PKCS#11 module and the token in each",
		Help: `Prints the module's identity, then one line per slot: slot id, token label,
manufacturer, model, serial, firmware and state flags (initialised, login required,
user PIN final try or locked). Use it to check which HSM and tokens the workstation sees
before a ceremony.`,
		Setup: func(fs *flag.FlagSet) command.Func {
			module := fs.String("module", "", "PKCS#11 module `PATH`, e.g. /usr/lib/softhsm/libsofthsm2.so")
			return func(ctx context.Context, s command.Streams, args []string) error {
				if err := command.RequireFile("module", *module); err != nil {
					return err
				}
				return listTokens(ctx, s, *module)
			}
		},
	}
}

func listTokens(ctx context.Context, s command.Streams, path string) error {
	h, err := workstation.InspectHSM(ctx, path)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.Out, "module %s: %s\n", h.Module, h.Description)
	for _, sl := range h.Slots {
		fmt.Fprintln(s.Out, slotLine(sl))
	}
	return nil
}

// slotLine is one slot on one line, with fields a script can pick out by name.
func slotLine(sl workstation.TokenSlot) string {
	if !sl.Present {
		return fmt.Sprintf("slot %d: no token", sl.Slot)
	}
	label := sl.Label
	if !sl.Initialised {
		label = "(not initialised)"
	}
	fields := []string{
		fmt.Sprintf("slot %d: token %q", sl.Slot, label),
		"manufacturer " + quoteIfSpaced(sl.Manufacturer),
		"model " + quoteIfSpaced(sl.Model),
		"serial " + quoteIfSpaced(sl.Serial),
		"firmware " + sl.Firmware,
		"flags " + sl.State,
	}
	if sl.Warning != "" {
		fields = append(fields, "WARNING "+sl.Warning)
	}
	return strings.Join(fields, ", ")
}

func quoteIfSpaced(v string) string {
	if v == "" || strings.ContainsAny(v, " ,") {
		return fmt.Sprintf("%q", v)
	}
	return v
}

func hsmCheck() command.Command {
	return command.Command{
		Name:    "hsm check",
		Summary: "try everything Custos asks of a PKCS#11 module on a spare token, before the ceremony day",
		Help: `Initialises an empty slot of the module as the spare token LABEL (with PINs drawn for
the check and never shown), then tries each thing Custos will ask of the module: token
initialisation and PIN setting and changing, random numbers, generating each key algorithm
(CKA_LOCAL, never extractable, read back) and signing with it, backing a key up under a
trusted key-encryption key (CKM_AES_KEY_WRAP_PAD, CKA_WRAP_WITH_TRUSTED) and restoring it,
private data objects for shares, destroying objects, and re-initialising the token. Each is
printed as supported or not, with the module's PKCS#11 return code. At the end the spare token
is re-initialised if the module can, otherwise emptied of what the check made.

With --plan, the plan's key algorithm and backup choice are checked against the results, and
each the module cannot do is named; the command then fails (exit 1). With
--record-ops-pin-file, the result is saved as a record signed by the workspace's record
signer on the operations token, for the ceremony file (a workspace without a root has no
record signer, and the command says so).`,
		Setup: func(fs *flag.FlagSet) command.Func {
			ef := addEnvFlags(fs, "the plan's module")
			token := fs.String("token", "", "`LABEL` for the spare token (an empty slot is initialised with it)")
			planPath := fs.String("plan", "", "ceremony plan `FILE` to check against the module")
			opsModule := fs.String("record-module", "", "PKCS#11 module `PATH` of the operations token that signs the record (default: the workspace's)")
			pf := pinFiles{ops: addPINFile(fs, "record-ops-pin-file", "`FILE` with the operator PIN: save the check as a record signed by the record signer")}
			return func(ctx context.Context, s command.Streams, args []string) error {
				if err := command.Require(fs, "token"); err != nil {
					return err
				}
				req := hsmcheck.Request{Module: *ef.module, Token: *token}
				planName := ""
				if *planPath != "" {
					if err := command.RequireFile("plan", *planPath); err != nil {
						return err
					}
					plan, err := ceremony.LoadPlan(ctx, *planPath)
					if err != nil {
						return err
					}
					alg, err := keyalg.Parse(plan.Key.Algorithm)
					if err != nil {
						return err
					}
					req.Plan = &hsmcheck.Requirements{Algorithm: alg, Backup: plan.Backup}
					if req.Module == "" {
						req.Module = plan.Module
					}
					planName = fmt.Sprintf("%s (SHA-256 %x)", *planPath, plan.SHA256())
				}
				if req.Module == "" {
					return command.Usagef("--module is required (or a --plan naming one)")
				}
				if err := command.RequireFile("module", req.Module); err != nil {
					return err
				}
				p, err := pf.read(false, false)
				if err != nil {
					return err
				}
				defer p.zero()
				started := time.Now().UTC()
				rep, err := hsmcheck.Run(ctx, req)
				if err != nil {
					return err
				}
				printCheck(s, rep)
				if len(p.ops) > 0 {
					env, err := ef.open(ctx, s)
					if err != nil {
						return err
					}
					defer env.Close()
					env.Module = *opsModule
					path, err := hsmcheck.Save(ctx, env, hsmcheck.SaveRequest{OpsPIN: p.ops, PlanName: planName, Started: started}, rep)
					if errors.Is(err, hsmcheck.ErrNoRecordSigner) {
						return fmt.Errorf("the check ran, but its record cannot be signed: %w; keep the table above, or check again after the root ceremony", err)
					}
					if err != nil {
						return fmt.Errorf("the check ran, but its record was not saved: %w", err)
					}
					fmt.Fprintf(s.Out, "record   %s\n", path)
				}
				if len(rep.PlanProblems) > 0 {
					return fmt.Errorf("the plan %s asks what the module cannot do (%d problems above)", *planPath, len(rep.PlanProblems))
				}
				return nil
			}
		},
	}
}

// printCheck prints the check as a table, then the plan's problems and how the token was left.
func printCheck(s command.Streams, r *hsmcheck.Report) {
	fmt.Fprintf(s.Out, "module   %s\nsha256   %s\nlibrary  %s, %s %s\ntoken    %q (%s %s, serial %s)\n\n",
		r.Module, r.ModuleSHA256, r.Info.Manufacturer, r.Info.Description, r.Info.LibraryVersion,
		r.Token, r.TokenInfo.Manufacturer, r.TokenInfo.Model, r.TokenInfo.SerialOrNone())
	fmt.Fprintf(s.Out, "%-14s %-28s %s\n", "RESULT", "RETURN CODE", "OPERATION")
	for _, c := range r.Checks {
		code := c.CodeName()
		if code == "" {
			code = "-"
		}
		fmt.Fprintf(s.Out, "%-14s %-28s %s\n", c.Result(), code, c.Name)
		if !c.Supported {
			fmt.Fprintf(s.Out, "%-14s %-28s   %s\n", "", "", c.Detail)
		}
	}
	fmt.Fprintf(s.Out, "\n%d of %d supported\n", r.Supported(), len(r.Checks))
	if r.Plan != nil {
		if len(r.PlanProblems) == 0 {
			fmt.Fprintf(s.Out, "plan     the module can do the plan's %s key", r.Plan.Algorithm)
			if r.Plan.Backup {
				fmt.Fprint(s.Out, " and its backup")
			}
			fmt.Fprintln(s.Out)
		}
		for _, p := range r.PlanProblems {
			fmt.Fprintf(s.Out, "PLAN     %s\n", p)
		}
	}
	fmt.Fprintf(s.Out, "token    %s\n", r.Cleared)
}
