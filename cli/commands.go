package cli

import (
	"context"
	"flag"
)

// commands lists every command. Each workflow's commands live in a file of their own.
func commands(gui GUIFunc) []command {
	cmds := []command{demoCommand(gui)}
	cmds = append(cmds, hsmCommands()...)
	cmds = append(cmds, runCommands()...)
	cmds = append(cmds, ceremonyCommands()...)
	cmds = append(cmds, verifyCommands()...)
	cmds = append(cmds, deviceCommands()...)
	return cmds
}

func demoCommand(gui GUIFunc) command {
	return command{
		name:    "demo",
		summary: "open the window on a fresh demo workspace with SoftHSM2 tokens",
		help: `Creates a temporary workspace and a SoftHSM2 token folder, sets up tokens for trying
every workflow, and opens the main window on them. Nothing outside the temporary folder
is touched; real HSMs are never used.`,
		setup: func(fs *flag.FlagSet) runFunc {
			shots := fs.String("screenshots", "", "save a PNG of each main screen into `DIR` and quit")
			return func(ctx context.Context, s Streams, args []string) error {
				if len(args) > 0 {
					return usagef("unexpected argument %q", args[0])
				}
				if gui == nil {
					return usagef("this build has no GUI")
				}
				return gui(ctx, GUIConfig{Demo: true, Screenshots: *shots})
			}
		},
	}
}
