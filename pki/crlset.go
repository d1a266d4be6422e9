package pki

import (
	"cmp"
	"crypto"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/custos-pki/custos/keyalg"
)

// CRLSet is what SignCRLSet signed, under one CRL number, for an issuing CA: the sizes of the
// full CRL and of every shard. The CRLs themselves went to the CRLSetWriter as they were
// signed.
type CRLSet struct {
	// Entries is how many certificates the full CRL lists: every revoked one. The full CRL
	// has no issuingDistributionPoint: it is for the back office, and for certificates that
	// name no shard (issued before sharding).
	Entries int
	// ShardEntries[i] and ShardSizes[i] are how many certificates shard i lists (those of
	// shard i and only those) and its size in bytes of DER. A shard has a critical
	// issuingDistributionPoint naming CRLShards.URL(i) and onlyContainsUserCerts: it is the
	// CRL a device whose certificate names that URL fetches and holds.
	ShardEntries []int
	ShardSizes   []int
}

// Largest returns the shard with the most bytes of DER, and its size.
func (s *CRLSet) Largest() (shard, size int) {
	for i, n := range s.ShardSizes {
		if n > size {
			shard, size = i, n
		}
	}
	return shard, size
}

// OverBudget returns the shards whose DER passes budget bytes (DefaultShardBudget unless the
// workspace says otherwise), in shard order: too big for the devices that hold them. They
// are signed all the same, so that no device is left without revocation data; the remedy is
// an issuing CA with more shards for new devices.
func (s *CRLSet) OverBudget(budget int) []int {
	var over []int
	for i, n := range s.ShardSizes {
		if n > budget {
			over = append(over, i)
		}
	}
	return over
}

// CRLSetWriter is where SignCRLSet puts a CRL set as it signs it, so that the set's entries
// never lie in memory: they wait in Spool, and each CRL is handed over as soon as it is
// signed.
type CRLSetWriter struct {
	// Spool is an empty file for the set's encoded entries, about 50 bytes an entry, which
	// SignCRLSet reads and writes until it returns.
	Spool Spool
	// Full takes the full CRL, first; Shard takes each shard, in shard order. A CRL handed
	// over is good only until the call returns, and its signature is verified after: when
	// SignCRLSet fails, discard whatever it handed over (workspace.WriteDirExclusive does).
	Full  func(*SignedCRL) error
	Shard func(i int, c *SignedCRL) error
}

// shardParts is where one shard's entries are in the full CRL's encoding.
type shardParts struct {
	picks  [][]uint32 // in blocks of posBlock, the last one filling
	count  int
	size   int
	shapes shapeSet
}

// posBlock is how many positions a shard's block holds: the blocks of every shard are cut
// from slabs of posSlab, so a million positions cost 4 MB and at most a block a shard more,
// with nothing copied as they grow.
const (
	posBlock = 256
	posSlab  = 256 * posBlock
)

// positions cuts the shards' blocks of positions from slabs.
type positions struct{ slab []uint32 }

// add appends pos to p's positions.
func (ps *positions) add(p *shardParts, pos uint32) {
	if n := len(p.picks); n == 0 || len(p.picks[n-1]) == posBlock {
		if len(ps.slab) == 0 {
			ps.slab = make([]uint32, posSlab)
		}
		p.picks = append(p.picks, ps.slab[:0:posBlock])
		ps.slab = ps.slab[posBlock:]
	}
	last := &p.picks[len(p.picks)-1]
	*last = append(*last, pos)
}

