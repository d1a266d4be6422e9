package app

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"
)

// keptRun is a screen whose run is under way, or ended while the person looked elsewhere:
// its content is kept, so leaving the screen loses nothing and coming back shows it where it
// was.
type keptRun struct {
	what    string // e.g. "A root key ceremony", for the question asked on leaving
	subject string // what the run acts on (the root's id): its run is under way, not stopped
	content fyne.CanvasObject
	busy    bool // the run is under way: leaving or closing the window asks first
}

// keep keeps screen id's content while the run what, on subject, is under way on it.
func (s *shell) keep(id, what, subject string, content fyne.CanvasObject) {
	if s.kept == nil {
		s.kept = map[string]*keptRun{}
	}
	s.kept[id] = &keptRun{what: what, subject: subject, content: content, busy: true}
}

// underWay says whether a run on subject is under way on one of the window's screens.
func (s *shell) underWay(subject string) bool {
	for _, k := range s.kept {
		if k.busy && k.subject == subject {
			return true
		}
	}
	return false
}

// ended says the run on screen id ended: its content stays until the person has seen it.
func (s *shell) ended(id string) {
	k, ok := s.kept[id]
	if !ok {
		return
	}
	k.busy = false
	if s.current == id {
		delete(s.kept, id) // seen: the next visit starts afresh
	}
}

// screenContent is screen sc's kept content, or a new one.
func (s *shell) screenContent(sc screen) fyne.CanvasObject {
	if k, ok := s.kept[sc.id]; ok {
		if !k.busy {
			delete(s.kept, sc.id)
		}
		return k.content
	}
	return sc.build()
}

// mayLeave says whether the window may go from the current screen to screen next now. When
// a run is under way on the current screen it asks first, and goes to next if the person
// says so; the run goes on and is there when they come back.
func (s *shell) mayLeave(next string) bool {
	k, ok := s.kept[s.current]
	if !ok || !k.busy || next == s.current {
		return true
	}
	s.selectNav(s.current) // until the person answers, the navigation shows where they are
	d := dialog.NewConfirm("Leave "+lowerFirst(k.what)+"?",
		k.what+" is under way on this screen. It stays as it is while you look elsewhere: come back to it from the left to go on.",
		func(leave bool) {
			if leave {
				s.leaveKept(next)
			}
		}, s.win)
	d.SetConfirmText("Leave it for now")
	d.SetDismissText("Stay")
	d.Show()
	return false
}

// leaveKept goes to screen next, leaving the current screen's run under way.
func (s *shell) leaveKept(next string) {
	k := s.kept[s.current]
	busy := k.busy
	k.busy = false // let show pass
	s.show(next)
	k.busy = busy
}

// busyRun is what is under way on some screen, or "".
func (s *shell) busyRun() string {
	for _, k := range s.kept {
		if k.busy {
			return k.what
		}
	}
	return ""
}

// closeIntercept asks before the window closes while a run is under way: closing ends the
// process, and the run is then listed with the runs that stopped half way.
func (s *shell) closeIntercept() {
	what := s.busyRun()
	if what == "" {
		s.win.Close()
		return
	}
	d := dialog.NewConfirm("Close Custos?",
		what+" is under way. Closing the window stops it where it is; it is then listed on the home screen with the runs that stopped half way, to abort or resume.",
		func(close bool) {
			if close {
				s.win.Close()
			}
		}, s.win)
	d.SetConfirmText("Close and stop it")
	d.SetDismissText("Stay")
	d.Show()
}

// selectNav shows screen id as selected in the navigation without opening it again.
func (s *shell) selectNav(id string) {
	for i, sc := range s.screens {
		if sc.id == id {
			s.nav.Select(i)
		}
	}
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]|0x20) + s[1:]
}
