package assets

import (
	_ "embed"
	"strings"
)

//go:embed scripts/root-ceremony.md
var rootScript string

// Script returns what the administrator reads aloud for a step of the root key ceremony (id
// as in run.Step.Script) and what the witness must check; both "" when there is none.
func Script(id string) (read, check string) {
	for _, sec := range strings.Split(rootScript, "## ")[1:] {
		name, body, _ := strings.Cut(sec, "\n")
		if strings.TrimSpace(name) != id {
			continue
		}
		read, check, _ = strings.Cut(body, "Check:")
		return oneParagraph(read), oneParagraph(check)
	}
	return "", ""
}

func oneParagraph(s string) string { return strings.Join(strings.Fields(s), " ") }
