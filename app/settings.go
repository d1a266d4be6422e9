package app

import (
	"context"
	"fmt"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/internal/version"
	"github.com/custos-pki/custos/internal/workstation"
	"github.com/custos-pki/custos/run"
)

// settingsScreen chooses the PKCS#11 module and lists the tokens it offers.
func (s *shell) settingsScreen() fyne.CanvasObject {
	path := widget.NewEntry()
	path.SetPlaceHolder("/usr/lib/softhsm/libsofthsm2.so")
	path.SetText(s.module)
	tokens := newTokenTable()
	s.tokenTable = tokens
	use := func() {
		module := path.Text
		s.setModule(module)
		tokens.showMessage("Saving the module in this workspace…")
		// Saving journals the choice and writes the registry: off the UI goroutine.
		go func() {
			err := run.SaveModule(s.ctx, s.runEnv(), module)
			s.do(func() {
				if err != nil {
					tokens.showError(err)
					return
				}
				s.loadTokens(tokens)
			})
		}()
	}
	path.OnSubmitted = func(string) { use() }
	browse := widget.NewButton("Browse…", func() {
		d := dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
			if err != nil || r == nil {
				return
			}
			r.Close()
			path.SetText(r.URI().Path())
			use()
		}, s.win)
		d.Show()
	})
	apply := widget.NewButton("Use this module", use)
	apply.Importance = widget.HighImportance

	help := widget.NewLabel("The PKCS#11 module is the library your HSM vendor supplies (for SoftHSM2: " +
		"/usr/lib/softhsm/libsofthsm2.so). Custos remembers it in this workspace.")
	help.Wrapping = fyne.TextWrapWord
	form := container.NewBorder(nil, nil, widget.NewLabel("PKCS#11 module"),
		container.NewHBox(browse, apply), path)
	if s.module != "" {
		s.loadTokens(tokens)
	} else {
		tokens.showMessage("Choose a module to see its tokens.")
	}
	return container.NewBorder(
		container.NewVBox(heading("Settings"), help, form, widget.NewSeparator(), heading2("Tokens on this module")),
		s.aboutBox(), nil, nil, tokens.object())
}

// aboutBox says which build of Custos this is, as `custos --version` does: version, commit,
// whether the tree was modified, Go, and the SHA-256 of the running binary, which it reads
// off the UI goroutine (the binary is tens of megabytes).
func (s *shell) aboutBox() fyne.CanvasObject {
	grid := container.New(layout.NewFormLayout())
	status := widget.NewLabel("Reading this binary to hash it…")
	box := container.NewVBox(widget.NewSeparator(), heading2("About this Custos"), status, grid)
	go func() {
		info := version.Current()
		s.do(func() { // under the UI lock, as every background update (the tests hold it too)
			status.SetText("What an auditor compares with a record's tool line and the published SHA256SUMS:")
			for _, f := range info.Fields() {
				v := widget.NewLabel(f.Value)
				v.Selectable = true
				v.TextStyle.Monospace = f.Name == "binary sha256" || f.Name == "revision"
				grid.Add(widget.NewLabel(f.Name))
				grid.Add(v)
			}
		})
	}()
	return box
}

// loadTokens reads the module's tokens off the UI goroutine: a slow or hung HSM must not
// freeze the window.
func (s *shell) loadTokens(t *tokenTable) {
	module := s.module
	if module == "" {
		t.showMessage("Choose a module to see its tokens.")
		return
	}
	t.showMessage("Reading tokens from " + module + "…")
	go func() {
		ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
		defer cancel()
		h, err := workstation.InspectHSM(ctx, module)
		s.do(func() {
			if err != nil {
				t.showError(err)
				return
			}
			t.show(h)
		})
	}()
}

// tokenTable shows a module's slots, or a message while loading or on error.
type tokenTable struct {
	message *widget.Label
	rows    []workstation.TokenSlot
	table   *widget.Table
	box     *fyne.Container
}

var tokenColumns = []struct {
	title string
	width float32
	value func(workstation.TokenSlot) string
}{
	{"Slot", 110, func(t workstation.TokenSlot) string { return fmt.Sprint(t.Slot) }},
	{"Label", 190, func(t workstation.TokenSlot) string {
		switch {
		case !t.Present:
			return "(no token)"
		case !t.Initialised:
			return "(not initialised)"
		}
		return t.Label
	}},
	{"Manufacturer", 160, func(t workstation.TokenSlot) string { return t.Manufacturer }},
	{"Model", 120, func(t workstation.TokenSlot) string { return t.Model }},
	{"Serial", 170, func(t workstation.TokenSlot) string { return t.Serial }},
	{"Firmware", 90, func(t workstation.TokenSlot) string { return t.Firmware }},
	{"State", 330, func(t workstation.TokenSlot) string {
		if t.Warning != "" {
			return "⚠ " + t.Warning
		}
		return t.State
	}},
}

func newTokenTable() *tokenTable {
	t := &tokenTable{message: widget.NewLabel("")}
	t.message.Wrapping = fyne.TextWrapWord
	t.table = widget.NewTableWithHeaders(
		func() (int, int) { return len(t.rows), len(tokenColumns) },
		func() fyne.CanvasObject { return widget.NewLabel("") },
		func(id widget.TableCellID, o fyne.CanvasObject) {
			o.(*widget.Label).SetText(tokenColumns[id.Col].value(t.rows[id.Row]))
		})
	t.table.ShowHeaderColumn = false
	t.table.CreateHeader = func() fyne.CanvasObject {
		return widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	}
	t.table.UpdateHeader = func(id widget.TableCellID, o fyne.CanvasObject) {
		if id.Row < 0 && id.Col >= 0 {
			o.(*widget.Label).SetText(tokenColumns[id.Col].title)
		}
	}
	for i, c := range tokenColumns {
		t.table.SetColumnWidth(i, c.width)
	}
	t.box = container.NewBorder(t.message, nil, nil, nil, t.table)
	return t
}

func (t *tokenTable) object() fyne.CanvasObject { return t.box }

func (t *tokenTable) showMessage(msg string) {
	t.message.Importance = widget.MediumImportance
	t.message.SetText(msg)
	t.rows = nil
	t.table.Refresh()
}

func (t *tokenTable) showError(err error) {
	t.message.Importance = widget.DangerImportance
	t.message.SetText(err.Error())
	t.rows = nil
	t.table.Refresh()
}

func (t *tokenTable) show(h workstation.HSM) {
	t.message.Importance = widget.MediumImportance
	t.message.SetText(fmt.Sprintf("%s — %d slots", h.Description, len(h.Slots)))
	t.rows = h.Slots
	t.table.Refresh()
}

// heading is a screen's title.
func heading(text string) *widget.Label {
	l := widget.NewLabelWithStyle(text, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	l.SizeName = theme.SizeNameHeadingText
	return l
}

// heading2 names a part of a screen.
func heading2(text string) *widget.Label {
	l := widget.NewLabelWithStyle(text, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	l.SizeName = theme.SizeNameSubHeadingText
	return l
}
