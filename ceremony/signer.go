package ceremony

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/keyalg"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/quorum"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// issueRecordSigner generates a record-signer key with CKA_ID id on the operations token
// (logged in as the user) and has issuer certify it for signing records
// (id-kp-documentSigning), storing the certificate beside the key.
func issueRecordSigner(ctx context.Context, ops *hsm.Session, plan *Plan, issuer pki.Issuer, rnd io.Reader, now time.Time, id []byte) (*hsm.Signer, *x509.Certificate, error) {
	label := "record signer " + plan.ID
	key, err := ops.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: keyalg.ECDSAP384, ID: id, Label: label})
	if err != nil {
		return nil, nil, err
	}
	serial, err := pki.NewSerial(rnd)
	if err != nil {
		return nil, nil, err
	}
	left := max(1, int(issuer.Certificate.NotAfter.Sub(now).Hours()/24/366))
	years := min(10, plan.Certificate.ValidityYears, left)
	cert, _, err := pki.Issue(pki.RecordSigner{CommonName: plan.recordSignerName(),
		Organization: plan.Certificate.Organization, Country: plan.Certificate.Country,
		NotBefore: now, ValidityYears: years, EmailProtection: true}, serial, key.Public(), issuer)
	if err != nil {
		return nil, nil, err
	}
	if err := ops.StoreCertificate(ctx, cert, id, label); err != nil {
		return nil, nil, err
	}
	return key, cert, nil
}

// RecordSignerRequest asks for a new record signer.
type RecordSignerRequest struct {
	OpsPIN []byte // the operations token's operator PIN: the new key is made there
}

// RecordSignerResult is a new record signer, and the old one it replaced.
type RecordSignerResult struct {
	RunID       string
	Certificate *x509.Certificate
	Path        string
	Replaced    string // the old signer's serial (hex)
	CRL         run.CRL
}

// NewRecordSigner makes a new record-signer key on the operations token and its certificate
// from the root, revokes the old record signer (superseded, or as it was revoked before) and
// destroys its key, and signs a root CRL that lists it. Later records are signed by the new
// one; this operation's record is its first.
func NewRecordSigner(ctx context.Context, env run.Env, q *quorum.Collector, req RecordSignerRequest) (*RecordSignerResult, error) {
	if len(req.OpsPIN) == 0 {
		return nil, fmt.Errorf("record-signer: %w", run.NewFieldError("OpsPIN", "the operator PIN is needed: the new record-signer key is made on the operations token"))
	}
	id := q.Params().CeremonyID
	old, err := env.Registry.NewestRoleCert(ctx, registry.RoleRecordSigner, id)
	if err != nil {
		return nil, fmt.Errorf("record-signer: %w", err)
	}
	res := &RecordSignerResult{Replaced: old.Serial.String()}
	rid, err := quorumRun(ctx, env, q, "record-signer", req.OpsPIN, func(r *run.Run, u *unlocked) error {
		ops, err := u.mod.OpenSession(ctx, u.q.OperationsToken)
		if err != nil {
			return err
		}
		defer ops.Close()
		if err := ops.Login(ctx, hsm.User, req.OpsPIN); err != nil {
			return fmt.Errorf("operations token %q: %w", u.q.OperationsToken, err)
		}
		defer ops.Logout(context.WithoutCancel(ctx))
		var keyID []byte
		var path string
		err = r.Step(stepSignerCert, record.System, func() (any, error) {
			if keyID, err = ops.Random(ctx, 16); err != nil {
				return nil, err
			}
			if err := r.Note(run.StepKeyIntent, record.System, run.KeyIntent{Token: u.q.OperationsToken, KeyID: keyID}); err != nil {
				return nil, err
			}
			_, cert, err := issueRecordSigner(ctx, ops, u.plan, u.issuer(), run.TokenRand(ctx, u.sess), env.Clock(), keyID)
			if err != nil {
				return nil, err
			}
			name := fmt.Sprintf("%s-record-signer-%s.pem", id, pki.SerialHex(cert.SerialNumber)[:16])
			if path, err = writeCertPEM(env.Workspace, name, cert); err != nil {
				return nil, err
			}
			if _, err := r.Registry().AddRoleCert(ctx, registry.RoleCert{Role: registry.RoleRecordSigner, IssuerID: u.root.ID,
				CeremonyID: id, Certificate: cert.Raw, Key: registry.KeyLocation{TokenLabel: u.q.OperationsToken,
					KeyID: keyID, Algorithm: string(keyalg.ECDSAP384)}}); err != nil {
				return nil, err
			}
			res.Certificate, res.Path = cert, path
			return RecordSignerMade{Token: u.q.OperationsToken, KeyID: keyID,
				Certificate: certificatePayload(cert, string(keyalg.ECDSAP384), path)}, nil
		})
		if err != nil {
			if path != "" {
				os.Remove(path)
			}
			if keyID != nil && res.Certificate == nil {
				return rollbackKey(ctx, r, ops, keyID, err)
			}
			return err
		}
		err = r.Step(stepSignerRevoke, record.System, func() (any, error) {
			rv, already, err := r.Registry().Revoke(ctx, registry.Revocation{IssuerID: u.root.ID, Serial: old.Serial,
				RevokedAt: env.Clock(), Reason: pki.ReasonSuperseded, RunID: r.ID})
			if err != nil {
				return nil, err
			}
			data := SignerRevoked{Serial: old.Serial.String(), Reason: rv.Reason.String(), RevokedAt: rv.RevokedAt, AlreadyRevoked: already}
			if old.Status == registry.StatusActive {
				what := destroyObjects(ops, old.Key.KeyID, "the old record-signer key on "+old.Key.TokenLabel)(ctx)
				if left, err := ops.Remaining(ctx, old.Key.KeyID, ""); err != nil || len(left) > 0 {
					return nil, fmt.Errorf("%s", what)
				}
				if err := r.Registry().DestroyRoleCert(ctx, u.root.ID, old.Serial, env.Clock()); err != nil {
					return nil, err
				}
				data.Key = what
			}
			return data, nil
		})
		if err != nil {
			return err
		}
		return r.Step(stepSignerCRL, record.System, u.signRootCRL(ctx, r, 0, &res.CRL))
	})
	res.RunID = rid
	if err != nil {
		return nil, err
	}
	return res, nil
}

