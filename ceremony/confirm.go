package ceremony

import (
	"context"
	"fmt"

	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/run"
)

// ResultConfirmer is a Participants whose people confirm each witnessed step after seeing
// what it made (the window): the run hands the step's result to ConfirmResult once the step
// is done, and journals who confirmed it as an entry of its own. A Participants that is not
// one (the command line, which prints each result as it goes) is asked nothing more.
type ResultConfirmer interface {
	// ConfirmResult returns who checked result, the journal payload of step st, against the
	// script; an error stops the run as a failed step would.
	ConfirmResult(ctx context.Context, st run.Step, result any) (record.Actor, error)
}

// ResultConfirmed is the payload of a step's confirmation entry (confirmationStep): which
// step's result was confirmed, and what of it was on screen to check. The entry's actor and
// time say who confirmed it and when.
type ResultConfirmed struct {
	Step    string   `json:"step"`
	Title   string   `json:"title"`
	Checked []string `json:"checked,omitempty"`
}

// confirmationStep is the journal's name for the confirmation of step id's result.
func confirmationStep(id string) string { return id + ".confirmed" }

// stepConfirmed runs st as run.Run.Step does, then, when people is a ResultConfirmer, has the
// person the script names confirm its result and journals the confirmation after the step's
// result. A result that is not confirmed fails the run, naming the step.
func stepConfirmed(ctx context.Context, r *run.Run, people Participants, st run.Step, who record.Actor, fn func() (any, error)) error {
	var result any
	if err := r.Step(st, who, func() (any, error) {
		var err error
		result, err = fn()
		return result, err
	}); err != nil {
		return err
	}
	rc, ok := people.(ResultConfirmer)
	if !ok {
		return nil
	}
	by, err := rc.ConfirmResult(ctx, st, result)
	if err != nil {
		return fmt.Errorf("%s: its result was not confirmed: %w", st.Title, err)
	}
	var checked []string
	for _, f := range ResultFacts(result) {
		checked = append(checked, f.Label)
	}
	if err := r.Note(confirmationStep(st.ID), by, ResultConfirmed{Step: st.ID, Title: st.Title, Checked: checked}); err != nil {
		return fmt.Errorf("%s: its result was confirmed, but the journal could not record it: %w", st.Title, err)
	}
	return nil
}
