package record

import (
	"bytes"
	"compress/zlib"
	"crypto/md5"
	"hash"
	"io"
)

// Packed is a file's content compressed as a record embeds it, with the size and checksum a
// record states of the content itself: a large attachment, such as a fleet's results, is
// written into a Packer and never held uncompressed.
type Packed struct {
	deflated []byte
	size     int
	md5      [md5.Size]byte
}

// Pack is content packed.
func Pack(content []byte) *Packed {
	p := NewPacker()
	p.Write(content)
	return p.Packed()
}

// Packer compresses what is written to it into a Packed.
type Packer struct {
	buf  bytes.Buffer
	z    *zlib.Writer
	sum  hash.Hash
	size int
}

// NewPacker returns an empty Packer.
func NewPacker() *Packer {
	p := &Packer{sum: md5.New()}
	p.z, _ = zlib.NewWriterLevel(&p.buf, zlib.BestSpeed) // the level is valid
	return p
}

// Write compresses b; it never fails.
func (p *Packer) Write(b []byte) (int, error) {
	p.sum.Write(b)
	p.size += len(b)
	return p.z.Write(b) // into memory: never fails
}

// Packed ends the content and returns it packed; the Packer is not to be written after.
func (p *Packer) Packed() *Packed {
	p.z.Close() // into memory: never fails
	out := &Packed{deflated: p.buf.Bytes(), size: p.size}
	p.sum.Sum(out.md5[:0])
	return out
}

// Size is the content's length.
func (p *Packed) Size() int { return p.size }

// Open reads the content back.
func (p *Packed) Open() (io.ReadCloser, error) {
	return zlib.NewReader(bytes.NewReader(p.deflated))
}
