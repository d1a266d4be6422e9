package app

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/decommission"
	"github.com/custos-pki/custos/keyalg"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// rekeyForm moves the device chosen in the list to a new key on its token (`custos device
// rekey`): the new key's algorithm and the issuing CA are offered as the workflow allows
// (decommission.ChoicesForRekey), the work is decommission.Rekey, and a rekey that stopped
// half way is listed below with Resume and Abort.
type rekeyForm struct {
	s         *shell
	choices   decommission.RekeyChoices
	load      int // the number of the last device read; an older one's answer is dropped
	device    *widget.Label
	algorithm *widget.Select
	issuer    *issuerChoice
	years     *widget.Entry // the new certificate's validity; empty: 10, or what its CA has left
	days      *widget.Entry // the next update of the old CA's CRL
	tech      *widget.Entry
	opsPIN    *widget.Entry
	devPIN    *widget.Entry
	rekey     *widget.Button
	progress  *widget.ProgressBar
	step      *widget.Label // the step under way, beside the button
	result    *widget.Label
	note      *notice
	record    *recordOpener
	stopped   *fyne.Container // the rekeys that stopped half way
	// running is told when a rekey starts and ends (the screen is kept while it runs);
	// rekeyed when a device has its new key (its history and the list are read again).
	running func(serial string, busy bool)
	rekeyed func(serial string)
	page    *fyne.Container // laid out again when a part shows or hides
	box     fyne.CanvasObject
}

func newRekeyForm(s *shell) *rekeyForm {
	f := &rekeyForm{s: s, device: wrapped("Choose a device in the Devices tab first."), algorithm: widget.NewSelect(nil, nil),
		issuer: &issuerChoice{sel: widget.NewSelect(nil, nil), ids: map[string]string{}}, years: widget.NewEntry(), days: widget.NewEntry(), tech: widget.NewEntry(),
		opsPIN: pinEntry("operator PIN"), devPIN: pinEntry("the device token's user PIN"), progress: widget.NewProgressBar(),
		step: widget.NewLabel(""), result: wrapped(""), note: newNotice(), record: newRecordOpener(s.background),
		stopped: container.NewVBox(s.stoppedRuns(registry.RunRekey))}
	for _, a := range keyalg.All() {
		f.algorithm.Options = append(f.algorithm.Options, string(a))
	}
	f.algorithm.PlaceHolder = "the new key's algorithm"
	f.issuer.sel.PlaceHolder = "choose a device first"
	f.years.SetPlaceHolder("10, or what the issuing CA has left")
	f.days.SetPlaceHolder("days from now, such as 30")
	f.days.SetText(strconv.Itoa(defaultNextUpdateDays))
	f.tech.SetPlaceHolder("technician who does the work")
	f.progress.Max = float64(len(decommission.RekeySteps()))
	f.progress.TextFormatter = func() string {
		return fmt.Sprintf("%.0f of %d steps", f.progress.Value, len(decommission.RekeySteps()))
	}
	f.progress.Hide()
	f.rekey = widget.NewButtonWithIcon("Re-key", theme.ViewRefreshIcon(), f.onRekey)
	f.rekey.Importance = widget.DangerImportance
	f.rekey.Disable()
	defaultButton(f.rekey, f.years, f.days, f.tech, f.opsPIN, f.devPIN)
	intro := wrapped("Moves the device to a new key during its life. Its current key proves possession, a new key is generated on the device's token (never extractable), its certificate is issued from the device's issuing CA or a newer one under the same root, the old certificate is revoked as superseded on a new CRL, and every object of the old key is destroyed on the token and verified gone. Every step is journaled; the record is signed. A run that stops half way is listed below, to resume.")
	progress := container.NewBorder(nil, nil, f.rekey, nil, container.NewVBox(f.step, f.progress))
	f.page = container.NewVBox(intro,
		field("Device", f.device), field("New key", f.algorithm), field("Issuing CA", f.issuer.sel),
		field("Validity (years)", f.years), field("CRL next update (days)", f.days), field("Technician", f.tech),
		field("Operator PIN", f.opsPIN), field("Device PIN", f.devPIN), progress, f.note.object(), f.result, f.record.object(), f.stopped)
	f.box = container.NewVScroll(container.NewPadded(f.page))
	return f
}

