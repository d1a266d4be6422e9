package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/rebuild"
	"github.com/custos-pki/custos/workspace"
)

// lostScreen is the whole window when the workspace's registry is lost while its journals
// remain (registry.ErrRegistryLost): nothing else is offered, since every workflow would work
// on an empty registry. It says what happened and rebuilds the registry from the journals when
// asked; once the rebuilt registry is in place, opened is called (off the UI goroutine) to open
// the workspace as usual.
type lostScreen struct {
	ctx    context.Context
	dir    string
	cause  error
	opened func() error
	mu     *sync.Mutex // the UI lock, as the shell's (see shell.do)

	status  *widget.Label
	details *widget.Label
	button  *widget.Button
}

func newLostScreen(ctx context.Context, dir string, cause error, mu *sync.Mutex, opened func() error) *lostScreen {
	return &lostScreen{ctx: ctx, dir: dir, cause: cause, opened: opened, mu: mu}
}

func (l *lostScreen) do(f func()) {
	fyne.DoAndWait(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		f()
	})
}

func (l *lostScreen) content() fyne.CanvasObject {
	what := widget.NewLabel(l.cause.Error())
	what.Wrapping = fyne.TextWrapWord
	help := widget.NewLabel("The registry is derived from the journals: every change to it was journaled first. " +
		"Rebuilding replays every journal into a new registry, checks it against the signed records, " +
		"and puts it in place only when nothing is missing. The lost file, if it comes back, is never overwritten.")
	help.Wrapping = fyne.TextWrapWord
	l.status = widget.NewLabel("")
	l.status.Wrapping = fyne.TextWrapWord
	l.details = widget.NewLabel("")
	l.details.Wrapping = fyne.TextWrapWord
	l.button = widget.NewButton("Rebuild the registry from the journals", l.rebuild)
	l.button.Importance = widget.HighImportance
	return container.NewVScroll(container.NewVBox(heading("The registry of this workspace is lost"), what, help,
		container.NewHBox(l.button), l.status, l.details))
}

// rebuild rebuilds and replaces the registry off the UI goroutine, then opens the workspace.
func (l *lostScreen) rebuild() {
	l.button.Disable()
	l.status.SetText("Rebuilding the registry from the journals…")
	go func() {
		rep, err := l.rebuildAndReplace()
		l.do(func() {
			if rep != nil {
				l.details.SetText(reportText(rep))
			}
			if err != nil {
				l.status.SetText("The registry was not put in place: " + err.Error())
				l.button.Enable()
				return
			}
			l.status.SetText("The rebuilt registry is in place. Opening the workspace…")
		})
		if err != nil {
			return
		}
		if err := l.opened(); err != nil {
			l.do(func() { l.status.SetText("The workspace did not open: " + err.Error()) })
		}
	}()
}

func (l *lostScreen) rebuildAndReplace() (*rebuild.Report, error) {
	ws, err := workspace.Open(l.dir)
	if err != nil {
		return nil, err
	}
	defer ws.Close()
	now := time.Now()
	rep, err := rebuild.Rebuild(l.ctx, ws, now)
	if err != nil {
		return nil, err
	}
	if err := rebuild.Replace(ws, rep, now); err != nil {
		if errors.Is(err, rebuild.ErrIncomplete) {
			err = errors.New("the rebuilt registry would lack what is listed below; it is kept as " + rep.Rebuilt)
		}
		return rep, err
	}
	return rep, nil
}

// reportText is a rebuild's report for a person.
func reportText(rep *rebuild.Report) string {
	lines := []string{rep.Summary()}
	for _, p := range rep.Problems {
		lines = append(lines, "Missing: "+p)
	}
	for _, n := range rep.Notes {
		lines = append(lines, "Note: "+n)
	}
	if rep.Replaced != "" {
		lines = append(lines, fmt.Sprintf("The file that was there is kept as %s.", rep.Replaced))
	}
	return strings.Join(lines, "\n")
}