// RetireCARequest names the issuing CA to retire.
type RetireCARequest struct {
	Issuer string // its id or common name
	OpsPIN []byte // operator PIN for signing the record; none: no record
}

// RetireCAResult is an issuing CA retired.
type RetireCAResult struct {
	RunID    string
	IssuerID string
}

// RetireCA retires an issuing CA of the root under quorum: from then on it signs only CRLs
// (for the devices it certified until they expire), never another certificate. It cannot be
// undone.
func RetireCA(ctx context.Context, env run.Env, q *quorum.Collector, req RetireCARequest) (*RetireCAResult, error) {
	rootID := q.Params().CeremonyID
	iss, err := env.Registry.Issuer(ctx, strings.TrimSpace(req.Issuer))
	if err != nil {
		return nil, fmt.Errorf("retire-ca: %w", &run.FieldError{Name: "Issuer", Problem: err.Error(), Err: err})
	}
	if iss.Kind != registry.IssuerIssuing || iss.ParentID != rootID {
		return nil, fmt.Errorf("retire-ca: %w", run.NewFieldError("Issuer", "%s is not an issuing CA of root %s", iss.ID, rootID))
	}
	if iss.Standing.State != registry.StateActive {
		return nil, fmt.Errorf("retire-ca: %w", run.NewFieldError("Issuer", "issuing CA %s is %s already", iss.ID, iss.Standing))
	}
	res := &RetireCAResult{IssuerID: iss.ID}
	rid, err := quorumRun(ctx, env, q, "retire-ca", req.OpsPIN, func(r *run.Run, u *unlocked) error {
		return r.Step(stepRetireCA, record.System, func() (any, error) {
			at := env.Clock()
			if err := r.Registry().SetIssuerState(ctx, iss.ID, registry.Standing{State: registry.StateRetired, At: at, RunID: r.ID}); err != nil {
				return nil, err
			}
			return CARetired{IssuerID: iss.ID, CommonName: iss.CommonName, RetiredAt: at,
				Signs: "CRLs only: no device certificate from now on"}, nil
		})
	})
	res.RunID = rid
	if err != nil {
		return nil, err
	}
	return res, nil
}
