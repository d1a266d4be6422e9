package app

import (
	"context"
	"errors"
	"fmt"
	"sort"

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

// fleetScreen retires a fleet from a manifest: preview with invalid lines marked, run with a
// progress bar, cancel, and resume by running the same manifest again.
func (s *shell) fleetScreen() fyne.CanvasObject {
	msg := newMessage()
	path := widget.NewEntry()
	path.SetPlaceHolder("fleet manifest (CSV: serial,method,reason,note)")
	var rows []manifestRow
	var manifest *decommission.Manifest
	cols := []string{"Line", "Serial", "Method", "Reason", "Problem"}
	table := widget.NewTableWithHeaders(func() (int, int) { return len(rows), len(cols) },
		func() fyne.CanvasObject { return widget.NewLabel("") },
		func(id widget.TableCellID, o fyne.CanvasObject) {
			r := rows[id.Row]
			l := o.(*widget.Label)
			l.SetText([]string{fmt.Sprint(r.line), r.serial, r.method, r.reason, r.issue}[id.Col])
			if r.issue != "" {
				l.Importance = widget.DangerImportance
			} else {
				l.Importance = widget.MediumImportance
			}
			l.Refresh()
		})
	table.ShowHeaderColumn = false
	table.UpdateHeader = func(id widget.TableCellID, o fyne.CanvasObject) {
		if id.Col >= 0 {
			o.(*widget.Label).SetText(cols[id.Col])
		}
	}
	for i, w := range []float32{70, 220, 130, 220, 520} {
		table.SetColumnWidth(i, w)
	}
	start := widget.NewButtonWithIcon("Retire the fleet", theme.MediaPlayIcon(), nil)
	start.Importance = widget.DangerImportance
	start.Disable()
	load := func() {
		manifest, rows = nil, nil
		start.Disable()
		m, err := decommission.LoadManifest(s.ctx, path.Text)
		var bad decommission.ManifestError
		if m != nil {
			for _, r := range m.Rows {
				rows = append(rows, manifestRow{r.Line, r.Serial, string(r.Method), r.Reason.String(), ""})
			}
		}
		if errors.As(err, &bad) {
			for _, b := range bad {
				rows = append(rows, manifestRow{line: b.Line, issue: b.Problem})
			}
		}
		sort.Slice(rows, func(i, j int) bool { return rows[i].line < rows[j].line })
		table.Refresh()
		switch {
		case len(bad) > 0:
			msg.errorf(fmt.Errorf("%s: fix the marked lines, then load the manifest again; nothing was changed", plural(len(bad), "line is wrong", "lines are wrong")))
		case err != nil:
			msg.errorf(err)
		default:
			manifest = m
			msg.ok(fmt.Sprintf("%d devices. Run it; if it stops, running the same manifest again resumes it.", len(m.Rows)))
			start.Enable()
		}
	}
	path.OnSubmitted = func(string) { load() }
	choose := widget.NewButton("Choose…", func() {
		dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
			if err == nil && r != nil {
				r.Close()
				path.SetText(r.URI().Path())
				load()
			}
		}, s.win).Show()
	})
	tech := widget.NewEntry()
	witness := widget.NewEntry()
	opsPIN := pinEntry("operator PIN")
	devPIN := pinEntry("device PIN (rows that erase or reinit)")
	bar := widget.NewProgressBar()
	cancel := widget.NewButtonWithIcon("Cancel", theme.CancelIcon(), nil)
	cancel.Disable()
	var stop context.CancelFunc
	cancel.OnTapped = func() {
		if stop != nil {
			stop()
		}
	}
	start.OnTapped = func() {
		if manifest == nil {
			return
		}
		ctx, cancelRun := s.withCancel()
		stop = cancelRun
		env := s.runEnv()
		env.Progress = func(p run.Event) {
			if p.Total > 0 {
				s.do(func() { bar.SetValue(float64(p.Done) / float64(p.Total)) })
			}
		}
		req := decommission.FleetRequest{ManifestPath: path.Text, Technician: tech.Text, Witness: witness.Text,
			OpsPIN: takePIN(opsPIN), DevicePIN: takePIN(devPIN)}
		m := manifest
		start.Disable()
		cancel.Enable()
		msg.info("Retiring the fleet…")
		var res *decommission.FleetResult
		s.background(func() error {
			defer zeroAll(req.OpsPIN, req.DevicePIN)
			var err error
			res, err = decommission.Fleet(ctx, env, m, req)
			return err
		}, func(err error) {
			cancelRun()
			cancel.Disable()
			start.Enable()
			if err != nil {
				msg.errorf(fmt.Errorf("%w — run the same manifest again to resume", err))
				return
			}
			if res.AlreadyCompleted {
				msg.ok("This manifest was already retired; nothing changed. Record: " + res.RecordPath)
				return
			}
			bar.SetValue(1)
			msg.ok(fmt.Sprintf("%d devices: %d decommissioned, %d already, %d failed. Record: %s", res.Devices, res.Decommissioned, res.AlreadyDone, res.Failed, res.RecordPath))
		})
	}
	intro := widget.NewLabel("Load a manifest to preview it; a line that cannot be used is marked with the reason, and nothing runs until every line is right.")
	intro.Wrapping = fyne.TextWrapWord
	top := container.NewVBox(heading("Retire a fleet"), intro,
		field("Manifest", container.NewBorder(nil, nil, nil, container.NewHBox(widget.NewButton("Load", load), choose), path)))
	bottom := container.NewVBox(field("Technician", tech), field("Witness", witness), field("Operator PIN", opsPIN),
		field("Device PIN", devPIN), container.NewHBox(start, cancel), bar, msg.Label)
	return container.NewBorder(top, bottom, nil, nil, table)
}
