// Package softhsm finds the SoftHSM2 PKCS#11 module and writes the small configuration file
// that points it at a token directory. Tests and `custos demo` use SoftHSM2 tokens where a
// real HSM or device key store would be.
package softhsm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// libraryPaths are where Debian/Ubuntu, Fedora/RHEL and Homebrew (Apple silicon and Intel)
// install the module, in the order they are tried.
var libraryPaths = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib64/pkcs11/libsofthsm2.so",
	"/usr/lib64/softhsm/libsofthsm2.so",
	"/usr/lib/pkcs11/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
	"/opt/homebrew/lib/softhsm/libsofthsm2.so",
	"/usr/local/opt/softhsm/lib/softhsm/libsofthsm2.so",
}

// LibraryPath returns the path of the installed libsofthsm2.so, or an error telling the
// user to install SoftHSM2.
func LibraryPath() (string, error) {
	for _, p := range libraryPaths {
		if info, err := os.Stat(p); err == nil && info.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", errors.New("SoftHSM2 module libsofthsm2.so not found in " + strings.Join(libraryPaths, ", ") +
		": install softhsm2 (Debian/Ubuntu: apt-get install softhsm2; Fedora: dnf install softhsm; macOS: brew install softhsm)")
}

// WriteConfig creates dir/tokens and writes dir/softhsm2.conf, which keeps tokens as files
// in that folder and logs only errors. It returns the configuration's path: the caller sets
// SOFTHSM2_CONF to it before the module is initialised, since SoftHSM2 reads it then.
func WriteConfig(dir string) (confPath string, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("softhsm configuration folder %s: %w", dir, err)
	}
	tokens := filepath.Join(abs, "tokens")
	if err := os.MkdirAll(tokens, 0o700); err != nil {
		return "", fmt.Errorf("create SoftHSM2 token folder: %w", err)
	}
	conf := filepath.Join(abs, "softhsm2.conf")
	text := "# Written by Custos: SoftHSM2 tokens for tests and the demo.\n" +
		"directories.tokendir = " + tokens + "\n" +
		"objectstore.backend = file\n" +
		"log.level = ERROR\n" +
		"slots.removable = false\n"
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return "", fmt.Errorf("write SoftHSM2 configuration: %w", err)
	}
	return conf, nil
}
