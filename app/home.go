package app

import (
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/internal/workstation"
)

// workflow is one of the jobs Custos does, as the home screen names it.
type workflow struct {
	title, who, what string
	screen           string // id of the screen that runs it
}

var workflows = []workflow{
	{"Root key ceremony", "Administrator, witness, key custodians",
		"Generate the root CA key inside the HSM and split its unlocking secret among the custodians, M of N.", "ceremony"},
	{"Quorum operations", "Key custodians (M of N)",
		"Issue an issuing CA, sign a root CRL, re-share to new custodians, restore a backup or destroy the root: each needs M shares.", "quorum"},
	{"Decommission a device", "Technician, witness",
		"Erase a device's keys on its key store, verify the erasure, revoke its certificate and sign a new CRL.", "decommission"},
	{"Retire a fleet", "Technician, witness",
		"Decommission many devices from a manifest, with one CRL and one signed fleet record.", "fleet"},
	{"Devices", "Technician, auditor",
		"Provision a device identity, import devices from their certificates, find a device and read its key history.", "devices"},
	{"Publish a CRL", "Operator",
		"Sign a full CRL of an issuing CA's revoked devices before the last one's next update is due.", "crl"},
	{"Verify a record", "Auditor",
		"Check any signed PDF record or journal, from this workspace or another, against a root you choose.", "verify"},
}

func (s *shell) homeScreen() fyne.CanvasObject {
	title := heading("Custos")
	intro := widget.NewLabel("Key ceremonies, device decommissioning and signed records for your private CA. Choose what you are here to do.")
	intro.Wrapping = fyne.TextWrapWord
	items := []fyne.CanvasObject{title, intro, s.unfinishedRuns()}
	if s.cfg.Banner != "" {
		text := widget.NewLabel(s.cfg.Banner)
		text.Wrapping = fyne.TextWrapWord
		banner := widget.NewCard("Demo workspace", "", text)
		items = append(items, banner)
	}
	cards := container.NewGridWithColumns(2)
	for _, wf := range workflows {
		cards.Add(s.workflowCard(wf))
	}
	items = append(items, cards, heading2("This workstation"), s.workstationSummary())
	return container.NewVScroll(container.NewPadded(container.NewVBox(items...)))
}

func (s *shell) workflowCard(wf workflow) fyne.CanvasObject {
	what := widget.NewLabel(wf.what)
	what.Wrapping = fyne.TextWrapWord
	open := widget.NewButton("Open "+wf.title, func() { s.show(wf.screen) })
	open.Importance = widget.HighImportance
	if !s.hasScreen(wf.screen) {
		open.SetText(wf.title + " is not available in this build")
		open.Disable()
	}
	return widget.NewCard(wf.title, wf.who, container.NewVBox(what, open))
}

func (s *shell) hasScreen(id string) bool {
	for _, sc := range s.screens {
		if sc.id == id {
			return true
		}
	}
	return false
}

// workstationSummary names the workspace and the HSM module with its tokens, read off the UI
// goroutine.
func (s *shell) workstationSummary() fyne.CanvasObject {
	ws := widget.NewLabel("Workspace: " + s.ws.Dir)
	hsmLine := widget.NewLabel("")
	hsmLine.Wrapping = fyne.TextWrapWord
	if s.module == "" {
		hsmLine.SetText("HSM: no PKCS#11 module chosen yet. Choose one under Settings.")
	} else {
		hsmLine.SetText("HSM: reading " + s.module + "…")
		module := s.module
		go func() {
			h, err := workstation.InspectHSM(s.ctx, module)
			s.do(func() {
				if err != nil {
					hsmLine.Importance = widget.DangerImportance
					hsmLine.SetText("HSM: " + err.Error())
					return
				}
				hsmLine.SetText("HSM: " + h.Description + "\nTokens: " + tokenNames(h))
			})
		}()
	}
	return container.NewVBox(ws, hsmLine)
}

// tokenNames lists the labels of a module's initialised tokens for a one-line summary.
func tokenNames(h workstation.HSM) string {
	var names []string
	blank := 0
	for _, t := range h.Slots {
		switch {
		case t.Present && t.Initialised:
			n := t.Label
			if t.Warning != "" {
				n += " (" + t.Warning + ")"
			}
			names = append(names, n)
		case t.Present:
			blank++
		}
	}
	out := strings.Join(names, ", ")
	if out == "" {
		out = "none initialised"
	}
	return fmt.Sprintf("%s; %d blank slot(s) free", out, blank)
}
