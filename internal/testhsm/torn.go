package testhsm

import (
	"os"
	"path/filepath"
	"testing"
)

// TokenFiles is a copy of each token's token.object. SoftHSM2 is not crash-safe: C_Login
// truncates that file and writes it again, so a SIGKILL between the two makes the token
// vanish. Kill tests put such a file back, because what they prove is Custos's consistency,
// not the stand-in's.
type TokenFiles map[string][]byte

// SaveTokenFiles copies every token's token.object as it is now.
func (e *Env) SaveTokenFiles(t testing.TB) TokenFiles {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(e.Dir, "tokens", "*", "token.object"))
	saved := TokenFiles{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		saved[p] = b
	}
	return saved
}

// RestoreTorn puts back each token.object that is now shorter than its copy, and says how
// many it put back.
func (s TokenFiles) RestoreTorn(t testing.TB) int {
	t.Helper()
	n := 0
	for p, b := range s {
		if now, err := os.ReadFile(p); err == nil && len(now) < len(b) {
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	return n
}
