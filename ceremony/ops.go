package ceremony

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/inputfile"
	"github.com/custos-pki/custos/internal/opstoken"
	"github.com/custos-pki/custos/internal/publish"
	"github.com/custos-pki/custos/internal/secret"
	"github.com/custos-pki/custos/keyalg"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/quorum"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
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
func unlock(ctx context.Context, env Env, q registry.Quorum, c *quorum.Collector) (*unlocked, error) {
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
	if u.mod, err = openModule(env, q.ModulePath); err != nil {
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
// finish. who is the custodians present.
func quorumRun(ctx context.Context, env Env, q *quorum.Collector, op string, opsPIN []byte, steps func(r *run, u *unlocked) (string, error)) (rid string, err error) {
	p := q.Params()
	if q.Present() < q.Needed() {
		return "", fmt.Errorf("%w: %d of %d shares present; %s needs %d; nothing was changed", quorum.ErrRefused, q.Present(), len(p.Custodians), p.CeremonyID, q.Needed())
	}
	rq, err := collectedQuorum(ctx, env.Registry, q)
	if err != nil {
		return "", err
	}
	rid = newRunID(env, op, p.CeremonyID)
	r, err := startRun(ctx, env, rid, op, p.CeremonyID)
	if err != nil {
		return "", err
	}
	var recordPath string
	defer func() { r.finish(ctx, err, recordPath) }()
	holders := q.Holders()
	custodians := record.Actor{Name: strings.Join(holders, ", "), Role: "custodians"}
	var u *unlocked
	err = r.step(Step{ID: op + ".unlock", Title: "Unlock the root with the quorum"}, custodians, func() (map[string]string, error) {
		var err error
		u, err = unlock(ctx, env, rq, q)
		if err != nil {
			return nil, err
		}
		return map[string]string{"custodians": strings.Join(q.Holders(), "; "),
			"shares": fmt.Sprintf("%d present, %d needed; each matched its commitment; the reconstruction matched its digest", q.Present(), q.Needed())}, nil
	})
	q.Wipe()
	if err != nil {
		return rid, err
	}
	defer u.close(ctx)
	if _, err = steps(r, u); err != nil {
		return rid, err
	}
	if len(opsPIN) == 0 {
		return rid, nil // no operator PIN, no record: the journal stands alone
	}
	signer, key, err := opstoken.RecordSigner(ctx, env.Registry, u.mod, u.q.CeremonyID, u.cert, opsPIN)
	if err != nil {
		err = fmt.Errorf("%s done, but its record could not be signed: %w", op, err)
		r.journal.Fail(op+".record", record.System, err)
		return rid, err
	}
	defer key.Close()
	recordPath, err = r.writeRecord(ctx, &record.Ceremony{ID: rid, Kind: op, Root: u.q.CeremonyID, Outcome: "completed",
		Threshold: u.q.Threshold, Custodians: len(u.q.Shares), Participants: quorumPeople(holders)}, signer)
	if err != nil {
		err = fmt.Errorf("%s done, but its record could not be written: %w", op, err)
		r.journal.Fail(op+".record", record.System, err)
		return rid, err
	}
	return rid, nil
}

// RecordPath is where the signed record of a run is written.
func RecordPath(env Env, runID string) string { return env.Workspace.Path("records", runID+".pdf") }

// IssueCARequest asks for an issuing CA under the root.
type IssueCARequest struct {
	CommonName    string
	ValidityYears int    // 0 means 10
	OpsPIN        []byte // the operations token's operator PIN; zeroed by IssueCA
	Algorithm     keyalg.Algorithm
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
func IssueCA(ctx context.Context, env Env, q *quorum.Collector, req IssueCARequest) (*IssueCAResult, error) {
	defer secret.Zero(req.OpsPIN)
	if strings.TrimSpace(req.CommonName) == "" {
		return nil, errors.New("issue-ca: the issuing CA needs a common name (--name)")
	}
	if req.ValidityYears == 0 {
		req.ValidityYears = 10
	}
	if req.Algorithm == "" {
		req.Algorithm = keyalg.ECDSAP384
	}
	res := &IssueCAResult{}
	rid, err := quorumRun(ctx, env, q, "issue-ca", req.OpsPIN, func(r *run, u *unlocked) (string, error) {
		res.Token = u.q.OperationsToken
		ops, err := u.mod.OpenSession(ctx, u.q.OperationsToken)
		if err != nil {
			return "", err
		}
		defer ops.Close()
		var key *hsm.Signer
		var keyID []byte
		err = r.step(Step{ID: "issue-ca.generate-key", Title: "Generate the issuing CA key"}, record.System, func() (map[string]string, error) {
			if err := ops.Login(ctx, hsm.User, req.OpsPIN); err != nil {
				return nil, fmt.Errorf("operations token %q: %w", u.q.OperationsToken, err)
			}
			if keyID, err = ops.Random(ctx, 16); err != nil {
				return nil, err
			}
			if err := noteKeyIntent(r, u.q.OperationsToken, keyID); err != nil {
				return nil, err
			}
			key, err = ops.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: req.Algorithm, ID: keyID, Label: "issuing CA " + req.CommonName})
			if err != nil {
				return nil, err
			}
			return map[string]string{"token": u.q.OperationsToken, "key_id": hex.EncodeToString(keyID), "algorithm": string(req.Algorithm)}, nil
		})
		if err != nil {
			if keyID != nil { // a generation that fails half way can leave the key behind
				rollbackKey(ctx, r, ops, keyID)
			}
			return "", err
		}
		defer ops.Logout(context.WithoutCancel(ctx))
		err = r.step(Step{ID: "issue-ca.certificate", Title: "Sign the issuing CA certificate"}, record.System, func() (map[string]string, error) {
			serial, err := pki.NewSerial(tokenRand{ctx, u.sess})
			if err != nil {
				return nil, err
			}
			cert, _, err := pki.Issue(pki.IssuingCA{CommonName: req.CommonName, Organization: u.plan.Certificate.Organization,
				Country: u.plan.Certificate.Country, NotBefore: env.now(), ValidityYears: req.ValidityYears,
				CRLDistributionPoint: u.plan.CRLDistributionPoint}, serial, key.Public(), u.issuer())
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
					KeyID: keyID, Algorithm: string(req.Algorithm)}}); err != nil {
				os.Remove(path)
				return nil, err
			}
			res.IssuerID, res.Certificate, res.Path = id, cert, path
			fp := pki.CertificateFingerprint(cert)
			return map[string]string{"issuer_id": id, "subject": cert.Subject.String(), "serial": pki.SerialHex(cert.SerialNumber),
				"not_before": cert.NotBefore.Format(time.RFC3339), "not_after": cert.NotAfter.Format(time.RFC3339), "algorithm": string(req.Algorithm), "sha256": fp.String(), "words": fp.Words(), "file": path}, nil
		})
		if err != nil {
			rollbackKey(ctx, r, ops, keyID)
			return "", err
		}
		return "", nil
	})
	res.RunID = rid
	if err != nil {
		return nil, err
	}
	res.JournalPath = env.Workspace.Path("journal", rid+".jsonl")
	return res, nil
}

