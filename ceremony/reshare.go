package ceremony

import (
	"bytes"
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
	Threshold  int
	OpsPIN     []byte // operator PIN for signing the record; none: no record
}

// ReshareResult is a quorum moved to a new secret.
type ReshareResult struct {
	RunID      string
	Epoch      int
	BackupPath string
	Shares     []registry.QuorumShare
}

// Reshare rotates the quorum secret: a new S is split among the new custodians (each share
// delivered and read back), the root token's PINs are changed to those derived from the new
// S, the backup is re-wrapped under the new KEK, and the registry moves to the next epoch.
// The old shares stop working.
func Reshare(ctx context.Context, env run.Env, q *quorum.Collector, req ReshareRequest, people Participants) (*ReshareResult, error) {
	n := len(req.Custodians)
	rq, err := collectedQuorum(ctx, env.Registry, q)
	if err != nil {
		return nil, fmt.Errorf("reshare: %w", err)
	}
	plan, err := ParsePlan(rq.Plan)
	if err != nil {
		return nil, err
	}
	check := *plan
	check.Custodians, check.Threshold = req.Custodians, req.Threshold
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
		var newS, relogin []byte
		defer func() { secret.ZeroAll(newS, relogin) }()
		var shares []quorum.Share
		defer func() {
			for i := range shares {
				shares[i].Wipe()
			}
		}()
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
			if shares, err = quorum.Split(newS, id, res.Epoch, n, req.Threshold); err != nil {
				return nil, err
			}
			data := Split{Epoch: res.Epoch, Threshold: req.Threshold, SecretDigest: quorum.Digest(newS, id, res.Epoch)}
			for i, sh := range shares {
				c := sh.Commitment()
				res.Shares = append(res.Shares, registry.QuorumShare{Number: sh.Number, Custodian: req.Custodians[i], Commitment: c})
				dest, err := people.DeliverShare(ctx, ShareDelivery{CeremonyID: id, Custodian: req.Custodians[i],
					Number: sh.Number, Of: n, Threshold: req.Threshold, Text: sh.Encode()})
				if err != nil {
					return nil, fmt.Errorf("share #%d for %s: %w", sh.Number, req.Custodians[i], err)
				}
				data.Shares = append(data.Shares, ShareHandedOut{Number: sh.Number, Custodian: req.Custodians[i], Commitment: c, Destination: dest})
			}
			nq := quorum.NewCollector(quorumParams(registry.Quorum{CeremonyID: id, Threshold: req.Threshold, Shares: res.Shares, Epoch: res.Epoch,
				SecretDigest: quorum.Digest(newS, id, res.Epoch)}))
			defer nq.Wipe()
			for i, c := range req.Custodians {
				text, err := people.ReadBackShare(ctx, ShareDelivery{CeremonyID: id, Custodian: c, Number: i + 1, Of: n, Threshold: req.Threshold})
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
			upd := registry.QuorumUpdate{Threshold: req.Threshold, Shares: res.Shares, SecretDigest: quorum.Digest(newS, id, res.Epoch)}
			data := Rotated{PINs: "SO and user PINs now derived from the new secret"}
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
			// The session is logged out by ChangePIN and BackupKey; the root logs in again
			// with its new PIN to attest the reshare's record.
			relogin = bytes.Clone(newUser)
			return data, nil
		})
		if err != nil {
			return err
		}
		if len(req.OpsPIN) == 0 {
			return nil // no record to attest
		}
		if err := u.sess.Login(ctx, hsm.User, relogin); err != nil {
			return fmt.Errorf("reshare done: the new shares unlock the root; but the root token did not take its new user PIN, so the root cannot attest the record: %w", err)
		}
		return nil
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
