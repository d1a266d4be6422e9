package decommission

import (
	"context"
	"fmt"
	"time"

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
	return run.SignCRL(ctx, env, iss.Entry.ID, iss.Signer(), nextUpdate)
}
