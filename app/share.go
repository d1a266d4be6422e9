package app

import (
	"fmt"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/quorum"
)

// revealTimeout hides a share that was left on screen.
const revealTimeout = 60 * time.Second

// shareReveal shows one custodian's share: a warning that only they should look, Reveal,
// the share in large monospace groups, Hide. The share hides itself after revealTimeout and
// when the window loses focus. It is drawn as text, never in an entry: nothing to copy.
type shareReveal struct {
	do       func(func()) // runs on the UI goroutine
	relayout func()       // lays out the screen again when the share appears or goes
	onReveal func()       // the custodian chose to see the share
	box      *fyne.Container
	groups   *fyne.Container
	countdow *widget.Label
	reveal   *widget.Button
	hide     *widget.Button
	shown    bool
	deadline time.Time
	stop     chan struct{}
}

func newShareReveal(d ceremony.ShareDelivery, do func(func()), relayout func(), onHidden func()) *shareReveal {
	r := &shareReveal{do: do, relayout: relayout, countdow: widget.NewLabel(""), stop: make(chan struct{})}
	warn := widget.NewLabelWithStyle(fmt.Sprintf("Only %s should be looking at the screen.", d.Custodian),
		fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	warn.SizeName = "headingText"
	warn.Wrapping = fyne.TextWrapWord
	warn.Importance = widget.WarningImportance
	what := widget.NewLabel(fmt.Sprintf("Share %d of %d of %s. %d shares are needed to use the root. Copy it onto your share card, group by group, then press Hide.",
		d.Number, d.Of, d.CeremonyID, d.Threshold))
	what.Wrapping = fyne.TextWrapWord
	r.groups = container.NewGridWithColumns(5)
	text := d.Text
	r.reveal = widget.NewButton("Reveal my share", func() { r.show(text) })
	r.reveal.Importance = widget.HighImportance
	r.hide = widget.NewButton("Hide", func() {
		r.conceal()
		if onHidden != nil {
			onHidden()
		}
	})
	r.hide.Disable()
	r.box = container.NewVBox(warn, what, container.NewCenter(container.NewHBox(r.reveal, r.hide)), r.countdow, r.groups)
	return r
}

func (r *shareReveal) show(text string) {
	h, groups := quorum.SplitEncoded(text)
	r.groups.Objects = nil
	header := mono(h, 18)
	for i, g := range groups {
		r.groups.Add(container.NewVBox(mono(fmt.Sprintf("%d", i+1), 13), mono(g, 34)))
	}
	// As many groups a row as the panel holds (five on a wide screen), never cut off at the
	// right edge of a narrow one.
	cell := r.groups.Objects[0].MinSize()
	r.groups.Layout = layout.NewGridWrapLayout(fyne.NewSize(cell.Width+theme.Padding()*2, cell.Height))
	r.box.Objects[4] = container.NewVBox(header, r.groups)
	r.box.Refresh()
	if r.onReveal != nil {
		r.onReveal()
	}
	r.relayout()
	r.relayout() // the wrapped grid knows its rows once laid out
	r.shown = true
	r.reveal.Disable()
	r.hide.Enable()
	r.deadline = time.Now().Add(revealTimeout)
	go r.countdown()
}

// countdown hides the share when its time is up.
func (r *shareReveal) countdown() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			done := false
			r.do(func() {
				if !r.shown {
					done = true
					return
				}
				left := time.Until(r.deadline).Round(time.Second)
				if left <= 0 {
					r.hide.OnTapped()
					done = true
					return
				}
				r.countdow.SetText(fmt.Sprintf("The share hides itself in %v.", left))
			})
			if done {
				return
			}
		}
	}
}

// conceal removes the share from the screen.
func (r *shareReveal) conceal() {
	if !r.shown {
		return
	}
	r.shown = false
	r.box.Objects[4] = container.NewVBox(widget.NewLabel("The share is hidden."))
	r.box.Refresh()
	r.relayout()
	r.countdow.SetText("")
	r.hide.Disable()
	r.reveal.Enable()
	select {
	case r.stop <- struct{}{}:
	default:
	}
}

// shareEntry is one entry per group of a share, each marked right or wrong by its check
// character as soon as it is complete, so a copying mistake is found at once and in which group.
type shareEntry struct {
	entries []*widget.Entry
	marks   []*canvas.Text
	box     *fyne.Container
	onReady func(ok bool)
}

func newShareEntry(onReady func(ok bool)) *shareEntry {
	e := &shareEntry{onReady: onReady}
	grid := container.NewGridWithColumns(5)
	for i := 0; i < quorum.ShareGroups; i++ {
		i := i
		en := widget.NewEntry()
		en.SetPlaceHolder(fmt.Sprintf("group %d", i+1))
		en.TextStyle = fyne.TextStyle{Monospace: true}
		mark := canvas.NewText(" ", stateColor(true))
		mark.TextSize = 18
		en.OnChanged = func(text string) { e.check(i, text) }
		en.OnSubmitted = func(string) { e.focusNext(i) }
		e.entries, e.marks = append(e.entries, en), append(e.marks, mark)
		grid.Add(container.NewBorder(nil, nil, nil, mark, en))
	}
	e.box = grid
	return e
}

func (e *shareEntry) check(i int, text string) {
	t := strings.TrimSpace(text)
	switch {
	case len(t) < quorum.GroupLen:
		e.marks[i].Text = " "
	case quorum.CheckGroup(i+1, t) == nil:
		e.marks[i].Text, e.marks[i].Color = "✓", stateColor(true)
		if len(t) == quorum.GroupLen {
			e.focusNext(i)
		}
	default:
		e.marks[i].Text, e.marks[i].Color = "✗", stateColor(false)
	}
	e.marks[i].Refresh()
	if e.onReady != nil {
		e.onReady(e.complete())
	}
}

func (e *shareEntry) focusNext(i int) {
	if i+1 < len(e.entries) {
		if c := fyne.CurrentApp().Driver().CanvasForObject(e.entries[i+1]); c != nil {
			c.Focus(e.entries[i+1])
		}
	}
}

// complete says whether every group is present and passes its check.
func (e *shareEntry) complete() bool {
	for i, en := range e.entries {
		if quorum.CheckGroup(i+1, strings.TrimSpace(en.Text)) != nil {
			return false
		}
	}
	return true
}

// wrong lists the groups that fail their check.
func (e *shareEntry) wrong() []int {
	var out []int
	for i, en := range e.entries {
		if strings.TrimSpace(en.Text) != "" && quorum.CheckGroup(i+1, strings.TrimSpace(en.Text)) != nil {
			out = append(out, i+1)
		}
	}
	return out
}

// text is the share as typed, and clear empties the entries.
func (e *shareEntry) text() string {
	var g []string
	for _, en := range e.entries {
		g = append(g, strings.TrimSpace(en.Text))
	}
	return quorum.JoinGroups(g)
}

func (e *shareEntry) clear() {
	for i, en := range e.entries {
		en.SetText("")
		e.marks[i].Text = " "
	}
}