func (f *rekeyForm) object() fyne.CanvasObject { return f.box }

// choose reads what a rekey of device serial may choose, off the UI goroutine, and offers it:
// the current key's algorithm and the device's issuing CA are chosen.
func (f *rekeyForm) choose(serial string) {
	f.load++
	load := f.load
	f.rekey.Disable()
	f.device.SetText("Reading device " + serial + "…")
	var c decommission.RekeyChoices
	f.s.background(func() (err error) {
		c, err = decommission.ChoicesForRekey(f.s.ctx, f.s.runEnv(), serial)
		return err
	}, func(err error) {
		if load != f.load {
			return // another device was chosen since
		}
		if err != nil {
			f.device.SetText("Device " + serial + ": " + explain(err))
			return
		}
		f.choices = c
		f.device.SetText(rekeyDeviceText(c))
		f.algorithm.ClearSelected()
		if c.Algorithm != "" {
			f.algorithm.SetSelected(string(c.Algorithm))
		}
		f.issuer.set(c.Issuers, "no active issuing CA under the device's root can issue its certificate")
		if c.Device.Status == registry.DeviceActive && !f.busy() {
			f.rekey.Enable()
		}
	})
}

// rekeyDeviceText says which device the form acts on and what it has now.
func rekeyDeviceText(c decommission.RekeyChoices) string {
	text := fmt.Sprintf("%s (%s), %s", c.Device.Serial, c.Device.Model, c.Device.Status)
	if c.Device.Status != registry.DeviceActive {
		return text + ": a decommissioned device gets no new key."
	}
	key := string(c.Algorithm)
	if key == "" {
		key = "of a kind Custos does not make"
	}
	if c.Token != "" {
		key += " on token “" + c.Token + "”"
	}
	return fmt.Sprintf("%s; key %s, certificate %s of %s", text, key, c.CertificateSerial, c.Device.IssuerID)
}

func (f *rekeyForm) busy() bool { return f.progress.Visible() }

// onRekey checks the choices, says what will happen and asks for the serial typed again.
func (f *rekeyForm) onRekey() {
	c := f.choices
	if c.Device.Serial == "" {
		f.note.errorf(run.NewFieldError("Serial", "choose a device in the Devices tab first"))
		return
	}
	alg, err := keyalg.Parse(f.algorithm.Selected)
	if err != nil {
		f.note.errorf(&run.FieldError{Name: "Algorithm", Problem: "choose the new key's algorithm", Err: err})
		return
	}
	issuer := f.issuer.id()
	if issuer == "" {
		f.note.errorf(run.NewFieldError("Issuer", "choose the issuing CA of the new certificate"))
		return
	}
	req := decommission.RekeyRequest{Serial: c.Device.Serial, Algorithm: alg, Issuer: issuer, Technician: strings.TrimSpace(f.tech.Text)}
	if req.ValidityYears, err = validityYears(f.years.Text); err != nil {
		f.note.errorf(err)
		return
	}
	days, ok := wholeNumber(f.days.Text)
	if !ok {
		f.note.errorf(run.NewFieldError("NextUpdateDays", "the CRL's next update is a whole number of days from now, such as 30"))
		return
	}
	req.CRLNextUpdate = time.Duration(days) * 24 * time.Hour
	token := "its token"
	if c.Token != "" {
		token = "its token “" + c.Token + "”"
	}
	validity := "valid 10 years, or as long as its CA has left"
	if req.ValidityYears > 0 {
		validity = fmt.Sprintf("valid %s, or as long as its CA has left", plural(req.ValidityYears, "year", "years"))
	}
	consequence := fmt.Sprintf("Device %s gets a new %s key, generated on %s, and a new certificate from %s, %s. "+
		"Its current certificate %s is revoked as superseded on a new CRL of %s, and its current key is destroyed on the token: it cannot be used or recovered afterwards.",
		req.Serial, alg, token, f.issuer.sel.Selected, validity, c.CertificateSerial, c.Device.IssuerID)
	confirmTyped(f.s.win, "Re-key "+req.Serial, consequence, req.Serial, func() { f.run(req) })
}

