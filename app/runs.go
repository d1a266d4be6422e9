package app

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// unfinishedRuns lists the runs that stopped half way, on the home screen, with where each
// stopped and Resume and Abort: a person coming back after a crash sees it first. What can
// resume, and which PINs a run may need, the workflows say.
func (s *shell) unfinishedRuns() fyne.CanvasObject { return s.stoppedRuns("") }

// stoppedRuns lists the stopped runs of kind ("" for every kind), read off the UI goroutine,
// leaving out a run under way on one of the window's screens.
func (s *shell) stoppedRuns(kind registry.RunKind) fyne.CanvasObject {
	box := container.NewVBox()
	var stopped []run.Stopped
	s.background(func() (err error) {
		stopped, err = handlers().Stopped(s.ctx, s.runEnv())
		return err
	}, func(err error) {
		if err != nil {
			l := widget.NewLabel(err.Error())
			l.Wrapping = fyne.TextWrapWord
			l.Importance = widget.DangerImportance
			box.Add(l)
			return
		}
		stopped = slices.DeleteFunc(stopped, func(r run.Stopped) bool {
			under := r.Status == registry.RunRunning && s.underWay(r.Subject) // not stopped: on its screen
			return under || kind != "" && r.Kind != kind
		})
		if len(stopped) > 0 {
			box.Add(s.stoppedCard(stopped))
		}
	})
	return box
}

// stoppedCard shows the stopped runs, each with Resume and Abort, and the PIN fields they ask.
func (s *shell) stoppedCard(stopped []run.Stopped) fyne.CanvasObject {
	box := container.NewVBox(heading2("Runs that stopped half way"))
	pin := pinEntry("operator PIN (abort cleans up keys and tokens; resume signs)")
	devicePIN := pinEntry("device PIN (to finish erasures a stopped run left under way)")
	msg := newNotice()
	var asks run.Asks
	for _, r := range stopped {
		asks.OpsPIN = asks.OpsPIN || r.Asks.OpsPIN
		asks.DevicePIN = asks.DevicePIN || r.Asks.DevicePIN
		what := string(r.Kind) + " " + r.Operation
		if r.Operation == string(r.Kind) { // a rekey run's operation is its kind
			what = r.Operation
		}
		line := widget.NewLabel(fmt.Sprintf("%s: %s of %s, %s since %s; %s", r.ID, what, r.Subject, r.Status,
			r.StartedAt.UTC().Format("2006-01-02 15:04"), r.Where()))
		line.Wrapping = fyne.TextWrapWord
		id := r.ID
		var resume, abort *widget.Button
		ended := func() { resume.Disable(); abort.Disable() } // the run is no longer stopped
		resume = widget.NewButton("Resume", func() {
			s.stoppedRun("Resuming", id, run.Handlers.Resume, run.PINs{Ops: takePIN(pin), Device: takePIN(devicePIN)}, msg, ended)
		})
		if !r.CanResume {
			resume.Disable()
			line.SetText(line.Text + ". It cannot resume: " + r.CannotResume)
		}
		abort = widget.NewButton("Abort", func() {
			confirmTyped(s.win, "Abort "+id, "The run "+id+" is ended where it stopped: what it made is cleaned up as its workflow says, and it can never be resumed.", id, func() {
				s.stoppedRun("Aborting", id, run.Handlers.Abort, run.PINs{Ops: takePIN(pin)}, msg, ended)
			})
		})
		buttons := container.NewVBox(container.NewHBox(resume, abort)) // at the top, at their own height
		box.Add(container.NewBorder(nil, nil, nil, buttons, container.NewVBox(line, madeLabel(r.Made))))
	}
	if asks.OpsPIN {
		box.Add(field("Operator PIN", pin))
	}
	if asks.DevicePIN {
		box.Add(field("Device PIN", devicePIN))
	}
	box.Add(msg.object())
	return widget.NewCard("", "", box)
}

// stoppedRun resumes or aborts the stopped run id off the UI goroutine, and zeroes the PINs
// taken from the screen once it is done; ended is called when the run is no longer stopped.
func (s *shell) stoppedRun(doing, id string, act func(run.Handlers, context.Context, run.Env, string, run.PINs) (run.Outcome, error), pins run.PINs, msg *notice, ended func()) {
	msg.info(doing + " " + id + "…")
	var out run.Outcome
	s.background(func() error {
		defer zeroAll(pins.Ops, pins.Device)
		var err error
		out, err = act(handlers(), s.ctx, s.runEnv(), id, pins)
		return err
	}, func(err error) {
		if err != nil {
			msg.errorf(err)
			return
		}
		ended()
		text := id + ": " + out.Summary
		if len(out.Done) > 0 {
			text += ". Done: " + strings.Join(out.Done, "; ")
		}
		if len(out.Remaining) > 0 {
			text += ". Still to do: " + strings.Join(out.Remaining, "; ")
		}
		msg.ok(text)
	})
}

// madeLabel lists what a stopped run made, as its workflow reads its journal.
func madeLabel(made []string) fyne.CanvasObject {
	if len(made) == 0 {
		return container.NewVBox()
	}
	l := widget.NewLabel("It made:\n• " + strings.Join(made, "\n• "))
	l.Wrapping = fyne.TextWrapWord
	return l
}
