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

// settingsScreen chooses the PKCS#11 module, lists the tokens it offers and says which build of
// Custos this is. The module is saved and its tokens read off the UI goroutine.
type settingsScreen struct {
	s      *shell
	path   *widget.Entry
	tokens *tokenTable
	build  *widget.Label   // what the build information is, or that it is being read
	fields *fyne.Container // the build information, once read
}

func (s *shell) settingsScreen() fyne.CanvasObject { return newSettingsScreen(s).object() }

func newSettingsScreen(s *shell) *settingsScreen {
	st := &settingsScreen{s: s, path: widget.NewEntry(), tokens: newTokenTable(),
		build: widget.NewLabel("Reading this binary to hash it…"), fields: container.New(layout.NewFormLayout())}
	st.path.SetPlaceHolder("/usr/lib/softhsm/libsofthsm2.so")
	st.path.SetText(s.module)
	st.path.OnSubmitted = func(string) { st.onUse() }
	s.tokenTable = st.tokens
	if s.module != "" {
		s.loadTokens(st.tokens)
	} else {
		st.tokens.showMessage("Choose a module to see its tokens.")
	}
	st.readBuild()
	return st
}

func (st *settingsScreen) object() fyne.CanvasObject {
	browse := widget.NewButton("Browse…", st.onBrowse)
	apply := widget.NewButton("Use this module", st.onUse)
	apply.Importance = widget.HighImportance
	help := wrapped("The PKCS#11 module is the library your HSM vendor supplies (for SoftHSM2: " +
		"/usr/lib/softhsm/libsofthsm2.so). Custos remembers it in this workspace.")
	form := container.NewBorder(nil, nil, widget.NewLabel("PKCS#11 module"), container.NewHBox(browse, apply), st.path)
	// Closed by default: the tokens keep the room at 1024x768; an auditor opens it.
	about := widget.NewAccordion(widget.NewAccordionItem("About this Custos", container.NewVBox(st.build, st.fields)))
	return container.NewBorder(
		container.NewVBox(heading("Settings"), help, form, widget.NewSeparator(), heading2("Tokens on this module")),
		about, nil, nil, st.tokens.object())
}

// onUse takes the module typed: the window uses it at once, and the workspace remembers it
// (saved off the UI goroutine); then its tokens are read.
func (st *settingsScreen) onUse() {
	path := st.path.Text
	st.s.setModule(path)
	st.tokens.showMessage("Saving the module setting…")
	// Saving journals the choice and writes the registry: off the UI goroutine.
	st.s.background(func() error { return run.SaveModule(st.s.ctx, st.s.runEnv(), path) }, func(err error) {
		if err != nil {
			st.tokens.showError(err)
			return
		}
		st.s.loadTokens(st.tokens)
	})
}

// onBrowse chooses the module file in a file dialog and uses it.
func (st *settingsScreen) onBrowse() {
	dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
		if err != nil || r == nil {
			return
		}
		r.Close()
		st.path.SetText(r.URI().Path())
		st.onUse()
	}, st.s.win).Show()
}

// readBuild says which build of Custos this is, as `custos --version` does: version, commit,
// whether the tree was modified, Go, and the SHA-256 of the running binary, which it reads
// off the UI goroutine (the binary is tens of megabytes).
func (st *settingsScreen) readBuild() {
	var info version.Info
	st.s.background(func() error { info = version.Current(); return nil }, func(error) {
		st.build.SetText("What an auditor compares with a record's tool line and the published SHA256SUMS:")
		for _, f := range info.Fields() {
			v := widget.NewLabel(f.Value)
			v.Selectable = true
			v.TextStyle.Monospace = f.Name == "binary sha256" || f.Name == "revision"
			st.fields.Add(widget.NewLabel(f.Name))
			st.fields.Add(v)
		}
	})
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
	var h workstation.HSM
	s.background(func() error {
		ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
		defer cancel()
		var err error
		h, err = workstation.InspectHSM(ctx, module)
		return err
	}, func(err error) {
		if err != nil {
			t.showError(err)
			return
		}
		t.show(h)
	})
}

// tokenTable shows a module's slots, or a message while loading or on error.
type tokenTable struct {
	note  *notice
	rows  []workstation.TokenSlot
	table *widget.Table
	box   *fyne.Container
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
	t := &tokenTable{note: newNotice()}
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
	t.box = container.NewBorder(t.note.object(), nil, nil, nil, t.table)
	return t
}

func (t *tokenTable) object() fyne.CanvasObject { return t.box }

func (t *tokenTable) showMessage(msg string) {
	t.note.info(msg)
	t.rows = nil
	t.table.Refresh()
}

func (t *tokenTable) showError(err error) {
	t.note.errorf(err)
	t.rows = nil
	t.table.Refresh()
}

func (t *tokenTable) show(h workstation.HSM) {
	t.note.info(fmt.Sprintf("%s — %d slots", h.Description, len(h.Slots)))
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
