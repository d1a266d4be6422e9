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

// homeScreen is where a person starts: the runs that stopped half way, a card for each job
// Custos does, and this workstation (the workspace, the HSM and its tokens, read off the UI
// goroutine).
type homeScreen struct {
	s   *shell
	hsm *widget.Label // the HSM's description and tokens, once read
}

func (s *shell) homeScreen() fyne.CanvasObject { return newHomeScreen(s).object() }

func newHomeScreen(s *shell) *homeScreen {
	h := &homeScreen{s: s, hsm: wrapped("")}
	h.readHSM()
	return h
}

func (h *homeScreen) object() fyne.CanvasObject {
	items := []fyne.CanvasObject{heading("Custos"),
		wrapped("Key ceremonies, device decommissioning and signed records for your private CA. Choose what you are here to do."),
		h.s.unfinishedRuns()}
	if h.s.cfg.Banner != "" {
		items = append(items, widget.NewCard("Demo workspace", "", wrapped(h.s.cfg.Banner)))
	}
	cards := container.NewGridWithColumns(2)
	for _, wf := range workflows {
		cards.Add(h.workflowCard(wf))
	}
	items = append(items, cards, heading2("This workstation"), widget.NewLabel("Workspace: "+h.s.ws.Dir))
	if swept := h.s.ws.Swept(); len(swept) > 0 {
		items = append(items, wrapped(sweptText(swept)))
	}
	for _, err := range h.s.ws.Stuck() {
		stuck := wrapped(sentence(err.Error()))
		stuck.Importance = widget.WarningImportance
		items = append(items, stuck)
	}
	items = append(items, h.hsm)
	return container.NewVScroll(container.NewPadded(container.NewVBox(items...)))
}

// sweptText says what opening the workspace removed: files that runs interrupted by a crash
// or a kill had left half written, which nothing reads.
func sweptText(swept []string) string {
	return "On opening, Custos removed " + plural(len(swept), "unfinished file", "unfinished files") +
		" that an interrupted run had left: " + strings.Join(swept, ", ")
}

func (h *homeScreen) workflowCard(wf workflow) fyne.CanvasObject {
	open := widget.NewButton("Open "+wf.title, func() { h.onOpen(wf.screen) })
	open.Importance = widget.HighImportance
	if !h.s.hasScreen(wf.screen) {
		open.SetText(wf.title + " is not available in this build")
		open.Disable()
	}
	return widget.NewCard(wf.title, wf.who, container.NewVBox(wrapped(wf.what), open))
}

// onOpen shows the screen of a workflow.
func (h *homeScreen) onOpen(screen string) { h.s.show(screen) }

// readHSM reads the module's tokens off the UI goroutine and says what it found.
func (h *homeScreen) readHSM() {
	module := h.s.module
	if module == "" {
		h.hsm.SetText("HSM: no PKCS#11 module chosen yet. Choose one under Settings.")
		return
	}
	h.hsm.SetText("HSM: reading " + module + "…")
	var found workstation.HSM
	h.s.background(func() (err error) {
		found, err = workstation.InspectHSM(h.s.ctx, module)
		return err
	}, func(err error) { h.onHSMRead(found, err) })
}

// onHSMRead shows the HSM found, or why it could not be read, in words.
func (h *homeScreen) onHSMRead(found workstation.HSM, err error) {
	if err != nil {
		h.hsm.Importance = widget.DangerImportance
		h.hsm.SetText("HSM: " + explain(err))
		return
	}
	h.hsm.SetText("HSM: " + found.Description + "\nTokens: " + tokenNames(found))
}

func (s *shell) hasScreen(id string) bool {
	for _, sc := range s.screens {
		if sc.id == id {
			return true
		}
	}
	return false
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
