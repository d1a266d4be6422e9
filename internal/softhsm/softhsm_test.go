package softhsm_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-pki/custos/internal/softhsm"
)

func TestLibraryPath(t *testing.T) {
	p, err := softhsm.LibraryPath()
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(p) != "libsofthsm2.so" {
		t.Fatalf("LibraryPath = %s", p)
	}
}

// The configuration written works for SoftHSM2's own tool: a token initialised through it
// lands in dir/tokens.
func TestWriteConfig(t *testing.T) {
	dir := t.TempDir()
	conf, err := softhsm.WriteConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"directories.tokendir = " + filepath.Join(dir, "tokens"), "objectstore.backend = file", "log.level = ERROR"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("configuration lacks %q:\n%s", want, text)
		}
	}
	cmd := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "conf-test", "--so-pin", "so-pin-1", "--pin", "user-pin-1")
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util: %v\n%s", err, out)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "tokens"))
	if err != nil || len(entries) != 1 {
		t.Fatalf("token folder holds %v, %v; want one token", entries, err)
	}
}
