package quorum

import (
	"crypto/hmac"
	"errors"
	"fmt"
	"slices"

	"github.com/hashicorp/vault/shamir"

	"github.com/custos-pki/custos/internal/secret"
)

// Params are the public facts of a quorum at one epoch: everything a Collector checks shares
// and a reconstruction against, and nothing that helps anyone forge or use a share.
type Params struct {
	CeremonyID string
	RootSHA256 []byte // SHA-256 of the root certificate the shares were made for
	Epoch      int
	Threshold  int         // M: shares needed
	Custodians []Custodian // one per share
	Digest     []byte      // Digest of the secret at Epoch
}

// Custodian is the holder of one share and the share's commitment.
type Custodian struct {
	Name       string
	Number     int // the share's number, 1..N
	Commitment []byte
}

// Names are the custodians' names in the order given.
func (p Params) Names() []string {
	names := make([]string, len(p.Custodians))
	for i, c := range p.Custodians {
		names[i] = c.Name
	}
	return names
}

// custodian is the holder of share number n, nil if there is none.
func (p Params) custodian(n int) *Custodian {
	for i := range p.Custodians {
		if p.Custodians[i].Number == n {
			return &p.Custodians[i]
		}
	}
	return nil
}

// ErrRefused is wrapped by every refusal of a share or a reconstruction.
var ErrRefused = errors.New("quorum")

// Collector gathers the shares custodians enter for one operation, checking each against its
// commitment as it comes, so a wrong share is named at once and never combined. It owns the
// shares it keeps: Wipe zeroes them.
type Collector struct {
	p      Params
	shares map[int]Share
}

// NewCollector starts collecting shares for the quorum p.
func NewCollector(p Params) *Collector {
	return &Collector{p: p, shares: map[int]Share{}}
}

// Params are the quorum the collector checks against.
func (c *Collector) Params() Params { return c.p }

// Add checks a share (as typed or read from a file) and keeps it, returning its number. It
// names what is wrong: a mistyped group, a share of another ceremony or an older epoch, a
// duplicate, or one that does not match its commitment.
func (c *Collector) Add(text string) (int, error) {
	s, err := ParseShare(text)
	if err != nil {
		return 0, err
	}
	fail := func(format string, args ...any) (int, error) {
		s.Wipe()
		return 0, fmt.Errorf("%w: "+format, append([]any{ErrRefused}, args...)...)
	}
	id := c.p.CeremonyID
	holder := c.p.custodian(s.Number)
	switch {
	case !s.belongsTo(id):
		return fail("share #%d belongs to another ceremony, not %s", s.Number, id)
	case s.Epoch != c.p.Epoch:
		return fail("share #%d is from epoch %d, but %s is at epoch %d: shares from before a reshare no longer work", s.Number, s.Epoch, id, c.p.Epoch)
	case holder == nil:
		return fail("share #%d: %s has shares 1 to %d", s.Number, id, len(c.p.Custodians))
	}
	if _, dup := c.shares[s.Number]; dup {
		return fail("share #%d (%s) was already entered", s.Number, holder.Name)
	}
	s.CeremonyID, s.RootSHA256 = id, c.p.RootSHA256
	if !hmac.Equal(holder.Commitment, s.Commitment()) {
		return fail("share #%d (%s) does not match its commitment: it is not the share the ceremony gave out for this root certificate", s.Number, holder.Name)
	}
	c.shares[s.Number] = s
	return s.Number, nil
}

// Present is how many good shares have been entered.
func (c *Collector) Present() int { return len(c.shares) }

// Needed is how many shares the quorum needs.
func (c *Collector) Needed() int { return c.p.Threshold }

// Holders names the custodians whose shares were entered, in share order.
func (c *Collector) Holders() []string {
	nums := make([]int, 0, len(c.shares))
	for n := range c.shares {
		nums = append(nums, n)
	}
	slices.Sort(nums)
	out := make([]string, len(nums))
	for i, n := range nums {
		out[i] = c.p.custodian(n).Name
	}
	return out
}

// Secret combines the shares entered and checks the result against the quorum's digest,
// so that nobody logs in with a PIN derived from a wrong secret. The caller owns the result.
func (c *Collector) Secret() ([]byte, error) {
	if len(c.shares) < c.p.Threshold {
		return nil, fmt.Errorf("%w: %d of %d shares present; %s needs %d", ErrRefused, len(c.shares), len(c.p.Custodians), c.p.CeremonyID, c.p.Threshold)
	}
	parts := make([][]byte, 0, len(c.shares))
	for _, s := range c.shares {
		parts = append(parts, s.Bytes)
	}
	s, err := shamir.Combine(parts)
	if err != nil {
		return nil, fmt.Errorf("%w: combine shares: %v", ErrRefused, err)
	}
	if !hmac.Equal(Digest(s, c.p.CeremonyID, c.p.Epoch), c.p.Digest) {
		secret.Zero(s)
		return nil, fmt.Errorf("%w: the shares combine to a secret that does not match %s's digest; no login was tried", ErrRefused, c.p.CeremonyID)
	}
	return s, nil
}

// Wipe zeroes every share entered and forgets them.
func (c *Collector) Wipe() {
	for n, s := range c.shares {
		s.Wipe()
		delete(c.shares, n)
	}
}
