package ceremony

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/secret"
	"github.com/custos-pki/custos/quorum"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// ReshareRequest names the new custodians and threshold.
type ReshareRequest struct {
	Custodians []string
	// Destinations are where each new custodian's share goes, beside Custodians (as a plan's
	// deliver); missing or zero: the default.
	Destinations []Destination
	Threshold    int
	OpsPIN       []byte // operator PIN for signing the record; none: no record
}

// ReshareResult is a quorum moved to a new secret.
type ReshareResult struct {
	RunID      string
	Epoch      int
	BackupPath string
	Shares     []registry.QuorumShare
	Delivered  []ShareHandedOut // where each share went
	Warnings   []string         // as RootResult's
}

// Reshare rotates the quorum secret: a new S is split among the new custodians (each share
// delivered and read back), the root token's PINs are changed to those derived from the new
// S, the backup is re-wrapped under the new KEK, and the registry moves to the next epoch.
// The old shares stop working.
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
			field := map[bool]string{true: "Threshold", false: "Custodians"}[pe.Key == "threshold"]
			return nil, fmt.Errorf("reshare: %w", run.NewFieldError(field, "%s", pe.Problem))
		}
		return nil, fmt.Errorf("reshare: %w", err)
	}
	res := &ReshareResult{Epoch: rq.Epoch + 1}
	id := rq.CeremonyID
	rid, err := quorumRun(ctx, env, q, "reshare", req.OpsPIN, func(r *run.Run, u *unlocked) error {
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
		warnings, err := deliver.check(ctx)
		if err != nil {
			return fmt.Errorf("reshare: %w", err)
		}
		res.Warnings = warnings
		who, err := people.Confirm(ctx, stepReshare)
		if err != nil {
			return err
		}
		err = r.Step(stepReshare, who, func() (any, error) {
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
			if kept, signed, err = signStatement(u.key, u.cert, next, r.ID); err != nil {
				return nil, err
			}
			return data, nil
		})
		if err != nil {
			return err
		}
		err = r.Step(stepRotate, record.System, func() (any, error) {
			// The operations token's SO PIN came from the old secret when the root ceremony
			// created that token; it moves to the new one, or old shares could still reset it.
			createdOps, err := createdOpsToken(ctx, env, id)
			if err != nil {
				return nil, err
			}
			oldSO := quorum.RootSOPIN.Derive(u.s, id)
			newSO := quorum.RootSOPIN.Derive(newS, id)
			newUser := quorum.RootUserPIN.Derive(newS, id)
			defer secret.ZeroAll(oldSO, newSO, newUser)
			// Each change is undone if a later one fails, while both secrets are at hand:
			// half a rotation would leave a root that neither set of shares unlocks.
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
					return nil, fmt.Errorf("%w; putting the old PINs back failed too (%s): the root token may now need the new shares, which were handed out and verified; keep both sets of shares", err, strings.Join(failed, "; "))
				}
				return nil, fmt.Errorf("%w; the PINs were put back: the old shares still unlock the root, the new ones do not", err)
			}
			if err := u.sess.ChangePIN(ctx, hsm.SO, oldSO, newSO); err != nil {
				return rollback(fmt.Errorf("change the SO PIN: %w", err))
			}
			undo = append(undo, func(c context.Context) error { return u.sess.ChangePIN(c, hsm.SO, newSO, oldSO) })
			if err := u.sess.ChangePIN(ctx, hsm.User, u.userPIN, newUser); err != nil {
				return rollback(fmt.Errorf("change the user PIN: %w", err))
			}
			undo = append(undo, func(c context.Context) error { return u.sess.ChangePIN(c, hsm.User, newUser, u.userPIN) })
			upd := registry.QuorumUpdate{Threshold: req.Threshold, Shares: res.Shares, SecretDigest: quorum.Digest(newS, id, res.Epoch), Statement: kept}
			data := Rotated{PINs: "SO and user PINs now derived from the new secret", Statement: &signed}
			if createdOps {
				if err := rotateOpsSOPIN(ctx, u, u.s, newS); err != nil {
					return rollback(err)
				}
				undo = append(undo, func(c context.Context) error { return rotateOpsSOPIN(c, u, newS, u.s) })
				data.OperationsToken = "SO PIN now derived from the new secret"
			}
			if u.q.BackupPath != "" {
				path, sum, err := writeBackup(ctx, env.Workspace, u.sess, id, res.Epoch, newS, newSO, newUser, u.root.Key.KeyID)
				if err != nil {
					return rollback(err)
				}
				undo = append(undo, func(context.Context) error { return os.Remove(path) })
				upd.BackupPath = path
				upd.BackupSHA256, _ = hex.DecodeString(sum)
				res.BackupPath = path
				data.Backup, data.BackupSHA256 = path, sum
			}
			if _, err := env.Registry.Reshare(ctx, id, u.q.Epoch, upd); err != nil {
				return rollback(err)
			}
			// The session is logged out by ChangePIN and BackupKey; later users log in again.
			return data, nil
		})
		return err
	})
	res.RunID = rid
	if err != nil {
		return nil, err
	}
	return res, nil
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
