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
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("PIN file %s does not exist", path)
		}
		return nil, fmt.Errorf("open PIN file: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("PIN file %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("PIN file %s is not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("PIN file %s can be read or written by others (mode %04o): run chmod 600 %s", path, perm, path)
	}
	buf := make([]byte, maxPINFile+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		Zero(buf)
		return nil, fmt.Errorf("read PIN file %s: %w", path, err)
	}
	if n > maxPINFile {
		Zero(buf)
		return nil, fmt.Errorf("PIN file %s is longer than %d bytes: it should hold only the PIN", path, maxPINFile)
	}
	pin := buf[:n]
	pin = bytes.TrimSuffix(pin, []byte("\n"))
	pin = bytes.TrimSuffix(pin, []byte("\r"))
	if len(pin) == 0 {
		Zero(buf)
		return nil, fmt.Errorf("PIN file %s is empty", path)
	}
	out := bytes.Clone(pin)
	Zero(buf)
	return out, nil
}
