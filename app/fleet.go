package app

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/decommission"
	"github.com/custos-pki/custos/run"
)

// manifestRow is a line of a manifest as the preview shows it.
type manifestRow struct {
	line                          int
	serial, method, reason, issue string
}

// fleetScreen retires a fleet from a manifest: a preview that marks every line that cannot be
// run (bad syntax, devices this workspace does not know, methods the module cannot do) and
// enables Run only when none is, then the run with its progress, cancel and signed record.
type fleetScreen struct {
	s        *shell
	path     *widget.Entry
	table    *widget.Table
	rows     []manifestRow
	manifest *decommission.Manifest

	tech, witness  *widget.Entry
	validator      *widget.Entry
	opsPIN, devPIN *widget.Entry
	start, cancel  *widget.Button
	bar            *widget.ProgressBar
	line           *widget.Label // the chosen line's problem in full
	note           *notice
	record         *recordOpener
	stop           context.CancelFunc
}

var manifestColumns = []string{"Line", "Serial", "Method", "Problem", "Reason"}

func (s *shell) fleetScreen() fyne.CanvasObject {
	f := &fleetScreen{s: s, path: widget.NewEntry(), tech: widget.NewEntry(), witness: widget.NewEntry(), validator: widget.NewEntry(),
		opsPIN: pinEntry("operator PIN"), devPIN: pinEntry("device PIN (rows that erase or reinit)"),
		bar: widget.NewProgressBar(), line: wrapped(""), note: newNotice(), record: newRecordOpener(s.background)}
	f.path.SetPlaceHolder("fleet manifest (CSV: serial,method,reason,note,destination,udi)")
	f.tech.SetPlaceHolder("technician who does the work")
	f.witness.SetPlaceHolder("required for physical and unreachable rows")
	f.validator.SetPlaceHolder("another person, who checks the sanitization")
	f.path.OnSubmitted = func(string) { f.onLoad() }
	f.table = f.newTable()
	f.start = widget.NewButtonWithIcon("Retire the fleet", theme.MediaPlayIcon(), f.onRun)
	f.start.Importance = widget.DangerImportance
	f.start.Disable()
	f.cancel = widget.NewButtonWithIcon("Cancel", theme.CancelIcon(), f.onCancel)
	f.cancel.Disable()
	defaultButton(f.start, f.tech, f.witness, f.validator, f.opsPIN, f.devPIN)
	return f.layout()
}

func (f *fleetScreen) newTable() *widget.Table {
	t := headedTable(manifestColumns, []float32{60, 190, 120, 480, 200}, func() int { return len(f.rows) },
		func(row, col int, l *widget.Label) {
			r := f.rows[row]
			l.Importance = widget.MediumImportance
			if r.issue != "" {
				l.Importance = widget.DangerImportance
			}
			l.SetText([]string{fmt.Sprint(r.line), r.serial, r.method, r.issue, r.reason}[col])
		})
	t.OnSelected = func(id widget.TableCellID) {
		if r := f.rows[id.Row]; r.issue != "" {
			f.line.SetText(fmt.Sprintf("Line %d: %s", r.line, r.issue))
			return
		}
		f.line.SetText("")
	}
	return t
}

func (f *fleetScreen) layout() fyne.CanvasObject {
	intro := wrapped("Load a manifest to preview it. Every line that cannot be run is marked with the reason (a device this workspace does not know included; choose a line to read its problem in full), and Retire stays disabled until every line is right.")
	choose := widget.NewButton("Choose…", f.onChoose)
	top := container.NewVBox(heading("Retire a fleet"), intro,
		field("Manifest", container.NewBorder(nil, nil, nil, container.NewHBox(widget.NewButton("Load", f.onLoad), choose), f.path)),
		f.note.object())
	form := container.NewVBox(f.line, field("Technician", f.tech), field("Witness", f.witness), field("Validator", f.validator), field("Operator PIN", f.opsPIN),
		field("Device PIN", f.devPIN), container.NewHBox(f.start, f.cancel), f.bar, f.record.object())
	bottom := container.NewVScroll(form)
	bottom.SetMinSize(fyne.NewSize(0, 260))
	return container.NewBorder(top, nil, nil, nil, container.NewVSplit(f.table, bottom))
}

func (f *fleetScreen) onChoose() {
	dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
		if err == nil && r != nil {
			r.Close()
			f.path.SetText(r.URI().Path())
			f.onLoad()
		}
	}, f.s.win).Show()
}

