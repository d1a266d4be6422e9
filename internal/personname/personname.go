// Package personname compares people's names as a reader of a record does.
package personname

import (
	"strings"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Key is name as people read it: two names with the same key are one person to a reader
// (NFKC, case folding, runs of blanks as one), so "Zoë" typed two ways, "ＣＡＲＡ" and "cara"
// are the same name.
func Key(name string) string {
	return cases.Fold().String(strings.Join(strings.Fields(norm.NFKC.String(name)), " "))
}

// Same says whether a and b name the same person to a reader.
func Same(a, b string) bool { return Key(a) == Key(b) }
