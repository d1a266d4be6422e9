package ceremony

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/custos-pki/custos/quorum"
	"github.com/custos-pki/custos/registry"
)

// LoadQuorum starts collecting shares for an operation on the root rootID.
func LoadQuorum(ctx context.Context, reg *registry.Registry, rootID string) (*quorum.Collector, error) {
	iss, err := reg.Issuer(ctx, rootID)
	if err != nil {
		return nil, err
	}
	if iss.Kind != registry.IssuerRoot {
		return nil, fmt.Errorf("%s is an issuing CA, not a root: quorum operations act on a root", rootID)
	}
	q, err := activeQuorum(ctx, reg, iss.CeremonyID)
	if err != nil {
		return nil, err
	}
	return quorum.NewCollector(quorumParams(q)), nil
}

// quorumParams are the public facts of the registry's quorum that shares are checked against.
func quorumParams(q registry.Quorum) quorum.Params {
	p := quorum.Params{CeremonyID: q.CeremonyID, Epoch: q.Epoch, Threshold: q.Threshold, Digest: q.SecretDigest}
	for _, s := range q.Shares {
		p.Custodians = append(p.Custodians, quorum.Custodian{Name: s.Custodian, Number: s.Number, Commitment: s.Commitment})
	}
	return p
}

func activeQuorum(ctx context.Context, reg *registry.Registry, ceremonyID string) (registry.Quorum, error) {
	q, err := reg.Quorum(ctx, ceremonyID)
	if err != nil {
		return registry.Quorum{}, err
	}
	if q.Status != registry.StatusActive {
		return registry.Quorum{}, fmt.Errorf("root %s was destroyed on %s%s: nothing signs under it any more", ceremonyID, q.DestroyedAt.Format(time.DateOnly), destroyedBy(ctx, reg, ceremonyID))
	}
	return q, nil
}

// destroyedBy is " by run X" naming the run that destroyed the root, "" when not known.
func destroyedBy(ctx context.Context, reg *registry.Registry, rootID string) string {
	if root, err := reg.Issuer(ctx, rootID); err == nil && root.Standing.RunID != "" {
		return " by run " + root.Standing.RunID
	}
	return ""
}

// collectedQuorum is the registry's quorum for the shares c collected, refused if it is no
// longer the quorum they were checked against (a reshare in between made them another
// epoch's).
func collectedQuorum(ctx context.Context, reg *registry.Registry, c *quorum.Collector) (registry.Quorum, error) {
	p := c.Params()
	q, err := activeQuorum(ctx, reg, p.CeremonyID)
	if err != nil {
		return registry.Quorum{}, err
	}
	if q.Epoch != p.Epoch || !bytes.Equal(q.SecretDigest, p.Digest) {
		return registry.Quorum{}, fmt.Errorf("%w: %s moved to epoch %d after the shares of epoch %d were entered: enter shares of epoch %d",
			quorum.ErrRefused, p.CeremonyID, q.Epoch, p.Epoch, q.Epoch)
	}
	return q, nil
}
