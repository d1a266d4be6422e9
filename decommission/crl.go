package decommission

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/custos-pki/custos/run"
)

// PublishCRL signs an issuing CA's CRLs (its full CRL, and every shard when it splits its CRL)
// with its key on the operations token, opened with the caller's operator PIN. A root, or a
// CA whose state forbids it to sign CRLs, is refused before any module is loaded; a
// nextUpdate past the CA's notAfter or the policy's bound is refused with a *pki.LimitError
// before the token is opened.
func PublishCRL(ctx context.Context, env run.Env, issuerRef string, opsPIN []byte, req run.CRLRequest) (run.CRL, error) {
	if err := env.Workspace.CheckWritable(); err != nil {
		return run.CRL{}, err
	}
	// Before the module is loaded: a root, or a CA that may not sign, is refused before any
	// login, so no PIN try of the root token is ever spent by an operator.
	entry, err := run.CheckIssuer(ctx, env.Registry, issuerRef, run.SignCRLs)
	if err != nil {
		return run.CRL{}, issuerError(err)
	}
	// The dates are checked before the token is opened: a refusal spends no PIN try.
	if cert, err := x509.ParseCertificate(entry.Certificate); err == nil {
		if err := run.CheckCRLRequest(cert, env.Clock(), req); err != nil {
			return run.CRL{}, fmt.Errorf("CRL of %s: %w", entry.ID, err)
		}
	}
	mod, err := env.OpenModule(ctx, "")
	if err != nil {
		return run.CRL{}, err
	}
	defer mod.Close()
	iss, err := run.OpenIssuer(ctx, env.Registry, mod, issuerRef, opsPIN, run.SignCRLs)
	if err != nil {
		return run.CRL{}, err
	}
	defer iss.Close()
	return run.SignCRL(ctx, env, iss.Entry, iss.Signer(), req)
}

// issuerError is a refusal of the issuing CA a request named, as an error of its Issuer
// field: a root, or a CA whose state forbids what was asked.
func issuerError(err error) error {
	if errors.Is(err, run.ErrRootUnderQuorum) || errors.Is(err, run.ErrCannotSign) {
		return &run.FieldError{Name: "Issuer", Problem: err.Error(), Err: err}
	}
	return err
}
