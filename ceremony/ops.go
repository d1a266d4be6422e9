package ceremony

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/inputfile"
	"github.com/custos-pki/custos/internal/secret"
	"github.com/custos-pki/custos/keyalg"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/quorum"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// unlocked is a root opened under quorum: the token logged in as the user with the PIN
// derived from the reconstructed secret.
type unlocked struct {
	q       registry.Quorum
	plan    *Plan
	root    registry.Issuer
	cert    *x509.Certificate
	mod     *hsm.Module
	sess    *hsm.Session
	key     *hsm.Signer
	s       []byte
	userPIN []byte
}

// unlock reconstructs S (checked against its digest before any login), opens the root token
// and logs in.
func unlock(ctx context.Context, env run.Env, q registry.Quorum, c *quorum.Collector) (*unlocked, error) {
	s, err := c.Secret()
	if err != nil {
		return nil, err
	}
	u := &unlocked{q: q, s: s}
	fail := func(err error) (*unlocked, error) {
		u.close(ctx)
		return nil, err
	}
	if u.plan, err = ParsePlan(q.Plan); err != nil {
		return fail(fmt.Errorf("the registry's plan of %s: %w", q.CeremonyID, err))
	}
	if u.root, err = env.Registry.Issuer(ctx, q.CeremonyID); err != nil {
		return fail(err)
	}
	if u.cert, err = x509.ParseCertificate(u.root.Certificate); err != nil {
		return fail(err)
	}
	if u.mod, err = env.OpenModule(ctx, q.ModulePath); err != nil {
		return fail(err)
	}
	if u.sess, err = u.mod.OpenSession(ctx, u.root.Key.TokenLabel); err != nil {
		return fail(err)
	}
	u.userPIN = quorum.RootUserPIN.Derive(s, q.CeremonyID)
	if err := u.sess.Login(ctx, hsm.User, u.userPIN); err != nil {
		return fail(fmt.Errorf("root token %q: %w", u.root.Key.TokenLabel, err))
	}
	if u.key, err = u.sess.Signer(ctx, hsm.Match{Class: hsm.ClassPrivateKey, ID: u.root.Key.KeyID}); err != nil {
		return fail(fmt.Errorf("root key on %q: %w", u.root.Key.TokenLabel, err))
	}
	return u, nil
}

func (u *unlocked) issuer() pki.Issuer { return pki.Issuer{Certificate: u.cert, Signer: u.key} }

func (u *unlocked) close(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	if u.sess != nil {
		u.sess.Logout(ctx)
		u.sess.Close()
	}
	if u.mod != nil {
		u.mod.Close()
	}
	secret.ZeroAll(u.s, u.userPIN)
}

// quorumRun runs one quorum operation: start the run, unlock the root, run the steps,
// finish. The collector stays the caller's, who wipes its shares.
func quorumRun(ctx context.Context, env run.Env, q *quorum.Collector, op string, opsPIN []byte, steps func(r *run.Run, u *unlocked) error) (rid string, err error) {
	p := q.Params()
	if q.Present() < q.Needed() {
		return "", fmt.Errorf("%w: %d of %d shares present; %s needs %d; nothing was changed", quorum.ErrRefused, q.Present(), len(p.Custodians), p.CeremonyID, q.Needed())
	}
	rq, err := collectedQuorum(ctx, env.Registry, q)
	if err != nil {
		return "", err
	}
	r, err := run.StartRun(ctx, env, registry.Run{ID: run.NewID(env, op, p.CeremonyID), Kind: registry.RunCeremony,
		Operation: op, Subject: p.CeremonyID})
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	rid = r.ID
	var recordPath string
	defer func() { err = r.Finish(ctx, err, recordPath) }()
	holders := q.Holders()
	custodians := record.Actor{Name: strings.Join(holders, ", "), Role: "custodians"}
	var u *unlocked
	err = r.Step(stepUnlock(op), custodians, func() (any, error) {
		var err error
		u, err = unlock(ctx, env, rq, q)
		if err != nil {
			return nil, err
		}
		return Unlocked{Custodians: q.Holders(),
			Shares: fmt.Sprintf("%d present, %d needed; each matched its commitment; the reconstruction matched its digest", q.Present(), q.Needed())}, nil
	})
	if err != nil {
		if u != nil {
			u.close(ctx)
		}
		return rid, err
	}
	defer u.close(ctx)
	if err = steps(r, u); err != nil {
		return rid, err
	}
	if len(opsPIN) == 0 {
		return rid, nil // no operator PIN, no record: the journal stands alone
	}
	signer, err := run.OpenRecordSigner(ctx, env.Registry, u.mod, u.q.CeremonyID, u.cert, opsPIN)
	if err != nil {
		return rid, r.Fail(op+".record", record.System, fmt.Errorf("%s done, but its record could not be signed: %w", op, err))
	}
	defer signer.Close()
	// The summary shows the quorum as the operation left it (a reshare's new custodians).
	after, err := env.Registry.Quorum(ctx, u.q.CeremonyID)
	if err != nil {
		return rid, r.Fail(op+".record", record.System, fmt.Errorf("%s done, but its record could not be written: %w", op, err))
	}
	recordPath, err = writeRecord(ctx, r, &record.Ceremony{ID: rid, Kind: op, Root: u.q.CeremonyID, Outcome: "completed",
		Threshold: after.Threshold, Custodians: len(after.Shares), Participants: quorumPeople(holders)}, signer.Signer, u.key)
	if err != nil {
		return rid, r.Fail(op+".record", record.System, fmt.Errorf("%s done, but its record could not be written: %w", op, err))
	}
	return rid, nil
}

