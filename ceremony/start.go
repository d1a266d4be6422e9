package ceremony

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/run"
	"github.com/custos-pki/custos/workspace"
)

// checkStart checks, before a root ceremony's run exists and before any token is touched,
// what the run will need later: the files it writes are free, the module loads, no token
// has the root's label yet, a slot is free for it, and the operator PIN opens the operations
// token when that token exists (a wrong PIN is refused here, not after the root key is made).
func checkStart(ctx context.Context, env run.Env, plan *Plan, opsPIN []byte) error {
	for _, p := range rootFiles(env.Workspace, plan.ID) {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("root ceremony: %s is left from an earlier run of this plan: abort that run (it is listed with the runs that stopped half way), or move the file away, then start again", p)
		}
	}
	mod, err := env.OpenModule(ctx, plan.Module)
	if err != nil {
		return fmt.Errorf("root ceremony: %w", err)
	}
	defer mod.Close()
	if _, err := mod.TokenByLabel(ctx, plan.ID); err == nil {
		return fmt.Errorf("root ceremony: a token labelled %q already exists on %s: a root ceremony needs a new token; abort the run that made it (it is listed with the runs that stopped half way), or choose another ceremony id", plan.ID, mod.Path())
	} else if !errors.Is(err, hsm.ErrTokenNotFound) {
		return fmt.Errorf("root ceremony: %w", err)
	}
	if _, err := mod.FreeSlot(ctx); err != nil {
		return fmt.Errorf("root ceremony: %w", err)
	}
	return checkOpsPIN(ctx, mod, plan.OperationsToken, opsPIN)
}

// checkOpsPIN logs in to the operations token with pin and out again, when the token exists;
// when it does not, the ceremony initialises it with pin.
func checkOpsPIN(ctx context.Context, mod *hsm.Module, token string, pin []byte) error {
	s, err := mod.OpenSession(ctx, token)
	if errors.Is(err, hsm.ErrTokenNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("root ceremony: operations token %q: %w", token, err)
	}
	defer s.Close()
	if err := s.Login(ctx, hsm.User, pin); err != nil {
		return &run.FieldError{Name: "OpsPIN", Problem: fmt.Sprintf("root ceremony: the operator PIN does not open operations token %q; nothing was changed on any token", token), Err: err}
	}
	return s.Logout(ctx)
}

// rootFiles are the files a root ceremony for root id writes in the workspace: the root's and
// the record signer's certificates, and the backup of epoch 1. A run starts only when none
// exists, so those an unregistered root's stopped run leaves are that run's.
func rootFiles(ws *workspace.Workspace, id string) []string {
	return []string{
		ws.Path(workspace.CertsDir, id+"-root.pem"),
		ws.Path(workspace.CertsDir, id+"-record-signer.pem"),
		ws.Path(workspace.BackupDir, fmt.Sprintf("%s-epoch%d.wrapped", id, 1)),
	}
}
