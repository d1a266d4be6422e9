package run

import (
	"context"
	"crypto/x509"
	"fmt"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
)

// Key is a private key on a token, its session logged in, until Close. The operations token's
// keys (issuing CAs, the record signer) are opened this way with the operator PIN.
type Key struct {
	*hsm.Signer
	sess *hsm.Session
}

// Close logs out and closes the key's session.
func (k *Key) Close() {
	if k != nil && k.sess != nil {
		k.sess.Logout(context.Background())
		k.sess.Close()
	}
}

// openKey logs in to the token at loc with pin and finds the private key there. pin stays the
// caller's.
func openKey(ctx context.Context, mod *hsm.Module, loc registry.KeyLocation, pin []byte) (*Key, error) {
	s, err := mod.OpenSession(ctx, loc.TokenLabel)
	if err != nil {
		return nil, err
	}
	if err := s.Login(ctx, hsm.User, pin); err != nil {
		s.Close()
		return nil, fmt.Errorf("token %q: %w", loc.TokenLabel, err)
	}
	k, err := s.Signer(ctx, hsm.Match{Class: hsm.ClassPrivateKey, ID: loc.KeyID})
	if err != nil {
		s.Logout(ctx)
		s.Close()
		return nil, fmt.Errorf("key %x on token %q: %w", loc.KeyID, loc.TokenLabel, err)
	}
	return &Key{Signer: k, sess: s}, nil
}

// Issuer is a CA opened on its token: the registry's entry, its certificate and its key.
type Issuer struct {
	Entry       registry.Issuer
	Certificate *x509.Certificate
	Key         *Key
}

// Signer is the CA as pki signs with it.
func (i *Issuer) Signer() pki.Issuer { return pki.Issuer{Certificate: i.Certificate, Signer: i.Key} }

// Close closes the CA's key.
func (i *Issuer) Close() { i.Key.Close() }

// OpenIssuer opens the issuing CA ref (an id or common name, see registry.Issuer) with the
// operator PIN, once CheckIssuer lets it sign for use: its key must be on a token pin logs in
// to. A root is refused before any token is opened.
func OpenIssuer(ctx context.Context, reg *registry.Registry, mod *hsm.Module, ref string, pin []byte, use Use) (*Issuer, error) {
	iss, err := CheckIssuer(ctx, reg, ref, use)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(iss.Certificate)
	if err != nil {
		return nil, err
	}
	k, err := openKey(ctx, mod, iss.Key, pin)
	if err != nil {
		return nil, fmt.Errorf("issuer %s: %w", iss.ID, err)
	}
	return &Issuer{Entry: iss, Certificate: cert, Key: k}, nil
}

// RecordSigner is the record-signing key opened on the operations token, with its
// certificate and the chain to the root, until Close.
type RecordSigner struct {
	record.Signer
	RootID string // the ceremony id of the root it chains to
	key    *Key
}

// Close closes the record signer's key.
func (s *RecordSigner) Close() { s.key.Close() }

// OpenRecordSigner opens the record signer of the root ceremonyID (whose certificate is root)
// with the operator PIN, for signing PDF records, once CheckRecordSigner lets it sign.
func OpenRecordSigner(ctx context.Context, reg *registry.Registry, mod *hsm.Module, ceremonyID string, root *x509.Certificate, pin []byte) (*RecordSigner, error) {
	rc, err := CheckRecordSigner(ctx, reg, ceremonyID)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(rc.Certificate)
	if err != nil {
		return nil, fmt.Errorf("record signer of %s: %w", ceremonyID, err)
	}
	k, err := openKey(ctx, mod, rc.Key, pin)
	if err != nil {
		return nil, err
	}
	return &RecordSigner{Signer: record.Signer{Key: k, Certificate: cert, Chain: []*x509.Certificate{root}}, RootID: ceremonyID, key: k}, nil
}
