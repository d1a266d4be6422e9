package inputfile_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/custos-pki/custos/internal/inputfile"
	"github.com/custos-pki/custos/internal/inputfile/inputfiletest"
)

func TestReadRefusesHostileInputs(t *testing.T) {
	const max = 64 << 10
	for _, h := range inputfiletest.Inputs(t, "plan", max) {
		t.Run(h.Name, func(t *testing.T) {
			inputfiletest.Refuse(t, h, func(path string) error {
				_, err := inputfile.Read(context.Background(), "plan", path, max)
				return err
			})
		})
	}
}

// TestOpenNeverBlocksOnAFIFO opens a FIFO that nobody writes to past the stat check, as when
// a regular file is swapped for one between the two: open must return at once and fstat
// refuse it.
func TestOpenNeverBlocksOnAFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	h := inputfiletest.Hostile{Name: "FIFO past the stat check", Path: fifo, Want: "is a FIFO (named pipe), not a regular file"}
	inputfiletest.Refuse(t, h, func(path string) error {
		_, err := inputfile.OpenChecked("PIN file", path, 256)
		return err
	})
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, n int) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, bytes.Repeat([]byte("x"), n), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		path    string
		max     int64
		want    int
		wantErr string
	}{
		{"empty", write("empty", 0), 10, 0, ""},
		{"at the limit", write("exact", 3<<20), 3 << 20, 3 << 20, ""},
		{"a byte over", write("over", 101), 100, 0, "manifest " + dir + "/over is 101 bytes; a manifest is at most 100 bytes"},
		{"missing", filepath.Join(dir, "nope"), 10, 0, "manifest " + dir + "/nope does not exist"},
		// /proc files say they are empty and are not: the read is bounded all the same.
		{"more than fstat said", "/proc/self/status", 100, 0, "manifest /proc/self/status holds more than 100 bytes; a manifest is at most 100 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := inputfile.Read(context.Background(), "manifest", tt.path, tt.max)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != tt.want {
				t.Errorf("read %d bytes, want %d", len(b), tt.want)
			}
		})
	}
}

func TestReadStopsWhenCancelled(t *testing.T) {
	p := filepath.Join(t.TempDir(), "record.pdf")
	if err := os.WriteFile(p, make([]byte, 4<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := inputfile.Read(ctx, "record", p, 8<<20)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), p) {
		t.Fatalf("error = %v, want context.Canceled naming %s", err, p)
	}
}

// slowReader yields a chunk at a time, as slow media or a huge file does, and cancels the
// context once it has yielded after bytes.
type slowReader struct {
	n, after int
	cancel   func()
}

func (r *slowReader) Read(p []byte) (int, error) {
	time.Sleep(time.Millisecond)
	r.n += len(p)
	if r.n >= r.after {
		r.cancel()
	}
	return len(p), nil
}

func TestReadAllStopsMidwayWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := &slowReader{after: 5 << 20, cancel: cancel}
	_, err := inputfile.ReadAllFrom(ctx, r, 0, 1<<40)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	if r.n > 8<<20 {
		t.Errorf("read %d bytes after the context was cancelled at %d", r.n, r.after)
	}
}

func TestReadAllFromBounded(t *testing.T) {
	_, err := inputfile.ReadAllFrom(context.Background(), io.LimitReader(zeros{}, 10<<20), 0, 1<<20)
	var tl *inputfile.TooLargeError
	if !errors.As(err, &tl) || tl.Max != 1<<20 {
		t.Fatalf("error = %v, want a TooLargeError at 1 MiB", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 bytes", 256: "256 bytes", 4096: "4 KiB", 64 << 10: "64 KiB",
		256 << 20: "256 MiB", 1536: "1.5 KiB", 2<<30 + 1<<29: "2.5 GiB"} {
		if got := inputfile.Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestReader(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "package.deb")
	data := bytes.Repeat([]byte("0123456789"), 300_000) // 3 MB: several chunks
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	open := func(max int64) *inputfile.File {
		f, err := inputfile.Open("file", p, max)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	got, err := io.ReadAll(open(1 << 62).Reader(context.Background()))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	got, err = io.ReadAll(open(int64(len(data))).Reader(context.Background()))
	if err != nil || len(got) != len(data) {
		t.Fatalf("at the limit: read %d bytes, %v", len(got), err)
	}
	// The file grows past its limit after it was opened.
	f := open(int64(len(data)))
	if err := os.WriteFile(p, append(data, 'x'), 0o600); err != nil {
		t.Fatal(err)
	}
	var tl *inputfile.TooLargeError
	if _, err := io.ReadAll(f.Reader(context.Background())); !errors.As(err, &tl) {
		t.Errorf("grown past the limit: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := io.ReadAll(open(1 << 62).Reader(ctx)); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), p) {
		t.Errorf("cancelled: %v", err)
	}
}
