package pki

import (
	"crypto"
	"fmt"
	"runtime"
	"sync"

	"github.com/custos-pki/custos/keyalg"
)

// CRLSet is one CRL number's CRLs of an issuing CA: the full CRL and every shard of it.
type CRLSet struct {
	// Full lists every revoked certificate and has no issuingDistributionPoint: it is for
	// the back office, and for certificates that name no shard (issued before sharding).
	Full *SignedCRL
	// Shards[i] lists the revoked certificates of shard i and only those, with a critical
	// issuingDistributionPoint naming CRLShards.URL(i) and onlyContainsUserCerts. It is the
	// CRL a device whose certificate names that URL fetches and holds.
	Shards []*SignedCRL
}

// Largest returns the shard with the most bytes of DER, and its size.
func (s *CRLSet) Largest() (shard, size int) {
	for i, c := range s.Shards {
		if c.Len() > size {
			shard, size = i, c.Len()
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
	for i, c := range s.Shards {
		if c.Len() > budget {
			over = append(over, i)
		}
	}
	return over
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
// much as encoding them, and need not make the encoding wait.
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
)

// newShardSorter starts a sorter of entries into count shards; lint lints shard i's
// sample, and is called from the sorter's goroutine.
func newShardSorter(count int, lint func(shard int, samples [][]byte) (LintReport, error)) *shardSorter {
	s := &shardSorter{count: count, parts: make([]shardParts, count), work: make(chan sortBatch, sortBuffers),
		free: make(chan []uint8, sortBuffers+1), done: make(chan struct{}),
		lint: lint, reports: make([]LintReport, count), errs: make([]error, count), linted: make([]bool, count)}
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
				s.reports[i], s.errs[i] = s.lint(i, samplesOf(s.chunks, &s.parts[i].shapes))
				s.linted[i] = true
				s.nextLint++
			}
		}
	}
}

// finish waits for the sorter to go through every entry added, and returns each shard's
// tally and positions.
func (s *shardSorter) finish() []shardParts {
	if len(s.batch.shapes) > 0 {
		s.flush()
	}
	close(s.work)
	<-s.done
	return s.parts
}

// entrySerial returns the content of an encoded entry's serial number: the bytes ShardOf
// hashes.
func entrySerial(entry []byte) []byte {
	serial := entry[tlvHeaderLen(entry):]
	return serial[tlvHeaderLen(serial):tlvLen(serial)]
}

// SignCRLSet signs, under one CRL number, the full CRL of crl and each of its shards.
//
// The entries are read once, in serial order, and encoded once, as SignCRL does; each is
// noted in its shard (ShardOf its serial) on another core as the encoding goes on, so a
// shard's entries are the very bytes of the full CRL's, shared rather than copied, and the
// set takes little more memory than the full CRL alone. Everything is linted before the
// issuer's key is used: the full CRL's sample as SignCRL lints it, and each shard's own
// sample (its entries' shapes under its own header), so one refused lint refuses the whole
// set. Then the issuer signs the full CRL and every shard, one signature each, in that
// order and one at a time, and every signature is verified under the issuer certificate
// (on the other cores while the signer goes on) before the set is returned; any failure
// returns no CRL at all. Linting, hashing and verifying run on every core.
//
// The lint report is the full CRL's, followed by any warning or notice a shard's lints
// gave, its Details beginning with the shard. NextUpdate is bounded as in SignCRL.
func SignCRLSet(crl CRL, shards CRLShards, issuer Issuer) (*CRLSet, LintReport, error) {
	if err := shards.Check(); err != nil {
		return nil, nil, fmt.Errorf("sign CRL set: %w", err)
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
	enc := newCRLEncoder(h, issuer.Certificate)
	sorter := newShardSorter(shards.Count, lintShard)
	err = enc.read(crl.Revoked, sorter.add)
	parts := sorter.finish()
	if err != nil {
		return nil, nil, fmt.Errorf("sign CRL set: %w", err)
	}

	report, err := linter.lint(h, enc.samples(&enc.shapes))
	if err != nil {
		return nil, report, fmt.Errorf("sign CRL set: full CRL: %w", err)
	}
	set := &CRLSet{Full: h.unsigned(crlEntries{chunks: enc.chunks}, enc.count, enc.size), Shards: make([]*SignedCRL, shards.Count)}
	for i := range parts {
		p := &parts[i]
		set.Shards[i] = shardHeaders[i].unsigned(crlEntries{chunks: enc.chunks, picked: true, picks: p.picks}, p.count, p.size)
	}
	all := append([]*SignedCRL{set.Full}, set.Shards...)

	// Lint every shard not linted ahead as it now is and, but for Ed25519, hash every
	// member, on every core; the full CRL, the longest to hash, first.
	hashed := signedHash(h.alg) != 0
	reports := sorter.reports
	toSign := make([][]byte, len(all))
	scratch := make([][]byte, runtime.GOMAXPROCS(0))
	failed, err := onCores(len(all), func(w, i int) error {
		if hashed {
			if scratch[w] == nil {
				scratch[w] = make([]byte, 0, 32<<10)
			}
			toSign[i] = all[i].toSign(h.alg, scratch[w])
		}
		if i == 0 {
			return nil
		}
		if s := i - 1; !sorter.linted[s] {
			reports[s], sorter.errs[s] = lintShard(s, enc.samples(&parts[s].shapes))
		}
		return sorter.errs[i-1]
	})
	if err != nil {
		return nil, reports[failed-1], fmt.Errorf("sign CRL set: shard %d: %w", failed-1, err)
	}
	for i, r := range reports {
		for _, w := range r.Warnings() {
			w.Details = fmt.Sprintf("shard %d: %s", i, w.Details)
			report = append(report, w)
		}
	}

	v := newVerifier(issuer.Certificate.PublicKey, h.alg)
	for i, c := range all {
		signed := toSign[i]
		if !hashed { // Ed25519 signs the whole TBS, made as it is signed rather than held
			signed = c.toSign(h.alg, nil)
		}
		if err := c.signAs(issuer.Signer, h.alg, signed); err != nil {
			v.wait()
			return nil, nil, fmt.Errorf("sign CRL set: %s: %w", setMember(i), err)
		}
		toSign[i] = nil
		v.check(i, signed, c.sig)
	}
	if i, err := v.wait(); err != nil {
		return nil, nil, fmt.Errorf("sign CRL set: %s: %w", setMember(i), err)
	}
	return set, report, nil
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
