package ceremony

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/inputfile"
	"github.com/custos-pki/custos/internal/secret"
	"github.com/custos-pki/custos/quorum"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

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

// Restore is disaster recovery: it needs no token that holds the root, only the quorum of the
// current epoch and that epoch's backup. It initialises an empty slot as req.Token with the
// epoch's derived SO and user PINs, unwraps the blob inside it (sensitive, never extractable),
// checks the key is the root certificate's and signs once, and records the token as a holder
// of the root. A blob of another root or another epoch is refused, naming which, before any
// share is used.
func Restore(ctx context.Context, env run.Env, q *quorum.Collector, req RestoreRequest) (*RestoreResult, error) {
	if req.Token == "" {
		return nil, fmt.Errorf("restore: %w", run.NewFieldError("Token", "name the new token"))
	}
	if problem := hsm.TokenLabelProblem(req.Token); problem != "" {
		return nil, fmt.Errorf("restore: %w", run.NewFieldError("Token", "token label %q: %s", req.Token, problem))
	}
	blob, err := inputfile.Read(ctx, "backup", req.Backup, maxBackupFile)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", &run.FieldError{Name: "Backup", Problem: err.Error(), Err: err})
	}
	rq, _, err := collectedQuorum(ctx, env.Registry, q)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	sum := sha256.Sum256(blob)
	if err := checkBackupOf(ctx, env.Registry, rq, req.Backup, sum); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	res := &RestoreResult{Token: req.Token}
	rid, err := quorumRun(ctx, env, q, "restore", req.OpsPIN, func(r *run.Run, u *unlocked) error {
		return r.Step(stepRestore, record.System, func() (any, error) {
			if _, err := u.mod.TokenByLabel(ctx, req.Token); err == nil {
				return nil, run.NewFieldError("Token", "a token labelled %q already exists; restore needs an empty slot and a new label", req.Token)
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
			// The new token's session becomes the operation's own (u.close logs it out and
			// closes it): the restored key attests the restore's record.
			u.sess = ns
			if err := ns.Login(ctx, hsm.User, u.userPIN); err != nil {
				return nil, err
			}
			kek := quorum.KEK(u.s, u.q.CeremonyID)
			defer secret.Zero(kek)
			// Unwrapped sensitive and not extractable; RestoreKey refuses a key whose public
			// half is not the certificate's.
			label := "root " + u.q.CeremonyID
			key, err := ns.RestoreKey(ctx, kek, blob, hsm.UnwrapSpec{ID: u.root.Key.KeyID, Label: label, Public: u.cert.PublicKey})
			if err != nil {
				return nil, err
			}
			if err := signs(key, u.cert); err != nil {
				return nil, err
			}
			u.key = key
			if err := ns.StoreCertificate(ctx, u.cert, u.root.Key.KeyID, label); err != nil {
				return nil, err
			}
			info, err := ns.TokenInfo(ctx)
			if err != nil {
				return nil, err
			}
			// The root now lives on the new token too: the root signs that, with the restored
			// key. The statement names the token restored to first, beside the other holders.
			next := u.v.nextStatement(r.ID, env)
			next.RootToken = tokenIdentity(info)
			next.Holders = append(next.Holders, quorum.Holder{Token: next.RootToken, KeyID: hex.EncodeToString(u.root.Key.KeyID)})
			kept, signed, err := signStatement(key, u.cert, next, r.ID)
			if err != nil {
				return nil, err
			}
			if err := r.Registry().RestoreRoot(ctx, u.root.ID, registry.RootHolder{Token: req.Token, Serial: info.SerialOrNone(),
				Model: info.Manufacturer + " " + info.Model, KeyID: u.root.Key.KeyID, Origin: registry.OriginRestore,
				OriginRun: r.ID, PINEpoch: u.q.Epoch}, env.Clock(), kept); err != nil {
				return nil, err
			}
			return Restored{Token: req.Token, TokenSerial: info.SerialOrNone(), Backup: req.Backup,
				BackupSHA256: hex.EncodeToString(sum[:]),
				Verification: "unwrapped sensitive and not extractable; its public half is the root certificate's, and its signature verifies under it",
				Statement:    &signed}, nil
		})
	})
	res.RunID = rid
	if err != nil {
		return nil, err
	}
	return res, nil
}

// checkBackupOf refuses a blob that is not the backup of the quorum q's root at q's epoch,
// saying whose and which epoch's it is when the registry knows it.
func checkBackupOf(ctx context.Context, reg *registry.Registry, q registry.Quorum, path string, sum [32]byte) error {
	b, err := reg.BackupBlobBySHA256(ctx, sum)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		return run.NewFieldError("Backup", "%s is no backup this workspace knows (SHA-256 %x): restore needs the backup of %s at epoch %d", path, sum, q.CeremonyID, q.Epoch)
	case err != nil:
		return err
	case b.RootID != q.CeremonyID:
		return run.NewFieldError("Backup", "%s is the backup of another root, %s (epoch %d), not of %s", path, b.RootID, b.Epoch, q.CeremonyID)
	case b.Epoch != q.Epoch:
		return run.NewFieldError("Backup", "%s is the backup of %s at epoch %d; the quorum is at epoch %d, whose shares open only that epoch's backup (%s)", path, b.RootID, b.Epoch, q.Epoch, q.BackupPath)
	}
	return nil
}
