// Package opstoken reaches the keys that live on the operations token — issuing CAs and the
// record signer — for the workflows that sign with them under the operator's PIN.
package opstoken

import (
	"context"
	"crypto/x509"
	"fmt"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
)

// Key is a key on a token, logged in, until Close.
type Key struct {
	*hsm.Signer
	sess *hsm.Session
}

// Close logs out and closes the session.
func (k *Key) Close() {
	if k.sess != nil {
		k.sess.Logout(context.Background())
		k.sess.Close()
	}
}

// Open logs in to the token at loc with pin and finds the private key there.
func Open(ctx context.Context, mod *hsm.Module, loc registry.KeyLocation, pin []byte) (*Key, error) {
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

// RecordSigner opens the record-signer key of the ceremony, with its certificate and the
// chain to root, for signing PDF records.
func RecordSigner(ctx context.Context, reg *registry.Registry, mod *hsm.Module, ceremonyID string, root *x509.Certificate, pin []byte) (record.Signer, *Key, error) {
	rc, err := reg.ActiveRoleCert(ctx, registry.RoleRecordSigner, ceremonyID)
	if err != nil {
		return record.Signer{}, nil, fmt.Errorf("record signer of %s: %w", ceremonyID, err)
	}
	cert, err := x509.ParseCertificate(rc.Certificate)
	if err != nil {
		return record.Signer{}, nil, fmt.Errorf("record signer of %s: %w", ceremonyID, err)
	}
	k, err := Open(ctx, mod, rc.Key, pin)
	if err != nil {
		return record.Signer{}, nil, err
	}
	return record.Signer{Key: k, Certificate: cert, Chain: []*x509.Certificate{root}}, k, nil
}

// Issuer opens an issuing CA's key and certificate from the registry.
func Issuer(ctx context.Context, reg *registry.Registry, mod *hsm.Module, ref string, pin []byte) (registry.Issuer, *x509.Certificate, *Key, error) {
	iss, err := reg.Issuer(ctx, ref)
	if err != nil {
		return registry.Issuer{}, nil, nil, err
	}
	if iss.Status != registry.StatusActive {
		return registry.Issuer{}, nil, nil, fmt.Errorf("issuer %s is %s", iss.ID, iss.Status)
	}
	cert, err := x509.ParseCertificate(iss.Certificate)
	if err != nil {
		return registry.Issuer{}, nil, nil, err
	}
	k, err := Open(ctx, mod, iss.Key, pin)
	if err != nil {
		return registry.Issuer{}, nil, nil, fmt.Errorf("issuer %s: %w", iss.ID, err)
	}
	return iss, cert, k, nil
}
