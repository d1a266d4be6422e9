package command

import (
	"flag"
	"slices"
	"strings"
)

// fieldError is a workflow's error about one field of its request (see the package doc).
type fieldError interface {
	error
	Field() string
}

// hints is what Run appends to a failure's line: " (--flag)" for each field error in err's
// tree whose field FieldFlags maps to a flag this command has and the message does not name.
func (p *Program) hints(err error, fs *flag.FlagSet) string {
	msg := err.Error()
	var flags []string
	for _, field := range fields(err) {
		name, ok := p.FieldFlags[field]
		if !ok || fs.Lookup(name) == nil || strings.Contains(msg, "--"+name) || slices.Contains(flags, "--"+name) {
			continue
		}
		flags = append(flags, "--"+name)
	}
	if len(flags) == 0 {
		return ""
	}
	return " (" + strings.Join(flags, ", ") + ")"
}

// fields names the fields of the field errors in err's tree, in the order errors.As visits
// them (so a fleet's joined line errors each count).
func fields(err error) []string {
	var names []string
	var walk func(error)
	walk = func(e error) {
		if f, ok := e.(fieldError); ok {
			names = append(names, f.Field())
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			if next := u.Unwrap(); next != nil {
				walk(next)
			}
		case interface{ Unwrap() []error }:
			for _, next := range u.Unwrap() {
				if next != nil {
					walk(next)
				}
			}
		}
	}
	walk(err)
	return names
}
