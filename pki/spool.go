package pki

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// Spool is a file, read and written at will, that a CRL set's encoded entries wait in
// between their encoding and their signing, rather than in memory: about 50 bytes an entry.
// workspace.Spool makes one with no name, on the disk the CRLs go to.
type Spool interface {
	io.ReaderAt
	io.WriterAt
}

// entrySpool is where a CRL set's encoded entries wait: chunk i lies at offset i<<chunkBits,
// so that an entry's position (see entryPos) is its offset in the file. The sorter writes
// each chunk once it is done with it; after that the spool is only read, from any goroutine.
// Between chunks lie a few unused bytes: a chunk is cut before it could split an entry.
type entrySpool struct {
	f    Spool
	lens []int // each chunk's length, as written

	mu  sync.Mutex
	err error // the first read that failed
}

// write spools chunk i.
func (sp *entrySpool) write(i int, chunk []byte) error {
	if _, err := sp.f.WriteAt(chunk, int64(i)<<chunkBits); err != nil {
		return fmt.Errorf("spool the CRL's entries: %w", err)
	}
	sp.lens = append(sp.lens, len(chunk))
	return nil
}

// read reads len(b) bytes at off, or fails; it keeps the first failure for failed. An entry
// read near the end of the spool may be cut short by it: whole says how much must be read.
func (sp *entrySpool) read(b []byte, off int64, whole int) (int, error) {
	n, err := sp.f.ReadAt(b, off)
	if n >= whole && (err == nil || errors.Is(err, io.EOF)) {
		return n, nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	err = fmt.Errorf("read the CRL's spooled entries: %w", err)
	sp.mu.Lock()
	if sp.err == nil {
		sp.err = err
	}
	sp.mu.Unlock()
	return n, err
}

// failed returns the first read of the spool that failed, if any: whatever was made from
// the spool since is incomplete.
func (sp *entrySpool) failed() error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.err
}

// each yields every chunk in order, read into one buffer; see crlEntries.each.
func (sp *entrySpool) each(yield func([]byte) bool) bool {
	buf := make([]byte, entryChunk)
	for i, n := range sp.lens {
		if _, err := sp.read(buf[:n], int64(i)<<chunkBits, n); err != nil {
			return false
		}
		if !yield(buf[:n]) {
			return false
		}
	}
	return true
}

// at reads the entry at position p.
func (sp *entrySpool) at(p uint32) ([]byte, error) {
	b := make([]byte, maxEntrySize)
	n, err := sp.read(b, int64(p), 2)
	if err != nil {
		return nil, err
	}
	if b[1] >= 0x80 || tlvLen(b) > n { // an entry's length always takes one byte
		return nil, fmt.Errorf("read the CRL's spooled entries: no whole entry at %d", p)
	}
	return b[:tlvLen(b)], nil
}

// gather copies the entries of the given shards out of the spool into buf, which must hold
// them all, in one pass over the spool, and returns each shard's entries, back to back in
// serial order.
func (sp *entrySpool) gather(parts []shardParts, buf []byte) ([][]byte, error) {
	out := make([][]byte, len(parts))
	for k := range parts {
		n := parts[k].size
		out[k], buf = buf[:0:n], buf[n:]
	}
	type cursor struct{ block, i int }
	next := make([]cursor, len(parts))
	chunk := make([]byte, entryChunk)
	for ci, n := range sp.lens {
		if _, err := sp.read(chunk[:n], int64(ci)<<chunkBits, n); err != nil {
			return nil, err
		}
		for k := range parts {
			p, c := &parts[k], &next[k]
			for c.block < len(p.picks) {
				block := p.picks[c.block]
				pos := block[c.i]
				if int(pos>>chunkBits) != ci {
					break
				}
				e := chunk[pos&(entryChunk-1):]
				out[k] = append(out[k], e[:tlvLen(e)]...)
				if c.i++; c.i == len(block) {
					c.block, c.i = c.block+1, 0
				}
			}
		}
	}
	return out, nil
}
