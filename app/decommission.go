package app

import (
	"errors"
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/decommission"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/run"
)

// decommissionScreen retires one device: choose it among the device tokens found on the
// module (or type the serial of one that cannot be reached), the method and reason with what
// each means, the people, then identify, erase, verify, revoke, CRL and record, step by step.
func (s *shell) decommissionScreen() fyne.CanvasObject {
	msg := newMessage()
	var page *fyne.Container
	var found []decommission.DeviceToken
	serial := widget.NewEntry()
	serial.SetPlaceHolder("device serial")
	devices := widget.NewList(func() int { return len(found) },
		func() fyne.CanvasObject { return widget.NewLabel("device serial and model and status") },
		func(id widget.ListItemID, o fyne.CanvasObject) {
			d := found[id]
			o.(*widget.Label).SetText(fmt.Sprintf("%s — %s — %s — token %q", orUnknown(d.Serial), d.Model, d.Status, d.Token))
		})
	devices.OnSelected = func(id widget.ListItemID) { serial.SetText(found[id].Serial) }
	look := widget.NewButtonWithIcon("Look for device tokens", theme.SearchIcon(), nil)
	look.OnTapped = func() {
		look.Disable()
		msg.info("Reading the tokens of the module…")
		var got []decommission.DeviceToken
		s.background(func() error {
			var err error
			got, err = decommission.Detect(s.ctx, s.runEnv())
			return err
		}, func(err error) {
			look.Enable()
			if err != nil {
				msg.errorf(err)
				return
			}
			found = got
			devices.Refresh()
			msg.info(plural(len(found), "device token found.", "device tokens found.") + " Choose one, or type the serial of a device that cannot be connected.")
		})
	}

	consequence := widget.NewLabel("")
	consequence.Wrapping = fyne.TextWrapWord
	reason := widget.NewSelect(nil, nil)
	steps := container.NewVBox()
	marks := map[string]*widget.Label{}
	var methods []string
	for _, m := range decommission.Methods() {
		methods = append(methods, string(m))
	}
	// The method decides the reasons on offer and the steps the device goes through.
	method := widget.NewRadioGroup(methods, func(m string) {
		mm, err := decommission.ParseMethod(m)
		if err != nil {
			return
		}
		consequence.SetText(mm.Consequence())
		reason.Options = nil
		for _, r := range decommission.Reasons(mm) {
			reason.Options = append(reason.Options, r.String())
		}
		reason.SetSelected(mm.DefaultReason().String())
		steps.Objects = nil
		clear(marks)
		for _, st := range decommission.Steps(mm) {
			l := widget.NewLabel("○ " + st.Title)
			marks[st.ID] = l
			steps.Add(l)
		}
		steps.Refresh()
	})
	method.Horizontal = true
	method.SetSelected(string(decommission.Erase))
	tech := widget.NewEntry()
	witness := widget.NewEntry()
	witness.SetPlaceHolder("required for physical and unreachable")
	opsPIN := pinEntry("operator PIN")
	devPIN := pinEntry("device PIN (for erase and reinit)")

	result := widget.NewLabel("")
	result.Wrapping = fyne.TextWrapWord
	openRecord := widget.NewButtonWithIcon("Open the record", theme.DocumentIcon(), nil)
	openRecord.Hide()
	start := widget.NewButtonWithIcon("Decommission", theme.DeleteIcon(), nil)
	start.Importance = widget.DangerImportance
	start.OnTapped = func() {
		m, err := decommission.ParseMethod(method.Selected)
		if err != nil {
			msg.errorf(err)
			return
		}
		req := decommission.Request{Serial: strings.TrimSpace(serial.Text), Method: m, Technician: tech.Text, Witness: witness.Text}
		if req.Reason, err = pki.ParseReason(reason.Selected); err != nil {
			msg.errorf(err)
			return
		}
		if req.Serial == "" {
			msg.errorf(errors.New("choose a device, or type its serial"))
			return
		}
		req.OpsPIN, req.DevicePIN = takePIN(opsPIN), takePIN(devPIN)
		for _, st := range decommission.Steps(m) {
			if l := marks[st.ID]; l != nil {
				l.SetText("○ " + st.Title)
				l.Importance = widget.MediumImportance
			}
		}
		env := s.runEnv()
		env.Progress = func(p run.Event) {
			s.do(func() {
				l := marks[p.Step.ID]
				if l == nil {
					return
				}
				switch {
				case p.Err != nil:
					l.SetText("✗ " + p.Step.Title + ": " + p.Err.Error())
					l.Importance = widget.DangerImportance
				case p.Status == record.StatusDone:
					l.SetText("✓ " + p.Step.Title)
					l.Importance = widget.SuccessImportance
				default:
					l.SetText("… " + p.Step.Title)
				}
				l.Refresh()
			})
		}
		start.Disable()
		msg.info("Working… the window stays usable; do not disconnect the device.")
		var res *decommission.Result
		s.background(func() error {
			defer zeroAll(req.OpsPIN, req.DevicePIN)
			var err error
			res, err = decommission.Decommission(s.ctx, env, req)
			return err
		}, func(err error) {
			start.Enable()
			if err != nil {
				msg.errorf(err)
				return
			}
			msg.ok(fmt.Sprintf("Device %s is decommissioned.", res.Serial))
			result.SetText(fmt.Sprintf("Verification: %s\nDestroyed: %s\nRevoked: reason %s, on CRL %d (%s)\nRecord: %s",
				res.Verification, strings.Join(res.Destroyed, "; "), res.Reason, res.CRL.Number, res.CRL.DERPath, res.RecordPath))
			openRecord.OnTapped = func() { openFile(res.RecordPath) }
			openRecord.Show()
			page.Refresh()
		})
	}
	intro := widget.NewLabel("Connect the device (its key store appears as a token of the module), look for it, choose how its identity is destroyed, and run. Every step is journaled; the record is signed.")
	intro.Wrapping = fyne.TextWrapWord
	list := container.NewGridWrap(fyne.NewSize(900, 150), devices)
	page = container.NewVBox(
		heading("Decommission a device"), intro, container.NewHBox(look), list,
		field("Device serial", serial), field("Method", method), consequence, field("Revocation reason", reason),
		field("Technician", tech), field("Witness", witness), field("Operator PIN", opsPIN), field("Device PIN", devPIN),
		container.NewHBox(start), msg.Label, heading2("Progress"), steps, result, openRecord)
	return container.NewVScroll(container.NewPadded(page))
}

func orUnknown(s string) string {
	if s == "" {
		return "(not registered)"
	}
	return s
}
