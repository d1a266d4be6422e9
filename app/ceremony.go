package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/assets"
	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/internal/workstation"
	"github.com/custos-pki/custos/quorum"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/run"
)

// ceremonyScreen is the root key ceremony wizard: load the reviewed plan, check its hash,
// then one screen per step, confirmed by the named participant, with the list of all steps
// and their state always visible.
func (s *shell) ceremonyScreen() fyne.CanvasObject {
	w := &wizard{shell: s, states: map[string]record.Status{}}
	return w.planStep()
}

// wizard is one root key ceremony in the window.
type wizard struct {
	shell   *shell
	plan    *ceremony.Plan
	steps   *widget.List
	states  map[string]record.Status
	current string
	panel   *fyne.Container // the right-hand side: what the people do now
	scroll  *container.Scroll
	status  message
	journal string
	root    *fyne.Container
}

// planStep loads and shows the plan, asks for the operator PIN, and starts.
func (w *wizard) planStep() fyne.CanvasObject {
	path := widget.NewEntry()
	path.SetPlaceHolder("the reviewed plan file, e.g. /media/ceremony/plan.yaml")
	summary := widget.NewLabel("")
	summary.Wrapping = fyne.TextWrapWord
	words := widget.NewLabel("")
	words.Wrapping = fyne.TextWrapWord
	words.TextStyle = fyne.TextStyle{Monospace: true}
	msg := newMessage()
	pin := pinEntry("operator PIN of the operations token")
	start := widget.NewButtonWithIcon("Start the ceremony", theme.MediaPlayIcon(), nil)
	start.Importance = widget.HighImportance
	start.Disable()
	load := func() {
		p, err := ceremony.LoadPlan(w.shell.ctx, path.Text)
		if err != nil {
			msg.errorf(err)
			start.Disable()
			return
		}
		w.plan = p
		h := p.SHA256()
		summary.SetText(fmt.Sprintf("Ceremony %s — %s\nAdministrator %s; witnesses %s\nCustodians (%d of %d needed): %s\nKey %s, backup %v, HSM module %s",
			p.ID, p.Certificate.CommonName, p.Administrator, strings.Join(p.Witnesses, ", "), p.Threshold, len(p.Custodians),
			strings.Join(p.Custodians, ", "), p.Key.Algorithm, p.Backup, p.Module))
		words.SetText(fmt.Sprintf("Plan SHA-256 %x\n%s", h, p.HashWords()))
		msg.ok("The plan is valid. The witness compares the words above with the reviewed copy, then the operator enters the PIN and starts.")
		start.Enable()
	}
	path.OnSubmitted = func(string) { load() }
	browse := widget.NewButton("Choose…", func() {
		dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
			if err == nil && r != nil {
				r.Close()
				path.SetText(r.URI().Path())
				load()
			}
		}, w.shell.win).Show()
	})
	pin.OnSubmitted = func(string) {
		if !start.Disabled() {
			start.OnTapped()
		}
	}
	start.OnTapped = func() {
		if len(pin.Text) < 4 {
			msg.errorf(errors.New("enter the operator PIN of the operations token (at least 4 characters)"))
			return
		}
		w.run(takePIN(pin))
	}
	intro := widget.NewLabel("Load the plan that was reviewed and signed before today. Custos checks it before the HSM is opened; the witness compares its hash, read aloud as words, with the reviewed copy.")
	intro.Wrapping = fyne.TextWrapWord
	w.root = container.NewStack(container.NewVScroll(container.NewVBox(
		heading("Root key ceremony"), intro,
		field("Plan file", container.NewBorder(nil, nil, nil, container.NewHBox(widget.NewButton("Load", load), browse), path)),
		summary, words, field("Operator PIN", pin), container.NewHBox(start), msg.Label)))
	return w.root
}