// IssueCARequest asks for an issuing CA under the root.
type IssueCARequest struct {
	CommonName    string
	ValidityYears int    // 0 means 10
	OpsPIN        []byte // the operations token's operator PIN
	Algorithm     keyalg.Algorithm
	// ExtKeyUsages limit what the CA certifies: clientAuth when empty, serverAuth too for
	// devices that serve TLS (pki.ParseExtKeyUsages); never anyExtendedKeyUsage.
	ExtKeyUsages []x509.ExtKeyUsage
	// Policies are certificate policy OIDs the CA asserts, and its devices with it.
	Policies []x509.OID
	// CAIssuersURL is the http URL where the root certificate is published (AIA caIssuers).
	CAIssuersURL string
	// CRLBaseURL, when set, splits the CA's device CRL into CRLShards shards (0 means 1): each
	// device certificate it issues names its shard, CRLBaseURL/<issuer id>/<shard>.crl. Both
	// are fixed for the CA's life.
	CRLBaseURL string
	CRLShards  int
}

// check refuses, naming the field, what the issuing CA could not carry, before the quorum is
// asked for anything.
func (req *IssueCARequest) check() error {
	if strings.TrimSpace(req.CommonName) == "" {
		return run.NewFieldError("CommonName", "the issuing CA needs a common name")
	}
	if len(req.OpsPIN) == 0 {
		return run.NewFieldError("OpsPIN", "the operator PIN is needed: the issuing CA key is made on the operations token")
	}
	if err := (pki.IssuingCA{ExtKeyUsages: req.ExtKeyUsages}).CheckOptions(); err != nil {
		return &run.FieldError{Name: "ExtKeyUsages", Problem: err.Error(), Err: err}
	}
	if err := (pki.IssuingCA{Policies: req.Policies}).CheckOptions(); err != nil {
		return &run.FieldError{Name: "Policies", Problem: err.Error(), Err: err}
	}
	if err := (pki.IssuingCA{CAIssuersURL: req.CAIssuersURL}).CheckOptions(); err != nil {
		return &run.FieldError{Name: "CAIssuersURL", Problem: err.Error(), Err: err}
	}
	switch {
	case req.CRLBaseURL == "" && req.CRLShards != 0:
		return run.NewFieldError("CRLShards", "%d CRL shards need the base URL they are published under", req.CRLShards)
	case req.CRLBaseURL == "":
		return nil
	case req.CRLShards == 0:
		req.CRLShards = 1
	case req.CRLShards < 1 || req.CRLShards > pki.MaxCRLShards:
		return run.NewFieldError("CRLShards", "%d CRL shards: give 1 to %d", req.CRLShards, pki.MaxCRLShards)
	}
	if err := (pki.CRLShards{BaseURL: req.CRLBaseURL, Count: req.CRLShards}).CheckBase(); err != nil {
		return &run.FieldError{Name: "CRLBaseURL", Problem: err.Error(), Err: err}
	}
	return nil
}

// IssueCAResult is a new issuing CA.
type IssueCAResult struct {
	RunID       string
	IssuerID    string
	Certificate *x509.Certificate
	Path        string
	Token       string
	JournalPath string
}