// shardSorter finds each entry's shard on a goroutine of its own while the encoder goes on
// with the next entries: hashing a million serials for their shards costs nearly half as
// much as encoding them, and need not make the encoding wait. Once it is done with a chunk
// it spools it and hands its buffer back to the encoder, so that only the few chunks still
// being sorted are in memory.
//
// It also lints ahead: once it has seen lintAhead entries a shard on average, it lints the
// shards' samples as they then are, a few after each batch, so that most of the linting is
// done on this otherwise idle core too. A shard's sample only grows (it holds the first
// entry of each shape), so a shard whose sample gains an entry afterwards is marked to be
// linted again at the end, and every shard's lint is of its final sample.
type shardSorter struct {
	count     int
	parts     []shardParts
	positions positions
	batch     sortBatch
	work      chan sortBatch
	free      chan []uint8 // shape buffers the sorter is done with
	done      chan struct{}

	lint     func(shard int, samples [][]byte) (LintReport, error)
	seen     int      // entries sorted
	chunks   [][]byte // the sorter's own view of the chunks, as far as it has seen them
	nextLint int      // the next shard to lint ahead, once seen passes lintAhead a shard
	reports  []LintReport
	errs     []error
	linted   []bool // whether reports[i] and errs[i] are of shard i's sample as it stands

	spool    *entrySpool
	spooled  int         // the chunks before this one are spooled
	recycled chan []byte // spooled chunks' buffers, for the encoder to fill again
	spoolErr error
}

// sortBatch is a run of entries that lie back to back in one chunk.
type sortBatch struct {
	chunk  int
	data   []byte  // the chunk, written at least up to the batch's last entry
	from   int     // where the first entry starts in data
	shapes []uint8 // each entry's shape, in order
}

const (
	sortBatchSize = 4096
	sortBuffers   = 16
	lintAhead     = 64 // entries a shard, on average, before its sample is linted ahead
	lintsPerBatch = 8
	// recycledChunks is how many spooled chunks' buffers wait for the encoder: the sorter
	// lags it by at most sortBuffers batches, a few chunks.
	recycledChunks = 4
)

// newShardSorter starts a sorter of entries into count shards that spools their chunks to
// spool; lint lints shard i's sample, and is called from the sorter's goroutine.
func newShardSorter(count int, lint func(shard int, samples [][]byte) (LintReport, error), spool *entrySpool) *shardSorter {
	s := &shardSorter{count: count, parts: make([]shardParts, count), work: make(chan sortBatch, sortBuffers),
		free: make(chan []uint8, sortBuffers+1), done: make(chan struct{}),
		lint: lint, reports: make([]LintReport, count), errs: make([]error, count), linted: make([]bool, count),
		spool: spool, recycled: make(chan []byte, recycledChunks)}
	for range sortBuffers + 1 {
		s.free <- make([]uint8, 0, sortBatchSize)
	}
	s.batch.shapes = <-s.free
	go s.sort()
	return s
}

// add notes the entry at pos, whose chunk as far as written is chunk; it is crlEncoder.read's
// each.
func (s *shardSorter) add(pos uint32, chunk []byte, shape int) {
	ci, off := int(pos>>chunkBits), int(pos&(entryChunk-1))
	b := &s.batch
	if len(b.shapes) > 0 && (b.chunk != ci || len(b.shapes) == sortBatchSize) {
		s.flush()
	}
	if len(b.shapes) == 0 {
		b.chunk, b.from = ci, off
	}
	b.data = chunk
	b.shapes = append(b.shapes, uint8(shape)) // shapeCount fits a byte
}

func (s *shardSorter) flush() {
	s.work <- s.batch
	s.batch = sortBatch{shapes: <-s.free}
}

// sort tallies the batches' entries by shard, and lints ahead.
func (s *shardSorter) sort() {
	defer close(s.done)
	for b := range s.work {
		if b.chunk == len(s.chunks) {
			s.chunks = append(s.chunks, nil)
		}
		s.chunks[b.chunk] = b.data
		s.spoolBefore(b.chunk) // the encoder has moved on from them
		off := b.from
		for _, shape := range b.shapes {
			entry := b.data[off:]
			n := tlvLen(entry)
			id := shardOfContent(entrySerial(entry), s.count)
			p := &s.parts[id]
			s.positions.add(p, entryPos(b.chunk, off))
			p.count++
			p.size += n
			if p.shapes.note(int(shape), entryPos(b.chunk, off)) {
				s.linted[id] = false
			}
			off += n
		}
		s.seen += len(b.shapes)
		s.free <- b.shapes[:0]
		if s.seen >= lintAhead*s.count {
			for range lintsPerBatch {
				if s.nextLint == s.count {
					break
				}
				i := s.nextLint
				s.reports[i], s.errs[i] = s.lintSample(i)
				s.linted[i] = true
				s.nextLint++
			}
		}
	}
}

