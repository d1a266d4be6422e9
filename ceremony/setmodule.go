package ceremony

import (
	"context"
	"fmt"
	"strings"

	"github.com/custos-pki/custos/quorum"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/run"
)

// SetModuleRequest names the PKCS#11 module the quorum accepts from now on.
type SetModuleRequest struct {
	Module string // the new module's path (a driver update)
	OpsPIN []byte // operator PIN for signing the record; none: no record
}

// SetModuleResult is the module the quorum accepted and the one it replaced.
type SetModuleResult struct {
	RunID    string
	Module   quorum.Module
	Previous quorum.Module
	Seq      int // the number of the statement naming it
}

// SetModule makes another PKCS#11 module the one quorum operations load: the new module is
// hashed and loaded for this operation alone (its SHA-256 is journaled and shown beside the
// old one, for the custodians to compare with the vendor's), the root is unlocked through it,
// and the root signs a statement naming it. Every later quorum operation refuses any other
// module file. The custodians' shares are what accepts it: nothing else can.
func SetModule(ctx context.Context, env run.Env, q *quorum.Collector, req SetModuleRequest) (*SetModuleResult, error) {
	if strings.TrimSpace(req.Module) == "" {
		return nil, fmt.Errorf("set-module: %w", run.NewFieldError("Module", "name the new PKCS#11 module"))
	}
	res := &SetModuleResult{}
	rid, err := quorumRunWith(ctx, env, q, "set-module", req.OpsPIN, unlockOptions{newModule: req.Module}, func(r *run.Run, u *unlocked) error {
		return r.Step(stepSetModule, record.System, func() (any, error) {
			res.Previous = u.v.Statement.Module
			res.Module = quorum.Module{Path: u.module.Path, SHA256: u.module.SHA256}
			next := u.v.nextStatement(r.ID, env)
			next.Module = res.Module
			kept, signed, err := signStatement(u.key, u.cert, next, r.ID)
			if err != nil {
				return nil, err
			}
			// The workspace's module (for the operator's commands) moves first, and back if
			// the quorum's cannot: the two never disagree after a failed step.
			saved, err := run.SavedModule(ctx, env.Registry)
			if err != nil {
				return nil, err
			}
			if err := r.SaveModule(ctx, res.Module.Path); err != nil {
				return nil, err
			}
			if _, err := r.Registry().SetQuorumModule(ctx, u.q.CeremonyID, res.Module.Path, kept); err != nil {
				if saved != "" {
					r.SaveModule(context.WithoutCancel(ctx), saved)
				}
				return nil, err
			}
			res.Seq = kept.Seq
			return ModuleSet{Previous: res.Previous.Path, PreviousSHA256: res.Previous.SHA256, Statement: signed}, nil
		})
	})
	res.RunID = rid
	if err != nil {
		return nil, err
	}
	return res, nil
}
