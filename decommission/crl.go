package decommission

import (
	"context"
	"fmt"
	"time"

	"github.com/custos-pki/custos/internal/opstoken"
	"github.com/custos-pki/custos/internal/publish"
	"github.com/custos-pki/custos/internal/secret"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/registry"
)

// PublishCRL signs a full CRL for an issuing CA with its key on the operations token.
func PublishCRL(ctx context.Context, env Env, issuerRef string, opsPIN []byte, nextUpdate time.Duration) (publish.CRL, error) {
	defer secret.Zero(opsPIN)
	if err := env.Workspace.CheckWritable(); err != nil {
		return publish.CRL{}, err
	}
	mod, err := env.openModule(ctx)
	if err != nil {
		return publish.CRL{}, err
	}
	defer mod.Close()
	iss, cert, key, err := opstoken.Issuer(ctx, env.Registry, mod, issuerRef, opsPIN)
	if err != nil {
		return publish.CRL{}, err
	}
	defer key.Close()
	if iss.Kind != registry.IssuerIssuing {
		return publish.CRL{}, fmt.Errorf("%s is a root: its CRL is signed under quorum (custos ceremony crl)", iss.ID)
	}
	return publish.SignCRL(ctx, env.Registry, env.Workspace, iss.ID, pki.Issuer{Certificate: cert, Signer: key}, env.now(), nextUpdate)
}