// IssueCA generates an issuing CA key on the operations token and signs its certificate with
// the root, lint-then-sign. Nothing changes on a token until the quorum is checked.
func IssueCA(ctx context.Context, env run.Env, q *quorum.Collector, req IssueCARequest) (*IssueCAResult, error) {
	if err := req.check(); err != nil {
		return nil, fmt.Errorf("issue-ca: %w", err)
	}
	if req.ValidityYears == 0 {
		req.ValidityYears = 10
	}
	if req.Algorithm == "" {
		req.Algorithm = keyalg.ECDSAP384
	}
	res := &IssueCAResult{}
	rid, err := quorumRun(ctx, env, q, "issue-ca", req.OpsPIN, func(r *run.Run, u *unlocked) error {
		res.Token = u.q.OperationsToken
		ops, err := u.mod.OpenSession(ctx, u.q.OperationsToken)
		if err != nil {
			return err
		}
		defer ops.Close()
		var key *hsm.Signer
		var keyID []byte
		err = r.Step(stepCAKey, record.System, func() (any, error) {
			if err := ops.Login(ctx, hsm.User, req.OpsPIN); err != nil {
				return nil, fmt.Errorf("operations token %q: %w", u.q.OperationsToken, err)
			}
			if keyID, err = ops.Random(ctx, 16); err != nil {
				return nil, err
			}
			if err := r.Note(run.StepKeyIntent, record.System, run.KeyIntent{Token: u.q.OperationsToken, KeyID: keyID}); err != nil {
				return nil, err
			}
			key, err = ops.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: req.Algorithm, ID: keyID, Label: "issuing CA " + req.CommonName})
			if err != nil {
				return nil, err
			}
			return KeyGenerated{Token: u.q.OperationsToken, KeyID: keyID, Algorithm: string(req.Algorithm)}, nil
		})
		if err != nil {
			if keyID != nil { // a generation that fails half way can leave the key behind
				err = rollbackKey(ctx, r, ops, keyID, err)
			}
			return err
		}
		defer ops.Logout(context.WithoutCancel(ctx))
		err = r.Step(stepCACert, record.System, func() (any, error) {
			serial, err := pki.NewSerial(run.TokenRand(ctx, u.sess))
			if err != nil {
				return nil, err
			}
			cert, _, err := pki.Issue(pki.IssuingCA{CommonName: req.CommonName, Organization: u.plan.Certificate.Organization,
				Country: u.plan.Certificate.Country, NotBefore: env.Clock(), ValidityYears: req.ValidityYears,
				CRLDistributionPoint: u.plan.CRLDistributionPoint, ExtKeyUsages: req.ExtKeyUsages, Policies: req.Policies,
				CAIssuersURL: req.CAIssuersURL}, serial, key.Public(), u.issuer())
			if err != nil {
				return nil, err
			}
			if err := ops.StoreCertificate(ctx, cert, keyID, "issuing CA "+req.CommonName); err != nil {
				return nil, err
			}
			id := registry.NewIssuerID(registry.IssuerIssuing, u.q.CeremonyID, cert)
			path, err := writeCertPEM(env.Workspace, id+".pem", cert)
			if err != nil {
				return nil, err
			}
			if _, err := env.Registry.AddIssuer(ctx, registry.Issuer{ID: id, Kind: registry.IssuerIssuing, Certificate: cert.Raw,
				ParentID: u.root.ID, CeremonyID: u.q.CeremonyID, Key: registry.KeyLocation{TokenLabel: u.q.OperationsToken,
					KeyID: keyID, Algorithm: string(req.Algorithm)}, CRLBaseURL: req.CRLBaseURL, CRLShards: req.CRLShards}); err != nil {
				os.Remove(path)
				return nil, err
			}
			res.IssuerID, res.Certificate, res.Path = id, cert, path
			return IssuingCAMade{IssuerID: id, Certificate: certificatePayload(cert, string(req.Algorithm), path),
				CRLBaseURL: req.CRLBaseURL, CRLShards: req.CRLShards, Profile: caProfile(cert)}, nil
		})
		if err != nil {
			return rollbackKey(ctx, r, ops, keyID, err)
		}
		return nil
	})
	res.RunID = rid
	if err != nil {
		return nil, err
	}
	res.JournalPath = env.JournalPath(rid)
	return res, nil
}

