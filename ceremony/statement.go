package ceremony

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/quorum"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// ErrNotAsSigned is wrapped by every refusal of a registry whose quorum is not the one its
// root signed (see quorum.Statement): the workspace was changed outside Custos, or the module
// file on disk is not the one the quorum accepted.
var ErrNotAsSigned = errors.New("not as the root signed it")

// VerifiedQuorum is a root's quorum as the root's newest statement states it, verified
// against the root certificate and held against the registry: what custodians compare with
// their ceremony record (the root's fingerprint in words, the module and its SHA-256) before
// they enter a share.
type VerifiedQuorum struct {
	Statement   *quorum.Statement
	Seq         int // the statement's number
	Root        *x509.Certificate
	Fingerprint pki.Fingerprint // of Root
}

// VerifyQuorum reads the quorum of the root rootID and verifies it (see verifyQuorum).
func VerifyQuorum(ctx context.Context, reg *registry.Registry, rootID string) (*VerifiedQuorum, error) {
	iss, err := reg.Issuer(ctx, rootID)
	if err != nil {
		return nil, err
	}
	if iss.Kind != registry.IssuerRoot {
		return nil, fmt.Errorf("%s is an issuing CA, not a root: quorum operations act on a root", rootID)
	}
	q, err := activeQuorum(ctx, reg, iss.CeremonyID)
	if err != nil {
		return nil, err
	}
	return verifyQuorum(q, iss)
}

// verifyQuorum checks the root's newest statement against the root certificate, then every
// fact a quorum operation takes from the registry against it: the epoch, threshold,
// custodians, commitments and digest shares are checked against; the plan whose subject and
// CRL address the root signs; the operations token; the module; the token and id of the root
// key. A registry that differs in any of them is refused, naming the fact and both values.
func verifyQuorum(q registry.Quorum, root registry.Issuer) (*VerifiedQuorum, error) {
	cert, err := x509.ParseCertificate(root.Certificate)
	if err != nil {
		return nil, fmt.Errorf("the registry's root certificate of %s: %w", q.CeremonyID, err)
	}
	st := q.Statement
	if len(st.Text) == 0 {
		return nil, fmt.Errorf("%w: root %s has no quorum statement: a quorum operation trusts nothing the root did not sign; run it from a workspace with the statement its ceremony signed", ErrNotAsSigned, q.CeremonyID)
	}
	s, err := quorum.SignedStatement{Text: st.Text, Signature: st.Signature}.Verify(cert)
	if err != nil {
		return nil, fmt.Errorf("%w: quorum statement %d of %s: %w", ErrNotAsSigned, st.Seq, q.CeremonyID, err)
	}
	fp := pki.CertificateFingerprint(cert)
	differs := func(what string, registry, signed any) error {
		return fmt.Errorf("%w: the registry says the %s of %s is %v, but the quorum statement the root signed (number %d, run %s) says %v: the workspace was changed outside Custos; nothing was done",
			ErrNotAsSigned, what, q.CeremonyID, registry, s.Seq, s.Run, signed)
	}
	switch {
	case s.Seq != st.Seq:
		return nil, differs("statement number", st.Seq, s.Seq)
	case s.Root != q.CeremonyID:
		return nil, differs("root", q.CeremonyID, s.Root)
	case s.Module.Path != q.ModulePath:
		return nil, differs("PKCS#11 module", q.ModulePath, s.Module.Path)
	case s.OperationsToken != q.OperationsToken:
		return nil, differs("operations token", q.OperationsToken, s.OperationsToken)
	case s.PlanSHA256 != hex.EncodeToString(q.PlanSHA256[:]):
		return nil, differs("plan's SHA-256", hex.EncodeToString(q.PlanSHA256[:]), s.PlanSHA256)
	case s.RootToken.Label != root.Key.TokenLabel:
		return nil, differs("root key's token", root.Key.TokenLabel, s.RootToken.Label)
	case s.RootKeyID != hex.EncodeToString(root.Key.KeyID):
		return nil, differs("root key's id", hex.EncodeToString(root.Key.KeyID), s.RootKeyID)
	}
	if err := quorum.SameQuorum(quorumParams(q, fp[:]), s.Params()); err != nil {
		return nil, fmt.Errorf("%w: the registry's quorum of %s is not the one the root signed (statement %d, run %s): %v; the workspace was changed outside Custos; nothing was done",
			ErrNotAsSigned, q.CeremonyID, s.Seq, s.Run, err)
	}
	return &VerifiedQuorum{Statement: s, Seq: st.Seq, Root: cert, Fingerprint: fp}, nil
}

// openModule hashes the PKCS#11 module at path and loads it: refused before it is loaded when
// want is not empty and the file's SHA-256 is another, naming both, and after it is loaded if
// the file was replaced in between.
func openModule(ctx context.Context, env run.Env, path, want string) (*hsm.Module, hsm.ModuleFile, error) {
	file, err := hsm.HashModule(ctx, path)
	if err != nil {
		return nil, hsm.ModuleFile{}, err
	}
	if want != "" && file.SHA256 != want {
		return nil, file, fmt.Errorf("%w: the PKCS#11 module %s has SHA-256 %s, but the quorum accepted %s: it was not loaded and no share was combined; if the HSM's driver was updated, accept the new module under quorum with custos ceremony set-module",
			ErrNotAsSigned, file.Path, file.SHA256, want)
	}
	mod, err := hsm.Open(file.Path, env.HSMOptions...)
	if err != nil {
		return nil, file, err
	}
	if err := file.Unchanged(); err != nil {
		mod.Close()
		return nil, file, fmt.Errorf("%w: %w", ErrNotAsSigned, err)
	}
	return mod, file, nil
}

// tokenIdentity is how the statement names a token.
func tokenIdentity(t hsm.TokenInfo) quorum.TokenIdentity {
	return quorum.TokenIdentity{Label: t.Label, Manufacturer: t.Manufacturer, Model: t.Model, Serial: t.SerialOrNone()}
}

// signStatement has key, the root key certified by root, sign s as statement number seq of
// run r, and returns it as the registry keeps it and as the journal records it.
func signStatement(key crypto.Signer, root *x509.Certificate, s quorum.Statement, runID string) (registry.Statement, StatementSigned, error) {
	ss, err := s.Sign(key, root)
	if err != nil {
		return registry.Statement{}, StatementSigned{}, err
	}
	fp := pki.FingerprintOf(ss.Text)
	return registry.Statement{Seq: s.Seq, Text: ss.Text, Signature: ss.Signature, RunID: runID},
		StatementSigned{Seq: s.Seq, Epoch: s.Epoch, Module: s.Module.Path, ModuleSHA256: s.Module.SHA256,
			RootToken: s.RootToken.String(), SHA256: fp.String(), Statement: string(ss.Text), Signature: ss.Signature}, nil
}

// nextStatement is the statement that follows v's, for run runID at the time now: the caller
// changes what the run changed.
func (v *VerifiedQuorum) nextStatement(runID string, env run.Env) quorum.Statement {
	s := *v.Statement
	s.Custodians = append([]quorum.StatementCustodian(nil), s.Custodians...)
	s.Holders = append([]quorum.Holder(nil), v.Statement.HolderList()...)
	s.Type, s.Version = "", 0 // written anew in this Custos's version
	s.Seq, s.Run, s.SignedAt = v.Seq+1, runID, env.Clock()
	return s
}