// rollbackKey destroys an unfinished issuing CA key and journals the outcome with its id.
func rollbackKey(ctx context.Context, r *run, ops *hsm.Session, keyID []byte) {
	what := destroyObjects(ops, keyID, "unfinished issuing CA key")(context.WithoutCancel(ctx))
	r.journal.Note("issue-ca.rollback", record.System, map[string]string{"undone": what})
}

// RootCRLRequest asks for a root CRL, optionally revoking an issuing CA first.
type RootCRLRequest struct {
	Revoke         string // serial (hex) of an issuing CA certificate to revoke, or ""
	Reason         pki.Reason
	NextUpdateDays int    // 0: the plan's crl_next_update_days
	OpsPIN         []byte // operator PIN for signing the record; none: no record. Zeroed.
}

// RootCRLResult is a signed root CRL.
type RootCRLResult struct {
	RunID string
	CRL   publish.CRL
}

// RootCRL signs the root's CRL under quorum.
func RootCRL(ctx context.Context, env Env, q *quorum.Collector, req RootCRLRequest) (*RootCRLResult, error) {
	defer secret.Zero(req.OpsPIN)
	var serial registry.SerialNumber
	if req.Revoke != "" {
		var err error
		if serial, err = registry.ParseSerial(req.Revoke); err != nil {
			return nil, fmt.Errorf("crl: --revoke %q: %w", req.Revoke, err)
		}
	}
	res := &RootCRLResult{}
	rid, err := quorumRun(ctx, env, q, "crl", req.OpsPIN, func(r *run, u *unlocked) (string, error) {
		if serial != nil {
			err := r.step(Step{ID: "crl.revoke", Title: "Revoke the issuing CA"}, record.System, func() (map[string]string, error) {
				rv, already, err := env.Registry.Revoke(ctx, registry.Revocation{IssuerID: u.root.ID, Serial: serial,
					RevokedAt: env.now(), Reason: req.Reason})
				if err != nil {
					return nil, err
				}
				return map[string]string{"serial": serial.String(), "reason": req.Reason.String(), "already_revoked": fmt.Sprint(already),
					"revoked_at": rv.RevokedAt.Format(time.RFC3339)}, nil
			})
			if err != nil {
				return "", err
			}
		}
		days := req.NextUpdateDays
		if days == 0 {
			days = u.plan.crlNextUpdateDays()
		}
		return "", r.step(Step{ID: "crl.sign", Title: "Sign the root CRL"}, record.System, func() (map[string]string, error) {
			c, err := publish.SignCRL(ctx, env.Registry, env.Workspace, u.root.ID, u.issuer(), env.now(), time.Duration(days)*24*time.Hour)
			if err != nil {
				return nil, err
			}
			res.CRL = c
			return map[string]string{"number": fmt.Sprint(c.Number), "entries": fmt.Sprint(c.Entries),
				"next_update": c.NextUpdate.Format(time.RFC3339), "sha256": c.Fingerprint.String(), "file": c.DERPath}, nil
		})
	})
	res.RunID = rid
	if err != nil {
		return nil, err
	}
	return res, nil
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
// opsPIN, when given (zeroed here), signs the record with the record-signer key.
func Destroy(ctx context.Context, env Env, q *quorum.Collector, opsPIN []byte) (*DestroyResult, error) {
	defer secret.Zero(opsPIN)
	res := &DestroyResult{}
	rid, err := quorumRun(ctx, env, q, "destroy", opsPIN, func(r *run, u *unlocked) (string, error) {
		res.Token = u.root.Key.TokenLabel
		return "", r.step(Step{ID: "destroy.erase", Title: "Destroy the root key and its objects"}, record.System, func() (map[string]string, error) {
			data := map[string]string{}
			n, names, err := eraseAll(ctx, u.sess)
			if err != nil {
				return nil, fmt.Errorf("token %q: %w", res.Token, err)
			}
			res.Destroyed += n
			data["token_"+res.Token] = names
			if orig := u.q.CeremonyID; orig != res.Token {
				if _, err := u.mod.TokenByLabel(ctx, orig); err == nil {
					n, names, err := eraseToken(ctx, u.mod, orig, u.userPIN)
					if err != nil {
						return nil, fmt.Errorf("the original root token %q still holds the root: %w", orig, err)
					}
					res.Destroyed += n
					data["token_"+orig] = names
				}
			}
			if err := env.Registry.DestroyRoot(ctx, u.q.CeremonyID, env.now()); err != nil {
				return nil, err
			}
			data["verification"] = "no object remains on any token that held the root (searched logged in as the user)"
			return data, nil
		})
	})
	res.RunID = rid
	if err != nil {
		return nil, err
	}
	return res, nil
}

func eraseToken(ctx context.Context, mod *hsm.Module, label string, pin []byte) (int, string, error) {
	s, err := mod.OpenSession(ctx, label)
	if err != nil {
		return 0, "", err
	}
	defer s.Close()
	if err := s.Login(ctx, hsm.User, pin); err != nil {
		return 0, "", err
	}
	defer s.Logout(context.WithoutCancel(ctx))
	return eraseAll(ctx, s)
}

// eraseAll destroys every object the logged-in session sees and checks that none remains.
func eraseAll(ctx context.Context, s *hsm.Session) (int, string, error) {
	objs, err := s.Objects(ctx)
	if err != nil {
		return 0, "", err
	}
	var names []string
	for _, o := range objs {
		if err := s.DestroyObject(ctx, o); err != nil {
			return 0, "", err
		}
		names = append(names, o.String())
	}
	left, err := s.Objects(ctx)
	if err != nil {
		return 0, "", err
	}
	if len(left) > 0 {
		return 0, "", fmt.Errorf("%d objects remain after destruction: %v", len(left), left)
	}
	return len(objs), strings.Join(names, "; "), nil
}

// RestoreRequest restores the root key from its backup into a new token.
type RestoreRequest struct {
	Backup string // the wrapped blob
	Token  string // label for the new token, initialised on a free slot
	OpsPIN []byte // operator PIN for signing the record; none: no record. Zeroed.
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
func Restore(ctx context.Context, env Env, q *quorum.Collector, req RestoreRequest) (*RestoreResult, error) {
	defer secret.Zero(req.OpsPIN)
	blob, err := inputfile.Read(ctx, "backup", req.Backup, maxBackupFile)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	rq, err := collectedQuorum(ctx, env.Registry, q)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	sum := sha256.Sum256(blob)
	if want := rq.BackupSHA256; len(want) > 0 && !strings.EqualFold(hex.EncodeToString(want), hex.EncodeToString(sum[:])) {
		return nil, fmt.Errorf("restore: %s is not the backup of %s at epoch %d (its SHA-256 differs from the registry's)", req.Backup, rq.CeremonyID, rq.Epoch)
	}
	if req.Token == "" {
		return nil, errors.New("restore: name the new token (--token)")
	}
	res := &RestoreResult{Token: req.Token}
	rid, err := quorumRun(ctx, env, q, "restore", req.OpsPIN, func(r *run, u *unlocked) (string, error) {
		return "", r.step(Step{ID: "restore.unwrap", Title: "Restore the root key into the new token"}, record.System, func() (map[string]string, error) {
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
			return map[string]string{"token": req.Token, "token_serial": info.SerialOrNone(), "backup": req.Backup,
				"backup_sha256": hex.EncodeToString(sum[:]),
				"verification":  "the restored key signs, and its signature verifies under the root certificate"}, nil
		})
	})
	res.RunID = rid
	if err != nil {
		return nil, err
	}
	return res, nil
}
