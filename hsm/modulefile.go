package hsm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/custos-pki/custos/internal/inputfile"
)

// maxModuleFile bounds a PKCS#11 library that is hashed: vendors' modules are a few MiB.
const maxModuleFile = 1 << 30

// ModuleFile is a PKCS#11 module file as hashed before it is loaded: the path Open would load
// (absolute, symbolic links followed) and the SHA-256 of its bytes.
type ModuleFile struct {
	Path   string
	SHA256 string // hex
	info   fs.FileInfo
}

// HashModule hashes the module file at path, resolved as Open resolves it, refusing a FIFO,
// a device or a folder before it is opened. Whoever decides whether a module may be loaded
// (a quorum operation holding it against the hash the root signed) hashes it first, loads it
// with Open, then checks Unchanged.
func HashModule(ctx context.Context, path string) (ModuleFile, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return ModuleFile{}, fmt.Errorf("hash PKCS#11 module %s: %w", path, err)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	f, err := inputfile.Open("PKCS#11 module", abs, maxModuleFile)
	if err != nil {
		return ModuleFile{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f.Reader(ctx)); err != nil {
		return ModuleFile{}, fmt.Errorf("read the PKCS#11 module %s: %w", abs, err)
	}
	return ModuleFile{Path: abs, SHA256: hex.EncodeToString(h.Sum(nil)), info: f.Info()}, nil
}

// Unchanged checks that the file at m.Path is still the one hashed (the same file, size and
// modification time): a module replaced between the hash and the load is caught after Open.
func (m ModuleFile) Unchanged() error {
	now, err := os.Stat(m.Path)
	if err != nil {
		return fmt.Errorf("the PKCS#11 module %s: %w", m.Path, err)
	}
	if m.info == nil || !os.SameFile(now, m.info) || now.Size() != m.info.Size() || !now.ModTime().Equal(m.info.ModTime()) {
		return fmt.Errorf("the PKCS#11 module %s changed while it was being loaded: stop, and find out who replaced it", m.Path)
	}
	return nil
}