// run starts the ceremony off the UI goroutine and switches to the step view.
func (w *wizard) run(opsPIN []byte) {
	w.status = newMessage()
	w.steps = widget.NewList(func() int { return len(ceremony.RootSteps) },
		func() fyne.CanvasObject {
			return container.NewHBox(widget.NewIcon(theme.RadioButtonIcon()), widget.NewLabel("step title that is long"))
		},
		func(id widget.ListItemID, o fyne.CanvasObject) {
			st := ceremony.RootSteps[id]
			row := o.(*fyne.Container)
			icon := theme.RadioButtonIcon()
			switch w.states[st.ID] {
			case record.StatusBegin:
				icon = theme.MediaPlayIcon()
			case record.StatusDone:
				icon = theme.ConfirmIcon()
			case record.StatusFailed:
				icon = theme.ErrorIcon()
			}
			if w.current == st.ID && w.states[st.ID] == "" {
				icon = theme.NavigateNextIcon()
			}
			row.Objects[0].(*widget.Icon).SetResource(icon)
			row.Objects[1].(*widget.Label).SetText(st.Title)
		})
	w.panel = container.NewStack(widget.NewLabel("Starting…"))
	journal := widget.NewButtonWithIcon("Journal", theme.DocumentIcon(), w.showJournal)
	left := container.NewBorder(heading2("Steps"), journal, nil, nil, w.steps)
	w.scroll = container.NewVScroll(container.NewPadded(w.panel))
	split := container.NewHSplit(left, container.NewBorder(nil, w.status.Label, nil, nil, w.scroll))
	split.Offset = 0.31
	w.root.Objects = []fyne.CanvasObject{split}
	w.root.Refresh()

	env := w.shell.runEnv()
	env.Progress = func(e run.Event) {
		w.shell.do(func() {
			w.journal = env.JournalPath(e.Run)
			w.states[e.Step.ID] = e.Status
			w.current = e.Step.ID
			w.steps.Refresh()
			if e.Status == record.StatusBegin {
				w.show(container.NewVBox(heading2(e.Step.Title), widget.NewProgressBarInfinite(), widget.NewLabel("The HSM is working. Please wait.")))
			}
		})
	}
	people := &guiParticipants{w: w, typed: map[int]string{}, dest: map[int]string{}}
	var res *ceremony.RootResult
	w.shell.background(func() error {
		defer zeroAll(opsPIN)
		var err error
		res, err = ceremony.Root(w.shell.ctx, env, w.plan, opsPIN, people)
		people.wipe()
		return err
	}, func(err error) {
		if err != nil {
			w.status.errorf(err)
			w.show(container.NewVBox(heading2("The ceremony stopped"), widget.NewLabel(err.Error()),
				widget.NewLabel("The journal says where. What this run made on the tokens was undone; fix the cause and start again.")))
			return
		}
		fp := res.Fingerprint()
		w.status.ok("The root key ceremony is complete.")
		done := widget.NewLabel(fmt.Sprintf("Root %s\n%s\n\nRecord: %s\nJournal final hash: %s", w.plan.ID, res.RootPath, res.RecordPath, res.JournalHash))
		done.Wrapping = fyne.TextWrapWord
		fpText := widget.NewLabel(fmt.Sprintf("Root SHA-256 fingerprint\n%s\n\n%s", fp.Grouped(), fp.Words()))
		fpText.Wrapping = fyne.TextWrapWord
		fpText.TextStyle = fyne.TextStyle{Monospace: true}
		w.show(container.NewVBox(heading2("Ceremony complete"), widget.NewLabel("The administrator reads the fingerprint aloud; the witness writes it in the ceremony log."),
			fpText, done, widget.NewButton("Open the record", func() { openFile(res.RecordPath) })))
	})
}

// show replaces what the people see now.
func (w *wizard) show(o fyne.CanvasObject) {
	w.panel.Objects = []fyne.CanvasObject{o}
	w.relayout()
}

// relayout lays the panel out again after its content grew or shrank.
func (w *wizard) relayout() {
	w.panel.Refresh()
	if w.scroll != nil {
		w.scroll.Refresh()
	}
}

func (w *wizard) showJournal() {
	jf, err := record.ReadJournalFile(w.journal)
	text := ""
	if err != nil {
		text = err.Error()
	} else {
		for _, e := range jf.Entries {
			text += fmt.Sprintf("%3d %s %-22s %-6s %s\n", e.Seq, e.Time.Format("15:04:05"), e.Step, e.Status, e.Actor)
		}
	}
	l := widget.NewLabel(text)
	l.TextStyle = fyne.TextStyle{Monospace: true}
	d := dialog.NewCustom("Journal", "Close", container.NewVScroll(l), w.shell.win)
	d.Resize(fyne.NewSize(900, 600))
	d.Show()
}

// guiParticipants are the people at the window, as the ceremony asks them: each call shows
// what they must do and waits until they have done it, or the ceremony is cancelled.
type guiParticipants struct {
	w     *wizard
	typed map[int]string // shares typed back at once, returned when the ceremony reads them back
	dest  map[int]string // where a share went, when not to the screen
}

