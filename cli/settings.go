package cli

import (
	"context"
	"flag"
	"fmt"

	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/workspace"
)

// settingsHelp describes the settings, for both commands.
func settingsHelp() string {
	text := "The workspace's policy, kept in " + workspace.SettingsFile + " in the workspace folder:"
	for _, s := range workspace.KnownSettings {
		text += fmt.Sprintf("\n  %s (default %s): %s", s.Name, s.Default, s.Help)
	}
	return text
}

// openSettings opens the workspace --workspace names (or the default) for its settings.
func openSettings(dir string, write bool) (*workspace.Workspace, error) {
	if dir == "" {
		d, err := workspace.DefaultDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	if write {
		return workspace.Open(dir)
	}
	return workspace.OpenReadOnly(dir)
}

func settingsShow() command.Command {
	return command.Command{
		Name:    "settings show",
		Summary: "print the workspace's policy settings, each with its value and whether it is the default",
		Help:    settingsHelp(),
		Setup: func(fs *flag.FlagSet) command.Func {
			dir := command.WorkspaceFlag(fs)
			return func(ctx context.Context, s command.Streams, args []string) error {
				ws, err := openSettings(*dir, false)
				if err != nil {
					return err
				}
				defer ws.Close()
				for _, st := range workspace.KnownSettings {
					v, set, err := ws.SettingValue(ctx, st.Name)
					if err != nil {
						return err
					}
					from := "default"
					if set {
						from = "set in " + ws.Path(workspace.SettingsFile)
					}
					fmt.Fprintf(s.Out, "%-20s %-6s (%s)\n", st.Name, v, from)
				}
				return nil
			}
		},
	}
}

func settingsSet() command.Command {
	return command.Command{
		Name:    "settings set",
		Args:    "NAME VALUE",
		Summary: "set a policy setting of the workspace: custos settings set NAME VALUE",
		Help:    settingsHelp(),
		Setup: func(fs *flag.FlagSet) command.Func {
			dir := command.WorkspaceFlag(fs)
			return func(ctx context.Context, s command.Streams, args []string) error {
				if len(args) != 2 {
					return command.Usagef("give the setting's NAME and its VALUE, e.g. custos settings set validator-required false")
				}
				ws, err := openSettings(*dir, true)
				if err != nil {
					return err
				}
				defer ws.Close()
				saySwept(s, ws)
				if err := ws.SetSetting(ctx, args[0], args[1]); err != nil {
					return command.Usagef("%v", err)
				}
				v, _, err := ws.SettingValue(ctx, args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(s.Out, "%s %s (in %s)\n", args[0], v, ws.Path(workspace.SettingsFile))
				return nil
			}
		},
	}
}
