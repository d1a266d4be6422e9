package ceremony

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/secret"
	"github.com/custos-pki/custos/keyalg"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/quorum"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// unlocked is a root opened under quorum: the secret reconstructed and checked, and, for
// every operation but restore, a token that holds the root logged in as the user with the PIN
// derived from it.
type unlocked struct {
	q       registry.Quorum
	v       *VerifiedQuorum // the root's statement, which q was checked against
	plan    *Plan
	root    registry.Issuer
	cert    *x509.Certificate
	mod     *hsm.Module
	module  hsm.ModuleFile       // the module file as hashed before it was loaded
	token   quorum.TokenIdentity // the token sess is on, as it answered
	sess    *hsm.Session         // on holder; nil until a token is opened
	key     *hsm.Signer
	holder  registry.RootHolder   // the token sess is on
	holders []registry.RootHolder // every token the registry has holding the root, newest first
	// finalSigner is the record signer a destroy opened before it retired it, to sign its
	// record; nil for every other operation. close closes it.
	finalSigner *run.RecordSigner
	s           []byte
	userPIN     []byte
}

// unlockOptions change how a quorum operation unlocks the root.
type unlockOptions struct {
	// newModule, when set, is the PKCS#11 module the quorum accepts in this operation
	// (SetModule): it is loaded whatever its SHA-256, which is shown and journaled.
	newModule string
	// noHolder opens no token that holds the root (restore: there may be none left).
	noHolder bool
	// finishingDestroy passes over holders the registry has destroyed (a destroy that stopped
	// part way is run again); every other operation refuses them.
	finishingDestroy bool
}

// signedHolders is the registry's holders of the root that the quorum statement v names,
// holding the key (the statement's token first, then newest first), refused unless the two
// agree: a token the registry has holding the root that the statement does not name, or one
// the statement names that the registry has lost, destroyed or not at all. The registry is
// writable by anyone with the workspace; the statement only under quorum. Without this check
// a deleted row would hide a token from a reshare, which would leave it opening to the old
// shares. With finishingDestroy, holders the registry has destroyed are passed over.
func signedHolders(v *VerifiedQuorum, all []registry.RootHolder, finishingDestroy bool) ([]registry.RootHolder, error) {
	st := v.Statement
	differs := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s; the quorum statement the root signed (number %d, run %s) names the tokens %s: the workspace was changed outside Custos; no share was combined",
			ErrNotAsSigned, fmt.Sprintf(format, args...), v.Seq, st.Run, statementHolderNames(st))
	}
	signed := st.HolderList()
	var out []registry.RootHolder
	for _, h := range all {
		i := slices.IndexFunc(signed, func(s quorum.Holder) bool { return s.Token.Label == h.Token })
		if i < 0 {
			if h.State == registry.HolderHolding {
				return nil, differs("the registry says token %q holds root %s", h.Token, st.Root)
			}
			continue
		}
		s := signed[i]
		switch {
		case h.State == registry.HolderDestroyed && finishingDestroy:
			continue
		case h.State == registry.HolderDestroyed:
			return nil, fmt.Errorf("the root key was destroyed on token %q by run %s, but not on every token that holds it: run custos ceremony destroy again to finish it", h.Token, h.StateRun)
		case h.State != registry.HolderHolding:
			return nil, differs("the registry has token %q %s", h.Token, h.State)
		case hex.EncodeToString(h.KeyID) != s.KeyID:
			return nil, differs("the registry says the root key on %q has id %x, not %s", h.Token, h.KeyID, s.KeyID)
		case h.Serial != "" && h.Serial != s.Token.Serial:
			return nil, differs("the registry says token %q has serial %s, not %s", h.Token, h.Serial, s.Token.Serial)
		}
		out = append(out, h)
	}
	for _, s := range signed {
		if !slices.ContainsFunc(all, func(h registry.RootHolder) bool { return h.Token == s.Token.Label }) {
			return nil, differs("the registry has no record of token %q", s.Token.Label)
		}
	}
	// The token the root was made on or last restored to is tried first.
	slices.SortStableFunc(out, func(a, b registry.RootHolder) int {
		return boolRank(a.Token != st.RootToken.Label) - boolRank(b.Token != st.RootToken.Label)
	})
	return out, nil
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// statementHolderNames lists the tokens a statement says hold the root, for messages.
func statementHolderNames(st *quorum.Statement) string {
	var names []string
	for _, h := range st.HolderList() {
		names = append(names, strconv.Quote(h.Token.Label))
	}
	return strings.Join(names, ", ")
}

