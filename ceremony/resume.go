package ceremony

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/custos-pki/custos/internal/inputfile"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// recordPending says why the stopped ceremony run rr cannot resume, or "" when it can: when
// every step of its operation is done and nothing is open, all that is missing is its signed
// record (the disk was full, or the run was killed while writing it), which resume writes
// from the journal. Anything less needs the quorum secret, which died with the process. A
// step the operation makes only when asked (optionalSteps) may be missing. An operation whose
// record names no quorum (check-shares), or is signed by a record signer the run retired
// (destroy), is not resumed: its record cannot be written from the journal alone.
func recordPending(rr registry.Run, entries []record.Entry) string {
	cannot := "the quorum secret it reconstructed existed only in the stopped process; abort it to clean up, then start the operation again"
	switch rr.Operation {
	case "destroy":
		return "its record is signed by the record signer the run retired, which nothing else may use; " + cannot
	case "check-shares":
		return "its record can only be written as the shares are checked; check them again"
	}
	if len(record.OpenSteps(entries)) > 0 {
		return cannot
	}
	done := map[string]bool{}
	for _, e := range entries {
		if e.Status == record.StatusDone {
			done[e.Step] = true
		}
	}
	steps := Steps(rr.Operation)
	if len(steps) == 0 {
		return cannot
	}
	for _, st := range steps {
		if !done[st.ID] && !optionalSteps[st.ID] {
			return cannot
		}
	}
	return ""
}

// optionalSteps are the steps an operation makes only when asked: a root CRL revokes an
// issuing CA only when one is named.
var optionalSteps = map[string]bool{stepCRLRevoke.ID: true}

// resumeRecord writes the signed record of a ceremony run whose every step is done and whose
// record could not be written, from its journal, with the record signer on the operations
// token (pins.Ops), and completes the run.
func resumeRecord(ctx context.Context, env run.Env, rr registry.Run, pins run.PINs) (out run.Outcome, err error) {
	if len(pins.Ops) == 0 {
		return run.Outcome{}, run.NewFieldError("OpsPIN", "the operator PIN is needed to sign the record of %s with the record signer", rr.ID)
	}
	iss, err := env.Registry.Issuer(ctx, rr.Subject)
	if err != nil {
		return run.Outcome{}, fmt.Errorf("resume %s: the root %s: %w", rr.ID, rr.Subject, err)
	}
	root, err := x509.ParseCertificate(iss.Certificate)
	if err != nil {
		return run.Outcome{}, fmt.Errorf("resume %s: the root %s: %w", rr.ID, rr.Subject, err)
	}
	if path := env.RecordPath(rr.ID); exists(path) {
		return completeWithRecord(ctx, env, rr, root, path)
	}
	module := ""
	if q, err := env.Registry.Quorum(ctx, rr.Subject); err == nil {
		module = q.ModulePath
	} else if !errors.Is(err, registry.ErrNotFound) {
		return run.Outcome{}, err
	}
	mod, err := env.OpenModule(ctx, module)
	if err != nil {
		return run.Outcome{}, err
	}
	defer mod.Close()
	signer, err := run.OpenRecordSigner(ctx, env.Registry, mod, rr.Subject, root, pins.Ops)
	if err != nil {
		return run.Outcome{}, fmt.Errorf("resume %s: %w", rr.ID, err)
	}
	defer signer.Close()

	r, err := run.Continue(ctx, env, rr)
	if err != nil {
		return run.Outcome{}, err
	}
	var recordPath string
	defer func() { err = r.Finish(ctx, err, recordPath) }()
	if err := r.Note(run.StepResume, record.System, run.Resumed{Note: "every step was done; its signed record is written from the journal"}); err != nil {
		return run.Outcome{}, err
	}
	c, err := pendingRecord(rr, r.Journal.Entries())
	if err != nil {
		return run.Outcome{}, err
	}
	recordPath, err = writeResumedRecord(ctx, r, c, signer.Signer)
	if err != nil {
		return run.Outcome{}, r.Fail(rr.Operation+".record", record.System, fmt.Errorf("%s done, but its record could not be written: %w", rr.Operation, err))
	}
	return run.Outcome{Summary: "record written", Done: []string{"the signed record " + recordPath + ", from the journal"}}, nil
}

// pendingRecord is the record of the ceremony run rr as it would have been written when its
// last step was done: the people from the root's plan (as the journal noted it) or from the
// quorum that unlocked the root.
func pendingRecord(rr registry.Run, entries []record.Entry) (*record.Ceremony, error) {
	c := &record.Ceremony{ID: rr.ID, Kind: rr.Operation, Root: rr.Subject, Outcome: "completed"}
	for _, e := range entries {
		switch {
		case e.Step == stepPlan && rr.Operation == "root":
			p, err := record.Decode[PlanNote](e)
			if err != nil {
				return nil, err
			}
			c.Outcome = "completed: root created, shares verified"
			c.Threshold, c.Custodians = p.Threshold, len(p.Custodians)
			c.Participants = []record.Actor{{Name: p.Administrator, Role: "administrator"}}
			for _, w := range p.Witnesses {
				c.Participants = append(c.Participants, record.Actor{Name: w, Role: "witness"})
			}
			for _, n := range p.Custodians {
				c.Participants = append(c.Participants, record.Actor{Name: n, Role: "custodian"})
			}
		case e.Step == rr.Operation+".unlock" && e.Status == record.StatusDone:
			p, err := record.Decode[Unlocked](e)
			if err != nil {
				return nil, err
			}
			c.Threshold, c.Custodians = p.Threshold, p.Of
			c.Participants = quorumPeople(p.Custodians)
		}
	}
	if len(c.Participants) == 0 {
		return nil, fmt.Errorf("the journal of %s names nobody who took part: its record cannot be written from it", rr.ID)
	}
	return c, nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// completeWithRecord completes a run killed after its record was written and before the
// registry heard of it: the record must verify under the root and carry the journal as it
// stands, byte for byte; then nothing is journaled (the record carries the journal) and the
// run is completed with it. Any other file in the record's place is refused, never replaced.
func completeWithRecord(ctx context.Context, env run.Env, rr registry.Run, root *x509.Certificate, path string) (run.Outcome, error) {
	refuse := func(why string) (run.Outcome, error) {
		return run.Outcome{}, fmt.Errorf("resume %s: %s exists already, but %s: check it with 'custos verify'; a record is never overwritten", rr.ID, path, why)
	}
	if rr.Status != registry.RunRunning {
		return refuse("the run was marked failed after it")
	}
	b, err := inputfile.Read(ctx, "record", path, record.MaxFileSize)
	if err != nil {
		return refuse(err.Error())
	}
	jb, err := inputfile.Read(ctx, "journal", rr.JournalPath, record.MaxFileSize)
	if err != nil {
		return run.Outcome{}, err
	}
	if emb, err := record.EmbeddedJournal(b); err != nil || !bytes.Equal(emb, jb) {
		return refuse("it does not carry the run's journal as it stands")
	}
	if rep := record.Verify(b, []*x509.Certificate{root}); !rep.OK() {
		return refuse("it does not verify under the root")
	}
	r, err := run.Continue(ctx, env, rr)
	if err != nil {
		return run.Outcome{}, err
	}
	if err := r.Finish(ctx, nil, path); err != nil {
		return run.Outcome{}, err
	}
	return run.Outcome{Summary: "completed with its record", Done: []string{"the signed record " + path + ", written before the run stopped"}}, nil
}
