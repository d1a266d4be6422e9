package app

import (
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
// each means, the people, then, after the serial is typed again to confirm, identify, erase,
// verify, revoke, CRL and record, step by step. Methods, reasons and steps are the workflow's.
type decommissionScreen struct {
	s       *shell
	found   []decommission.DeviceToken
	devices *widget.List
	look    *widget.Button

	serial      *widget.Entry
	method      *widget.RadioGroup
	consequence *widget.Label
	reason      *widget.Select
	tech        *widget.Entry
	witness     *widget.Entry
	validator   *widget.Entry
	destination *widget.Select
	opsPIN      *widget.Entry
	devPIN      *widget.Entry
	start       *widget.Button

	steps  *fyne.Container
	marks  map[string]*widget.Label
	result *widget.Label
	note   *notice
	record *recordOpener
}

func (s *shell) decommissionScreen() fyne.CanvasObject {
	d := &decommissionScreen{s: s, serial: widget.NewEntry(), consequence: wrapped(""), reason: widget.NewSelect(nil, nil),
		tech: widget.NewEntry(), witness: widget.NewEntry(), validator: widget.NewEntry(), destination: destinationSelect(),
		opsPIN: pinEntry("operator PIN"),
		devPIN: pinEntry("device PIN (for erase and reinit)"), steps: container.NewVBox(), marks: map[string]*widget.Label{},
		result: wrapped(""), note: newNotice(), record: newRecordOpener(s.background)}
	d.serial.SetPlaceHolder("device serial")
	d.tech.SetPlaceHolder("technician who does the work")
	d.witness.SetPlaceHolder("required for physical and unreachable")
	d.validator.SetPlaceHolder("another person, who checks the sanitization")
	d.devices = widget.NewList(func() int { return len(d.found) },
		func() fyne.CanvasObject { return widget.NewLabel("device serial and model and status") },
		func(id widget.ListItemID, o fyne.CanvasObject) {
			t := d.found[id]
			o.(*widget.Label).SetText(fmt.Sprintf("%s — %s — %s — token “%s”", orUnknown(t.Serial), t.Model, t.Status, t.Token))
		})
	d.devices.OnSelected = func(id widget.ListItemID) { d.serial.SetText(d.found[id].Serial) }
	d.look = widget.NewButtonWithIcon("Look for device tokens", theme.SearchIcon(), d.onLook)
	var methods []string
	for _, m := range decommission.Methods() {
		methods = append(methods, string(m))
	}
	d.method = widget.NewRadioGroup(methods, d.onMethod)
	d.method.Horizontal = true
	d.method.SetSelected(string(decommission.Erase))
	d.start = widget.NewButtonWithIcon("Decommission", theme.DeleteIcon(), d.onStart)
	d.start.Importance = widget.DangerImportance
	defaultButton(d.start, d.serial, d.tech, d.witness, d.validator, d.opsPIN, d.devPIN)
	return d.layout()
}

func (d *decommissionScreen) layout() fyne.CanvasObject {
	intro := wrapped("Connect the device (its key store appears as a token of the module), look for it, choose how its identity is destroyed, and run. Every step is journaled; the record is signed.")
	list := container.NewVScroll(d.devices)
	list.SetMinSize(fyne.NewSize(0, 140))
	page := container.NewVBox(
		heading("Decommission a device"), intro, container.NewHBox(d.look), list,
		field("Device serial", d.serial), field("Method", d.method), d.consequence, field("Revocation reason", d.reason),
		field("Technician", d.tech), field("Witness", d.witness), field("Validator", d.validator),
		field("Media destination", d.destination), field("Operator PIN", d.opsPIN), field("Device PIN", d.devPIN),
		container.NewHBox(d.start), d.note.object(), heading2("Progress"), d.steps, d.result, d.record.object())
	return container.NewVScroll(container.NewPadded(page))
}

// onLook reads the module's tokens off the UI goroutine and lists those holding a device.
func (d *decommissionScreen) onLook() {
	d.look.Disable()
	d.note.info("Reading the tokens of the module…")
	var got []decommission.DeviceToken
	d.s.background(func() error {
		var err error
		got, err = decommission.Detect(d.s.ctx, d.s.runEnv())
		return err
	}, func(err error) {
		d.look.Enable()
		if err != nil {
			d.note.errorf(err)
			return
		}
		d.found = got
		d.devices.Refresh()
		d.note.info(plural(len(got), "device token found.", "device tokens found.") + " Choose one, or type the serial of a device that cannot be connected.")
	})
}

// onMethod shows what the method does, the reasons it allows and the steps it takes.
func (d *decommissionScreen) onMethod(name string) {
	m, err := decommission.ParseMethod(name)
	if err != nil {
		return
	}
	d.consequence.SetText(m.Consequence())
	d.reason.Options = nil
	for _, r := range decommission.Reasons(m) {
		d.reason.Options = append(d.reason.Options, r.String())
	}
	d.reason.SetSelected(m.DefaultReason().String())
	d.steps.Objects = nil
	clear(d.marks)
	for _, st := range decommission.Steps(m) {
		l := wrapped("○ " + st.Title)
		d.marks[st.ID] = l
		d.steps.Add(l)
	}
	d.steps.Refresh()
}

// request is what the form asks for, without the PINs; the workflow checks it.
func (d *decommissionScreen) request() (decommission.Request, error) {
	m, err := decommission.ParseMethod(d.method.Selected)
	if err != nil {
		return decommission.Request{}, err
	}
	req := decommission.Request{Serial: strings.TrimSpace(d.serial.Text), Method: m, Technician: d.tech.Text, Witness: d.witness.Text,
		Validator: strings.TrimSpace(d.validator.Text), Destination: selectedDestination(d.destination)}
	if req.Reason, err = pki.ParseReason(d.reason.Selected); err != nil {
		return req, err
	}
	if req.Serial == "" {
		return req, run.NewFieldError("Serial", "choose a device, or type its serial")
	}
	return req, nil
}

// onStart asks to type the serial again, then runs.
func (d *decommissionScreen) onStart() {
	req, err := d.request()
	if err != nil {
		d.note.errorf(err)
		return
	}
	consequence := fmt.Sprintf("Device %s is decommissioned by %s: %s Its certificate is revoked (%s) and a new CRL is signed. This cannot be undone.",
		req.Serial, req.Method, strings.TrimSuffix(req.Method.Consequence(), ".")+".", req.Reason)
	confirmTyped(d.s.win, "Decommission "+req.Serial, consequence, req.Serial, func() { d.run(req) })
}

func (d *decommissionScreen) run(req decommission.Request) {
	req.OpsPIN, req.DevicePIN = takePIN(d.opsPIN), takePIN(d.devPIN)
	d.resetSteps(req.Method)
	env := d.s.runEnv()
	env.Progress = func(p run.Event) { d.s.do(func() { d.markStep(p) }) }
	d.start.Disable()
	d.record.box.Hide()
	d.result.SetText("")
	d.note.info("Working… the window stays usable; do not disconnect the device.")
	var res *decommission.Result
	d.s.background(func() error {
		defer zeroAll(req.OpsPIN, req.DevicePIN)
		var err error
		res, err = decommission.Decommission(d.s.ctx, env, req)
		return err
	}, func(err error) {
		d.start.Enable()
		if err != nil {
			d.note.errorf(err)
			return
		}
		d.note.ok(fmt.Sprintf("Device %s is decommissioned.", res.Serial))
		d.result.SetText(resultText(res))
		d.record.show(res.RecordPath)
	})
}

func (d *decommissionScreen) resetSteps(m decommission.Method) {
	for _, st := range decommission.Steps(m) {
		if l := d.marks[st.ID]; l != nil {
			l.Importance = widget.MediumImportance
			l.SetText("○ " + st.Title)
		}
	}
}

// markStep shows a step's progress; a failed step says why in words, wrapped.
func (d *decommissionScreen) markStep(p run.Event) {
	l := d.marks[p.Step.ID]
	if l == nil {
		return
	}
	switch {
	case p.Err != nil:
		l.Importance = widget.DangerImportance
		l.SetText("✗ " + p.Step.Title + ": " + explain(p.Err))
	case p.Status == record.StatusDone:
		l.Importance = widget.SuccessImportance
		l.SetText("✓ " + p.Step.Title)
	default:
		l.SetText("… " + p.Step.Title)
	}
}

// resultText says what was done, in sentences; a list that is empty is left out.
func resultText(res *decommission.Result) string {
	lines := []string{"Verification: " + res.Verification}
	if len(res.Destroyed) > 0 {
		lines = append(lines, "Destroyed on the device: "+strings.Join(res.Destroyed, "; ")+".")
	}
	lines = append(lines, fmt.Sprintf("Revoked with reason %s; CRL number %d is %s.", res.Reason, res.CRL.Number, res.CRL.DERPath))
	return strings.Join(lines, "\n")
}

func orUnknown(s string) string {
	if s == "" {
		return "(not registered)"
	}
	return s
}

// wrapped is a label that wraps inside the window.
func wrapped(text string) *widget.Label {
	l := widget.NewLabel(text)
	l.Wrapping = fyne.TextWrapWord
	return l
}

// notStated is the destination menu's choice for none stated.
const notStated = "not stated"

// destinationSelect offers where a device goes after its sanitization.
func destinationSelect() *widget.Select {
	opts := []string{notStated}
	for _, d := range decommission.Destinations {
		opts = append(opts, string(d))
	}
	s := widget.NewSelect(opts, nil)
	s.SetSelected(notStated)
	return s
}

// selectedDestination is the destination chosen in s.
func selectedDestination(s *widget.Select) decommission.Destination {
	d, err := decommission.ParseDestination(s.Selected)
	if err != nil {
		return decommission.NoDestination
	}
	return d
}