// unlock opens the root under the quorum v states, in this order: the module file is hashed
// and refused unless the quorum accepted it; unless o.noHolder, the token the statement names
// (the one the root was made on or last restored to) is found and refused unless it is that
// token and the registry has it holding the root; only then are the shares combined (and
// checked against the digest), the PIN derived and the token logged in.
func unlock(ctx context.Context, env run.Env, q registry.Quorum, v *VerifiedQuorum, c *quorum.Collector, o unlockOptions) (*unlocked, error) {
	u := &unlocked{q: q, v: v, cert: v.Root}
	fail := func(err error) (*unlocked, error) {
		u.close(ctx)
		return nil, err
	}
	var err error
	if u.plan, err = ParsePlan(q.Plan); err != nil {
		return fail(fmt.Errorf("the registry's plan of %s: %w", q.CeremonyID, err))
	}
	if u.root, err = env.Registry.Issuer(ctx, q.CeremonyID); err != nil {
		return fail(err)
	}
	st := v.Statement
	path, want := o.newModule, ""
	if path == "" {
		if path, err = env.ModulePath(ctx, st.Module.Path); err != nil {
			return fail(err)
		}
		want = st.Module.SHA256
	}
	if u.mod, u.module, err = openModule(ctx, env, path, want); err != nil {
		return fail(err)
	}
	all, err := env.Registry.RootHolders(ctx, q.CeremonyID)
	if err != nil {
		return fail(err)
	}
	if u.holders, err = signedHolders(v, all, o.finishingDestroy); err != nil {
		return fail(err)
	}
	if !o.noHolder {
		if err := u.findHolder(ctx); err != nil {
			return fail(err)
		}
	}
	if u.s, err = c.Secret(); err != nil {
		return fail(err)
	}
	u.userPIN = quorum.RootUserPIN.Derive(u.s, q.CeremonyID)
	if !o.noHolder {
		if err := u.sess.Login(ctx, hsm.User, u.userPIN); err != nil {
			return fail(fmt.Errorf("root token %q: %w", u.holder.Token, err))
		}
		keyID, _ := hex.DecodeString(u.signedHolder().KeyID)
		if u.key, err = u.sess.Signer(ctx, hsm.Match{Class: hsm.ClassPrivateKey, ID: keyID}); err != nil {
			return fail(fmt.Errorf("root key on %q: %w", u.holder.Token, err))
		}
	}
	return u, nil
}

// findHolder opens a session, not yet logged in, on a token that holds the root, before any
// share is combined: of the tokens the quorum statement names (signedHolders), the one the root
// was made on or last restored to first, each refused unless it answers with the identity the
// statement gives it. A token that is missing, or has the PINs of another epoch, is passed over.
func (u *unlocked) findHolder(ctx context.Context) error {
	var passed []string
	for _, h := range u.holders {
		if h.PINEpoch != 0 && h.PINEpoch != u.q.Epoch {
			passed = append(passed, fmt.Sprintf("%q has the PINs of epoch %d", h.Token, h.PINEpoch))
			continue
		}
		sess, err := u.mod.OpenSession(ctx, h.Token)
		if errors.Is(err, hsm.ErrTokenNotFound) {
			passed = append(passed, fmt.Sprintf("%q is not present", h.Token))
			continue
		}
		if err != nil {
			return err
		}
		u.sess, u.holder = sess, h
		info, err := sess.TokenInfo(ctx)
		if err != nil {
			return err
		}
		u.token = tokenIdentity(info)
		if want := u.signedHolder().Token; u.token != want {
			return fmt.Errorf("%w: the token labelled %q is %s, but the quorum statement names %s: it is not the token that holds the root; no share was combined",
				ErrNotAsSigned, want.Label, u.token, want)
		}
		return nil
	}
	if len(passed) == 0 {
		return fmt.Errorf("the registry knows no token that holds root %s: restore it from its backup into a new token", u.q.CeremonyID)
	}
	return fmt.Errorf("no token that holds root %s can be opened (%s): restore it from its backup into a new token; no share was combined", u.q.CeremonyID, strings.Join(passed, "; "))
}

