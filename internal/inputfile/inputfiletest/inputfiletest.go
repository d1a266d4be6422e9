// Package inputfiletest makes the inputs no reader of Custos may accept (a device that never
// ends, a FIFO nobody writes to, a socket, a folder, a file one byte too large) and checks that
// a reader refuses each at once and without memory to speak of. Tests of every reader of user
// input use it.
package inputfiletest

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/custos-pki/custos/internal/inputfile"
)

// Hostile is an input a reader must refuse.
type Hostile struct {
	Name string // "/dev/zero", "FIFO", "socket", "folder", "oversized"
	Path string
	Want string // what the refusal must say of it, besides its path
}

// Limits a refusal must keep within (issue 16): a second and 64 MB.
const (
	MaxTime  = time.Second
	MaxAlloc = 64 << 20
)

// Inputs makes, in a fresh folder, each hostile input for a reader whose limit is max bytes:
// /dev/zero, a FIFO nobody opens for writing, a listening Unix socket, a folder, and a sparse
// file of max+1 bytes (no disk space used). kind is how the reader's errors name its input.
func Inputs(t testing.TB, kind string, max int64) []Hostile {
	t.Helper()
	// A socket's path must fit in 108 bytes: t.TempDir() under a long test name may not.
	dir, err := os.MkdirTemp("", "hostile")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	folder := filepath.Join(dir, "folder")
	if err := os.Mkdir(folder, 0o700); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "oversized")
	f, err := os.OpenFile(big, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(max + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return []Hostile{
		{"/dev/zero", "/dev/zero", "is a character device, not a regular file"},
		{"FIFO", fifo, "is a FIFO (named pipe), not a regular file"},
		{"socket", sock, "is a socket, not a regular file"},
		{"folder", folder, "is a folder, not a regular file"},
		{"oversized", big, kind + " is at most " + inputfile.Bytes(max)},
	}
}

// Refuse calls read on h, which must fail within MaxTime having allocated less than
// MaxAlloc, with an error naming h's path and saying what is wrong with it. It logs the time
// and memory the refusal took and returns them.
func Refuse(t testing.TB, h Hostile, read func(path string) error) (time.Duration, uint64) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- read(h.Path) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * MaxTime):
		t.Fatalf("%s: still reading %s after %v: it blocks", h.Name, h.Path, 10*MaxTime)
	}
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%s refused in %v, %d bytes allocated: %v", h.Name, took.Round(time.Microsecond), alloc, err)
	if err == nil {
		t.Fatalf("%s: %s was accepted", h.Name, h.Path)
	}
	if !strings.Contains(err.Error(), h.Path) || !strings.Contains(err.Error(), h.Want) {
		t.Errorf("%s: error %q, want it to name %s and say %q", h.Name, err, h.Path, h.Want)
	}
	if took > MaxTime {
		t.Errorf("%s: refused in %v, more than %v", h.Name, took, MaxTime)
	}
	if alloc > MaxAlloc {
		t.Errorf("%s: %d bytes allocated to refuse it, more than %d", h.Name, alloc, MaxAlloc)
	}
	return took, alloc
}
