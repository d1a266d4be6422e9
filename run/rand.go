package run

import (
	"context"
	"io"

	"github.com/custos-pki/custos/hsm"
)

// TokenRand reads the token's RNG through session s as an io.Reader, for serial numbers and
// key ids drawn on the token that makes them.
func TokenRand(ctx context.Context, s *hsm.Session) io.Reader { return tokenRand{ctx, s} }

type tokenRand struct {
	ctx context.Context
	s   *hsm.Session
}

func (t tokenRand) Read(p []byte) (int, error) {
	b, err := t.s.Random(t.ctx, len(p))
	if err != nil {
		return 0, err
	}
	return copy(p, b), nil
}
