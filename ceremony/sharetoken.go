package ceremony

import (
	"context"
	"fmt"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/secret"
)

// WriteShareToToken stores a custodian's share on their own token as a private data object
// that cannot be modified, readable only after login with their PIN. It is the destination a
// custodian can choose in the window instead of copying the share by hand.
func WriteShareToToken(ctx context.Context, module, token string, pin []byte, d ShareDelivery, opts ...hsm.Option) error {
	m, err := hsm.Open(module, opts...)
	if err != nil {
		return err
	}
	defer m.Close()
	s, done, err := loginCustodian(ctx, m, token, pin)
	if err != nil {
		return err
	}
	defer done()
	return storeShare(ctx, s, d)
}

// ReadShareFromToken reads the share d names (its ceremony, epoch and number) back from a
// custodian's token.
func ReadShareFromToken(ctx context.Context, module, token string, pin []byte, d ShareDelivery, opts ...hsm.Option) (string, error) {
	m, err := hsm.Open(module, opts...)
	if err != nil {
		return "", err
	}
	defer m.Close()
	s, done, err := loginCustodian(ctx, m, token, pin)
	if err != nil {
		return "", err
	}
	defer done()
	b, err := readShare(ctx, s, d.CeremonyID, d.Epoch, d.Number)
	if err != nil {
		return "", fmt.Errorf("share #%d of %s on token %q: %w", d.Number, d.CeremonyID, token, err)
	}
	defer secret.Zero(b)
	return string(b), nil
}
