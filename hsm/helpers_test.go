//go:build cgo && !nopkcs11

package hsm_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/testhsm"
)

const (
	soPIN   = "so-pin-0001"
	userPIN = "user-pin-0001"
)

// newToken gives a test a fresh SoftHSM2 with one token labelled label, the module open
// and a session on that token with the user logged in.
func newToken(t testing.TB, label string) (*testhsm.Env, *hsm.Module, *hsm.Session) {
	t.Helper()
	env := testhsm.New(t)
	env.InitToken(t, label, soPIN, userPIN)
	m := env.Open(t)
	return env, m, testhsm.UserSession(t, m, label, userPIN)
}

// pkcs11Tool runs OpenSC's pkcs11-tool on module (the test's SoftHSM2, whose SOFTHSM2_CONF
// testhsm.New sets, or the test binary's TPM) and returns what it printed.
func pkcs11Tool(t testing.TB, module string, args ...string) string {
	t.Helper()
	cmd := exec.Command("pkcs11-tool", append([]string{"--module", module}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// toolObjects runs pkcs11-tool --list-objects on the token labelled label, logged in as
// the user, and splits its output into one block per object.
func toolObjects(t testing.TB, module string, label string) []string {
	t.Helper()
	out := pkcs11Tool(t, module, "--token-label", label, "--login", "--pin", userPIN, "--list-objects")
	var blocks []string
	for _, line := range strings.Split(out, "\n") {
		switch {
		case !strings.HasPrefix(line, " ") && strings.Contains(line, " Object;"):
			blocks = append(blocks, line)
		case len(blocks) > 0 && strings.HasPrefix(line, " "):
			blocks[len(blocks)-1] += "\n" + line
		}
	}
	return blocks
}

// toolObjectsWithID keeps the blocks of objects whose ID is idHex.
func toolObjectsWithID(t testing.TB, module string, label, idHex string) []string {
	t.Helper()
	var out []string
	for _, b := range toolObjects(t, module, label) {
		if toolField(b, "ID") == idHex {
			out = append(out, b)
		}
	}
	return out
}

// toolField is the value of "  name:  value" in a pkcs11-tool object block.
func toolField(block, name string) string {
	for _, line := range strings.Split(block, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func randomID(t testing.TB, s *hsm.Session) []byte {
	t.Helper()
	id, err := s.Random(context.Background(), 8)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