// lintSample lints shard i's sample as it now is.
func (s *shardSorter) lintSample(i int) (LintReport, error) {
	samples, err := samplesOf(s.entryAt, &s.parts[i].shapes)
	if err != nil {
		return nil, err
	}
	return s.lint(i, samples)
}

// entryAt returns the entry at position p, from its chunk if that is still in memory.
func (s *shardSorter) entryAt(p uint32) ([]byte, error) {
	if s.chunks[p>>chunkBits] != nil {
		held := crlEntries{chunks: s.chunks}
		return held.at(p), nil
	}
	return s.spool.at(p)
}

// spoolBefore spools every chunk before chunk n not yet spooled, and hands its buffer back to
// the encoder. A failed write is kept for finish; the sorting goes on, so as not to leave the
// encoder waiting.
func (s *shardSorter) spoolBefore(n int) {
	for ; s.spooled < n; s.spooled++ {
		c := s.chunks[s.spooled]
		if s.spoolErr == nil {
			s.spoolErr = s.spool.write(s.spooled, c)
		}
		s.chunks[s.spooled] = nil
		select {
		case s.recycled <- c[:0]:
		default:
		}
	}
}

// chunk returns a buffer for the encoder's next chunk: a spooled one's, or a new one.
func (s *shardSorter) chunk() []byte {
	select {
	case c := <-s.recycled:
		return c
	default:
		return make([]byte, 0, entryChunk)
	}
}

// finish waits for the sorter to go through every entry added, spools the last chunks, and
// returns each shard's tally and positions.
func (s *shardSorter) finish() ([]shardParts, error) {
	if len(s.batch.shapes) > 0 {
		s.flush()
	}
	close(s.work)
	<-s.done
	s.spoolBefore(len(s.chunks))
	for len(s.recycled) > 0 { // nothing more to encode: let the buffers go
		<-s.recycled
	}
	return s.parts, s.spoolErr
}

// entrySerial returns the content of an encoded entry's serial number: the bytes ShardOf
// hashes.
func entrySerial(entry []byte) []byte {
	serial := entry[tlvHeaderLen(entry):]
	return serial[tlvHeaderLen(serial):tlvLen(serial)]
}

// SignCRLSet signs, under one CRL number, the full CRL of crl and each of its shards, and
// hands each to out as soon as it is signed.
//
// The entries are read once, in serial order, and encoded once, as SignCRL does; each is
// noted in its shard (ShardOf its serial) on another core as the encoding goes on, and the
// encoded entries are spooled to out.Spool rather than held: a set of a million entries takes
// less memory than SignCRL's full CRL alone. Everything is linted before the issuer's key is
// used: the full CRL's sample as SignCRL lints it, and each shard's own sample (its entries'
// shapes under its own header), so one refused lint refuses the whole set. Then the issuer
// signs the full CRL, read back from the spool, and every shard, one signature each, in that
// order and one at a time; the shards are gathered from the spool a group at a time (a few
// megabytes), hashed on every core, signed and handed over before the next group. Every
// signature is verified under the issuer certificate on the other cores while the signer goes
// on, and any failure, whether of a signature, a verification, the spool or out, returns no
// set at all.
//
// The lint report is the full CRL's, followed by any warning or notice a shard's lints
// gave, its Details beginning with the shard. NextUpdate is bounded as in SignCRL.
func SignCRLSet(crl CRL, shards CRLShards, issuer Issuer, out CRLSetWriter) (*CRLSet, LintReport, error) {
	return signCRLSet(crl, shards, issuer, out, shardGroupBytes)
}

// shardGroupBytes is about how many bytes of entries the shards gathered at once hold: each
// group costs one read of the spool (50 MB for a million entries, from the page cache).
const shardGroupBytes = 8 << 20