// signedHolder is the token u is open on as the quorum statement names it.
func (u *unlocked) signedHolder() quorum.Holder {
	for _, h := range u.v.Statement.HolderList() {
		if h.Token.Label == u.holder.Token {
			return h
		}
	}
	return quorum.Holder{} // not reached: u.holder is one of signedHolders
}

func (u *unlocked) issuer() pki.Issuer { return pki.Issuer{Certificate: u.cert, Signer: u.key} }

// signRootCRL is a step that signs the root's CRL, due in days (0: the plan's), into out.
func (u *unlocked) signRootCRL(ctx context.Context, r *run.Run, days int, out *run.CRL) func() (any, error) {
	if days == 0 {
		days = u.plan.crlNextUpdateDays()
	}
	return func() (any, error) {
		c, err := run.SignCRL(ctx, r, u.root, u.issuer(), run.CRLRequest{NextUpdate: time.Duration(days) * 24 * time.Hour,
			MaxNextUpdate: time.Duration(u.plan.crlNextUpdateDays()) * 24 * time.Hour})
		if err != nil {
			return nil, err
		}
		*out = c
		return c.Payload(u.root.ID), nil
	}
}

func (u *unlocked) close(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	if u.finalSigner != nil {
		u.finalSigner.Close()
	}
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
	return quorumRunWith(ctx, env, q, op, opsPIN, unlockOptions{noHolder: op == "restore", finishingDestroy: op == "destroy"}, steps)
}

