package testhsm

import (
	"debug/elf"
	"os"
	"path/filepath"
	"testing"

	"github.com/custos-pki/custos/internal/softhsm"
)

// CopyModule copies SoftHSM2's module into a folder of the test's own and returns its path,
// so a test can change the file a plan names without touching the system's.
func CopyModule(t testing.TB) string {
	t.Helper()
	lib, err := softhsm.LibraryPath()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(lib)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "libvendor-pkcs11.so")
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// ChangeOneByte changes one byte of a module where the loader never looks (a section it does
// not load: .comment names the compiler, .gnu_debuglink the file of debugging symbols), so
// the library still loads. The file is replaced, not written in place: a loaded library is
// never rewritten under the process.
func ChangeOneByte(t testing.TB, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var sec *elf.Section
	for _, name := range []string{".comment", ".gnu_debuglink"} {
		if s := f.Section(name); s != nil && s.Size >= 2 && s.Flags&elf.SHF_ALLOC == 0 {
			sec = s
			break
		}
	}
	f.Close()
	if sec == nil {
		t.Fatalf("%s has no section the loader ignores to change", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[sec.Offset+1] ^= 0x20 // a letter's case
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
