package ceremony

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/secret"
	"github.com/custos-pki/custos/quorum"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
	"github.com/custos-pki/custos/workspace"
)

// ReshareRequest names the new custodians and threshold, and the tokens holding the root that
// are lost.
type ReshareRequest struct {
	Custodians []string
	// Destinations are where each new custodian's share goes, beside Custodians (as a plan's
	// deliver); missing or zero: the default.
	Destinations []Destination
	Threshold    int
	// LostTokens are holders of the root the reshare records as lost and goes on without;
	// LostReason says why (required with them). Every other holder must be reachable.
	LostTokens []string
	LostReason string
	OpsPIN     []byte // operator PIN for signing the record; none: no record
}

// ReshareResult is a quorum moved to a new secret.
type ReshareResult struct {
	RunID      string
	Epoch      int
	BackupPath string
	Shares     []registry.QuorumShare
	Rotated    []string // the tokens holding the root whose PINs now derive from the new secret
	Lost       []string // the tokens recorded lost
	Destroyed  []string // the superseded backup blobs destroyed in the workspace
	// Outstanding are what the old shares may still open, which people must destroy: copies
	// of superseded backups outside the workspace, and lost tokens. Each is a sentence.
	Outstanding []string
	Delivered   []ShareHandedOut // where each share went
	Warnings    []string         // as RootResult's
}

