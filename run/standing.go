package run

import (
	"context"
	"errors"
	"fmt"

	"github.com/custos-pki/custos/registry"
)

// Use is what an operator command has an issuing CA sign.
type Use int

const (
	SignCertificates Use = iota // device certificates: only an active issuing CA does
	SignCRLs                    // its CRL: an active or a retired issuing CA does
)

var (
	// ErrRootUnderQuorum is the refusal of an operator command that names a root: the
	// operator PIN never logs in to the root token.
	ErrRootUnderQuorum = errors.New("the root signs only under quorum: use custos ceremony crl")
	// ErrCannotSign is the refusal of a CA or record signer whose state forbids what was
	// asked: revoked, retired, destroyed, or under a destroyed root.
	ErrCannotSign = errors.New("its state forbids it to sign")
)

// refusal is an ErrCannotSign that says why in its own words.
type refusal struct{ msg string }

func (e *refusal) Error() string        { return e.msg }
func (e *refusal) Is(target error) bool { return target == ErrCannotSign }

func refused(format string, args ...any) error { return &refusal{msg: fmt.Sprintf(format, args...)} }

// CheckIssuer is the CA ref (an id or common name) as the registry has it, if its state lets
// it sign for use: a root is refused (it signs only under quorum), a revoked or destroyed
// issuing CA signs nothing, a retired one only CRLs, and none under a destroyed root. It opens
// no token: an operator command is refused before any login.
func CheckIssuer(ctx context.Context, reg *registry.Registry, ref string, use Use) (registry.Issuer, error) {
	iss, err := reg.Issuer(ctx, ref)
	if err != nil {
		return registry.Issuer{}, err
	}
	if iss.Kind == registry.IssuerRoot {
		return registry.Issuer{}, fmt.Errorf("%s is a root CA: %w", iss.ID, ErrRootUnderQuorum)
	}
	refuse := func(why string) (registry.Issuer, error) {
		return registry.Issuer{}, refused("issuing CA %s (%s) was %s: %s", iss.ID, iss.CommonName, iss.Standing, why)
	}
	switch st := iss.Standing.State; {
	case st == registry.StateRevoked:
		return refuse("a revoked issuing CA signs nothing")
	case st == registry.StateDestroyed:
		return refuse("its key is destroyed")
	case st == registry.StateRetired && use != SignCRLs:
		return refuse("a retired issuing CA signs only CRLs")
	case st != registry.StateActive && st != registry.StateRetired:
		return refuse("it signs nothing")
	}
	root, err := reg.Issuer(ctx, iss.ParentID)
	if err != nil {
		return registry.Issuer{}, fmt.Errorf("the root of %s: %w", iss.ID, err)
	}
	if root.Standing.State == registry.StateDestroyed {
		return registry.Issuer{}, refused("issuing CA %s: its root %s was %s, and what it made signs nothing after", iss.ID, root.ID, root.Standing)
	}
	return iss, nil
}

// CheckRecordSigner is the record signer of the root ceremonyID, if one may sign a record: the
// newest one is refused when it is revoked, retired or destroyed, or the root is destroyed,
// saying which and by which run. It opens no token.
func CheckRecordSigner(ctx context.Context, reg *registry.Registry, ceremonyID string) (registry.RoleCert, error) {
	root, err := reg.Issuer(ctx, ceremonyID)
	if err != nil {
		return registry.RoleCert{}, fmt.Errorf("record signer of %s: %w", ceremonyID, err)
	}
	if root.Standing.State == registry.StateDestroyed {
		return registry.RoleCert{}, refused("record signer of %s: the root was %s, and its record signer signs nothing after", ceremonyID, root.Standing)
	}
	rc, err := reg.NewestRoleCert(ctx, registry.RoleRecordSigner, ceremonyID)
	if err != nil {
		return registry.RoleCert{}, err
	}
	if rc.Standing.State != registry.StateActive {
		return registry.RoleCert{}, refused("the record signer of %s (serial %s) was %s: it signs no record; make a new one under quorum with custos ceremony record-signer",
			ceremonyID, rc.Serial, rc.Standing)
	}
	return rc, nil
}
