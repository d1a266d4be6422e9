package pki

import (
	"crypto"
	"fmt"
	"math/big"
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
	picks  []uint32
	count  int
	size   int
	shapes shapeSet
}

// shardIDs holds the shard of every entry in reading order, in blocks that never move: two
// bytes an entry, so a million entries cost 2 MB and no copying as they come.
type shardIDs struct{ blocks [][]uint16 }

const shardIDBlock = 1 << 16

func (s *shardIDs) add(id uint16) {
	if len(s.blocks) == 0 || len(s.blocks[len(s.blocks)-1]) == shardIDBlock {
		s.blocks = append(s.blocks, make([]uint16, 0, shardIDBlock))
	}
	last := &s.blocks[len(s.blocks)-1]
	*last = append(*last, id)
}

func (s *shardIDs) at(k int) uint16 { return s.blocks[k/shardIDBlock][k%shardIDBlock] }

// pick gives each shard its entries' positions, in serial order, all in one array of four
// bytes an entry: the entries are walked once more in the full CRL's chunks, where they lie
// back to back in reading order.
func pick(parts []shardParts, ids *shardIDs, chunks [][]byte, count int) {
	positions := make([]uint32, count)
	next := make([]int, len(parts))
	start := 0
	for i := range parts {
		next[i] = start
		parts[i].picks = positions[start : start+parts[i].count]
		start += parts[i].count
	}
	k := 0
	for ci, chunk := range chunks {
		for off := 0; off < len(chunk); off += tlvLen(chunk[off:]) {
			s := ids.at(k)
			positions[next[s]] = entryPos(ci, off)
			next[s]++
			k++
		}
	}
}

// SignCRLSet signs, under one CRL number, the full CRL of crl and each of its shards.
//
// The entries are read once, in serial order, and encoded once, as SignCRL does; each is
// noted in its shard (ShardOf its serial), so a shard's entries are the very bytes of the
// full CRL's, shared rather than copied, and the set takes little more memory than the full
// CRL alone. Everything is linted before the issuer's key is used: the full CRL's sample as
// SignCRL lints it, and each shard's own sample (its entries' shapes under its own header),
// so one refused lint refuses the whole set. Then the issuer signs the full CRL and every
// shard, one signature each, and every signature is verified under the issuer certificate
// (on other cores while the signer goes on) before the set is returned; any failure returns
// no CRL at all.
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
	enc := newCRLEncoder(h, issuer.Certificate)
	parts := make([]shardParts, shards.Count)
	var ids shardIDs
	err = enc.read(crl.Revoked, func(serial *big.Int, pos uint32, size, shape int) {
		id := ShardOf(serial, shards.Count)
		ids.add(uint16(id)) // Count is at most 1<<16
		s := &parts[id]
		s.count++
		s.size += size
		s.shapes.note(shape, pos)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("sign CRL set: %w", err)
	}
	pick(parts, &ids, enc.chunks, enc.count)
	ids = shardIDs{}

	linter, err := newSampleLinter(h.alg)
	if err != nil {
		return nil, nil, fmt.Errorf("sign CRL set: %w", err)
	}
	report, err := linter.lint(h, enc.samples(&enc.shapes))
	if err != nil {
		return nil, report, fmt.Errorf("sign CRL set: full CRL: %w", err)
	}
	set := &CRLSet{Full: h.unsigned(crlEntries{chunks: enc.chunks}, enc.count, enc.size), Shards: make([]*SignedCRL, shards.Count)}
	reports := make([]LintReport, shards.Count)
	failed, err := onCores(shards.Count, func(i int) error {
		p := &parts[i]
		sh := h.forShard(shards.URL(i))
		var err error
		if reports[i], err = linter.lint(sh, enc.samples(&p.shapes)); err != nil {
			return err
		}
		set.Shards[i] = sh.unsigned(crlEntries{chunks: enc.chunks, picked: true, picks: p.picks}, p.count, p.size)
		return nil
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

	v := newVerifier(issuer.Certificate.PublicKey, h.alg)
	all := append([]*SignedCRL{set.Full}, set.Shards...)
	scratch := make([]byte, 0, 32<<10)
	for i, c := range all {
		signed, err := c.sign(issuer.Signer, h.alg, scratch)
		if err != nil {
			v.wait()
			return nil, nil, fmt.Errorf("sign CRL set: %s: %w", setMember(i), err)
		}
		v.check(i, signed, c.sig)
	}
	if i, err := v.wait(); err != nil {
		return nil, nil, fmt.Errorf("sign CRL set: %s: %w", setMember(i), err)
	}
	return set, report, nil
}

// onCores runs f(0) to f(n-1) on as many goroutines as there are cores and returns the
// lowest i whose f failed, with its error.
func onCores(n int, f func(i int) error) (int, error) {
	next := make(chan int)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for range min(n, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = f(i)
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
