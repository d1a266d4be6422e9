// Package inputfile opens the files a person hands Custos (a ceremony plan, a PIN or share
// file, a fleet manifest, device certificates, a record to verify) as what they must be before
// a byte is read: a regular file, no larger than its kind allows, read in chunks that stop
// when the context is cancelled.
//
// A FIFO, device, socket or folder is refused at once, naming the file and what it is: the
// file is examined with stat before it is opened (so a device is never opened), opened
// non-blocking (so a FIFO put in its place meanwhile cannot block open), and examined again
// with fstat on the open descriptor (so what is read is what was checked). A file larger than
// its limit is refused from fstat's size, before anything is read, and no read goes past the
// limit even when the file grows or its size is not what fstat says (files in /proc). So no
// input can hang Custos, keep it from honouring SIGINT or SIGTERM, or exhaust its memory.
package inputfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// chunk is how much one read asks for; the context is checked between chunks.
const chunk = 1 << 20

// File is an input opened as a regular file whose size is within its limit.
type File struct {
	f    *os.File
	info fs.FileInfo
	what string
	max  int64
}

// Open opens path as an input of the kind what ("plan", "PIN file"), at most max bytes long.
// It refuses, naming path, a file that does not exist, is not a regular file, or is larger
// than max. Close the File after.
func Open(what, path string, max int64) (*File, error) {
	if err := Check(what, path, max); err != nil {
		return nil, err
	}
	return open(what, path, max)
}

// Check is Open without the open: what stat says of path is acceptable for an input of the
// kind what. Front ends call it to refuse a bad file before anything else happens.
func Check(what, path string, max int64) error {
	info, err := os.Stat(path)
	if err != nil {
		return notOpened(what, path, err)
	}
	return acceptable(what, path, info, max)
}

// open opens path non-blocking and checks the descriptor it got with fstat.
func open(what, path string, max int64) (*File, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	for errors.Is(err, syscall.EINTR) {
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, notOpened(what, path, &fs.PathError{Op: "open", Path: path, Err: err})
	}
	f := os.NewFile(uintptr(fd), path)
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if err := acceptable(what, path, info, max); err != nil {
		f.Close()
		return nil, err
	}
	// O_NONBLOCK means nothing to a regular file's reads; it only kept open from waiting.
	return &File{f: f, info: info, what: what, max: max}, nil
}

func notOpened(what, path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s %s does not exist", what, path)
	}
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%s %s cannot be read: %w", what, path, err)
	}
	return fmt.Errorf("%s %s: %w", what, path, err)
}

// acceptable refuses what is not a regular file or is larger than max.
func acceptable(what, path string, info fs.FileInfo, max int64) error {
	if !info.Mode().IsRegular() {
		return &NotRegularError{What: what, Path: path, Mode: info.Mode()}
	}
	if info.Size() > max {
		return &TooLargeError{What: what, Path: path, Size: info.Size(), Max: max}
	}
	return nil
}

// NotRegularError is an input that is a folder, FIFO, socket, device or other special file.
type NotRegularError struct {
	What, Path string
	Mode       fs.FileMode
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s %s is %s, not a regular file: give the %s itself", e.What, e.Path, Describe(e.Mode), e.What)
}

// TooLargeError is an input larger than its kind can be. Size is what fstat said, or 0 when
// the file held more than Max bytes without fstat saying so (it grew, or is in /proc).
type TooLargeError struct {
	What, Path string
	Size, Max  int64
}

func (e *TooLargeError) Error() string {
	size := "is " + Bytes(e.Size)
	if e.Size < e.Max+e.Max/100 { // "64.0 KiB" beside a limit of "64 KiB" would puzzle
		size = fmt.Sprintf("is %d bytes", e.Size)
	}
	if e.Size <= e.Max {
		size = "holds more than " + Bytes(e.Max)
	}
	return fmt.Sprintf("%s %s %s; %s %s is at most %s", e.What, e.Path, size, article(e.What), e.What, Bytes(e.Max))
}

func article(noun string) string {
	if noun != "" && strings.ContainsRune("aeiouAEIOU", rune(noun[0])) {
		return "an"
	}
	return "a"
}