// run re-keys off the UI goroutine, showing each step beside the button.
func (f *rekeyForm) run(req decommission.RekeyRequest) {
	req.OpsPIN, req.DevicePIN = takePIN(f.opsPIN), takePIN(f.devPIN)
	env := f.s.runEnv()
	env.Progress = func(p run.Event) { f.s.do(func() { f.showStep(p) }) }
	f.rekey.Disable()
	f.progress.SetValue(0)
	f.progress.Show()
	f.step.SetText("Starting… do not disconnect the device.")
	f.record.box.Hide()
	f.result.SetText("")
	f.note.info("")
	f.page.Refresh()
	f.running(req.Serial, true)
	var res *decommission.RekeyResult
	f.s.background(func() error {
		defer zeroAll(req.OpsPIN, req.DevicePIN)
		var err error
		res, err = decommission.Rekey(f.s.ctx, env, req)
		return err
	}, func(err error) {
		f.progress.Hide()
		f.step.SetText("")
		f.rekey.Enable()
		f.running(req.Serial, false)
		f.stopped.Objects = []fyne.CanvasObject{f.s.stoppedRuns(registry.RunRekey)}
		f.stopped.Refresh()
		if err != nil {
			f.note.errorf(err)
			if res != nil && res.RunID != "" {
				f.note.also("The run " + res.RunID + " stopped: resume it below, or abort it, once the cause is put right.")
			}
			f.page.Refresh()
			f.choose(req.Serial)
			return
		}
		f.note.ok(fmt.Sprintf("Device %s is re-keyed on token “%s”. Its history in the Devices tab shows the new key and certificate, and the old ones' end.", res.Serial, res.Token))
		f.result.SetText(rekeyResultText(res))
		f.record.show(res.RecordPath)
		f.page.Refresh()
		f.rekeyed(req.Serial)
		f.choose(req.Serial)
	})
}

// showStep shows the step under way beside the button, and how many are done.
func (f *rekeyForm) showStep(p run.Event) {
	steps := decommission.RekeySteps()
	for i, st := range steps {
		if st.ID != p.Step.ID {
			continue
		}
		switch {
		case p.Err != nil:
			f.step.SetText(fmt.Sprintf("✗ %s: %s", st.Title, explain(p.Err)))
		case p.Status == record.StatusDone:
			f.progress.SetValue(float64(i + 1))
			f.step.SetText("✓ " + st.Title)
		default:
			f.step.SetText(fmt.Sprintf("… %s (step %d of %d)", st.Title, i+1, len(steps)))
		}
	}
}

// rekeyResultText says what the rekey did, as custos device rekey prints it, in sentences.
func rekeyResultText(res *decommission.RekeyResult) string {
	return strings.Join([]string{
		fmt.Sprintf("New key %x, certificate serial %s from %s, SHA-256 %s.", res.NewKeyID,
			pki.SerialHex(res.NewCertificate.SerialNumber), res.Issuer, pki.CertificateFingerprint(res.NewCertificate)),
		fmt.Sprintf("Old certificate %s revoked (superseded) on CRL number %d: %s.", pki.SerialHex(res.OldCertificate.SerialNumber), res.CRL.Number, res.CRL.DERPath),
		fmt.Sprintf("Old key %x: %s", res.OldKeyID, sentence(res.Verification)),
	}, "\n")
}
