package decommission

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// PublishCRL signs a full CRL for an issuing CA with its key on the operations token, opened
// with the caller's operator PIN.
func PublishCRL(ctx context.Context, env run.Env, issuerRef string, opsPIN []byte, nextUpdate time.Duration) (run.CRL, error) {
	if err := env.Workspace.CheckWritable(); err != nil {
		return run.CRL{}, err
	}
	mod, err := env.OpenModule(ctx, "")
	if err != nil {
		return run.CRL{}, err
	}
	defer mod.Close()
	iss, err := run.OpenIssuer(ctx, env.Registry, mod, issuerRef, opsPIN)
	if err != nil {
		return run.CRL{}, err
	}
	defer iss.Close()
	if iss.Entry.Kind != registry.IssuerIssuing {
		return run.CRL{}, fmt.Errorf("%s is a root: its CRL is signed under quorum, as a quorum operation", iss.Entry.ID)
	}
	op, err := run.StartOperation(ctx, env, "crl-publish", iss.Entry.ID)
	if err != nil {
		return run.CRL{}, err
	}
	var c run.CRL
	err = op.Step(stepCRL, record.System, func() (any, error) {
		var err error
		if c, err = run.SignCRL(ctx, op, iss.Entry.ID, iss.Signer(), nextUpdate); err != nil {
			return nil, err
		}
		return c.Payload(iss.Entry.ID), nil
	})
	return c, errors.Join(err, op.Close())
}