func signCRLSet(crl CRL, shards CRLShards, issuer Issuer, out CRLSetWriter, groupBytes int) (*CRLSet, LintReport, error) {
	if err := shards.Check(); err != nil {
		return nil, nil, fmt.Errorf("sign CRL set: %w", err)
	}
	if out.Spool == nil || out.Full == nil || out.Shard == nil {
		return nil, nil, errors.New("sign CRL set: CRLSetWriter needs a Spool, Full and Shard")
	}
	h, err := newCRLHeader(crl, issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("sign CRL set: %w", err)
	}
	linter, err := newSampleLinter(h.alg)
	if err != nil {
		return nil, nil, fmt.Errorf("sign CRL set: %w", err)
	}
	shardHeaders := make([]*crlHeader, shards.Count)
	for i := range shardHeaders {
		shardHeaders[i] = h.forShard(shards.URL(i))
	}
	lintShard := func(i int, samples [][]byte) (LintReport, error) { return linter.lint(shardHeaders[i], samples) }
	spool := &entrySpool{f: out.Spool}
	enc := newCRLEncoder(h, issuer.Certificate)
	sorter := newShardSorter(shards.Count, lintShard, spool)
	enc.recycle = sorter.chunk
	err = enc.read(crl.Revoked, sorter.add)
	parts, spoolErr := sorter.finish()
	enc.chunks = nil // all spooled
	if err = cmp.Or(err, spoolErr); err != nil {
		return nil, nil, fmt.Errorf("sign CRL set: %w", err)
	}

	samples, err := samplesOf(spool.at, &enc.shapes)
	if err != nil {
		return nil, nil, fmt.Errorf("sign CRL set: %w", err)
	}
	report, err := linter.lint(h, samples)
	if err != nil {
		return nil, report, fmt.Errorf("sign CRL set: full CRL: %w", err)
	}
	// Lint every shard not linted ahead as it now is, on every core.
	reports := sorter.reports
	failed, err := onCores(shards.Count, func(_, i int) error {
		if !sorter.linted[i] {
			samples, err := samplesOf(spool.at, &parts[i].shapes)
			if err != nil {
				return err
			}
			reports[i], sorter.errs[i] = lintShard(i, samples)
		}
		return sorter.errs[i]
	})
	if err != nil {
		return nil, reports[failed], fmt.Errorf("sign CRL set: shard %d: %w", failed, err)
	}
	for i, r := range reports {
		for _, w := range r.Warnings() {
			w.Details = fmt.Sprintf("shard %d: %s", i, w.Details)
			report = append(report, w)
		}
	}

	set := &CRLSet{Entries: enc.count, ShardEntries: make([]int, shards.Count), ShardSizes: make([]int, shards.Count)}
	signer := &setSigner{issuer: issuer, alg: h.alg, v: newVerifier(issuer.Certificate.PublicKey, h.alg)}
	full := h.unsigned(crlEntries{spool: spool}, enc.count, enc.size)
	if err := signer.sign(0, full, nil); err != nil {
		signer.v.wait()
		return nil, nil, err
	}
	if err := cmp.Or(out.Full(full), spool.failed()); err != nil {
		signer.v.wait()
		return nil, nil, fmt.Errorf("sign CRL set: full CRL: %w", err)
	}
	if err := signShards(parts, shardHeaders, spool, groupBytes, signer, func(i int, c *SignedCRL) error {
		set.ShardEntries[i], set.ShardSizes[i] = c.Entries(), c.Len()
		if err := out.Shard(i, c); err != nil {
			return fmt.Errorf("sign CRL set: shard %d: %w", i, err)
		}
		return nil
	}); err != nil {
		signer.v.wait()
		return nil, nil, err
	}
	if i, err := signer.v.wait(); err != nil {
		return nil, nil, fmt.Errorf("sign CRL set: %s: %w", setMember(i), err)
	}
	return set, report, nil
}

// setSigner signs the members of a set one at a time, and has each signature verified.
type setSigner struct {
	issuer Issuer
	alg    keyalg.Algorithm
	v      *verifier
}

// sign signs member i of the set (see setMember) and queues its signature for verification;
// toSign, when not nil, is what c.toSign returns, computed beforehand.
func (s *setSigner) sign(i int, c *SignedCRL, toSign []byte) error {
	if toSign == nil {
		toSign = c.toSign(s.alg, nil)
	}
	if err := c.entries.readErr(); err != nil {
		return fmt.Errorf("sign CRL set: %s: %w", setMember(i), err)
	}
	if err := c.signAs(s.issuer.Signer, s.alg, toSign); err != nil {
		return fmt.Errorf("sign CRL set: %s: %w", setMember(i), err)
	}
	s.v.check(i, toSign, c.sig)
	return nil
}