// Reshare rotates the quorum secret: a new S is split among the new custodians (each share
// delivered and read back), the PINs of every token that holds the root are changed to those
// derived from the new S (a holder that cannot be reached stops it before anything changes,
// unless it is recorded lost), the backup is re-wrapped under the new KEK, the superseded
// blobs in the workspace are destroyed, and the registry moves to the next epoch. What the
// old shares can still open is listed in Outstanding.
func Reshare(ctx context.Context, env run.Env, q *quorum.Collector, req ReshareRequest, people Participants) (*ReshareResult, error) {
	n := len(req.Custodians)
	rq, _, err := collectedQuorum(ctx, env.Registry, q)
	if err != nil {
		return nil, fmt.Errorf("reshare: %w", err)
	}
	plan, err := ParsePlan(rq.Plan)
	if err != nil {
		return nil, err
	}
	check := *plan
	check.Custodians, check.Deliveries, check.Threshold = req.Custodians, req.Destinations, req.Threshold
	if err := check.Validate(); err != nil {
		var pe *PlanError
		if errors.As(err, &pe) && (strings.HasPrefix(pe.Key, "custodians") || pe.Key == "threshold") {
			field := "Custodians"
			switch {
			case pe.Key == "threshold":
				field = "Threshold"
			case strings.HasSuffix(pe.Key, ".deliver"):
				field = "Destinations"
			}
			return nil, fmt.Errorf("reshare: %w", run.NewFieldError(field, "%s", pe.Problem))
		}
		return nil, fmt.Errorf("reshare: %w", err)
	}
	if err := checkLost(ctx, env.Registry, rq.CeremonyID, req); err != nil {
		return nil, fmt.Errorf("reshare: %w", err)
	}
	res := &ReshareResult{Epoch: rq.Epoch + 1}
	id := rq.CeremonyID
	rid, err := quorumRun(ctx, env, q, "reshare", req.OpsPIN, func(r *run.Run, u *unlocked) error {
		if slices.Contains(req.LostTokens, u.holder.Token) {
			return fmt.Errorf("reshare: %w", run.NewFieldError("LostTokens", "token %q is present: it opened the root for this reshare, and cannot be recorded lost", u.holder.Token))
		}
		var others []*hsm.Session
		defer func() {
			for _, s := range others {
				s.Close()
			}
		}()
		// Every holder is reached before anything changes, shares included.
		err := r.Step(stepHolders, record.System, func() (any, error) {
			var err error
			others, err = reachHolders(ctx, u, req.LostTokens)
			if err != nil {
				return nil, err
			}
			data := HoldersReached{Tokens: []string{u.holder.Token}}
			for _, s := range others {
				data.Tokens = append(data.Tokens, s.Label())
			}
			for _, t := range req.LostTokens {
				data.Lost = append(data.Lost, LostToken{Token: t, Reason: req.LostReason})
			}
			return data, nil
		})
		if err != nil {
			return err
		}
		var newS []byte
		defer func() { secret.Zero(newS) }()
		var shares []quorum.Share
		defer func() {
			for i := range shares {
				shares[i].Wipe()
			}
		}()
		// The statement of the new epoch is signed while the root is logged in with the old
		// PIN, and kept only if the rotation completes.
		var kept registry.Statement
		var signed StatementSigned
		known, err := env.Registry.KnownKeys(ctx)
		if err != nil {
			return err
		}
		deliver := &shareDeliverer{people: people, mod: u.mod, known: known, ceremonyID: id, epoch: res.Epoch,
			threshold: req.Threshold, custodians: req.Custodians, dests: req.Destinations}
		defer deliver.close(ctx)
		warnings, err := deliver.check(ctx)
		if err != nil {
			return fmt.Errorf("reshare: %w", err)
		}
		res.Warnings = warnings
		who, err := people.Confirm(ctx, stepReshare)
		if err != nil {
			return err
		}
		err = stepConfirmed(ctx, r, people, stepReshare, who, func() (any, error) {
			rnd, err := u.sess.Random(ctx, quorum.SecretLen)
			if err != nil {
				return nil, err
			}
			newS, err = quorum.NewSecret(rnd)
			secret.Zero(rnd)
			if err != nil {
				return nil, err
			}
			if shares, err = quorum.Split(newS, id, u.v.Fingerprint[:], res.Epoch, n, req.Threshold); err != nil {
				return nil, err
			}
			data := Split{Epoch: res.Epoch, Threshold: req.Threshold, SecretDigest: quorum.Digest(newS, id, res.Epoch), Warnings: warnings}
			for i, sh := range shares {
				c := sh.Commitment()
				res.Shares = append(res.Shares, registry.QuorumShare{Number: sh.Number, Custodian: req.Custodians[i], Commitment: c,
					Destination: deliver.dest(i).String()})
				dest, err := deliver.deliver(ctx, i, sh, n)
				if err != nil {
					return nil, fmt.Errorf("share #%d for %s: %w", sh.Number, req.Custodians[i], err)
				}
				data.Shares = append(data.Shares, ShareHandedOut{Number: sh.Number, Custodian: req.Custodians[i], Commitment: c, Destination: dest})
			}
			res.Delivered = data.Shares
			np := quorumParams(registry.Quorum{CeremonyID: id, Threshold: req.Threshold, Shares: res.Shares, Epoch: res.Epoch,
				SecretDigest: quorum.Digest(newS, id, res.Epoch)}, u.v.Fingerprint[:])
			nq := quorum.NewCollector(np)
			defer nq.Wipe()
			for i, c := range req.Custodians {
				text, err := deliver.readBack(ctx, i, shares[i], n)
				if err != nil {
					return nil, fmt.Errorf("read back share #%d of %s: %w", i+1, c, err)
				}
				if _, err := nq.Add(text); err != nil {
					return nil, fmt.Errorf("share #%d of %s as read back: %w", i+1, c, err)
				}
			}
			back, err := nq.Secret()
			if err != nil {
				return nil, err
			}
			secret.Zero(back)
			data.ReadBack = fmt.Sprintf("%d of %d shares match their commitments; they reconstruct the new secret", n, n)
			next := u.v.nextStatement(r.ID, env)
			ns := quorum.StatementOf(np)
			next.Epoch, next.Threshold, next.Custodians, next.SecretDigest = ns.Epoch, ns.Threshold, ns.Custodians, ns.SecretDigest
			next.Holders = slices.DeleteFunc(next.Holders, func(h quorum.Holder) bool { return slices.Contains(req.LostTokens, h.Token.Label) })
			if kept, signed, err = signStatement(u.key, u.cert, next, r.ID); err != nil {
				return nil, err
			}
			return data, nil
		})
		if err != nil {
			return err
		}
		err = r.Step(stepRotate, record.System, func() (any, error) {
			return rotate(ctx, r, u, append([]*hsm.Session{u.sess}, others...), newS, req, res, kept, &signed)
		})
		if err != nil {
			return err
		}
		err = r.Step(stepSuperseded, record.System, func() (any, error) {
			return destroySuperseded(ctx, r, id, res)
		})
		if err != nil || len(req.OpsPIN) == 0 {
			return err // no operator PIN: no record for the root to attest
		}
		// ChangePIN logged the session out; the root logs in again with its new PIN to attest
		// the reshare's record.
		newUser := quorum.RootUserPIN.Derive(newS, id)
		defer secret.Zero(newUser)
		if err := u.sess.Login(ctx, hsm.User, newUser); err != nil {
			return fmt.Errorf("reshare done: the new shares open the root; but token %q did not take its new user PIN, so the root cannot attest the record: %w", u.holder.Token, err)
		}
		return nil
	})
	res.RunID = rid
	if err != nil {
		return nil, err
	}
	return res, nil
}