// tokenDestination lets a custodian have their share written to their own token (chosen
// among the module's tokens, unlocked with their PIN) instead of copying it; it is read back
// from the token at once and handed to done.
func (p *guiParticipants) tokenDestination(d ceremony.ShareDelivery, msg message, done func(back string)) fyne.CanvasObject {
	s := p.w.shell
	module := s.module
	if p.w.plan != nil && p.w.plan.Module != "" {
		module = p.w.plan.Module
	}
	tokens := widget.NewSelect(nil, nil)
	tokens.PlaceHolder = "reading the tokens…"
	var labels []string
	s.background(func() error {
		h, err := workstation.InspectHSM(s.ctx, module)
		for _, t := range h.Slots {
			if t.Initialised && t.Label != p.w.plan.ID && t.Label != p.w.plan.OperationsToken {
				labels = append(labels, t.Label)
			}
		}
		return err
	}, func(err error) {
		tokens.Options = labels
		tokens.PlaceHolder = "your token"
		tokens.Refresh()
	})
	pin := pinEntry("your token's PIN")
	write := widget.NewButtonWithIcon("Write my share to my token instead", theme.DownloadIcon(), nil)
	write.OnTapped = func() {
		if tokens.Selected == "" {
			msg.errorf(errors.New("choose your token"))
			return
		}
		token, pw := tokens.Selected, takePIN(pin)
		write.Disable()
		var back string
		s.background(func() error {
			defer zeroAll(pw)
			if err := ceremony.WriteShareToToken(s.ctx, module, token, pw, d); err != nil {
				return err
			}
			text, err := ceremony.ReadShareFromToken(s.ctx, module, token, pw, d.CeremonyID, d.Number)
			if err != nil {
				return err
			}
			if text != d.Text {
				return errors.New("the share read back from the token differs from the one written")
			}
			_, groups := quorum.SplitEncoded(text)
			back = quorum.JoinGroups(groups)
			return nil
		}, func(err error) {
			write.Enable()
			if err != nil {
				msg.errorf(err)
				return
			}
			done(back)
		})
	}
	return container.NewVBox(widget.NewLabelWithStyle("Or: "+d.Custodian+" has the share written to their own token, never shown", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		field("Token", tokens), field("Token PIN", pin), container.NewHBox(write))
}

func (p *guiParticipants) wipe() {
	for k := range p.typed {
		delete(p.typed, k)
	}
}

// ask shows build's screen on the UI goroutine and waits for the answer it sends.
func ask[T any](ctx context.Context, s *shell, build func(answer func(T)) fyne.CanvasObject, show func(fyne.CanvasObject)) (T, error) {
	ch := make(chan T, 1)
	s.do(func() {
		show(build(func(v T) {
			select {
			case ch <- v:
			default:
			}
		}))
	})
	select {
	case v := <-ch:
		return v, nil
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

func (p *guiParticipants) people() []record.Actor {
	pl := p.w.plan
	out := []record.Actor{{Name: pl.Administrator, Role: "administrator"}}
	for _, wi := range pl.Witnesses {
		out = append(out, record.Actor{Name: wi, Role: "witness"})
	}
	return out
}

func (p *guiParticipants) Confirm(ctx context.Context, st run.Step) (record.Actor, error) {
	return ask(ctx, p.w.shell, func(answer func(record.Actor)) fyne.CanvasObject {
		p.w.current = st.ID
		if p.w.steps != nil {
			p.w.steps.Refresh()
		}
		read, check := assets.Script(st.Script)
		readL := widget.NewLabel(read)
		readL.Wrapping = fyne.TextWrapWord
		checkL := widget.NewLabel("Check: " + check)
		checkL.Wrapping = fyne.TextWrapWord
		checkL.Importance = widget.WarningImportance
		var names []string
		for _, a := range p.people() {
			names = append(names, a.Name+" ("+a.Role+")")
		}
		who := widget.NewSelect(names, nil)
		who.SetSelectedIndex(0)
		confirm := widget.NewButtonWithIcon("Confirmed: go ahead", theme.ConfirmIcon(), func() {
			actor := p.people()[who.SelectedIndex()]
			p.w.show(container.NewVBox(heading2(st.Title), widget.NewProgressBarInfinite()))
			answer(actor)
		})
		confirm.Importance = widget.HighImportance
		return container.NewVBox(heading2(st.Title), readL, checkL, field("Confirmed by", who), container.NewHBox(confirm))
	}, p.w.show)
}

func (p *guiParticipants) AcknowledgeHorizon(ctx context.Context, h ceremony.Horizon) (record.Actor, error) {
	return ask(ctx, p.w.shell, func(answer func(record.Actor)) fyne.CanvasObject {
		l := widget.NewLabel(strings.Join(h.Notices, "\n\n"))
		l.Wrapping = fyne.TextWrapWord
		l.Importance = widget.WarningImportance
		admin := p.people()[0]
		ack := widget.NewButton("Acknowledged by "+admin.Name, func() {
			p.w.show(widget.NewLabel("Acknowledged."))
			answer(admin)
		})
		ack.Importance = widget.HighImportance
		return container.NewVBox(heading2("Algorithm horizon (NIST IR 8547)"), l, container.NewHBox(ack))
	}, p.w.show)
}

// DeliverShare shows the share to its custodian alone and has them type it back at once,
// each group checked as typed; the typed share is what the ceremony reads back later.
func (p *guiParticipants) DeliverShare(ctx context.Context, d ceremony.ShareDelivery) (string, error) {
	typed, err := ask(ctx, p.w.shell, func(answer func(string)) fyne.CanvasObject {
		msg := newMessage()
		var reveal *shareReveal
		entry := newShareEntry(nil)
		next := widget.NewButtonWithIcon("My share is typed back: next custodian", theme.NavigateNextIcon(), nil)
		next.Importance = widget.HighImportance
		next.Disable()
		entry.onReady = func(ok bool) {
			if ok {
				next.Enable()
				msg.ok("Every group checks. Press the button to go on.")
			} else {
				next.Disable()
				if wrong := entry.wrong(); len(wrong) > 0 {
					msg.errorf(fmt.Errorf("group %v does not match its check character: compare it with the card", wrong))
				}
			}
		}
		next.OnTapped = func() {
			typed := entry.text()
			if want := d.Text[strings.LastIndex(d.Text, "\n")+1:]; !strings.EqualFold(typed, want) {
				msg.errorf(errors.New("the share typed back differs from the one shown: reveal it again and correct the card"))
				return
			}
			reveal.conceal()
			p.w.show(widget.NewLabel(d.Custodian + "'s share is accepted."))
			answer(typed)
		}
		typeBack := container.NewVBox(widget.NewLabelWithStyle(d.Custodian+": now type your share back from your card", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
			entry.box, container.NewHBox(next), msg.Label)
		typeBack.Hide()
		var card *fyne.Container
		relayout := func() {
			if card != nil {
				card.Refresh()
			}
			p.w.relayout()
		}
		reveal = newShareReveal(d, p.w.shell.do, relayout, func() { typeBack.Show(); relayout() })
		toToken := p.tokenDestination(d, msg, func(back string) {
			reveal.conceal()
			p.dest[d.Number] = "written to " + d.Custodian + "'s own token and read back"
			p.w.show(widget.NewLabel(d.Custodian + "'s share is on their token."))
			answer(back)
		})
		reveal.onReveal = toToken.Hide // seen on screen: the token is no longer the choice
		lc := fyne.CurrentApp().Lifecycle()
		lc.SetOnExitedForeground(func() { reveal.conceal() })
		card = container.NewVBox(heading2(fmt.Sprintf("Share %d of %d: %s", d.Number, d.Of, d.Custodian)), reveal.box, widget.NewSeparator(), typeBack,
			widget.NewSeparator(), toToken)
		return card
	}, p.w.show)
	if err != nil {
		return "", err
	}
	p.typed[d.Number] = typed
	if dest, ok := p.dest[d.Number]; ok {
		return dest, nil
	}
	return "shown on screen to " + d.Custodian + " and typed back at once", nil
}

func (p *guiParticipants) ReadBackShare(ctx context.Context, d ceremony.ShareDelivery) (string, error) {
	t, ok := p.typed[d.Number]
	if !ok {
		return "", fmt.Errorf("share %d was never typed back", d.Number)
	}
	delete(p.typed, d.Number)
	return t, nil
}

// openFile opens a file in the system's viewer.
func openFile(path string) {
	u, err := storageURI(path)
	if err == nil {
		fyne.CurrentApp().OpenURL(u)
	}
}