// signShards gathers the shards from the spool in groups of about groupBytes, one read of
// the spool a group; each group's are hashed on every core (but for Ed25519, which signs the
// whole TBS), then signed in order and each handed to done.
func signShards(parts []shardParts, headers []*crlHeader, spool *entrySpool, groupBytes int, signer *setSigner, done func(i int, c *SignedCRL) error) error {
	var groups []int // each group's first shard, and len(parts) last
	largest := 0
	for from := 0; from < len(parts); {
		to, size := from, 0
		for to < len(parts) && (to == from || size+parts[to].size <= groupBytes) {
			size += parts[to].size
			to++
		}
		groups = append(groups, from)
		largest = max(largest, size)
		from = to
	}
	groups = append(groups, len(parts))
	buf := make([]byte, largest)
	hashed := signedHash(signer.alg) != 0
	scratch := make([][]byte, runtime.GOMAXPROCS(0))
	for g := range len(groups) - 1 {
		from, to := groups[g], groups[g+1]
		entries, err := spool.gather(parts[from:to], buf)
		if err != nil {
			return fmt.Errorf("sign CRL set: shard %d: %w", from, err)
		}
		members := make([]*SignedCRL, to-from)
		for k := range members {
			p := &parts[from+k]
			var e crlEntries
			if p.count > 0 {
				e.chunks = [][]byte{entries[k]}
			}
			members[k] = headers[from+k].unsigned(e, p.count, p.size)
		}
		toSign := make([][]byte, len(members))
		if hashed {
			onCores(len(members), func(w, k int) error {
				if scratch[w] == nil {
					scratch[w] = make([]byte, 0, 32<<10)
				}
				toSign[k] = members[k].toSign(signer.alg, scratch[w])
				return nil
			})
		}
		for k, c := range members {
			if err := signer.sign(from+k+1, c, toSign[k]); err != nil {
				return err
			}
			if err := done(from+k, c); err != nil {
				return err
			}
		}
	}
	return nil
}

// onCores runs f(w, 0) to f(w, n-1) on as many goroutines as there are cores, w being the
// goroutine's number (0 up to GOMAXPROCS), and returns the lowest i whose f failed, with
// its error.
func onCores(n int, f func(w, i int) error) (int, error) {
	next := make(chan int)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for w := range min(n, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = f(w, i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return i, err
		}
	}
	return -1, nil
}

// setMember names member i of a set signed full CRL first.
func setMember(i int) string {
	if i == 0 {
		return "full CRL"
	}
	return fmt.Sprintf("shard %d", i-1)
}

// verifier checks signatures on as many goroutines as there are cores, while the caller
// goes on signing: a thousand ECDSA verifications cost more than the signatures.
type verifier struct {
	pub   crypto.PublicKey
	alg   keyalg.Algorithm
	work  chan verifyJob
	wg    sync.WaitGroup
	mu    sync.Mutex
	first int // the lowest index that failed, -1 for none
	err   error
}

type verifyJob struct {
	i           int
	signed, sig []byte
}

func newVerifier(pub crypto.PublicKey, alg keyalg.Algorithm) *verifier {
	n := runtime.GOMAXPROCS(0)
	v := &verifier{pub: pub, alg: alg, work: make(chan verifyJob, n), first: -1}
	v.wg.Add(n)
	for range n {
		go func() {
			defer v.wg.Done()
			for j := range v.work {
				if err := verifySigned(v.pub, v.alg, j.signed, j.sig); err != nil {
					v.mu.Lock()
					if v.first < 0 || j.i < v.first {
						v.first, v.err = j.i, err
					}
					v.mu.Unlock()
				}
			}
		}()
	}
	return v
}

// check queues signature i for verification.
func (v *verifier) check(i int, signed, sig []byte) {
	v.work <- verifyJob{i: i, signed: signed, sig: sig}
}

// wait waits for every queued verification and returns the first failure by index.
func (v *verifier) wait() (int, error) {
	close(v.work)
	v.wg.Wait()
	return v.first, v.err
}
