package layering

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// neutral are the packages below the front ends: their errors and texts name a request's
// field, never a command line flag (the command line adds the flag, the window its field).
var neutral = []string{"ceremony", "decommission", "run", "quorum", "registry", "rebuild", "record", "pki", "workspace"}

// flagLike is a command line flag in a string: two dashes and a lower-case name, not inside a
// longer run of dashes.
var flagLike = regexp.MustCompile(`(^|[^-])--[a-z][a-z0-9-]*`)

// notAFlag are strings that look like a flag and are not one, each with why.
var notAFlag = map[string]string{}

// TestNoFlagNamesBelowTheFrontEnds fails for any non-test Go file of a neutral package whose
// string literals name a flag, so that no workflow error reads "(--technician)" in the window.
func TestNoFlagNamesBelowTheFrontEnds(t *testing.T) {
	root := filepath.Join("..", "..")
	for _, dir := range neutral {
		files, err := filepath.Glob(filepath.Join(root, dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("package %s: no Go files (%v)", dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			for _, hit := range flagLiterals(t, f) {
				if _, ok := notAFlag[hit.text]; ok {
					continue
				}
				t.Errorf("%s: %q names a command line flag; return a *run.FieldError naming the request field instead", hit.pos, hit.text)
			}
		}
	}
}

type literal struct {
	pos  token.Position
	text string
}

// flagLiterals are the string literals of a Go file that hold something flag-like.
func flagLiterals(t *testing.T, path string) []literal {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []literal
	ast.Inspect(f, func(n ast.Node) bool {
		lit, ok := n.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return true
		}
		s, err := strconv.Unquote(lit.Value)
		if err != nil {
			s = lit.Value
		}
		if flagLike.MatchString(s) {
			out = append(out, literal{fset.Position(lit.Pos()), s})
		}
		return true
	})
	return out
}

// The check itself finds a flag in an error string, and passes over dashes that are not one.
func TestFlagLiterals(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.go")
	src := "package x\n\nimport \"errors\"\n\n" +
		"var a = errors.New(\"the technician must be named (--technician)\")\n" +
		"var b = \"-----BEGIN CERTIFICATE-----\"\n" +
		"var c = `pass --ops-pin-file F`\n" +
		"var d = \"a -- b\"\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range flagLiterals(t, path) {
		got = append(got, l.text)
	}
	if strings.Join(got, "|") != "the technician must be named (--technician)|pass --ops-pin-file F" {
		t.Errorf("flag-like literals: %q", got)
	}
}
