package ceremony

import (
	"context"
	"fmt"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/secret"
)

// shareLabel names a share's data object on a custodian's token.
func shareLabel(ceremonyID string, number int) string {
	return fmt.Sprintf("custos share %s #%d", ceremonyID, number)
}

// WriteShareToToken stores a custodian's share on their own token as a private data object,
// readable only after login with their PIN. It is the destination a custodian can choose
// instead of copying the share by hand.
func WriteShareToToken(ctx context.Context, module, token string, pin []byte, d ShareDelivery, opts ...hsm.Option) error {
	s, done, err := custodianSession(ctx, module, token, pin, opts)
	if err != nil {
		return err
	}
	defer done()
	label := shareLabel(d.CeremonyID, d.Number)
	if _, err := s.Destroy(ctx, hsm.Match{Class: hsm.ClassData, Label: label}); err != nil {
		return err
	}
	value := []byte(d.Text)
	defer secret.Zero(value)
	return s.StoreData(ctx, hsm.DataObject{Application: "custos", Label: label, Value: value, Private: true})
}

// ReadShareFromToken reads a share back from a custodian's token.
func ReadShareFromToken(ctx context.Context, module, token string, pin []byte, ceremonyID string, number int, opts ...hsm.Option) (string, error) {
	s, done, err := custodianSession(ctx, module, token, pin, opts)
	if err != nil {
		return "", err
	}
	defer done()
	obj, err := s.Data(ctx, "custos", shareLabel(ceremonyID, number))
	if err != nil {
		return "", fmt.Errorf("share #%d of %s on token %q: %w", number, ceremonyID, token, err)
	}
	defer secret.Zero(obj.Value)
	return string(obj.Value), nil
}

func custodianSession(ctx context.Context, module, token string, pin []byte, opts []hsm.Option) (*hsm.Session, func(), error) {
	m, err := hsm.Open(module, opts...)
	if err != nil {
		return nil, nil, err
	}
	s, err := m.OpenSession(ctx, token)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	if err := s.Login(ctx, hsm.User, pin); err != nil {
		s.Close()
		m.Close()
		return nil, nil, fmt.Errorf("custodian token %q: %w", token, err)
	}
	return s, func() { s.Logout(context.Background()); s.Close(); m.Close() }, nil
}
