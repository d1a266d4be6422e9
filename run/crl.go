package run

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"io"
	"iter"
	"math/big"
	"path/filepath"
	"strconv"
	"time"

	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/workspace"
)

// CRL is what SignCRL wrote under the workspace's crl/ folder: an issuer's full CRL and, when
// the issuer splits its CRL, every shard of the same number.
type CRL struct {
	Number      int64
	ThisUpdate  time.Time
	NextUpdate  time.Time
	Entries     int
	DERPath     string // the full CRL
	PEMPath     string
	Fingerprint pki.Fingerprint // of the full CRL's DER
	// For an issuer with CRL shards: the folder of the set and, inside it, the folder of the
	// shards, named as their URLs are (copy it to BASE/<issuer>/); how many shards, the largest
	// (its number and size in bytes), and the shards over the budget, in shard order.
	SetDir       string
	ShardDir     string
	Shards       int
	LargestShard int
	LargestSize  int
	OverBudget   []int
	ShardBudget  int
	// ShardSHA256 is each shard's SHA-256, in shard order.
	ShardSHA256 []pki.Fingerprint
}

// SetSums lists the SHA-256 of every file of a CRL set (the full CRL, then each shard), one
// "HEX  PATH" line each with the path inside SetDir, as sha256sum writes them: run in SetDir,
// `sha256sum -c` checks a copy. It is empty for a CRL without shards.
func (c CRL) SetSums() []byte {
	if c.Shards == 0 {
		return nil
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s  full.crl\n", c.Fingerprint)
	dir := filepath.Base(c.ShardDir)
	for i, f := range c.ShardSHA256 {
		fmt.Fprintf(&b, "%s  %s/%d.crl\n", f, dir, i)
	}
	return b.Bytes()
}

// CRLRequest says how long an issuer's next CRLs stay current, and within what bound.
type CRLRequest struct {
	// NextUpdate is how long after thisUpdate the next CRL is due.
	NextUpdate time.Duration
	// MaxNextUpdate is the policy's bound on NextUpdate: 0 means MaxNextUpdate(issuer), the
	// workspace's default. The issuer's notAfter bounds it too.
	MaxNextUpdate time.Duration
	// ShardBudget is the size a shard should stay within, in bytes of DER; 0 means
	// pki.DefaultShardBudget. Shards over it are signed all the same, and reported.
	ShardBudget int
	// UpToLimit makes NextUpdate a wish rather than a request: it is shortened to the limit
	// when the limit comes first (the CRL of a decommission, which must be published once the
	// device is erased). Without it, a NextUpdate past the limit is refused.
	UpToLimit bool
}

// SignCRL signs an issuer's CRLs from the registry's revocations, as the root CRL (under
// quorum) and the issuing CAs' device CRLs all are. It checks the nextUpdate asked for against
// its limits first (a *pki.LimitError, with nothing allocated or signed), allocates the
// issuer's next CRL number (committed before signing, so a number is never reused even after
// a crash), streams the revocations in serial order into the encoder, signs, writes, and
// records the full CRL.
//
// An issuer without shards gets crl/<issuer>-<number>.crl and .pem, each written whole or not
// at all. An issuer with shards gets, under the one number, its full CRL and every shard, in a
// folder crl/<issuer>-<number>/ that appears whole or not at all and is synced once: full.crl
// and full.pem, and <issuer>/<shard>.crl for each shard, the folder named as the shards' URLs
// BASE/<issuer>/<shard>.crl are.
//
// Each registry change is journaled in r's journal, a number burned by a signature that
// failed included.
func SignCRL(ctx context.Context, r *Run, entry registry.Issuer, issuer pki.Issuer, req CRLRequest) (CRL, error) {
	env := r.Env
	reg, now := r.Registry(), env.Clock().Truncate(time.Second)
	if req.NextUpdate <= 0 {
		return CRL{}, fmt.Errorf("sign CRL for %s: next update must be in the future", entry.ID)
	}
	if req.MaxNextUpdate == 0 {
		req.MaxNextUpdate = MaxNextUpdate(issuer)
	}
	if req.ShardBudget == 0 {
		req.ShardBudget = pki.DefaultShardBudget
	}
	if issuer.Certificate == nil {
		return CRL{}, fmt.Errorf("sign CRL for %s: the issuer certificate is missing", entry.ID)
	}
	if limit, _ := pki.LatestNextUpdate(issuer.Certificate, now, req.MaxNextUpdate); req.UpToLimit && now.Add(req.NextUpdate).After(limit) {
		req.NextUpdate = limit.Sub(now)
	}
	if err := CheckCRLRequest(issuer.Certificate, now, req); err != nil {
		return CRL{}, fmt.Errorf("sign CRL for %s: %w", entry.ID, err)
	}
	shards, sharded := entry.Shards()
	number, err := reg.AllocateCRLNumber(ctx, entry.ID)
	if err != nil {
		return CRL{}, err
	}
	var scanErr error
	revoked := func(yield func(pki.Revocation, error) bool) {
		serial := new(big.Int) // one for all: each entry is encoded before the next is read
		for rv, err := range reg.Revocations(ctx, entry.ID) {
			if err != nil {
				scanErr = err
				yield(pki.Revocation{}, err)
				return
			}
			if !yield(pki.Revocation{Serial: serial.SetBytes(rv.Serial), RevokedAt: rv.RevokedAt,
				Reason: rv.Reason, InvalidityDate: rv.InvalidityDate}, nil) {
				return
			}
		}
	}
	c := pki.CRL{Number: big.NewInt(number), ThisUpdate: now, NextUpdate: now.Add(req.NextUpdate), MaxNextUpdate: req.MaxNextUpdate,
		Revoked: iter.Seq2[pki.Revocation, error](revoked)}
	fail := func(err error) (CRL, error) {
		if scanErr != nil {
			err = fmt.Errorf("read revocations: %w", scanErr)
		}
		return CRL{}, fmt.Errorf("sign CRL %d for %s: %w", number, entry.ID, err)
	}
	name := fmt.Sprintf("%s-%06d", entry.ID, number)
	out := CRL{Number: number, ThisUpdate: c.ThisUpdate, NextUpdate: c.NextUpdate}
	sum := sha256.New()
	der := func(signed *pki.SignedCRL) func(io.Writer) error {
		return func(w io.Writer) error { _, err := signed.WriteTo(w); return err }
	}
	if !sharded {
		signed, _, err := pki.SignCRL(c, issuer)
		if err != nil {
			return fail(err)
		}
		// Streamed to the files: a million entries are 50 MB of DER that need not be copied.
		out.DERPath, out.PEMPath = env.Workspace.Path(workspace.CRLDir, name+".crl"), env.Workspace.Path(workspace.CRLDir, name+".pem")
		if err := workspace.WriteExclusive(out.DERPath, 0o644, func(w io.Writer) error { return der(signed)(io.MultiWriter(w, sum)) }); err != nil {
			return CRL{}, fmt.Errorf("write CRL %d: %w", number, err)
		}
		if err := workspace.WriteExclusive(out.PEMPath, 0o644, signed.WritePEM); err != nil {
			return CRL{}, fmt.Errorf("write CRL %d: %w", number, err)
		}
		out.Entries, out.Fingerprint = signed.Entries(), pki.Fingerprint(sum.Sum(nil)) // what was written
	} else {
		out.SetDir = env.Workspace.Path(workspace.CRLDir, name)
		out.DERPath, out.PEMPath = filepath.Join(out.SetDir, "full.crl"), filepath.Join(out.SetDir, "full.pem")
		out.ShardDir = filepath.Join(out.SetDir, entry.ID)
		// The entries wait in an unnamed file beside the set rather than in memory, and each
		// CRL is written as soon as it is signed; the folder appears only if all are.
		spool, err := workspace.Spool(env.Workspace.Path(workspace.CRLDir))
		if err != nil {
			return fail(err)
		}
		defer spool.Close()
		var set *pki.CRLSet
		var signErr, writeErr error
		out.ShardSHA256 = make([]pki.Fingerprint, shards.Count)
		err = workspace.WriteDirExclusive(out.SetDir, func(add workspace.FileWriter) error {
			written := func(err error) error { writeErr = err; return err }
			set, _, signErr = pki.SignCRLSet(c, shards, issuer, pki.CRLSetWriter{Spool: spool,
				Full: func(full *pki.SignedCRL) error {
					if err := add("full.crl", 0o644, func(w io.Writer) error { return der(full)(io.MultiWriter(w, sum)) }); err != nil {
						return written(err)
					}
					return written(add("full.pem", 0o644, full.WritePEM))
				},
				Shard: func(i int, shard *pki.SignedCRL) error {
					h := sha256.New()
					if err := add(filepath.Join(entry.ID, strconv.Itoa(i)+".crl"), 0o644, func(w io.Writer) error { return der(shard)(io.MultiWriter(w, h)) }); err != nil {
						return written(err)
					}
					out.ShardSHA256[i] = pki.Fingerprint(h.Sum(nil))
					return nil
				}})
			spool.Close() // before the filesystem is synced: an unnamed file's pages are dropped, never written
			return signErr
		})
		switch {
		case writeErr != nil:
			return CRL{}, fmt.Errorf("write CRL %d: %w", number, writeErr)
		case signErr != nil:
			return fail(signErr)
		case err != nil:
			return CRL{}, fmt.Errorf("write CRL %d: %w", number, err)
		}
		out.Entries, out.Fingerprint = set.Entries, pki.Fingerprint(sum.Sum(nil)) // what was written
		out.Shards = len(set.ShardSizes)
		out.LargestShard, out.LargestSize = set.Largest()
		out.OverBudget, out.ShardBudget = set.OverBudget(req.ShardBudget), req.ShardBudget
	}
	if err := reg.RecordCRL(ctx, registry.CRL{IssuerID: entry.ID, Number: number, ThisUpdate: c.ThisUpdate,
		NextUpdate: c.NextUpdate, Entries: int64(out.Entries), SHA256: [32]byte(sum.Sum(nil)), Path: out.DERPath,
		RecordedAt: env.Clock()}); err != nil {
		return CRL{}, err
	}
	return out, nil
}

// CheckCRLRequest refuses, with a *pki.LimitError, CRLs of the CA cert signed at now that
// would stay current past req's bound or the CA's notAfter: what SignCRL checks before it
// allocates a number, for a caller to ask before it opens the CA's token.
func CheckCRLRequest(cert *x509.Certificate, now time.Time, req CRLRequest) error {
	if req.MaxNextUpdate == 0 {
		req.MaxNextUpdate = MaxNextUpdate(pki.Issuer{Certificate: cert})
	}
	now = now.Truncate(time.Second)
	return pki.CheckNextUpdate(cert, now, now.Add(req.NextUpdate), req.MaxNextUpdate)
}

// MaxNextUpdate is the longest a CRL of issuer may stay current when nothing else bounds it:
// pki.DefaultMaxNextUpdate (366 days) for an issuing CA, and for a root (self-issued) the most a
// ceremony plan's crl_next_update_days allows, 3650 days; a root CRL signed under quorum passes
// its plan's own bound instead. The issuer's notAfter bounds both.
func MaxNextUpdate(issuer pki.Issuer) time.Duration {
	if c := issuer.Certificate; c != nil && bytes.Equal(c.RawIssuer, c.RawSubject) {
		return 3650 * 24 * time.Hour
	}
	return pki.DefaultMaxNextUpdate
}

// CRLSigned is the payload of a step that signed a CRL: the full CRL and, for an issuer with
// shards, the set's folder, its shard count, its largest shard and the shards over budget.
type CRLSigned struct {
	Issuer       string    `json:"issuer"`
	Number       int64     `json:"number"`
	Entries      int       `json:"entries"`
	ThisUpdate   time.Time `json:"this_update"`
	NextUpdate   time.Time `json:"next_update"`
	SHA256       string    `json:"sha256"`
	File         string    `json:"file"`
	Shards       int       `json:"shards,omitempty"`
	ShardDir     string    `json:"shard_dir,omitempty"`
	LargestShard *int      `json:"largest_shard,omitempty"`
	LargestBytes int       `json:"largest_shard_bytes,omitempty"`
	ShardBudget  int       `json:"shard_budget_bytes,omitempty"`
	OverBudget   []int     `json:"shards_over_budget,omitempty"`
	// SetSums is the SHA-256 of CRL.SetSums: the listing of every file of the set with its
	// SHA-256, which a record of the set attaches.
	SetSums string `json:"set_sha256sums_sha256,omitempty"`
}

// Payload is c as the journal records it, signed by issuerID.
func (c CRL) Payload(issuerID string) CRLSigned {
	p := CRLSigned{Issuer: issuerID, Number: c.Number, Entries: c.Entries, ThisUpdate: c.ThisUpdate,
		NextUpdate: c.NextUpdate, SHA256: c.Fingerprint.String(), File: c.DERPath}
	if c.Shards > 0 {
		largest := c.LargestShard
		p.Shards, p.ShardDir, p.LargestShard, p.LargestBytes = c.Shards, c.ShardDir, &largest, c.LargestSize
		p.ShardBudget, p.OverBudget = c.ShardBudget, c.OverBudget
		p.SetSums = pki.FingerprintOf(c.SetSums()).String()
	}
	return p
}