// Describe says what kind of file a mode is, for messages: "a FIFO (named pipe)".
func Describe(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a folder"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO (named pipe)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "a special file"
}

// Bytes writes a size for people: "64 KiB", "2.0 GiB", "300 bytes".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	suffix := [...]string{"KiB", "MiB", "GiB", "TiB", "PiB"}[exp]
	if n%div == 0 {
		return fmt.Sprintf("%d %s", n/div, suffix)
	}
	return fmt.Sprintf("%.1f %s", float64(n)/float64(div), suffix)
}

// Info is what fstat said of the open file.
func (f *File) Info() fs.FileInfo { return f.info }

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }

// Tail reads the last n bytes of the file (all of it when it is shorter), from the size fstat
// gave when it was opened: the end of an append-only file, without reading the rest.
func (f *File) Tail(n int64) ([]byte, error) {
	size := min(f.info.Size(), f.max)
	n = min(n, size)
	b := make([]byte, n)
	k, err := f.f.ReadAt(b, size-n)
	if err != nil && !(errors.Is(err, io.EOF) && int64(k) == n) {
		return nil, fmt.Errorf("read %s %s: %w", f.what, f.f.Name(), err)
	}
	return b, nil
}

// ReadAll reads the whole file, at most its limit, in chunks; it stops with the context's
// error when the context is cancelled. When the buffer must grow (the file grew since fstat)
// the old one is cleared, so a secret read this way leaves no copy behind.
func (f *File) ReadAll(ctx context.Context) ([]byte, error) {
	b, err := readAll(ctx, f.f, min(f.info.Size(), f.max), f.max)
	if err != nil {
		var tl *TooLargeError
		if errors.As(err, &tl) {
			tl.What, tl.Path = f.what, f.f.Name()
			return nil, err
		}
		return nil, fmt.Errorf("read %s %s: %w", f.what, f.f.Name(), err)
	}
	return b, nil
}

// readAll reads r to its end into a buffer first sized for hint bytes, refusing more than max.
func readAll(ctx context.Context, r io.Reader, hint, max int64) ([]byte, error) {
	buf := make([]byte, 0, hint+1) // +1: the read that finds the end needs room
	for {
		if err := ctx.Err(); err != nil {
			clear(buf)
			return nil, err
		}
		if len(buf) == cap(buf) {
			if int64(len(buf)) > max {
				clear(buf)
				return nil, &TooLargeError{Max: max}
			}
			grown := make([]byte, len(buf), min(int64(cap(buf))*2+chunk, max+1))
			copy(grown, buf)
			clear(buf)
			buf = grown
		}
		end := min(cap(buf), len(buf)+chunk)
		n, err := r.Read(buf[len(buf):end])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > max {
			clear(buf)
			return nil, &TooLargeError{Max: max}
		}
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			clear(buf)
			return nil, err
		}
	}
}

// Reader streams the file for a reader that needs no copy of it in memory (a hash): each
// read stops with the context's error once it is cancelled, and reading past the limit is an
// error.
func (f *File) Reader(ctx context.Context) io.Reader {
	return &streamReader{ctx: ctx, f: f, left: f.max}
}

type streamReader struct {
	ctx  context.Context
	f    *File
	left int64 // bytes that may still be read within the limit
}

func (r *streamReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, fmt.Errorf("read %s %s: %w", r.f.what, r.f.f.Name(), err)
	}
	if len(p) > chunk {
		p = p[:chunk]
	}
	if r.left < int64(len(p)) { // one byte past the limit shows the file is over it
		p = p[:r.left+1]
	}
	n, err := r.f.f.Read(p)
	r.left -= int64(n)
	if r.left < 0 {
		return 0, &TooLargeError{What: r.f.what, Path: r.f.f.Name(), Max: r.f.max}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("read %s %s: %w", r.f.what, r.f.f.Name(), err)
	}
	return n, err
}

// Read opens path as an input of the kind what, at most max bytes, and reads it whole.
func Read(ctx context.Context, what, path string, max int64) ([]byte, error) {
	f, err := Open(what, path, max)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadAll(ctx)
}
