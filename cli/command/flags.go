package command

import (
	"errors"
	"flag"
	"os"
	"strings"

	"github.com/custos-pki/custos/internal/inputfile"
)

// WorkspaceFlag registers --workspace with the documented default.
func WorkspaceFlag(fs *flag.FlagSet) *string {
	return fs.String("workspace", "", "workspace `DIR` (default: $CUSTOS_WORKSPACE, else the user's data folder)")
}

// Require is a usage error naming the first of the flags (names without dashes) that was not
// given or is blank.
func Require(fs *flag.FlagSet, names ...string) error {
	for _, n := range names {
		if strings.TrimSpace(fs.Lookup(n).Value.String()) == "" {
			return Usagef("--%s is required", n)
		}
	}
	return nil
}

// RequireFile is a usage error unless the flag was given and names an existing file.
func RequireFile(flagName, path string) error {
	if path == "" {
		return Usagef("--%s is required", flagName)
	}
	return ExistingFile(path)
}

// ExistingFile is a usage error naming path unless it is an existing regular file: a folder,
// FIFO, device or socket is refused before anything opens it.
func ExistingFile(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Usagef("%s: no such file", path)
		}
		return Usagef("%s: %v", path, err)
	}
	if !info.Mode().IsRegular() {
		return Usagef("%s is %s, not a regular file", path, inputfile.Describe(info.Mode()))
	}
	return nil
}