// caProfile says what an issuing CA certificate allows, for its journal entry.
func caProfile(c *x509.Certificate) CAProfile {
	p := CAProfile{ExtKeyUsages: pki.ExtKeyUsageNames(c.ExtKeyUsage), CAIssuers: c.IssuingCertificateURL}
	for _, o := range c.Policies {
		p.Policies = append(p.Policies, o.String())
	}
	return p
}

// rollbackKey destroys an unfinished issuing CA key and journals the outcome with its id. It
// returns the step's error cause, with the journal's failure if it could not record that.
func rollbackKey(ctx context.Context, r *run.Run, ops *hsm.Session, keyID []byte, cause error) error {
	what := destroyObjects(ops, keyID, "unfinished issuing CA key")(context.WithoutCancel(ctx))
	if err := r.Note("issue-ca.rollback", record.System, run.RolledBack{Undone: what}); err != nil {
		return fmt.Errorf("%w; %s, but the journal could not record it: %w", cause, what, err)
	}
	return cause
}

// RootCRLRequest asks for a root CRL, optionally revoking an issuing CA first.
type RootCRLRequest struct {
	Revoke         string // serial (hex) of an issuing CA certificate to revoke, or ""
	Reason         pki.Reason
	NextUpdateDays int    // 0: the plan's crl_next_update_days
	OpsPIN         []byte // operator PIN for signing the record; none: no record
}

// RootCRLResult is a signed root CRL.
type RootCRLResult struct {
	RunID string
	CRL   run.CRL
}

// RootCRLReasons are the reasons a root CRL can give for revoking an issuing CA, the usual
// one first.
func RootCRLReasons() []pki.Reason {
	return []pki.Reason{pki.ReasonCessationOfOperation, pki.ReasonKeyCompromise, pki.ReasonCACompromise,
		pki.ReasonSuperseded, pki.ReasonAffiliationChanged}
}

// RootCRL signs the root's CRL under quorum.
func RootCRL(ctx context.Context, env run.Env, q *quorum.Collector, req RootCRLRequest) (*RootCRLResult, error) {
	var serial registry.SerialNumber
	if req.Revoke != "" {
		var err error
		if serial, err = registry.ParseSerial(req.Revoke); err != nil {
			return nil, fmt.Errorf("crl: %w", run.NewFieldError("Revoke", "the serial to revoke, %q: %v", req.Revoke, err))
		}
		if !slices.Contains(RootCRLReasons(), req.Reason) {
			return nil, fmt.Errorf("crl: %w", run.NewFieldError("Reason", "a root CRL revokes an issuing CA for one of %s, not %s", pki.ReasonNames(RootCRLReasons()), req.Reason))
		}
	}
	if err := checkRootCRLWindow(ctx, env, q, req.NextUpdateDays); err != nil {
		return nil, fmt.Errorf("crl: %w", err)
	}
	res := &RootCRLResult{}
	rid, err := quorumRun(ctx, env, q, "crl", req.OpsPIN, func(r *run.Run, u *unlocked) error {
		if serial != nil {
			err := r.Step(stepCRLRevoke, record.System, func() (any, error) {
				rv, already, err := env.Registry.Revoke(ctx, registry.Revocation{IssuerID: u.root.ID, Serial: serial,
					RevokedAt: env.Clock(), Reason: req.Reason})
				if err != nil {
					return nil, err
				}
				return CARevoked{Serial: serial.String(), Reason: req.Reason.String(), AlreadyRevoked: already, RevokedAt: rv.RevokedAt}, nil
			})
			if err != nil {
				return err
			}
		}
		days := req.NextUpdateDays
		if days == 0 {
			days = u.plan.crlNextUpdateDays()
		}
		return r.Step(stepCRLSign, record.System, func() (any, error) {
			c, err := run.SignCRL(ctx, env, u.root, u.issuer(), run.CRLRequest{NextUpdate: time.Duration(days) * 24 * time.Hour,
				MaxNextUpdate: time.Duration(u.plan.crlNextUpdateDays()) * 24 * time.Hour})
			if err != nil {
				return nil, err
			}
			res.CRL = c
			return c.Payload(u.root.ID), nil
		})
	})
	res.RunID = rid
	if err != nil {
		return nil, err
	}
	return res, nil
}

