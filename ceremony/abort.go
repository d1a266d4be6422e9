package ceremony

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/secret"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// Handler is what the ceremony package knows of its runs that stopped half way, for
// run.Handlers: they cannot resume (the quorum secret existed only in the process that
// stopped) unless every step was done and only the signed record is missing, which resume
// writes; abort destroys the keys they began making, re-initialises a root token a root
// ceremony initialised empty, and names what a person must clear.
func Handler() run.Handler {
	return run.Handler{
		Kind:  registry.RunCeremony,
		Title: stepTitle,
		// Only a run whose every step was done resumes: its record is written.
		Resume:       resumeRecord,
		Resumable:    recordPending,
		CannotResume: "the quorum secret it reconstructed existed only in the stopped process; abort it to clean up, then start the operation again",
		Made:         made,
		Abort:        abort,
		Asks:         run.Asks{OpsPIN: true},
	}
}

// abort ends a ceremony run that stopped half way: keys it began making on the operations
// token and that no registry entry owns are destroyed (pins.Ops logs in), and what it made
// and registered, and a root or operations token it left behind, are named for a person.
func abort(ctx context.Context, r *run.Run, pins run.PINs) (run.Outcome, error) {
	env := r.Env
	rr, err := env.Registry.Run(ctx, r.ID)
	if err != nil {
		return run.Outcome{}, err
	}
	intents := map[string]string{} // key id (hex) → token
	opsToken := ""                 // the operations token this run initialised
	module := ""                   // the module the root ceremony's pre-flight opened
	var undo *UndoKept             // where a root ceremony kept its root token's temporary SO PIN
	for _, e := range r.Journal.Entries() {
		switch {
		case e.Step == stepUndo:
			p, err := record.Decode[UndoKept](e)
			if err != nil {
				return run.Outcome{}, err
			}
			undo = &p
		case e.Step == run.StepKeyIntent:
			p, err := record.Decode[run.KeyIntent](e)
			if err != nil {
				return run.Outcome{}, err
			}
			intents[p.KeyID.String()] = p.Token
		case e.Step == run.StepTokenIntent:
			p, err := record.Decode[run.TokenIntent](e)
			if err != nil {
				return run.Outcome{}, err
			}
			opsToken = p.Token
		case e.Step == "root.preflight" && e.Status == record.StatusDone:
			p, err := record.Decode[Preflight](e)
			if err != nil {
				return run.Outcome{}, err
			}
			module = p.Module
		}
	}
	out := run.Outcome{Summary: "aborted"}
	owned := map[string]string{}  // key id → what the registry has it as
	live := map[string][]string{} // token → what the registry keeps on it
	issuers, err := env.Registry.Issuers(ctx)
	if err != nil {
		return run.Outcome{}, err
	}
	for _, i := range issuers {
		what := fmt.Sprintf("%s CA %s (%s)", i.Kind, i.ID, i.CommonName)
		owned[hex.EncodeToString(i.Key.KeyID)] = what
		live[i.Key.TokenLabel] = append(live[i.Key.TokenLabel], what)
	}
	roles, err := env.Registry.RoleCerts(ctx)
	if err != nil {
		return run.Outcome{}, err
	}
	for _, rc := range roles {
		what := fmt.Sprintf("%s certificate %q", rc.Role, rc.CommonName)
		owned[hex.EncodeToString(rc.Key.KeyID)] = what
		live[rc.Key.TokenLabel] = append(live[rc.Key.TokenLabel], what)
	}
	quorumKept := false // the root's quorum is registered: it controls the tokens' SO PINs
	if q, err := env.Registry.Quorum(ctx, rr.Subject); err == nil {
		module = q.ModulePath
		quorumKept = true
	}
	var orphans []string
	for id := range intents {
		if what, ok := owned[id]; ok {
			// Made and registered before the run stopped: it stands, but nothing signed says so.
			out.Remaining = append(out.Remaining, fmt.Sprintf("the %s was made and registered before the run stopped and can be used; the run's signed record was not written, so file this abort's journal with the ceremony papers", what))
			continue
		}
		orphans = append(orphans, id)
	}
	sort.Strings(orphans)
	if len(orphans) == 0 && undo == nil && rr.Operation != "root" {
		return out, nil
	}
	mod, err := env.OpenModule(ctx, module)
	if err != nil {
		return run.Outcome{}, err
	}
	defer mod.Close()
	for _, id := range orphans {
		what, err := destroyOrphan(ctx, mod, intents[id], id, pins.Ops)
		if err != nil {
			return run.Outcome{}, err
		}
		out.Done = append(out.Done, what)
	}
	rootNamed := false // a line of out names the root token already
	if undo != nil {
		done, left, err := voidFromUndo(ctx, mod, *undo, pins.Ops)
		if err != nil {
			return run.Outcome{}, err
		}
		out.Done = append(out.Done, done...)
		out.Remaining = append(out.Remaining, left...)
		rootNamed = len(left) > 0
	}
	if rr.Operation == "root" {
		removed, err := removeRootFiles(ctx, env, rr.Subject)
		if err != nil {
			return run.Outcome{}, err
		}
		out.Done = append(out.Done, removed...)
	}
	switch {
	case opsToken == "":
	case len(live[opsToken]) > 0 || quorumKept:
		// The run got as far as registering what it made: the operations token is in use (it
		// holds the record signer), and its SO PIN is the quorum's. It is never to be cleared.
		why := "its SO PIN is the root quorum's"
		if len(live[opsToken]) > 0 {
			why = "it holds the " + strings.Join(live[opsToken], " and ")
		}
		out.Remaining = append(out.Remaining, fmt.Sprintf("operations token %q was initialised by this run and is in use (%s): keep it; never re-initialise it", opsToken, why))
	default:
		if _, err := mod.TokenByLabel(ctx, opsToken); err == nil {
			out.Remaining = append(out.Remaining, fmt.Sprintf("operations token %q was initialised by this run: its SO PIN came from the stopped run's secret, so nobody can reset its user PIN (the operator PIN) if it is ever locked; re-initialise it with the HSM vendor's tools before the next root ceremony, which then sets an SO PIN its quorum controls", opsToken))
		}
	}
	if rr.Operation == "root" && !rootNamed {
		if _, err := mod.TokenByLabel(ctx, rr.Subject); err == nil {
			if _, err := env.Registry.Issuer(ctx, rr.Subject); err != nil {
				out.Remaining = append(out.Remaining, fmt.Sprintf("root token %q was initialised by this run with PINs that existed only in the stopped process: nobody can use it or any key on it; clear it with the HSM vendor's tools before using the id again", rr.Subject))
			}
		}
	}
	return out, nil
}

