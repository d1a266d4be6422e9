//go:build cgo && !nopkcs11

package hsm

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Without XDG_RUNTIME_DIR the runtime folder is custos-<uid> in the temporary folder, made
// 0700, and refused when someone else could write it.
func TestRuntimeDirFallback(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("TMPDIR", tmp)
	d, err := runtimeDir()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(d)
	if err != nil || d != filepath.Join(tmp, "custos-"+strconv.Itoa(os.Getuid())) || fi.Mode().Perm() != 0o700 {
		t.Fatalf("runtime folder %s: %v %v", d, fi.Mode(), err)
	}
	if err := os.Chmod(d, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := runtimeDir(); err == nil || !strings.Contains(err.Error(), "only it can write") {
		t.Errorf("a folder anyone can write: %v", err)
	}
	os.Remove(d)
	if err := os.Symlink(tmp, d); err != nil {
		t.Fatal(err)
	}
	if _, err := runtimeDir(); err == nil {
		t.Errorf("a symbolic link as the runtime folder was accepted")
	}
}

// Two token folders of SoftHSM2 are two HSMs: their lock files differ.
func TestInitLockPathIsPerConfiguration(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	t.Setenv("SOFTHSM2_CONF", "/a/softhsm2.conf")
	a, err := initLockPath("/usr/lib/softhsm/libsofthsm2.so")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", "/b/softhsm2.conf")
	b, _ := initLockPath("/usr/lib/softhsm/libsofthsm2.so")
	c, _ := initLockPath("/opt/vendor/lib/libvendor.so")
	if a == b || b == c || filepath.Dir(a) != os.Getenv("XDG_RUNTIME_DIR") {
		t.Errorf("lock files %s, %s, %s", a, b, c)
	}
}
