package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/custos-pki/custos/hsm"
)

func hsmCommands() []command {
	return []command{{
		name:    "hsm list",
		summary: "list the slots of a PKCS#11 module and the token in each",
		help: `Prints the module's identity, then one line per slot: slot id, token label,
manufacturer, model, serial, firmware and state flags (initialised, login required,
user PIN final try or locked). Use it to check which HSM and tokens the workstation sees
before a ceremony.`,
		setup: func(fs *flag.FlagSet) runFunc {
			module := fs.String("module", "", "PKCS#11 module `PATH`, e.g. /usr/lib/softhsm/libsofthsm2.so")
			return func(ctx context.Context, s Streams, args []string) error {
				if len(args) > 0 {
					return usagef("unexpected argument %q", args[0])
				}
				if err := requireFile("module", *module); err != nil {
					return err
				}
				return listTokens(ctx, s, *module)
			}
		},
	}}
}

func listTokens(ctx context.Context, s Streams, path string) error {
	m, err := hsm.Open(path)
	if err != nil {
		return err
	}
	defer m.Close()
	info, err := m.Info(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.Out, "module %s: %s, %s, library %s, PKCS#11 %s\n", path,
		info.Manufacturer, info.Description, info.LibraryVersion, info.CryptokiVersion)
	slots, err := m.Slots(ctx)
	if err != nil {
		return err
	}
	for _, sl := range slots {
		fmt.Fprintln(s.Out, slotLine(sl))
	}
	return nil
}

// slotLine is one slot on one line, with fields a script can pick out by name.
func slotLine(sl hsm.Slot) string {
	if !sl.TokenPresent {
		return fmt.Sprintf("slot %d: no token (%s)", sl.ID, sl.Description)
	}
	t := sl.Token
	label := t.Label
	if !t.Flags.Initialized {
		label = "(not initialised)"
	}
	fields := []string{
		fmt.Sprintf("slot %d: token %q", sl.ID, label),
		"manufacturer " + quoteIfSpaced(t.Manufacturer),
		"model " + quoteIfSpaced(t.Model),
		"serial " + quoteIfSpaced(t.Serial),
		"firmware " + t.FirmwareVersion.String(),
		"flags " + t.Flags.String(),
	}
	return strings.Join(fields, ", ")
}

func quoteIfSpaced(v string) string {
	if v == "" || strings.ContainsAny(v, " ,") {
		return fmt.Sprintf("%q", v)
	}
	return v
}
