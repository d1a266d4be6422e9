package run

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"iter"
	"math/big"
	"time"

	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/workspace"
)

// CRL is a CRL as SignCRL wrote it under the workspace's crl/ folder.
type CRL struct {
	Number      int64
	ThisUpdate  time.Time
	NextUpdate  time.Time
	Entries     int
	DERPath     string
	PEMPath     string
	Fingerprint pki.Fingerprint
}

// SignCRL signs a full CRL for issuerID from the registry's revocations, as the root CRL
// (under quorum) and the issuing CAs' device CRLs both are: it allocates the issuer's next CRL
// number (committed before signing, so a number is never reused even after a crash), streams
// the issuer's revocations in serial order into the CRL encoder, signs with issuer, writes
// crl/<issuer>-<number>.crl and .pem (create-exclusive), and records the CRL, each registry
// change journaled in r's journal (a number burned by a signature that failed is journaled too).
func SignCRL(ctx context.Context, r *Run, issuerID string, issuer pki.Issuer, nextUpdate time.Duration) (CRL, error) {
	reg, ws, now := r.Registry(), r.Env.Workspace, r.Env.Clock()
	if nextUpdate <= 0 {
		return CRL{}, fmt.Errorf("sign CRL for %s: next update must be in the future", issuerID)
	}
	number, err := reg.AllocateCRLNumber(ctx, issuerID)
	if err != nil {
		return CRL{}, err
	}
	var scanErr error
	revoked := func(yield func(pki.Revocation, error) bool) {
		for rv, err := range reg.Revocations(ctx, issuerID) {
			if err != nil {
				scanErr = err
				yield(pki.Revocation{}, err)
				return
			}
			if !yield(pki.Revocation{Serial: new(big.Int).SetBytes(rv.Serial), RevokedAt: rv.RevokedAt,
				Reason: rv.Reason, InvalidityDate: rv.InvalidityDate}, nil) {
				return
			}
		}
	}
	now = now.UTC().Truncate(time.Second)
	c := pki.CRL{Number: big.NewInt(number), ThisUpdate: now, NextUpdate: now.Add(nextUpdate), MaxNextUpdate: maxNextUpdate(issuer),
		Revoked: iter.Seq2[pki.Revocation, error](revoked)}
	signed, _, err := pki.SignCRL(c, issuer)
	if err != nil {
		if scanErr != nil {
			return CRL{}, fmt.Errorf("sign CRL %d for %s: read revocations: %w", number, issuerID, scanErr)
		}
		return CRL{}, fmt.Errorf("sign CRL %d for %s: %w", number, issuerID, err)
	}
	base := ws.Path("crl", fmt.Sprintf("%s-%06d", issuerID, number))
	// Streamed to the files: a million entries are 50 MB of DER that need not be copied.
	sum := sha256.New()
	if err := workspace.WriteExclusive(base+".crl", 0o644, func(w io.Writer) error {
		_, err := signed.WriteTo(io.MultiWriter(w, sum))
		return err
	}); err != nil {
		return CRL{}, fmt.Errorf("write CRL %d: %w", number, err)
	}
	if err := workspace.WriteExclusive(base+".pem", 0o644, signed.WritePEM); err != nil {
		return CRL{}, fmt.Errorf("write CRL %d: %w", number, err)
	}
	out := CRL{Number: number, ThisUpdate: c.ThisUpdate, NextUpdate: c.NextUpdate, Entries: signed.Entries(),
		DERPath: base + ".crl", PEMPath: base + ".pem", Fingerprint: signed.Fingerprint()}
	if err := reg.RecordCRL(ctx, registry.CRL{IssuerID: issuerID, Number: number, ThisUpdate: c.ThisUpdate,
		NextUpdate: c.NextUpdate, Entries: int64(out.Entries), SHA256: [32]byte(sum.Sum(nil)), Path: out.DERPath,
		RecordedAt: r.Env.Clock()}); err != nil {
		return CRL{}, err
	}
	return out, nil
}

// maxNextUpdate is the bound on a CRL's nextUpdate until the workspace's policy sets it:
// pki.DefaultMaxNextUpdate for an issuing CA, and for a root (self-issued) the most a
// ceremony plan's crl_next_update_days allows, 3650 days. The issuer's notAfter bounds both.
func maxNextUpdate(issuer pki.Issuer) time.Duration {
	if c := issuer.Certificate; c != nil && bytes.Equal(c.RawIssuer, c.RawSubject) {
		return 3650 * 24 * time.Hour
	}
	return pki.DefaultMaxNextUpdate
}

// CRLSigned is the payload of a step that signed a CRL.
type CRLSigned struct {
	Issuer     string    `json:"issuer"`
	Number     int64     `json:"number"`
	Entries    int       `json:"entries"`
	ThisUpdate time.Time `json:"this_update"`
	NextUpdate time.Time `json:"next_update"`
	SHA256     string    `json:"sha256"`
	File       string    `json:"file"`
}

// Payload is c as the journal records it, signed by issuerID.
func (c CRL) Payload(issuerID string) CRLSigned {
	return CRLSigned{Issuer: issuerID, Number: c.Number, Entries: c.Entries, ThisUpdate: c.ThisUpdate,
		NextUpdate: c.NextUpdate, SHA256: c.Fingerprint.String(), File: c.DERPath}
}