// checkRootCRLWindow refuses, before the quorum is used, a root CRL that would stay current
// longer than the plan's crl_next_update_days or past the root's notAfter (a *pki.LimitError).
func checkRootCRLWindow(ctx context.Context, env run.Env, q *quorum.Collector, days int) error {
	if days == 0 {
		return nil
	}
	rq, err := collectedQuorum(ctx, env.Registry, q)
	if err != nil {
		return err
	}
	plan, err := ParsePlan(rq.Plan)
	if err != nil {
		return fmt.Errorf("the registry's plan of %s: %w", rq.CeremonyID, err)
	}
	root, err := env.Registry.Issuer(ctx, rq.CeremonyID)
	if err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(root.Certificate)
	if err != nil {
		return err
	}
	now := env.Clock().Truncate(time.Second)
	return pki.CheckNextUpdate(cert, now, now.AddDate(0, 0, days), time.Duration(plan.crlNextUpdateDays())*24*time.Hour)
}

// DestroyResult is the end of a root.
type DestroyResult struct {
	RunID     string
	Destroyed int
	Token     string
}

// Destroy destroys the root key and every object on each token of the module that holds
// the root (where it lives now and, after a restore, the ceremony's original token),
// verifies none remains, and records the end of the root. It cannot be undone.
// opsPIN, when given, signs the record with the record-signer key.
func Destroy(ctx context.Context, env run.Env, q *quorum.Collector, opsPIN []byte) (*DestroyResult, error) {
	res := &DestroyResult{}
	rid, err := quorumRun(ctx, env, q, "destroy", opsPIN, func(r *run.Run, u *unlocked) error {
		res.Token = u.root.Key.TokenLabel
		if len(opsPIN) > 0 {
			// The root attests the run before its key is gone: the entry covers the journal up
			// to the destruction, which the record's own signature then covers.
			if err := attestBeforeDestruction(ctx, env, r, u, opsPIN); err != nil {
				return err
			}
		}
		return r.Step(stepDestroy, record.System, func() (any, error) {
			var data RootDestroyed
			n, names, err := eraseAll(ctx, u.sess)
			if err != nil {
				return nil, fmt.Errorf("token %q: %w", res.Token, err)
			}
			res.Destroyed += n
			data.Tokens = append(data.Tokens, TokenErased{Token: res.Token, Destroyed: names})
			if orig := u.q.CeremonyID; orig != res.Token {
				if _, err := u.mod.TokenByLabel(ctx, orig); err == nil {
					n, names, err := eraseToken(ctx, u.mod, orig, u.userPIN)
					if err != nil {
						return nil, fmt.Errorf("the original root token %q still holds the root: %w", orig, err)
					}
					res.Destroyed += n
					data.Tokens = append(data.Tokens, TokenErased{Token: orig, Destroyed: names})
				}
			}
			data.DestroyedAt = env.Clock()
			if err := env.Registry.DestroyRoot(ctx, u.q.CeremonyID, data.DestroyedAt); err != nil {
				return nil, err
			}
			data.Verification = "no object remains on any token that held the root (searched logged in as the user)"
			return data, nil
		})
	})
	res.RunID = rid
	if err != nil {
		return nil, err
	}
	return res, nil
}

// attestBeforeDestruction enters the destroy run in the record log while the root key can
// still sign: the record signer and the root sign the checkpoint, and the root attests the
// run's entry.
func attestBeforeDestruction(ctx context.Context, env run.Env, r *run.Run, u *unlocked, opsPIN []byte) error {
	signer, err := run.OpenRecordSigner(ctx, env.Registry, u.mod, u.q.CeremonyID, u.cert, opsPIN)
	if err != nil {
		return fmt.Errorf("destroy: the record signer, to log the run before the root is gone: %w", err)
	}
	defer signer.Close()
	_, err = r.EnterLog(ctx, run.LogSeal{Kind: "destroy", RootID: u.q.CeremonyID, Root: u.cert, RootKey: u.key}, signer.Signer)
	return err
}

func eraseToken(ctx context.Context, mod *hsm.Module, label string, pin []byte) (int, []string, error) {
	s, err := mod.OpenSession(ctx, label)
	if err != nil {
		return 0, nil, err
	}
	defer s.Close()
	if err := s.Login(ctx, hsm.User, pin); err != nil {
		return 0, nil, err
	}
	defer s.Logout(context.WithoutCancel(ctx))
	return eraseAll(ctx, s)
}

