package command

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// printOverview is --help for the whole program: its intro, every command, its outro.
func (p *Program) printOverview(w io.Writer) {
	fmt.Fprintf(w, "%s\n\nCommands:\n", strings.TrimSpace(p.Intro))
	sorted := append([]Command(nil), p.Commands...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	printList(w, sorted)
	if p.Outro != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(p.Outro))
	}
}

// printGroup is --help for the first word of two-word commands, such as "ceremony".
func (p *Program) printGroup(w io.Writer, group string, cmds []Command) {
	fmt.Fprintf(w, "Commands under '%s %s':\n", p.Name, group)
	printList(w, cmds)
	fmt.Fprintf(w, "\nRun '%s %s COMMAND --help' for a command's flags.\n", p.Name, group)
}

func printList(w io.Writer, cmds []Command) {
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-24s %s\n", c.Name, c.Summary)
	}
}

// printCommand is a command's --help: its synopsis, summary, help and flags.
func (p *Program) printCommand(w io.Writer, c *Command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: %s %s [flags]", p.Name, c.Name)
	if c.Args != "" {
		fmt.Fprintf(w, " %s", c.Args)
	}
	fmt.Fprintf(w, "\n\n%s\n", c.Summary)
	if c.Help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.Help))
	}
	var n int
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintf(w, "\nFlags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		if name != "" {
			name = " " + name
		}
		def := ""
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "  --%s%s\n        %s%s\n", f.Name, name, usage, def)
	})
}