// voidFromUndo re-initialises a stopped root ceremony's root token empty with the temporary
// SO PIN it kept on the operations token (keepUndo), then destroys that data object. Nothing
// is done when the object is gone (the ceremony closed, or stopped before it was stored). A
// run stopped in its close step, between setting the SO PIN derived from the quorum secret
// and destroying the object, left a PIN the token no longer takes: the token is named in
// left, for the vendor's tools, and the useless object destroyed.
func voidFromUndo(ctx context.Context, mod *hsm.Module, u UndoKept, pin []byte) (done, left []string, err error) {
	if len(pin) == 0 {
		return nil, nil, run.NewFieldError("OpsPIN", "the root token %q this run initialised can be re-initialised empty with what the run kept on operations token %q; the operator PIN is needed to read it", u.Root, u.Token)
	}
	s, err := mod.OpenSession(ctx, u.Token)
	if errors.Is(err, hsm.ErrTokenNotFound) {
		return nil, nil, nil // the run stopped before it initialised the operations token
	}
	if err != nil {
		return nil, nil, err
	}
	defer s.Close()
	if err := s.Login(ctx, hsm.User, pin); err != nil {
		return nil, nil, err
	}
	defer s.Logout(context.WithoutCancel(ctx))
	obj, err := s.Data(ctx, "custos", u.Label)
	if errors.Is(err, hsm.ErrObjectNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	defer secret.Zero(obj.Value)
	if _, err := mod.TokenByLabel(ctx, u.Root); err == nil {
		void := voidLabel(u.Root)
		_, err := mod.ReinitToken(ctx, u.Root, obj.Value, void, nil)
		switch {
		case errors.Is(err, hsm.ErrPINIncorrect):
			left = append(left, fmt.Sprintf("root token %q: the run stopped in its close step, after the token's SO PIN became the one derived from the quorum secret, so the PIN the run kept no longer opens it; the registry never recorded this root: clear the token with the HSM vendor's tools before using the id again", u.Root))
		case err != nil:
			return nil, nil, fmt.Errorf("re-initialise root token %q with the SO PIN the run kept: %w", u.Root, err)
		default:
			done = append(done, fmt.Sprintf("root token %q re-initialised empty as %q: no key of this run remains", u.Root, void))
		}
	} else if !errors.Is(err, hsm.ErrTokenNotFound) {
		return nil, nil, err
	}
	if _, err := s.Destroy(ctx, hsm.Match{Class: hsm.ClassData, Label: u.Label}); err != nil {
		return nil, nil, err
	}
	return append(done, fmt.Sprintf("destroyed %q on %s, which kept the root token's temporary SO PIN", u.Label, u.Token)), left, nil
}

func destroyOrphan(ctx context.Context, mod *hsm.Module, token, idHex string, pin []byte) (string, error) {
	id, err := hex.DecodeString(idHex)
	if err != nil {
		return "", fmt.Errorf("journal names a bad key id %q", idHex)
	}
	if len(pin) == 0 {
		return "", run.NewFieldError("OpsPIN", "key %s on token %q was being made when the run stopped; the operator PIN is needed to destroy it", idHex, token)
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

// removeRootFiles removes the certificates and backup a stopped root ceremony wrote, unless
// the registry has the root (then they are its).
func removeRootFiles(ctx context.Context, env run.Env, id string) ([]string, error) {
	if _, err := env.Registry.Issuer(ctx, id); err == nil {
		return nil, nil
	} else if !errors.Is(err, registry.ErrNotFound) {
		return nil, err
	}
	var done []string
	for _, p := range rootFiles(env.Workspace, id) {
		err := os.Remove(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("remove %s, which the stopped ceremony wrote: %w", p, err)
		}
		done = append(done, "removed "+p)
	}
	return done, nil
}