// onLoad reads and previews the manifest off the UI goroutine: its own syntax first, then
// each line against the registry and the device module (decommission.Preview).
func (f *fleetScreen) onLoad() {
	f.manifest, f.rows = nil, nil
	f.line.SetText("")
	f.start.Disable()
	f.table.Refresh()
	f.record.box.Hide()
	path := strings.TrimSpace(f.path.Text)
	f.note.info("Reading " + path + " and checking each line against this workspace…")
	var m *decommission.Manifest
	var preview error
	f.s.background(func() error {
		var err error
		if m, err = decommission.LoadManifest(f.s.ctx, path); err != nil {
			return err
		}
		preview = decommission.Preview(f.s.ctx, f.s.runEnv(), m)
		return nil
	}, func(err error) {
		if err == nil {
			err = preview
		}
		f.showPreview(m, err)
	})
}

// showPreview fills the table from the manifest's rows and marks the lines err names; Run is
// enabled only when err is nil.
func (f *fleetScreen) showPreview(m *decommission.Manifest, err error) {
	f.rows = nil
	if m != nil {
		for _, r := range m.Rows {
			f.rows = append(f.rows, manifestRow{r.Line, r.Serial, string(r.Method), r.Reason.String(), ""})
		}
	}
	var bad decommission.ManifestError
	errors.As(err, &bad)
	f.mark(bad)
	switch {
	case len(bad) > 0:
		f.note.errorf(err)
	case err != nil:
		f.note.errorf(err)
	default:
		f.manifest = m
		f.note.ok(fmt.Sprintf("%s, each registered here. Fill in the people and PINs, then retire the fleet.", plural(len(m.Rows), "device", "devices")))
		f.start.Enable()
	}
}

// mark puts each bad line's problem on its row, adding rows for lines the manifest could not
// read at all.
func (f *fleetScreen) mark(bad decommission.ManifestError) {
	byLine := map[int]int{}
	for i, r := range f.rows {
		byLine[r.line] = i
	}
	for _, b := range bad {
		i, ok := byLine[b.Line]
		if !ok {
			f.rows = append(f.rows, manifestRow{line: b.Line})
			i = len(f.rows) - 1
			byLine[b.Line] = i
		}
		if f.rows[i].issue != "" {
			f.rows[i].issue += "; "
		}
		f.rows[i].issue += b.Problem
	}
	sort.SliceStable(f.rows, func(i, j int) bool { return f.rows[i].line < f.rows[j].line })
	f.table.Refresh()
}

func (f *fleetScreen) onCancel() {
	if f.stop != nil {
		f.stop()
	}
}

func (f *fleetScreen) onRun() {
	if f.manifest == nil {
		return
	}
	ctx, cancelRun := f.s.withCancel()
	f.stop = cancelRun
	env := f.s.runEnv()
	env.Progress = func(p run.Event) {
		if p.Total > 0 {
			f.s.do(func() { f.bar.SetValue(float64(p.Done) / float64(p.Total)) })
		}
	}
	req := decommission.FleetRequest{ManifestPath: strings.TrimSpace(f.path.Text), Technician: f.tech.Text, Witness: f.witness.Text, Validator: strings.TrimSpace(f.validator.Text),
		OpsPIN: takePIN(f.opsPIN), DevicePIN: takePIN(f.devPIN)}
	m := f.manifest
	f.start.Disable()
	f.cancel.Enable()
	f.record.box.Hide()
	f.note.info("Retiring the fleet… the window stays usable.")
	var res *decommission.FleetResult
	f.s.background(func() error {
		defer zeroAll(req.OpsPIN, req.DevicePIN)
		var err error
		res, err = decommission.Fleet(ctx, env, m, req)
		return err
	}, func(err error) {
		cancelRun()
		f.cancel.Disable()
		f.start.Enable()
		f.finished(m, res, err)
	})
}

// finished shows how the run ended: lines the workflow refused marked in the table, a run that
// stopped sent to the Home screen (where the workflow says whether it resumes), or the result.
func (f *fleetScreen) finished(m *decommission.Manifest, res *decommission.FleetResult, err error) {
	var bad decommission.ManifestError
	switch {
	case errors.As(err, &bad):
		f.showPreview(m, err)
	case err != nil && res != nil:
		f.note.errorf(err)
		f.note.summary.SetText(explain(err) + " The run " + res.RunID + " stopped; the Home screen lists it with what it did.")
	case err != nil:
		f.note.errorf(err)
	case res.AlreadyCompleted:
		f.note.ok("This manifest was already retired; nothing changed.")
		f.record.show(res.RecordPath)
	default:
		f.bar.SetValue(1)
		f.note.ok(fmt.Sprintf("%d devices: %d decommissioned, %d already, %d failed.", res.Devices, res.Decommissioned, res.AlreadyDone, res.Failed))
		f.record.show(res.RecordPath)
	}
}
