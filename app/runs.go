package app

import (
	"fmt"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/decommission"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
)

// unfinishedRuns lists the runs that stopped half way, on the home screen, with where each
// stopped and Resume and Abort: a person coming back after a crash sees it first.
func (s *shell) unfinishedRuns() fyne.CanvasObject {
	runs, err := s.reg.UnfinishedRuns(s.ctx)
	if err != nil {
		l := widget.NewLabel(err.Error())
		l.Importance = widget.DangerImportance
		return l
	}
	if len(runs) == 0 {
		return container.NewVBox()
	}
	box := container.NewVBox(heading2("Runs that stopped half way"))
	pin := pinEntry("operator PIN (abort cleans up keys on the operations token; resume signs)")
	devicePIN := pinEntry("device PIN (to finish erasures a stopped run left under way)")
	msg := newMessage()
	decommissions := false
	for _, r := range runs {
		decommissions = decommissions || r.Kind == registry.RunDecommission
		r := r
		where := "no step open"
		if jf, err := record.ReadJournalFile(r.JournalPath); err == nil {
			if open := record.OpenSteps(jf.Entries); len(open) > 0 {
				where = "stopped in step " + open[len(open)-1].Step
			}
		}
		line := widget.NewLabel(fmt.Sprintf("%s — %s %s of %s, %s since %s; %s", r.ID, r.Kind, r.Operation, r.Subject, r.Status,
			r.StartedAt.UTC().Format("2006-01-02 15:04"), where))
		line.Wrapping = fyne.TextWrapWord
		resume := widget.NewButton("Resume", func() { s.resumeRun(r, takePIN(pin), takePIN(devicePIN), msg) })
		if r.Kind == registry.RunCeremony {
			resume.Disable() // its quorum secret died with the process: abort, then start again
		}
		abort := widget.NewButton("Abort", func() { s.abortRun(r, takePIN(pin), msg) })
		box.Add(container.NewBorder(nil, nil, nil, container.NewHBox(resume, abort), line))
	}
	box.Add(field("Operator PIN", pin))
	if decommissions {
		box.Add(field("Device PIN", devicePIN))
	}
	box.Add(msg.Label)
	return widget.NewCard("", "", box)
}

func (s *shell) resumeRun(r registry.Run, opsPIN, devicePIN []byte, msg message) {
	msg.info("Resuming " + r.ID + "…")
	var out string
	s.background(func() error {
		var err error
		out, err = decommission.Resume(s.ctx, s.decommissionEnv(), r.ID, opsPIN, devicePIN) // zeroes both
		return err
	}, func(err error) {
		if err != nil {
			msg.errorf(err)
			return
		}
		msg.ok(out)
	})
}

func (s *shell) abortRun(r registry.Run, opsPIN []byte, msg message) {
	msg.info("Aborting " + r.ID + "…")
	var out string
	s.background(func() error {
		if r.Kind == registry.RunCeremony {
			res, err := ceremony.Abort(s.ctx, s.ceremonyEnv(), r.ID, opsPIN)
			if err != nil {
				return err
			}
			out = fmt.Sprintf("Aborted. Destroyed: %v. Still to do: %v", res.Destroyed, res.Remaining)
			return nil
		}
		var err error
		out, err = decommission.Abort(s.ctx, s.decommissionEnv(), r.ID)
		zeroAll(opsPIN)
		return err
	}, func(err error) {
		if err != nil {
			msg.errorf(err)
			return
		}
		msg.ok(out)
	})
}
