package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/internal/workstation"
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
