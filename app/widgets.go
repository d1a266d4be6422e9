package app

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// notice is where a screen says how its last action went: a sentence in words a custodian
// understands, wrapped inside the window, and for an error the technical text under a
// "Details" expander (closed), for whoever supports the workstation.
type notice struct {
	summary *widget.Label
	details *widget.Label
	expand  *widget.Accordion
	box     *fyne.Container
}

func newNotice() *notice {
	n := &notice{summary: widget.NewLabel(""), details: widget.NewLabel("")}
	n.summary.Wrapping = fyne.TextWrapWord
	n.details.Wrapping = fyne.TextWrapWord
	n.details.TextStyle = fyne.TextStyle{Monospace: true}
	n.expand = widget.NewAccordion(widget.NewAccordionItem("Details", n.details))
	n.expand.Hide()
	n.box = container.NewVBox(n.summary, n.expand)
	return n
}

// object is the notice's place in a screen's layout.
func (n *notice) object() fyne.CanvasObject { return n.box }

// errorf shows err explained, with its full text under Details.
func (n *notice) errorf(err error) {
	n.summary.Importance = widget.DangerImportance
	n.summary.SetText(explain(err))
	n.details.SetText(err.Error())
	n.expand.CloseAll()
	n.expand.Show()
	n.box.Refresh()
}

// also adds a sentence to what the notice says, such as what to do next.
func (n *notice) also(text string) {
	n.summary.SetText(n.summary.Text + " " + text)
}

// ok shows a result.
func (n *notice) ok(text string) { n.set(widget.SuccessImportance, text) }

// info shows what is going on.
func (n *notice) info(text string) { n.set(widget.MediumImportance, text) }

func (n *notice) set(imp widget.Importance, text string) {
	n.summary.Importance = imp
	n.summary.SetText(text)
	n.details.SetText("")
	n.expand.Hide()
	n.box.Refresh()
}

// text is what the notice says, for tests and screenshots.
func (n *notice) text() string { return n.summary.Text }

// defaultButton makes Enter in each entry press b, as long as b is enabled: the form's
// default action. An entry's own OnSubmitted, if set, runs first.
func defaultButton(b *widget.Button, entries ...*widget.Entry) {
	for _, e := range entries {
		before := e.OnSubmitted
		e.OnSubmitted = func(s string) {
			if before != nil {
				before(s)
			}
			if !b.Disabled() && b.OnTapped != nil {
				b.OnTapped()
			}
		}
	}
}

// typedConfirmation asks, before an irreversible action, to type what it acts on (a serial,
// a run id): the action's button stays disabled until the text matches exactly, so a click
// or a reflexive Enter cannot start it. act runs on the UI goroutine after the dialog closes.
type typedConfirmation struct {
	entry   *widget.Entry
	confirm *widget.Button
	dialog  dialog.Dialog
}

func confirmTyped(win fyne.Window, title, consequence, want string, act func()) *typedConfirmation {
	c := &typedConfirmation{entry: widget.NewEntry()}
	c.entry.SetPlaceHolder(want)
	what := widget.NewLabel(consequence + "\n\nType " + want + " to confirm.")
	what.Wrapping = fyne.TextWrapWord
	c.confirm = widget.NewButtonWithIcon(title, theme.WarningIcon(), nil)
	c.confirm.Importance = widget.DangerImportance
	c.confirm.Disable()
	cancel := widget.NewButton("Cancel", nil)
	c.entry.OnChanged = func(s string) {
		if strings.TrimSpace(s) == want {
			c.confirm.Enable()
		} else {
			c.confirm.Disable()
		}
	}
	body := container.NewVBox(what, c.entry, container.NewHBox(cancel, c.confirm))
	c.dialog = dialog.NewCustomWithoutButtons(title, body, win)
	c.confirm.OnTapped = func() {
		c.dialog.Hide()
		act()
	}
	cancel.OnTapped = c.dialog.Hide
	defaultButton(c.confirm, c.entry)
	c.dialog.Resize(fyne.NewSize(560, 0))
	c.dialog.Show()
	win.Canvas().Focus(c.entry)
	return c
}

// recordOpener is the "Open the record" button, with a line that says where the file is:
// always after a record is written, and as a warning when no viewer opened it.
type recordOpener struct {
	open  *widget.Button
	where *widget.Label
	box   *fyne.Container
	path  string
	// viewer opens a file; xdg-open when nil. Tests give one that fails.
	viewer func(ctx context.Context, path string) error
	bg     func(work func() error, done func(error))
}

func newRecordOpener(bg func(work func() error, done func(error))) *recordOpener {
	r := &recordOpener{where: widget.NewLabel(""), bg: bg}
	r.where.Wrapping = fyne.TextWrapWord
	r.open = widget.NewButtonWithIcon("Open the record", theme.DocumentIcon(), r.onOpen)
	r.box = container.NewVBox(container.NewHBox(r.open), r.where)
	r.box.Hide()
	return r
}

func (r *recordOpener) object() fyne.CanvasObject { return r.box }

// show offers the record at path.
func (r *recordOpener) show(path string) {
	r.path = path
	r.where.Importance = widget.MediumImportance
	r.where.SetText("The signed record is " + path)
	r.box.Show()
}

func (r *recordOpener) onOpen() {
	path := r.path
	viewer := r.viewer
	if viewer == nil {
		viewer = openWithDesktop
	}
	r.open.Disable()
	r.bg(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return viewer(ctx, path)
	}, func(err error) {
		r.open.Enable()
		if err != nil {
			r.where.Importance = widget.WarningImportance
			r.where.SetText(fmt.Sprintf("No PDF viewer opened the record. It is saved at %s: copy it to a machine with a viewer, or verify it under Records.", path))
		}
	})
}

// openWithDesktop asks xdg-open to show path. xdg-open returns at once when a desktop
// handles it and fails when nothing can open the file; one still running when ctx ends
// (a viewer it waits for) has opened it.
func openWithDesktop(ctx context.Context, path string) error {
	cmd := exec.Command("xdg-open", path)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("xdg-open %s: %w", path, err)
		}
		return nil
	case <-ctx.Done():
		return nil
	}
}

// headedTable is a table of labels under a header row of columns, each as wide as widths says;
// cell fills the label of a row and column.
func headedTable(columns []string, widths []float32, rows func() int, cell func(row, col int, l *widget.Label)) *widget.Table {
	t := widget.NewTableWithHeaders(func() (int, int) { return rows(), len(columns) },
		func() fyne.CanvasObject { return widget.NewLabel("") },
		func(id widget.TableCellID, o fyne.CanvasObject) { cell(id.Row, id.Col, o.(*widget.Label)) })
	t.ShowHeaderColumn = false
	t.UpdateHeader = func(id widget.TableCellID, o fyne.CanvasObject) {
		if id.Col >= 0 {
			o.(*widget.Label).SetText(columns[id.Col])
		}
	}
	for i, w := range widths {
		t.SetColumnWidth(i, w)
	}
	return t
}
