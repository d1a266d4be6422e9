// Package secret holds the few rules Custos applies to secret bytes (PINs, the quorum
// secret, shares, key-encryption keys): they are read only from files their owner alone can
// read, and they are zeroed as soon as they are no longer needed.
//
// One convention holds everywhere: the owner zeroes. Whoever makes or reads a secret (the
// front end that read a PIN file or a PIN entry, the run that rebuilt the quorum secret)
// zeroes it when done; a function given a secret uses it for the call and never zeroes or
// keeps it, so no caller has to hand over a copy.
package secret

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/custos-pki/custos/internal/inputfile"
)

// maxPINFile bounds what ReadPINFile reads: PKCS#11 PINs are at most 255 bytes.
const maxPINFile = 256

// Zero overwrites b with zeros. The KeepAlive stops the compiler from treating the writes as
// dead stores when b is not read again.
func Zero(b []byte) {
	clear(b)
	runtime.KeepAlive(b)
}

// ZeroAll zeros each buffer in turn.
func ZeroAll(bufs ...[]byte) {
	for _, b := range bufs {
		Zero(b)
	}
}

// ReadPINFile reads a PIN from a file that only its owner may read or write (mode 0600 or
// stricter). One trailing newline is removed. The caller zeros the result after use.
func ReadPINFile(path string) ([]byte, error) {
	return readPrivate(path, "PIN", maxPINFile)
}

// maxShareFile bounds a share file: a share with its comment lines is a few hundred bytes.
const maxShareFile = 4096

// ReadShareFile reads a custodian's share file under the same rules as a PIN file.
func ReadShareFile(path string) ([]byte, error) {
	return readPrivate(path, "share", maxShareFile)
}

// maxIdentityFile bounds an age identity file: a few identities of a few kilobytes each.
const maxIdentityFile = 64 << 10

// ReadIdentityFile reads an age identity file (a custodian's private key for the shares
// encrypted to them) under the same rules as a PIN file.
func ReadIdentityFile(path string) ([]byte, error) {
	return readPrivate(path, "identity", maxIdentityFile)
}

// readPrivate reads a secret file: a regular file (never a FIFO, device or socket, which are
// refused before they are opened or read), only its owner may read or write, of at most limit
// bytes. A read of a few hundred bytes from a regular file cannot hang, so it takes no context.
func readPrivate(path, kind string, limit int) ([]byte, error) {
	what := kind + " file"
	onlyThe := func(err error) error {
		var tl *inputfile.TooLargeError
		if errors.As(err, &tl) {
			return fmt.Errorf("%w: it should hold only the %s", err, kind)
		}
		return err
	}
	f, err := inputfile.Open(what, path, int64(limit))
	if err != nil {
		return nil, onlyThe(err)
	}
	defer f.Close()
	if perm := f.Info().Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s %s can be read or written by others (mode %04o): run chmod 600 %s", what, path, perm, path)
	}
	buf, err := f.ReadAll(context.Background())
	if err != nil {
		return nil, onlyThe(err)
	}
	defer Zero(buf)
	pin := bytes.TrimSuffix(buf, []byte("\n"))
	pin = bytes.TrimSuffix(pin, []byte("\r"))
	if len(pin) == 0 {
		return nil, fmt.Errorf("%s %s is empty", what, path)
	}
	return bytes.Clone(pin), nil
}
