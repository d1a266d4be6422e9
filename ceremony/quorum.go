package ceremony

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/custos-pki/custos/quorum"
	"github.com/custos-pki/custos/registry"
)

// LoadQuorum starts collecting shares for an operation on the root rootID: the quorum is the
// one the root's newest statement states (VerifyQuorum), so every share is checked against
// commitments the root signed and bound to its certificate.
func LoadQuorum(ctx context.Context, reg *registry.Registry, rootID string) (*quorum.Collector, error) {
	v, err := VerifyQuorum(ctx, reg, rootID)
	if err != nil {
		return nil, err
	}
	return v.Collector(), nil
}

// Collector starts collecting shares for the quorum v states.
func (v *VerifiedQuorum) Collector() *quorum.Collector {
	return quorum.NewCollector(v.Statement.Params())
}

// quorumParams are the public facts of the registry's quorum that shares are checked against,
// for the root certificate whose SHA-256 is rootSHA256.
func quorumParams(q registry.Quorum, rootSHA256 []byte) quorum.Params {
	p := quorum.Params{CeremonyID: q.CeremonyID, RootSHA256: rootSHA256, Epoch: q.Epoch, Threshold: q.Threshold, Digest: q.SecretDigest}
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

// collectedQuorum is the registry's quorum for the shares c collected, verified against the
// root's newest statement (verifyQuorum), and refused if it is no longer the quorum the
// shares were checked against (a reshare in between made them another epoch's).
func collectedQuorum(ctx context.Context, reg *registry.Registry, c *quorum.Collector) (registry.Quorum, *VerifiedQuorum, error) {
	p := c.Params()
	q, err := activeQuorum(ctx, reg, p.CeremonyID)
	if err != nil {
		return registry.Quorum{}, nil, err
	}
	root, err := reg.Issuer(ctx, q.CeremonyID)
	if err != nil {
		return registry.Quorum{}, nil, err
	}
	v, err := verifyQuorum(q, root)
	if err != nil {
		return registry.Quorum{}, nil, err
	}
	if q.Epoch != p.Epoch || !bytes.Equal(q.SecretDigest, p.Digest) {
		return registry.Quorum{}, nil, fmt.Errorf("%w: %s moved to epoch %d after the shares of epoch %d were entered: enter shares of epoch %d",
			quorum.ErrRefused, p.CeremonyID, q.Epoch, p.Epoch, q.Epoch)
	}
	if err := quorum.SameQuorum(p, v.Statement.Params()); err != nil {
		return registry.Quorum{}, nil, fmt.Errorf("%w: the shares were checked against a quorum of %s the root does not state (%v): enter them again", quorum.ErrRefused, p.CeremonyID, err)
	}
	return q, v, nil
}
