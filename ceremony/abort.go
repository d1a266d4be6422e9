package ceremony

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/secret"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
)

// stepKeyIntent is journaled before a key is generated on the operations token, with the
// key's id: a run killed during generation leaves a key that abort can find and destroy.
const stepKeyIntent = "key.intent"

func noteKeyIntent(r *run, token string, id []byte) error {
	return r.journal.Note(stepKeyIntent, record.System, map[string]string{"token": token, "key_id": hex.EncodeToString(id)})
}

// stepTokenIntent is journaled before a root ceremony initialises the operations token.
const stepTokenIntent = "token.intent"

// ErrCannotResume says a ceremony run cannot continue where it stopped.
var ErrCannotResume = errors.New("a ceremony run cannot be resumed")

// Resume explains why a stopped ceremony run cannot continue: its quorum secret existed only
// in the process that stopped. Abort it, then run the operation again.
func Resume(ctx context.Context, env Env, runID string) error {
	run, err := env.Registry.Run(ctx, runID)
	if err != nil {
		return err
	}
	if run.Kind != registry.RunCeremony {
		return fmt.Errorf("run %s is a %s run, not a ceremony", runID, run.Kind)
	}
	return fmt.Errorf("%w: %s %s stopped half way, and the quorum secret it reconstructed existed only in the stopped process; run 'custos abort %s' to clean up, then start the %s again",
		ErrCannotResume, run.Operation, runID, runID, run.Operation)
}

// AbortResult says what an abort found and removed.
type AbortResult struct {
	Destroyed []string // keys destroyed on the operations token
	Remaining []string // what is left that a person must deal with, and how
}

// Abort ends a ceremony run that stopped half way: keys it began making on the operations
// token and that no registry entry owns are destroyed (opsPIN, zeroed here, logs in), a root
// token it left behind is reported, and the journal and registry say the run was aborted.
func Abort(ctx context.Context, env Env, runID string, opsPIN []byte) (*AbortResult, error) {
	defer secret.Zero(opsPIN)
	run, err := env.Registry.Run(ctx, runID)
	if err != nil {
		return nil, err
	}
	if run.Kind != registry.RunCeremony {
		return nil, fmt.Errorf("run %s is a %s run, not a ceremony", runID, run.Kind)
	}
	j, err := record.OpenJournal(run.JournalPath, run.ID)
	if err != nil {
		return nil, err
	}
	defer j.Close()
	res := &AbortResult{}
	intents := map[string]string{} // key id → token
	opsToken := ""                 // the operations token this run initialised
	module, _, _ := env.Registry.Setting(ctx, "pkcs11.module")
	for _, e := range j.Entries() {
		if e.Step == stepKeyIntent {
			intents[e.Data["key_id"]] = e.Data["token"]
		}
		if e.Step == stepTokenIntent {
			opsToken = e.Data["token"]
		}
		if e.Data["module"] != "" { // the root ceremony's pre-flight names the module it opened
			module = e.Data["module"]
		}
	}
	owned := map[string]string{} // key id → what the registry has it as
	issuers, err := env.Registry.Issuers(ctx)
	if err != nil {
		return nil, err
	}
	for _, i := range issuers {
		owned[hex.EncodeToString(i.Key.KeyID)] = fmt.Sprintf("%s CA %s (%s)", i.Kind, i.ID, i.CommonName)
	}
	roles, err := env.Registry.RoleCerts(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range roles {
		owned[hex.EncodeToString(r.Key.KeyID)] = fmt.Sprintf("%s certificate %q", r.Role, r.CommonName)
	}
	if q, err := env.Registry.Quorum(ctx, run.Subject); err == nil {
		module = q.ModulePath
	}
	var orphans []string
	for id := range intents {
		if what, ok := owned[id]; ok {
			// Made and registered before the run stopped: it stands, but nothing signed says so.
			res.Remaining = append(res.Remaining, fmt.Sprintf("the %s was made and registered before the run stopped and can be used; the run's signed record was not written, so file this abort's journal with the ceremony papers", what))
			continue
		}
		orphans = append(orphans, id)
	}
	sort.Strings(orphans)
	if len(orphans) > 0 || run.Operation == "root" {
		mod, err := openModule(env, module)
		if err != nil {
			return nil, fmt.Errorf("abort %s: %w", runID, err)
		}
		defer mod.Close()
		for _, id := range orphans {
			what, err := destroyOrphan(ctx, mod, intents[id], id, opsPIN)
			if err != nil {
				return nil, fmt.Errorf("abort %s: %w", runID, err)
			}
			res.Destroyed = append(res.Destroyed, what)
		}
		if opsToken != "" {
			if _, err := mod.TokenByLabel(ctx, opsToken); err == nil {
				res.Remaining = append(res.Remaining, fmt.Sprintf("operations token %q was initialised by this run: its SO PIN came from the stopped run's secret, so nobody can reset its user PIN (the operator PIN) if it is ever locked; re-initialise it with the HSM vendor's tools before the next root ceremony, which then sets an SO PIN its quorum controls", opsToken))
			}
		}
		if run.Operation == "root" {
			if _, err := mod.TokenByLabel(ctx, run.Subject); err == nil {
				if _, err := env.Registry.Issuer(ctx, run.Subject); err != nil {
					res.Remaining = append(res.Remaining, fmt.Sprintf("root token %q was initialised by this run with PINs that existed only in the stopped process: nobody can use it or any key on it; clear it with the HSM vendor's tools before using the id again", run.Subject))
				}
			}
		}
	}
	data := map[string]string{"destroyed": strings.Join(res.Destroyed, "; "), "remaining": strings.Join(res.Remaining, "; ")}
	if err := j.Note("run.abort", record.System, data); err != nil {
		return nil, err
	}
	if err := env.Registry.AbortRun(ctx, runID, "aborted: "+strings.Join(append(res.Destroyed, res.Remaining...), "; ")); err != nil {
		return nil, err
	}
	return res, nil
}

func destroyOrphan(ctx context.Context, mod *hsm.Module, token, idHex string, pin []byte) (string, error) {
	id, err := hex.DecodeString(idHex)
	if err != nil {
		return "", fmt.Errorf("journal names a bad key id %q", idHex)
	}
	if len(pin) == 0 {
		return "", fmt.Errorf("key %s on token %q was being made when the run stopped; give the operator PIN (--ops-pin-file) to destroy it", idHex, token)
	}
	s, err := mod.OpenSession(ctx, token)
	if err != nil {
		return "", err
	}
	defer s.Close()
	if err := s.Login(ctx, hsm.User, pin); err != nil {
		return "", err
	}
	defer s.Logout(context.WithoutCancel(ctx))
	what := destroyObjects(s, id, "unfinished key on "+token)(ctx)
	left, err := s.Remaining(ctx, id, "")
	if err != nil {
		return "", err
	}
	if len(left) > 0 {
		return "", fmt.Errorf("%s", what)
	}
	return what, nil
}