// Outcome says, a line each, what the reshare changed and what the old shares can still open
// until people destroy it: never only that the old shares stopped working.
func (res *ReshareResult) Outcome() []string {
	out := []string{"PINs changed on " + strings.Join(res.Rotated, ", ")}
	for _, t := range res.Lost {
		out = append(out, fmt.Sprintf("token %q recorded lost: it keeps the old epoch's PINs", t))
	}
	if res.BackupPath != "" {
		out = append(out, "backup re-wrapped: "+res.BackupPath)
	}
	for _, d := range res.Destroyed {
		out = append(out, "superseded backup destroyed: "+d)
	}
	if len(res.Outstanding) == 0 {
		return append(out, "The old shares open no token that holds the root and no backup Custos knows of.")
	}
	out = append(out, "The old shares still open what follows until people destroy it:")
	for _, o := range res.Outstanding {
		out = append(out, "- "+o)
	}
	return out
}

// checkLost refuses, before the run starts, lost tokens that are not holders of the root, and
// lost tokens without a reason.
func checkLost(ctx context.Context, reg *registry.Registry, rootID string, req ReshareRequest) error {
	if len(req.LostTokens) == 0 {
		if strings.TrimSpace(req.LostReason) != "" {
			return run.NewFieldError("LostReason", "a reason is given, but no token is recorded lost")
		}
		return nil
	}
	if strings.TrimSpace(req.LostReason) == "" {
		return run.NewFieldError("LostReason", "say why %s %s lost", strings.Join(req.LostTokens, ", "), map[bool]string{true: "is", false: "are"}[len(req.LostTokens) == 1])
	}
	holders, err := reg.RootHolders(ctx, rootID)
	if err != nil {
		return err
	}
	for i, t := range req.LostTokens {
		if slices.Contains(req.LostTokens[:i], t) {
			return run.NewFieldError("LostTokens", "token %q is named twice", t)
		}
		if !slices.ContainsFunc(holders, func(h registry.RootHolder) bool { return h.Token == t && h.State == registry.HolderHolding }) {
			return run.NewFieldError("LostTokens", "token %q does not hold root %s (holders: %s)", t, rootID, holderNames(holders))
		}
	}
	return nil
}