// eraseAll destroys every object the logged-in session sees and checks that none remains.
func eraseAll(ctx context.Context, s *hsm.Session) (int, []string, error) {
	objs, err := s.Objects(ctx)
	if err != nil {
		return 0, nil, err
	}
	var names []string
	for _, o := range objs {
		if err := s.DestroyObject(ctx, o); err != nil {
			return 0, nil, err
		}
		names = append(names, o.String())
	}
	left, err := s.Objects(ctx)
	if err != nil {
		return 0, nil, err
	}
	if len(left) > 0 {
		return 0, nil, fmt.Errorf("%d objects remain after destruction: %v", len(left), left)
	}
	return len(objs), names, nil
}

// RestoreRequest restores the root key from its backup into a new token.
type RestoreRequest struct {
	Backup string // the wrapped blob
	Token  string // label for the new token, initialised on a free slot
	OpsPIN []byte // operator PIN for signing the record; none: no record
}

// RestoreResult is a root restored into a new token.
type RestoreResult struct {
	RunID string
	Token string
}

// maxBackupFile bounds a backup file that restore reads: a wrapped root key is at most a few
// KiB (an RSA-4096 key is about 2.4 KiB).
const maxBackupFile = 64 << 10

// Restore initialises a new token with the PINs of the quorum, unwraps the backup into it,
// checks the restored key signs for the root certificate, and moves the root's key location
// to it in the registry.
func Restore(ctx context.Context, env run.Env, q *quorum.Collector, req RestoreRequest) (*RestoreResult, error) {
	if req.Token == "" {
		return nil, fmt.Errorf("restore: %w", run.NewFieldError("Token", "name the new token"))
	}
	blob, err := inputfile.Read(ctx, "backup", req.Backup, maxBackupFile)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", &run.FieldError{Name: "Backup", Problem: err.Error(), Err: err})
	}
	rq, err := collectedQuorum(ctx, env.Registry, q)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	sum := sha256.Sum256(blob)
	if want := rq.BackupSHA256; len(want) > 0 && !strings.EqualFold(hex.EncodeToString(want), hex.EncodeToString(sum[:])) {
		return nil, fmt.Errorf("restore: %w", run.NewFieldError("Backup", "%s is not the backup of %s at epoch %d (its SHA-256 differs from the registry's)", req.Backup, rq.CeremonyID, rq.Epoch))
	}
	res := &RestoreResult{Token: req.Token}
	rid, err := quorumRun(ctx, env, q, "restore", req.OpsPIN, func(r *run.Run, u *unlocked) error {
		return r.Step(stepRestore, record.System, func() (any, error) {
			if _, err := u.mod.TokenByLabel(ctx, req.Token); err == nil {
				return nil, fmt.Errorf("a token labelled %q already exists; restore needs a new, uninitialised token", req.Token)
			}
			slot, err := u.mod.FreeSlot(ctx)
			if err != nil {
				return nil, err
			}
			so := quorum.RootSOPIN.Derive(u.s, u.q.CeremonyID)
			defer secret.Zero(so)
			if _, err := u.mod.InitToken(ctx, slot.ID, req.Token, so, u.userPIN); err != nil {
				return nil, err
			}
			ns, err := u.mod.OpenSession(ctx, req.Token)
			if err != nil {
				return nil, err
			}
			defer ns.Close()
			if err := ns.Login(ctx, hsm.User, u.userPIN); err != nil {
				return nil, err
			}
			defer ns.Logout(context.WithoutCancel(ctx))
			kek := quorum.KEK(u.s, u.q.CeremonyID)
			defer secret.Zero(kek)
			key, err := ns.RestoreKey(ctx, kek, blob, hsm.UnwrapSpec{ID: u.root.Key.KeyID, Label: "root " + u.q.CeremonyID, Public: u.cert.PublicKey})
			if err != nil {
				return nil, err
			}
			if err := signs(key, u.cert); err != nil {
				return nil, err
			}
			if err := ns.StoreCertificate(ctx, u.cert, u.root.Key.KeyID, "root "+u.q.CeremonyID); err != nil {
				return nil, err
			}
			to := u.root.Key
			to.TokenLabel = req.Token
			if err := env.Registry.MoveIssuerKey(ctx, u.root.ID, to); err != nil {
				return nil, err
			}
			info, _ := ns.TokenInfo(ctx)
			return Restored{Token: req.Token, TokenSerial: info.SerialOrNone(), Backup: req.Backup,
				BackupSHA256: hex.EncodeToString(sum[:]),
				Verification: "the restored key signs, and its signature verifies under the root certificate"}, nil
		})
	})
	res.RunID = rid
	if err != nil {
		return nil, err
	}
	return res, nil
}