// quorumRunWith is quorumRun, unlocking the root as o says.
func quorumRunWith(ctx context.Context, env run.Env, q *quorum.Collector, op string, opsPIN []byte, o unlockOptions, steps func(r *run.Run, u *unlocked) error) (rid string, err error) {
	p := q.Params()
	if q.Present() < q.Needed() {
		return "", fmt.Errorf("%w: %d of %d shares present; %s needs %d; nothing was changed", quorum.ErrRefused, q.Present(), len(p.Custodians), p.CeremonyID, q.Needed())
	}
	rq, v, err := collectedQuorum(ctx, env.Registry, q)
	if err != nil {
		return "", err
	}
	// A record is signed only by a record signer that may sign one; a new one replaces it.
	if len(opsPIN) > 0 && op != "record-signer" {
		if _, err := run.CheckRecordSigner(ctx, env.Registry, p.CeremonyID); err != nil {
			return "", fmt.Errorf("%s: %w", op, err)
		}
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
	if err = r.Step(stepClock(op), custodians, func() (any, error) { return r.Clock, nil }); err != nil {
		return rid, err
	}
	var u *unlocked
	err = r.Step(stepUnlock(op), custodians, func() (any, error) {
		var err error
		u, err = unlock(ctx, env, rq, v, q, o)
		if err != nil {
			return nil, err
		}
		data := Unlocked{Custodians: q.Holders(), Threshold: u.q.Threshold, Of: len(u.q.Shares),
			Shares:    fmt.Sprintf("%d present, %d needed; each matched its commitment; the reconstruction matched its digest", q.Present(), q.Needed()),
			Statement: v.Seq, RootSHA256: v.Fingerprint.String(), RootWords: v.Fingerprint.Words(),
			Module: u.module.Path, ModuleSHA256: u.module.SHA256}
		if u.sess != nil {
			data.RootToken = u.token.String()
		}
		return data, nil
	})
	if err != nil {
		if u != nil {
			u.close(ctx)
		}
		return rid, err
	}
	defer u.close(ctx)
	// The account of the root's backup copies goes into every quorum operation's record.
	if a, err := backupAccount(ctx, env.Registry, u.q.CeremonyID); err != nil || a != nil {
		if err == nil {
			err = r.Note(op+".backups", record.System, a)
		}
		if err != nil {
			return rid, err
		}
	}
	if err = steps(r, u); err != nil {
		return rid, err
	}
	if len(opsPIN) == 0 {
		return rid, nil // no operator PIN, no record: the journal stands alone
	}
	if u.finalSigner != nil { // destroy: the record signer, opened before it was retired
		recordPath, err = writeRecord(ctx, r, &record.Ceremony{ID: rid, Kind: op, Root: u.q.CeremonyID, Outcome: "completed",
			Threshold: u.q.Threshold, Custodians: len(u.q.Shares), Participants: quorumPeople(holders)}, u.finalSigner.Signer, u.key)
		if err != nil {
			return rid, r.Fail(op+".record", record.System, fmt.Errorf("%s done, but its record could not be written: %w", op, err))
		}
		return rid, nil
	}
	if _, err := run.CheckRecordSigner(ctx, env.Registry, u.q.CeremonyID); errors.Is(err, run.ErrCannotSign) {
		// This run revoked the record signer: it signs no record, not even this one.
		return rid, r.Note(stepNoRecord(op), record.System, NoRecord{Why: err.Error()})
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
			if _, err := r.Registry().AddIssuer(ctx, registry.Issuer{ID: id, Kind: registry.IssuerIssuing, Certificate: cert.Raw,
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
	RunID   string
	CRL     run.CRL
	Revoked string // what the CRL revoked, e.g. "issuing CA ica-3f2a9c01b4 (Acme Devices CA 1)"; "" for none
}

// issuedByRoot names what the root rootID certified with serial: an issuing CA or a record
// signer. Anything else is refused: a root CRL revokes only those.
func issuedByRoot(ctx context.Context, reg *registry.Registry, rootID string, serial registry.SerialNumber) (string, error) {
	issuers, err := reg.Issuers(ctx)
	if err != nil {
		return "", err
	}
	for _, i := range issuers {
		if i.ParentID == rootID && bytes.Equal(i.Serial, serial) {
			return fmt.Sprintf("issuing CA %s (%s)", i.ID, i.CommonName), nil
		}
	}
	roles, err := reg.RoleCerts(ctx)
	if err != nil {
		return "", err
	}
	for _, rc := range roles {
		if rc.IssuerID == rootID && bytes.Equal(rc.Serial, serial) {
			return fmt.Sprintf("%s %q (serial %s)", rc.Role, rc.CommonName, rc.Serial), nil
		}
	}
	return "", run.NewFieldError("Revoke", "serial %s is neither an issuing CA nor a record signer of root %s", serial, rootID)
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
				what, err := issuedByRoot(ctx, env.Registry, u.root.ID, serial)
				if err != nil {
					return nil, err
				}
				rv, already, err := r.Registry().Revoke(ctx, registry.Revocation{IssuerID: u.root.ID, Serial: serial,
					RevokedAt: env.Clock(), Reason: req.Reason, RunID: r.ID})
				if err != nil {
					return nil, err
				}
				res.Revoked = what
				return CARevoked{Serial: serial.String(), Certificate: what, Reason: rv.Reason.String(), AlreadyRevoked: already, RevokedAt: rv.RevokedAt}, nil
			})
			if err != nil {
				return err
			}
		}
		return r.Step(stepCRLSign, record.System, u.signRootCRL(ctx, r, req.NextUpdateDays, &res.CRL))
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
	rq, _, err := collectedQuorum(ctx, env.Registry, q)
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
	Destroyed int      // objects destroyed on the tokens that held the root
	Tokens    []string // the tokens that held the root, each erased
	CRL       run.CRL  // the root's final CRL
	// Outstanding are what a person must still destroy: backup copies outside the workspace
	// and lost tokens. Each is a sentence.
	Outstanding []string
}

// Destroy ends the root and everything it made. It logs in to every token that holds the
// root first and stops before any change if one is missing or refuses. Then each issuing CA
// of the root that may sign signs a last CRL, and its key is destroyed on the operations
// token; the root signs a final CRL revoking every issuing CA (cessationOfOperation); the
// record signer signs this run's record and is retired; the root key is destroyed on every
// holder, and every backup blob in the workspace is overwritten and removed. Copies outside
// the workspace and lost tokens are listed as outstanding. It cannot be undone. The operator
// PIN is needed: the issuing CAs' keys and the record signer are on the operations token.
func Destroy(ctx context.Context, env run.Env, q *quorum.Collector, opsPIN []byte) (*DestroyResult, error) {
	if len(opsPIN) == 0 {
		return nil, fmt.Errorf("destroy: %w", run.NewFieldError("OpsPIN", "the operator PIN is needed: the issuing CAs sign their last CRLs and their keys are destroyed on the operations token, and the record signer signs the destroy record"))
	}
	res := &DestroyResult{}
	rid, err := quorumRun(ctx, env, q, "destroy", opsPIN, func(r *run.Run, u *unlocked) error {
		id := u.q.CeremonyID
		var sessions []*hsm.Session // every holder but u.sess, logged in as the user
		defer func() {
			for _, s := range sessions {
				s.Logout(context.WithoutCancel(ctx))
				s.Close()
			}
		}()
		err := r.Step(stepDestroyHolders, record.System, func() (any, error) {
			var err error
			sessions, err = loginHolders(ctx, u)
			if err != nil {
				return nil, err
			}
			data := HoldersReached{Tokens: []string{u.holder.Token}}
			for _, s := range sessions {
				data.Tokens = append(data.Tokens, s.Label())
			}
			return data, nil
		})
		if err != nil {
			return err
		}
		ops, err := u.mod.OpenSession(ctx, u.q.OperationsToken)
		if err != nil {
			return err
		}
		defer ops.Close()
		if err := ops.Login(ctx, hsm.User, opsPIN); err != nil {
			return fmt.Errorf("operations token %q: %w", u.q.OperationsToken, err)
		}
		// No logout here: the login is the token's, and the record signer signs on it after
		// the steps; closing the last session logs out.
		cas, err := issuingCAsOf(ctx, env.Registry, u.root.ID)
		if err != nil {
			return err
		}
		for _, ca := range cas {
			err := r.Step(stepDestroyCA, record.System, func() (any, error) {
				return endIssuingCA(ctx, r, ops, ca)
			})
			if err != nil {
				return err
			}
		}
		err = r.Step(stepDestroyRootCRL, record.System, func() (any, error) {
			data := FinalRootCRL{Reason: pki.ReasonCessationOfOperation.String()}
			for _, ca := range cas {
				_, already, err := r.Registry().Revoke(ctx, registry.Revocation{IssuerID: u.root.ID, Serial: ca.Serial,
					RevokedAt: env.Clock(), Reason: pki.ReasonCessationOfOperation, RunID: r.ID})
				if err != nil {
					return nil, err
				}
				what := fmt.Sprintf("issuing CA %s (%s), serial %s", ca.ID, ca.CommonName, ca.Serial)
				if already {
					what += ", revoked before"
				}
				data.Revoked = append(data.Revoked, what)
			}
			days := time.Duration(u.plan.crlNextUpdateDays()) * 24 * time.Hour
			c, err := run.SignCRL(ctx, r, u.root, u.issuer(), run.CRLRequest{NextUpdate: days, MaxNextUpdate: days})
			if err != nil {
				return nil, err
			}
			res.CRL = c
			data.CRL = c.Payload(u.root.ID)
			return data, nil
		})
		if err != nil {
			return err
		}
		// The record signer signs this run's record (quorumRun, at the end) and nothing after.
		rc, err := run.CheckRecordSigner(ctx, env.Registry, id)
		if err != nil {
			return fmt.Errorf("the record signer, which signs the destroy record: %w", err)
		}
		signer, err := run.OpenRecordSigner(ctx, env.Registry, u.mod, id, u.cert, opsPIN)
		if err != nil {
			return fmt.Errorf("the record signer, which signs the destroy record: %w", err)
		}
		u.finalSigner = signer
		// The root attests the run while its key can still sign: the log entry covers the
		// journal up to the destruction, which the record's own signature then covers.
		if _, err := r.EnterLog(ctx, run.LogSeal{Kind: "destroy", RootID: id, Root: u.cert, RootKey: u.key}, signer.Signer); err != nil {
			return fmt.Errorf("destroy: enter the run in the record log before the root is gone: %w", err)
		}
		return r.Step(stepDestroy, record.System, func() (any, error) {
			var data RootDestroyed
			for _, s := range append([]*hsm.Session{u.sess}, sessions...) {
				n, names, err := eraseAll(ctx, s)
				if err != nil {
					return nil, fmt.Errorf("token %q: %w", s.Label(), err)
				}
				res.Destroyed += n
				res.Tokens = append(res.Tokens, s.Label())
				data.Tokens = append(data.Tokens, TokenErased{Token: s.Label(), Destroyed: names})
				if err := r.Registry().DestroyRootHolder(ctx, id, s.Label(), env.Clock(), r.ID); err != nil {
					return nil, err
				}
			}
			data.DestroyedAt = env.Clock()
			blobs, err := destroyBlobs(ctx, r, id, func(int) bool { return true })
			if err != nil {
				return nil, err
			}
			data.Backups = blobs
			if err := r.Registry().SetRoleCertState(ctx, id, rc.Serial, registry.Standing{State: registry.StateRetired, At: data.DestroyedAt, RunID: r.ID}); err != nil {
				return nil, err
			}
			if err := r.Registry().DestroyRoot(ctx, id, data.DestroyedAt, r.ID); err != nil {
				return nil, err
			}
			out, err := outstanding(ctx, env.Registry, id, func(registry.BackupCopy) bool { return true })
			if err != nil {
				return nil, err
			}
			res.Outstanding, data.Outstanding = out, out
			data.RecordSigner = "retired: it signs this run's record and nothing after"
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

// loginHolders opens and logs in as the user to every token that holds the root but the one
// u is open on, and returns their sessions; a holder that is missing or refuses stops it,
// named, before anything changed. Lost holders are not asked.
func loginHolders(ctx context.Context, u *unlocked) ([]*hsm.Session, error) {
	var out []*hsm.Session
	fail := func(err error) ([]*hsm.Session, error) {
		for _, s := range out {
			s.Logout(context.WithoutCancel(ctx))
			s.Close()
		}
		return nil, err
	}
	for _, h := range u.holders {
		if h.Token == u.holder.Token {
			continue
		}
		s, err := u.mod.OpenSession(ctx, h.Token)
		if err != nil {
			return fail(fmt.Errorf("token %q holds the root and cannot be reached (%w): connect it, or record it lost with a reshare; nothing was changed", h.Token, err))
		}
		if err := s.Login(ctx, hsm.User, u.userPIN); err != nil {
			s.Close()
			return fail(fmt.Errorf("token %q holds the root and refuses the quorum's PIN (%w); nothing was changed", h.Token, err))
		}
		out = append(out, s)
	}
	return out, nil
}

// issuingCAsOf lists the issuing CAs the root rootID certified.
func issuingCAsOf(ctx context.Context, reg *registry.Registry, rootID string) ([]registry.Issuer, error) {
	all, err := reg.Issuers(ctx)
	if err != nil {
		return nil, err
	}
	var out []registry.Issuer
	for _, i := range all {
		if i.Kind == registry.IssuerIssuing && i.ParentID == rootID {
			out = append(out, i)
		}
	}
	return out, nil
}

// endIssuingCA has an issuing CA whose key exists sign a last CRL, when its state lets it
// sign CRLs (a revoked one signs nothing), then destroys its key on the operations token and
// records it destroyed.
func endIssuingCA(ctx context.Context, r *run.Run, ops *hsm.Session, ca registry.Issuer) (any, error) {
	env := r.Env
	data := IssuingCAEnded{IssuerID: ca.ID, CommonName: ca.CommonName, Before: ca.Standing.String()}
	if ca.Standing.State == registry.StateDestroyed || ca.Status == registry.StatusDestroyed {
		data.Key = "destroyed before"
		return data, nil
	}
	if ca.Key.TokenLabel != ops.Label() {
		return nil, fmt.Errorf("issuing CA %s: its key is on token %q, not on the operations token %q", ca.ID, ca.Key.TokenLabel, ops.Label())
	}
	if ca.Standing.State != registry.StateRevoked {
		cert, err := x509.ParseCertificate(ca.Certificate)
		if err != nil {
			return nil, err
		}
		key, err := ops.Signer(ctx, hsm.Match{Class: hsm.ClassPrivateKey, ID: ca.Key.KeyID})
		if err != nil {
			return nil, fmt.Errorf("issuing CA %s: %w", ca.ID, err)
		}
		c, err := run.SignCRL(ctx, r, ca, pki.Issuer{Certificate: cert, Signer: key}, run.CRLRequest{NextUpdate: pki.DefaultMaxNextUpdate, UpToLimit: true})
		if err != nil {
			return nil, fmt.Errorf("issuing CA %s: its last CRL: %w", ca.ID, err)
		}
		p := c.Payload(ca.ID)
		data.LastCRL = &p
	} else {
		data.NoCRL = "revoked: it signs nothing, not even a last CRL"
	}
	what := destroyObjects(ops, ca.Key.KeyID, "the key of issuing CA "+ca.ID)(ctx)
	if left, err := ops.Remaining(ctx, ca.Key.KeyID, ""); err != nil || len(left) > 0 {
		return nil, fmt.Errorf("%s", what)
	}
	data.Key = what
	if err := r.Registry().SetIssuerState(ctx, ca.ID, registry.Standing{State: registry.StateDestroyed, At: env.Clock(), RunID: r.ID}); err != nil {
		return nil, err
	}
	return data, nil
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
