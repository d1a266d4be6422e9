package layering

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// pkg is what `go list -json` says of a package that the rules need.
type pkg struct {
	ImportPath string
	Imports    []string
	Standard   bool
}

// graph lists every package of the module with all it depends on, as the real build sees it.
func graph(t *testing.T) (module string, pkgs map[string]pkg) {
	t.Helper()
	module = strings.TrimSpace(goCmd(t, nil, "list", "-m"))
	// The rules are about the full build, whatever CGO_ENABLED this test runs under.
	out := goCmd(t, []string{"CGO_ENABLED=1"}, "list", "-deps", "-json=ImportPath,Imports,Standard", module+"/...")
	pkgs = map[string]pkg{}
	dec := json.NewDecoder(strings.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list -json: %v", err)
		}
		pkgs[p.ImportPath] = p
	}
	return module, pkgs
}

func goCmd(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// chain is the shortest import chain from one package to a package bad says is forbidden,
// or nil when there is none.
func chain(pkgs map[string]pkg, from string, bad func(string) bool) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p != from && bad(p) {
			var c []string
			for ; p != ""; p = prev[p] {
				c = append(c, p)
			}
			slices.Reverse(c)
			return c
		}
		for _, imp := range pkgs[p].Imports {
			if _, seen := prev[imp]; !seen {
				prev[imp] = p
				queue = append(queue, imp)
			}
		}
	}
	return nil
}

func TestImportsPointOneWay(t *testing.T) {
	module, pkgs := graph(t)
	var own []string
	for path := range pkgs {
		if path == module || strings.HasPrefix(path, module+"/") {
			own = append(own, path)
		}
	}
	slices.Sort(own)
	if len(own) < 10 {
		t.Fatalf("go list found only %d packages of %s: %v", len(own), module, own)
	}
	app := module + "/app"
	pure := []string{"keyalg", "quorum", "pki", "record", "registry", "rebuild", "workspace", "udi", "internal/inputfile", "cli/command", "cli/audit", "cmd/custos-verify"}
	isFyne := func(p string) bool { return p == "fyne.io" || strings.HasPrefix(p, "fyne.io/") }
	isPKCS11 := func(p string) bool { return p == module+"/hsm" || p == "github.com/miekg/pkcs11" }
	checked := 0
	for _, p := range own {
		if p == module || p == app {
			continue
		}
		if c := chain(pkgs, p, isFyne); c != nil {
			t.Errorf("%s reaches fyne, which only app may use: %s", p, strings.Join(c, " -> "))
		}
		if c := chain(pkgs, p, func(q string) bool { return q == app }); c != nil {
			t.Errorf("%s imports app, which nothing but the main package may: %s", p, strings.Join(c, " -> "))
		}
		if slices.Contains(pure, strings.TrimPrefix(p, module+"/")) {
			checked++
			if c := chain(pkgs, p, isPKCS11); c != nil {
				t.Errorf("%s is pure Go but reaches PKCS#11: %s", p, strings.Join(c, " -> "))
			}
		}
	}
	if checked != len(pure) {
		t.Errorf("only %d of the pure packages %v were found", checked, pure)
	}
}

// The chain names every package on the way, so a failure says where to cut.
func TestChainNamesTheWay(t *testing.T) {
	pkgs := map[string]pkg{
		"m/registry": {ImportPath: "m/registry", Imports: []string{"fmt", "m/util"}},
		"m/util":     {ImportPath: "m/util", Imports: []string{"m/hsm"}},
		"m/hsm":      {ImportPath: "m/hsm", Imports: []string{"github.com/miekg/pkcs11"}},
	}
	got := chain(pkgs, "m/registry", func(p string) bool { return p == "github.com/miekg/pkcs11" })
	if want := []string{"m/registry", "m/util", "m/hsm", "github.com/miekg/pkcs11"}; !slices.Equal(got, want) {
		t.Errorf("chain = %v, want %v", got, want)
	}
	if c := chain(pkgs, "m/util", func(p string) bool { return p == "fyne.io/fyne/v2" }); c != nil {
		t.Errorf("chain to a package not imported = %v", c)
	}
}

// The build without PKCS#11 (CGO_ENABLED=0 or -tags nopkcs11) must offer exactly the API of
// the real hsm package, or a package that builds with one fails to build with the other.
func TestHSMStubMirrorsTheAPI(t *testing.T) {
	module := strings.TrimSpace(goCmd(t, nil, "list", "-m"))
	api := func(env ...string) []string {
		var out []string
		for _, l := range strings.Split(goCmd(t, env, "doc", "-all", module+"/hsm"), "\n") {
			if strings.HasPrefix(l, "func ") || strings.HasPrefix(l, "type ") {
				out = append(out, strings.TrimRight(l, " {}"))
			}
		}
		slices.Sort(out)
		return out
	}
	real, stub := api("CGO_ENABLED=1"), api("CGO_ENABLED=0") // go doc honours CGO_ENABLED, not -tags
	for _, l := range real {
		if !slices.Contains(stub, l) {
			t.Errorf("the build without PKCS#11 lacks %s", l)
		}
	}
	for _, l := range stub {
		if !slices.Contains(real, l) {
			t.Errorf("the build without PKCS#11 has %s, which the real hsm has not", l)
		}
	}
	if len(real) < 40 {
		t.Errorf("go doc listed only %d declarations of hsm", len(real))
	}
}