// holderNames lists the tokens that hold a root, for messages.
func holderNames(hs []registry.RootHolder) string {
	var names []string
	for _, h := range hs {
		if h.State == registry.HolderHolding {
			names = append(names, strconv.Quote(h.Token))
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// reachHolders opens every token holding the root but the one u is open on and the lost ones,
// and checks the PINs of the quorum's epoch log in there as the user and as the SO. It returns
// their sessions, logged out, or the first it cannot reach, naming it: before anything changed.
func reachHolders(ctx context.Context, u *unlocked, lost []string) ([]*hsm.Session, error) {
	so := quorum.RootSOPIN.Derive(u.s, u.q.CeremonyID)
	defer secret.Zero(so)
	var out []*hsm.Session
	fail := func(err error) ([]*hsm.Session, error) {
		for _, s := range out {
			s.Close()
		}
		return nil, err
	}
	for _, h := range u.holders {
		if h.Token == u.holder.Token || slices.Contains(lost, h.Token) {
			continue
		}
		unreachable := func(why error) ([]*hsm.Session, error) {
			return fail(fmt.Errorf("token %q holds the root and cannot be reached (%w): connect it, or record it lost with why; nothing was changed", h.Token, why))
		}
		if h.PINEpoch != 0 && h.PINEpoch != u.q.Epoch {
			return unreachable(fmt.Errorf("its PINs are of epoch %d, the quorum's of %d", h.PINEpoch, u.q.Epoch))
		}
		s, err := u.mod.OpenSession(ctx, h.Token)
		if err != nil {
			return unreachable(err)
		}
		out = append(out, s)
		for _, l := range []struct {
			who hsm.UserType
			pin []byte
		}{{hsm.User, u.userPIN}, {hsm.SO, so}} {
			if err := s.Login(ctx, l.who, l.pin); err != nil {
				return unreachable(err)
			}
			if err := s.Logout(ctx); err != nil {
				return unreachable(err)
			}
		}
	}
	return out, nil
}

// rotate changes the SO and user PINs of every holder in sessions (the one the root is open
// on first), the operations token's SO PIN when the root ceremony made that token, re-wraps
// the backup under the new KEK, and records the new epoch. Each change is undone if a later
// one fails, while both secrets are at hand: half a rotation would leave a holder that neither
// set of shares opens.
func rotate(ctx context.Context, r *run.Run, u *unlocked, sessions []*hsm.Session, newS []byte, req ReshareRequest, res *ReshareResult, kept registry.Statement, signed *StatementSigned) (any, error) {
	env, id := r.Env, u.q.CeremonyID
	// The operations token's SO PIN came from the old secret when the root ceremony created
	// that token; it moves to the new one, or old shares could still reset it.
	createdOps, err := createdOpsToken(ctx, env, id)
	if err != nil {
		return nil, err
	}
	oldSO := quorum.RootSOPIN.Derive(u.s, id)
	newSO := quorum.RootSOPIN.Derive(newS, id)
	newUser := quorum.RootUserPIN.Derive(newS, id)
	defer secret.ZeroAll(oldSO, newSO, newUser)
	var undo []func(context.Context) error
	rollback := func(err error) (any, error) {
		uctx := context.WithoutCancel(ctx)
		var failed []string
		for i := len(undo) - 1; i >= 0; i-- {
			if uerr := undo[i](uctx); uerr != nil {
				failed = append(failed, uerr.Error())
			}
		}
		if len(failed) > 0 {
			return nil, fmt.Errorf("%w; putting the old PINs back failed too (%s): a token holding the root may now need the new shares, which were handed out and verified; keep both sets of shares", err, strings.Join(failed, "; "))
		}
		return nil, fmt.Errorf("%w; the PINs were put back on every token: the old shares still open the root, the new ones do not", err)
	}
	data := Rotated{PINs: "SO and user PINs now derived from the new secret on every token that holds the root", Statement: signed}
	upd := registry.QuorumUpdate{Threshold: req.Threshold, Shares: res.Shares, SecretDigest: quorum.Digest(newS, id, res.Epoch), RunID: r.ID,
		Statement: kept}
	for _, s := range sessions {
		if err := s.ChangePIN(ctx, hsm.SO, oldSO, newSO); err != nil {
			return rollback(fmt.Errorf("token %q: change the SO PIN: %w", s.Label(), err))
		}
		undo = append(undo, func(c context.Context) error { return s.ChangePIN(c, hsm.SO, newSO, oldSO) })
		if err := s.ChangePIN(ctx, hsm.User, u.userPIN, newUser); err != nil {
			return rollback(fmt.Errorf("token %q: change the user PIN: %w", s.Label(), err))
		}
		undo = append(undo, func(c context.Context) error { return s.ChangePIN(c, hsm.User, newUser, u.userPIN) })
		upd.Rotated = append(upd.Rotated, s.Label())
	}
	data.Tokens = upd.Rotated
	for _, t := range req.LostTokens {
		upd.Lost = append(upd.Lost, registry.LostHolder{Token: t, Note: req.LostReason})
	}
	if createdOps {
		if err := rotateOpsSOPIN(ctx, u, u.s, newS); err != nil {
			return rollback(err)
		}
		undo = append(undo, func(c context.Context) error { return rotateOpsSOPIN(c, u, newS, u.s) })
		data.OperationsToken = "SO PIN now derived from the new secret"
	}
	if u.q.BackupPath != "" {
		path, sum, err := writeBackup(ctx, env.Workspace, u.sess, id, res.Epoch, newS, newSO, newUser, u.holder.KeyID)
		if err != nil {
			return rollback(err)
		}
		undo = append(undo, func(context.Context) error { return os.Remove(path) })
		upd.BackupPath = path
		upd.BackupSHA256, _ = hex.DecodeString(sum)
		res.BackupPath = path
		data.Backup, data.BackupSHA256 = path, sum
	}
	if _, err := r.Registry().Reshare(ctx, id, u.q.Epoch, upd); err != nil {
		return rollback(err)
	}
	res.Rotated, res.Lost = upd.Rotated, req.LostTokens
	// The sessions are logged out by ChangePIN and BackupKey; later users log in again.
	return data, nil
}

// backupName is a blob's name under backup/: <root>-epoch<n>.wrapped.
var backupName = regexp.MustCompile(`^(.+)-epoch([0-9]+)\.wrapped$`)

// destroySuperseded overwrites and removes every backup blob of the root in the workspace of
// an epoch before the new one (those the registry knows, and any file named as one), and
// lists what the old shares may still open: copies of superseded blobs outside the workspace
// that nobody recorded destroyed, and lost tokens.
func destroySuperseded(ctx context.Context, r *run.Run, rootID string, res *ReshareResult) (any, error) {
	env := r.Env
	data := SupersededDestroyed{}
	destroyed, err := destroyBlobs(ctx, r, rootID, func(epoch int) bool { return epoch < res.Epoch })
	if err != nil {
		return nil, err
	}
	data.Destroyed = destroyed
	res.Destroyed = data.Destroyed
	out, err := outstanding(ctx, env.Registry, rootID, func(c registry.BackupCopy) bool { return c.Epoch < res.Epoch })
	if err != nil {
		return nil, err
	}
	res.Outstanding, data.Outstanding = out, out
	if len(out) == 0 {
		data.None = "no copy of a superseded backup and no lost token is outstanding"
	}
	return data, nil
}

// destroyBlobs overwrites and removes every backup blob of the root in the workspace whose
// epoch the filter selects (those the registry knows, and any file named as one), records
// them destroyed, and says what it destroyed.
func destroyBlobs(ctx context.Context, r *run.Run, rootID string, selected func(epoch int) bool) ([]string, error) {
	env := r.Env
	var destroyed []string
	blobs, err := env.Registry.BackupBlobs(ctx, rootID)
	if err != nil {
		return nil, err
	}
	done := map[string]bool{}
	for _, b := range blobs {
		if !selected(b.Epoch) || !b.DestroyedAt.IsZero() {
			continue
		}
		if err := workspace.DestroyFile(b.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if err := r.Registry().DestroyBackupBlob(ctx, rootID, b.Epoch, env.Clock(), r.ID); err != nil {
			return nil, err
		}
		done[filepath.Base(b.Path)] = true
		destroyed = append(destroyed, fmt.Sprintf("%s (epoch %d, SHA-256 %x): overwritten, then removed", b.Path, b.Epoch, b.SHA256))
	}
	// Blobs written before the registry kept account of them are found by their names.
	entries, err := os.ReadDir(env.Workspace.Path(workspace.BackupDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, e := range entries {
		m := backupName.FindStringSubmatch(e.Name())
		if m == nil || m[1] != rootID || done[e.Name()] {
			continue
		}
		if epoch, _ := strconv.Atoi(m[2]); !selected(epoch) {
			continue
		}
		path := env.Workspace.Path(workspace.BackupDir, e.Name())
		if err := workspace.DestroyFile(path); err != nil {
			return nil, err
		}
		destroyed = append(destroyed, fmt.Sprintf("%s (epoch %s, found by its name): overwritten, then removed", path, m[2]))
	}
	return destroyed, nil
}

// outstanding lists what people must destroy because old shares may still open it: the
// root's backup copies that are not retired and that superseded says are superseded, and its
// lost tokens.
func outstanding(ctx context.Context, reg *registry.Registry, rootID string, superseded func(registry.BackupCopy) bool) ([]string, error) {
	copies, err := reg.BackupCopies(ctx, rootID)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range copies {
		if c.Retired() || !superseded(c) {
			continue
		}
		media := ""
		if c.Media != "" {
			media = " on " + strconv.Quote(c.Media)
		}
		out = append(out, fmt.Sprintf("backup copy %d (epoch %d, SHA-256 %x), written to %s%s by %s on %s: destroy it, then record that with backup retire",
			c.Copy, c.Epoch, c.SHA256, c.Location, media, c.MadeBy, c.MadeAt.Format(time.DateOnly)))
	}
	holders, err := reg.RootHolders(ctx, rootID)
	if err != nil {
		return nil, err
	}
	for _, h := range holders {
		if h.State == registry.HolderLost {
			out = append(out, fmt.Sprintf("token %q, recorded lost on %s (%s), still holds the root with the PINs of epoch %d: if it is found, destroy it",
				h.Token, h.StateAt.Format(time.DateOnly), h.Note, h.PINEpoch))
		}
	}
	return out, nil
}

// createdOpsToken says whether the root ceremony of id created the operations token, which
// the record-signer step of its completed run records: only then is the token's SO PIN
// derived from the quorum secret.
func createdOpsToken(ctx context.Context, env run.Env, id string) (bool, error) {
	runs, err := env.Registry.RunsOf(ctx, id)
	if err != nil {
		return false, err
	}
	for _, rr := range runs {
		if rr.Kind != registry.RunCeremony || rr.Operation != "root" || rr.Status != registry.RunCompleted {
			continue
		}
		jf, err := record.ReadJournalFile(rr.JournalPath)
		if err != nil {
			return false, fmt.Errorf("the root ceremony's journal: %w", err)
		}
		for _, e := range jf.Entries {
			if e.Step == "root.record-signer" && e.Status == record.StatusDone {
				p, err := record.Decode[RecordSignerMade](e)
				if err != nil {
					return false, err
				}
				return p.TokenCreated, nil
			}
		}
	}
	return false, nil
}

func rotateOpsSOPIN(ctx context.Context, u *unlocked, oldS, newS []byte) error {
	oldSO := quorum.OpsSOPIN.Derive(oldS, u.q.CeremonyID)
	newSO := quorum.OpsSOPIN.Derive(newS, u.q.CeremonyID)
	defer secret.ZeroAll(oldSO, newSO)
	s, err := u.mod.OpenSession(ctx, u.q.OperationsToken)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.ChangePIN(ctx, hsm.SO, oldSO, newSO); err != nil {
		return fmt.Errorf("change the operations token's SO PIN: %w", err)
	}
	return nil
}
