// Package secret holds the few rules Custos applies to secret bytes (PINs, the quorum
// secret, shares, key-encryption keys): they are read only from files their owner alone can
// read, and they are zeroed as soon as they are no longer needed.
package secret

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
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

func readPrivate(path, kind string, limit int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s file %s does not exist", kind, path)
		}
		return nil, fmt.Errorf("open %s file: %w", kind, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s file %s: %w", kind, path, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s file %s is not a regular file", kind, path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s file %s can be read or written by others (mode %04o): run chmod 600 %s", kind, path, perm, path)
	}
	buf := make([]byte, limit+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		Zero(buf)
		return nil, fmt.Errorf("read %s file %s: %w", kind, path, err)
	}
	if n > limit {
		Zero(buf)
		return nil, fmt.Errorf("%s file %s is longer than %d bytes: it should hold only the %s", kind, path, limit, kind)
	}
	pin := buf[:n]
	pin = bytes.TrimSuffix(pin, []byte("\n"))
	pin = bytes.TrimSuffix(pin, []byte("\r"))
	if len(pin) == 0 {
		Zero(buf)
		return nil, fmt.Errorf("%s file %s is empty", kind, path)
	}
	out := bytes.Clone(pin)
	Zero(buf)
	return out, nil
}
