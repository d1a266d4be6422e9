package ceremony

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/hashicorp/vault/shamir"

	"github.com/custos-pki/custos/internal/secret"
	"github.com/custos-pki/custos/registry"
)

// Everything secret is derived from the quorum secret S with HKDF-SHA256, each with its own
// label, so no derived value tells anything about another or about S.
const (
	labelSOPIN    = "custos/v1/root-token/so-pin"
	labelUserPIN  = "custos/v1/root-token/user-pin"
	labelKEK      = "custos/v1/backup-kek"
	labelOpsSOPIN = "custos/v1/operations-token/so-pin"
	labelDigest   = "custos/v1/secret-digest"
	labelCommit   = "custos/v1/share-commitment"
	secretLen     = 32
)

// derive returns HKDF-SHA256(S, salt = ceremony id, info = label).
func derive(s []byte, ceremonyID, label string, n int) []byte {
	k, err := hkdf.Key(sha256.New, s, []byte(ceremonyID), label, n)
	if err != nil {
		panic("ceremony: hkdf: " + err.Error()) // only for n beyond 255*32
	}
	return k
}

// derivePIN makes a PIN a token accepts from S: 32 hex characters (128 bits).
func derivePIN(s []byte, ceremonyID, label string) []byte {
	k := derive(s, ceremonyID, label, 16)
	pin := make([]byte, hex.EncodedLen(len(k)))
	hex.Encode(pin, k)
	secret.Zero(k)
	return pin
}

// secretDigest lets a reconstruction be checked before any login: a wrong PIN burns a try.
func secretDigest(s []byte, ceremonyID string, epoch int) []byte {
	return derive(s, ceremonyID, fmt.Sprintf("%s/epoch-%d", labelDigest, epoch), 32)
}

// commitment binds one share to its ceremony, epoch and number; it is public and lets one
// share be checked at entry without the others.
func commitment(ceremonyID string, epoch, number int, share []byte) []byte {
	m := hmac.New(sha256.New, []byte(labelCommit))
	var hdr [8]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(len(ceremonyID)))
	binary.BigEndian.PutUint16(hdr[4:6], uint16(epoch))
	hdr[6] = byte(number)
	m.Write(hdr[:4])
	m.Write([]byte(ceremonyID))
	m.Write(hdr[4:7])
	m.Write(share)
	return m.Sum(nil)
}

// newSecret is 32 bytes from crypto/rand XOR the token's RNG: a flaw in either alone does
// not weaken S.
func newSecret(tokenRandom []byte) ([]byte, error) {
	if len(tokenRandom) != secretLen {
		return nil, fmt.Errorf("quorum secret: the token gave %d random bytes, not %d", len(tokenRandom), secretLen)
	}
	s := make([]byte, secretLen)
	if _, err := rand.Read(s); err != nil {
		return nil, fmt.Errorf("quorum secret: %w", err)
	}
	for i := range s {
		s[i] ^= tokenRandom[i]
	}
	return s, nil
}

// split cuts S into one share per custodian, numbered in the plan's custodian order.
func split(s []byte, ceremonyID string, epoch, n, m int) ([]Share, error) {
	parts, err := shamir.Split(s, n, m)
	if err != nil {
		return nil, fmt.Errorf("split the quorum secret: %w", err)
	}
	shares := make([]Share, n)
	for i, p := range parts {
		shares[i] = Share{CeremonyID: ceremonyID, Epoch: epoch, Number: i + 1, Threshold: m, Bytes: p}
	}
	return shares, nil
}

// Quorum collects the shares custodians enter for an operation on a root, checking each
// against its commitment as it comes, so a wrong share is named at once and never combined.
type Quorum struct {
	q      registry.Quorum
	shares map[int]Share
}

// NewQuorum starts collecting shares for the quorum the registry holds.
func NewQuorum(q registry.Quorum) *Quorum {
	return &Quorum{q: q, shares: map[int]Share{}}
}

// ErrQuorum is wrapped by every refusal of a share or a reconstruction.
var ErrQuorum = errors.New("quorum")

// Add checks a share (as typed or read from a file) and keeps it. It names what is wrong: a
// mistyped group, a share of another ceremony or an older epoch, a duplicate, or one that
// does not match its commitment.
func (c *Quorum) Add(text string) (Share, error) {
	s, err := ParseShare(text)
	if err != nil {
		return Share{}, err
	}
	fail := func(format string, args ...any) (Share, error) {
		s.Wipe()
		return Share{}, fmt.Errorf("%w: "+format, append([]any{ErrQuorum}, args...)...)
	}
	switch {
	case !s.belongsTo(c.q.CeremonyID):
		return fail("share #%d belongs to another ceremony, not %s", s.Number, c.q.CeremonyID)
	case s.Epoch != c.q.Epoch:
		return fail("share #%d is from epoch %d, but %s is at epoch %d: shares from before a reshare no longer work", s.Number, s.Epoch, c.q.CeremonyID, c.q.Epoch)
	case s.Number < 1 || s.Number > len(c.q.Shares):
		return fail("share #%d: %s has shares 1 to %d", s.Number, c.q.CeremonyID, len(c.q.Shares))
	}
	if _, dup := c.shares[s.Number]; dup {
		return fail("share #%d (%s) was already entered", s.Number, c.q.Shares[s.Number-1].Custodian)
	}
	want := c.q.Commitment(s.Number)
	if !hmac.Equal(want, commitment(c.q.CeremonyID, s.Epoch, s.Number, s.Bytes)) {
		return fail("share #%d (%s) does not match its commitment: it is not the share the ceremony gave out", s.Number, c.q.Shares[s.Number-1].Custodian)
	}
	s.CeremonyID = c.q.CeremonyID
	c.shares[s.Number] = s
	return s, nil
}

// Present is how many good shares have been entered; Needed how many the operation needs.
func (c *Quorum) Present() int { return len(c.shares) }
func (c *Quorum) Needed() int  { return c.q.Threshold }

// Holders names the custodians whose shares were entered, in share order.
func (c *Quorum) Holders() []string {
	var nums []int
	for n := range c.shares {
		nums = append(nums, n)
	}
	slices.Sort(nums)
	var out []string
	for _, n := range nums {
		out = append(out, c.q.Shares[n-1].Custodian)
	}
	return out
}

// Registry is the quorum as the registry holds it.
func (c *Quorum) Registry() registry.Quorum { return c.q }

// secret combines the shares and checks the result against the stored digest before anyone
// logs in with a PIN derived from it. The caller zeroes it.
func (c *Quorum) secret() ([]byte, error) {
	if len(c.shares) < c.q.Threshold {
		return nil, fmt.Errorf("%w: %d of %d shares present; %s needs %d", ErrQuorum, len(c.shares), len(c.q.Shares), c.q.CeremonyID, c.q.Threshold)
	}
	var parts [][]byte
	for _, s := range c.shares {
		parts = append(parts, s.Bytes)
	}
	s, err := shamir.Combine(parts)
	if err != nil {
		return nil, fmt.Errorf("%w: combine shares: %v", ErrQuorum, err)
	}
	if !hmac.Equal(secretDigest(s, c.q.CeremonyID, c.q.Epoch), c.q.SecretDigest) {
		secret.Zero(s)
		return nil, fmt.Errorf("%w: the shares combine to a secret that does not match %s's digest; no login was tried", ErrQuorum, c.q.CeremonyID)
	}
	return s, nil
}

// Wipe zeroes every share entered.
func (c *Quorum) Wipe() {
	for n, s := range c.shares {
		s.Wipe()
		delete(c.shares, n)
	}
}
