// Package readonlytest runs a test's checks on a folder that is truly read-only, as records
// on write-protected media are, and checks that they create and change nothing there.
package readonlytest

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// envDir tells a child process of the test binary that the folder is read-only already.
const envDir = "CUSTOS_READONLY_TEST_DIR"

// Run makes the folder that setup returns read-only and runs check on it:
//
//   - in this process, after chmod -R a-w. For any user but root the kernel then refuses
//     every write. Root ignores permissions, so for root this variant checks only that check
//     creates and changes nothing, by listing the folder before and after.
//   - when the test runs as root, again in a child process of the test binary that sees the
//     folder through a read-only bind mount in a mount namespace of its own, where every
//     write fails with EROFS for root too, as on write-protected media. When the machine
//     cannot make mount namespaces this variant is skipped, with the reason logged.
//
// In the child, Run calls check alone, on the folder the parent made: whatever the test does
// before it calls Run runs in the child too, so the test should make its folder in setup.
func Run(t *testing.T, setup func(t *testing.T) string, check func(t *testing.T, dir string)) {
	t.Helper()
	if dir := os.Getenv(envDir); dir != "" {
		unchanged(t, dir, check)
		return
	}
	dir, err := filepath.Abs(setup(t))
	if err != nil {
		t.Fatal(err)
	}
	restore := makeReadOnly(t, dir)
	t.Cleanup(restore)
	t.Run("chmod", func(t *testing.T) { unchanged(t, dir, check) })
	if os.Geteuid() != 0 {
		return
	}
	name := t.Name() // the child runs this test again, where Run calls check alone
	t.Run("read-only mount", func(t *testing.T) {
		if why := cannotMount(dir); why != "" {
			t.Skipf("root ignores file modes, and this machine cannot mount the folder read-only in a mount namespace of its own (%s): only the chmod variant ran", why)
		}
		args := []string{"-test.run", runPattern(name), "-test.count=1", "-test.v", "-test.timeout=10m"}
		if testing.Short() {
			args = append(args, "-test.short")
		}
		cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "--", "sh", "-c",
			`mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"`, "sh", dir, os.Args[0]}, args...)...)
		cmd.Env = append(os.Environ(), envDir+"="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: "+name) {
			t.Fatalf("on the read-only mount: %v\n%s", err, out)
		}
		t.Logf("on the read-only mount:\n%s", indent(string(out)))
	})
}

// unchanged runs check on dir and fails t if dir holds anything new or changed after it.
func unchanged(t *testing.T, dir string, check func(t *testing.T, dir string)) {
	t.Helper()
	before := list(t, dir)
	check(t, dir)
	after := list(t, dir)
	for _, l := range after {
		if !slices.Contains(before, l) {
			t.Errorf("created or changed in the read-only folder: %s", l)
		}
	}
	for _, l := range before {
		if !slices.Contains(after, l) {
			t.Errorf("removed or changed in the read-only folder: %s", l)
		}
	}
}

// list names every file and folder under dir with its mode, size and modification time.
func list(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, fmt.Sprintf("%s %v %d %s", rel, info.Mode(), info.Size(), info.ModTime().UTC().Format("2006-01-02T15:04:05.000000000")))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// makeReadOnly takes every write permission off dir and everything in it, and returns what
// puts the modes back (so the test's temporary folder can be removed).
func makeReadOnly(t *testing.T, dir string) func() {
	t.Helper()
	modes := map[string]fs.FileMode{}
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			modes[p] = info.Mode().Perm()
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Children first: a folder without write permission still lets its entries be changed.
	for _, p := range slices.Backward(paths) {
		if err := os.Chmod(p, modes[p]&^0o222); err != nil {
			t.Fatal(err)
		}
	}
	return func() {
		for _, p := range paths {
			os.Chmod(p, modes[p])
		}
	}
}

// cannotMount says why a read-only bind mount of dir in a new mount namespace cannot be
// made, or "" when it can (and a write there fails).
func cannotMount(dir string) string {
	if _, err := exec.LookPath("unshare"); err != nil {
		return "no unshare command"
	}
	out, err := exec.Command("unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
		`mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && ! touch "$1/.custos-probe" 2>/dev/null`, "sh", dir).CombinedOutput()
	if err != nil {
		os.Remove(filepath.Join(dir, ".custos-probe"))
		return strings.TrimSpace(fmt.Sprintf("%v %s", err, out))
	}
	return ""
}

// runPattern is a -test.run pattern matching exactly the test (or subtest) named name.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

func indent(s string) string {
	return "\t" + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n\t")
}
