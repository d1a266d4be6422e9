package ceremony

import (
	"context"
	"crypto"
	"fmt"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/secret"
	"github.com/custos-pki/custos/quorum"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// ShareInput is one share to check as read from its source, or why it could not be read (a
// wrong identity, a wrong PIN). Text is the caller's: CheckShares never zeroes it.
type ShareInput struct {
	Source string
	Text   []byte
	Err    error
}

// CheckSharesResult is what a check of shares found.
type CheckSharesResult struct {
	RunID      string
	Checks     []ShareChecked
	Present    int    // distinct shares that matched their commitments
	Needed     int    // the threshold
	Rebuilt    bool   // Present >= Needed, and the reconstruction matched the secret's digest
	Summary    string // one line for the screen, the journal and the record
	Refused    int    // shares that did not match, or could not be read
	RecordPath string // empty without an operator PIN
}

// kindPartialCheck is the record kind of a check of shares fewer than a quorum: the root
// cannot attest it, so its record says it speaks for the operator alone.
const kindPartialCheck = "check-shares-partial"

// CheckShares is the custodians' inventory: each share is checked against the commitment the
// root's quorum statement gives it and, when a quorum of them is present, their
// reconstruction against the secret's digest, without opening the root token or logging in
// anywhere. With opsPIN, the record signer on the operations token signs a record: when a
// quorum reconstructed the secret, the root token is opened with it (as by any quorum
// operation) and the root attests the record ("check-shares"); fewer shares cannot open the
// root, and the record ("check-shares-partial") speaks for the operator alone. The run is journaled, naming
// each source, its share's number and custodian, and the result, never a share. A refused
// share does not stop the others from being checked; the run completes and says so, and
// Refused counts them.
func CheckShares(ctx context.Context, env run.Env, rootID string, in []ShareInput, opsPIN []byte) (res *CheckSharesResult, err error) {
	v, err := VerifyQuorum(ctx, env.Registry, rootID)
	if err != nil {
		return nil, err
	}
	if len(in) == 0 {
		return nil, run.NewFieldError("Shares", "check-shares: name at least one share")
	}
	st := v.Statement
	r, err := run.StartRun(ctx, env, registry.Run{ID: run.NewID(env, "check-shares", st.Root), Kind: registry.RunCeremony,
		Operation: "check-shares", Subject: st.Root})
	if err != nil {
		return nil, fmt.Errorf("check-shares: %w", err)
	}
	res = &CheckSharesResult{RunID: r.ID, Needed: st.Threshold}
	defer func() { err = r.Finish(ctx, err, res.RecordPath) }()
	q := v.Collector()
	defer q.Wipe()
	var holders []string
	err = r.Step(stepCheck, record.Actor{Name: "the custodians present", Role: "custodians"}, func() (any, error) {
		data := SharesChecked{Statement: v.Seq, RootSHA256: v.Fingerprint.String(), Epoch: st.Epoch}
		for _, s := range in {
			c := ShareChecked{Source: s.Source}
			switch n, err := q.Add(string(s.Text)); {
			case s.Err != nil:
				c.Result = "not read: " + s.Err.Error()
			case err != nil:
				c.Result = "refused: " + err.Error()
			default:
				c.Number, c.Custodian, c.Result = n, custodianOf(q.Params(), n), "matches its commitment"
				holders = append(holders, c.Custodian)
			}
			if c.Number == 0 {
				res.Refused++
			}
			data.Shares = append(data.Shares, c)
		}
		res.Present = q.Present()
		switch {
		case q.Present() < q.Needed():
			data.Reconstruction = fmt.Sprintf("not checked: %d of %d shares needed are present", q.Present(), q.Needed())
		default:
			s, err := q.Secret()
			if err != nil {
				data.Reconstruction = "failed: " + err.Error()
				res.Refused++
				break
			}
			secret.Zero(s)
			res.Rebuilt = true
			data.Reconstruction = fmt.Sprintf("%d shares reconstruct the secret; it matches its digest", q.Present())
		}
		res.Checks = data.Shares
		res.Summary = fmt.Sprintf("%d of %d shares match their commitments; reconstruction %s", res.Present, len(in), data.Reconstruction)
		return data, nil
	})
	if err != nil {
		return res, err
	}
	if len(opsPIN) == 0 {
		return res, nil
	}
	kind, mod, rootKey := kindPartialCheck, (*hsm.Module)(nil), crypto.Signer(nil)
	if res.Rebuilt {
		// A quorum is present: it opens the root, as any quorum operation does, so that the
		// root attests the record; without it the record would be the operator's word alone.
		rq, v, err := collectedQuorum(ctx, env.Registry, q)
		if err != nil {
			return res, r.Fail("check-shares.record", record.System, fmt.Errorf("the shares were checked, but the root could not be opened to attest the record: %w", err))
		}
		u, err := unlock(ctx, env, rq, v, q, unlockOptions{})
		if err != nil {
			return res, r.Fail("check-shares.record", record.System, fmt.Errorf("the shares were checked, but the root could not be opened to attest the record: %w", err))
		}
		defer u.close(ctx)
		kind, mod, rootKey = "check-shares", u.mod, u.key
	} else {
		path, err := env.ModulePath(ctx, st.Module.Path)
		if err != nil {
			return res, err
		}
		m, _, err := openModule(ctx, env, path, st.Module.SHA256)
		if err != nil {
			return res, r.Fail("check-shares.record", record.System, fmt.Errorf("the shares were checked, but the record could not be signed: %w", err))
		}
		defer m.Close()
		mod = m
	}
	signer, err := run.OpenRecordSigner(ctx, env.Registry, mod, st.Root, v.Root, opsPIN)
	if err != nil {
		return res, r.Fail("check-shares.record", record.System, fmt.Errorf("the shares were checked, but the record could not be signed: %w", err))
	}
	defer signer.Close()
	outcome := "completed: " + res.Summary
	if res.Refused > 0 {
		outcome = fmt.Sprintf("completed, %d refused: %s", res.Refused, res.Summary)
	}
	res.RecordPath, err = writeRecord(ctx, r, &record.Ceremony{ID: r.ID, Kind: kind, Root: st.Root, Outcome: outcome,
		Threshold: st.Threshold, Custodians: len(st.Custodians), Participants: quorumPeople(holders)}, signer.Signer, rootKey)
	if err != nil {
		return res, r.Fail("check-shares.record", record.System, fmt.Errorf("the shares were checked, but the record could not be written: %w", err))
	}
	return res, nil
}

// custodianOf is the holder of share number n.
func custodianOf(p quorum.Params, n int) string {
	for _, c := range p.Custodians {
		if c.Number == n {
			return c.Name
		}
	}
	return ""
}

// shareChecks are a check's results as the record shows them.
func shareChecks(p SharesChecked) []string {
	var out []string
	for _, s := range p.Shares {
		who := ""
		if s.Number > 0 {
			who = fmt.Sprintf(" (share #%d of %s)", s.Number, s.Custodian)
		}
		out = append(out, s.Source+who+": "+s.Result)
	}
	return append(out, "reconstruction: "+p.Reconstruction)
}
