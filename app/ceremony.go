package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

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
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// ceremonyScreen is the root key ceremony: load the reviewed plan, check its hash, then one
// screen per step with the list of all steps and their state always visible; each step's
// result is shown when it has run, for the people the script names to check.
func (s *shell) ceremonyScreen() fyne.CanvasObject { return newCeremonyScreen(s).root }

// ceremonyScreen is one root key ceremony in the window.
type ceremonyScreen struct {
	shell *shell
	plan  *ceremony.Plan
	root  *fyne.Container // what the screen shows: the plan form, then the steps
	// The plan form.
	path, pin      *widget.Entry
	sharesDir      *widget.Entry // a folder for the shares the plan sends nowhere; empty: the screen
	summary, words *widget.Label
	planBox        *fyne.Container // the plan's summary and hash words, hidden until one is loaded
	start          *widget.Button
	checking       *widget.ProgressBarInfinite
	msg            *notice
	form           *container.Scroll
	// The steps, once the ceremony runs.
	steps   *widget.List
	states  map[string]record.Status
	results map[string]stepResult
	current string
	panel   *fyne.Container // the right-hand side: what the people do now
	scroll  *container.Scroll
	status  *notice
	journal string
}

// stepResult is what a done step made, as the witness checks it.
type stepResult struct {
	at    time.Time
	facts []ceremony.Fact
}

func newCeremonyScreen(s *shell) *ceremonyScreen {
	c := &ceremonyScreen{shell: s, states: map[string]record.Status{}, results: map[string]stepResult{}}
	c.root = container.NewStack(c.planForm())
	return c
}

// planForm is the first screen: the plan file, the plan as loaded (summary and hash words,
// each in its own area), the operator PIN and Start.
func (c *ceremonyScreen) planForm() fyne.CanvasObject {
	c.path = widget.NewEntry()
	c.path.SetPlaceHolder("the reviewed plan file, e.g. /media/ceremony/plan.yaml")
	c.path.OnSubmitted = func(string) { c.onLoad() }
	c.summary = widget.NewLabel("")
	c.summary.Wrapping = fyne.TextWrapWord
	c.words = widget.NewLabel("")
	c.words.Wrapping = fyne.TextWrapWord
	c.words.TextStyle = fyne.TextStyle{Monospace: true}
	c.planBox = container.NewVBox(widget.NewCard("The plan", "", c.summary),
		widget.NewCard("Plan SHA-256", "The witness compares these words with the reviewed copy", c.words))
	c.planBox.Hide()
	c.msg = newNotice()
	c.pin = pinEntry("operator PIN of the operations token")
	c.start = widget.NewButtonWithIcon("Start the ceremony", theme.MediaPlayIcon(), c.onStart)
	c.start.Importance = widget.HighImportance
	c.start.Disable()
	c.pin.OnSubmitted = func(string) {
		if !c.start.Disabled() {
			c.onStart()
		}
	}
	c.sharesDir = widget.NewEntry()
	c.sharesDir.SetPlaceHolder("optional: a folder for the shares the plan sends nowhere (else each is shown to its custodian)")
	c.checking = widget.NewProgressBarInfinite()
	c.checking.Hide()
	intro := widget.NewLabel("Load the plan that was reviewed and signed before today. Custos checks it before the HSM is opened; the witness compares its hash, read aloud as words, with the reviewed copy.")
	intro.Wrapping = fyne.TextWrapWord
	c.form = container.NewVScroll(container.NewPadded(container.NewVBox(
		heading("Root key ceremony"), intro, c.shell.stoppedRuns(registry.RunCeremony),
		field("Plan file", container.NewBorder(nil, nil, nil, container.NewHBox(widget.NewButton("Load", c.onLoad),
			widget.NewButton("Choose…", c.onChoose)), c.path)),
		c.planBox, field("Shares folder", c.sharesDir), field("Operator PIN", c.pin), container.NewBorder(nil, nil, c.start, nil, c.checking), c.msg.object())))
	return c.form
}

// onChoose picks the plan file in a file dialog and loads it.
func (c *ceremonyScreen) onChoose() {
	dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
		if err == nil && r != nil {
			r.Close()
			c.path.SetText(r.URI().Path())
			c.onLoad()
		}
	}, c.shell.win).Show()
}

// onLoad reads and checks the plan file off the UI goroutine. A plan that fails to load
// leaves no plan loaded: Start stays off until a good one is.
func (c *ceremonyScreen) onLoad() {
	c.plan = nil
	c.start.Disable()
	c.planBox.Hide()
	c.msg.info("Reading " + c.path.Text + "…")
	path := c.path.Text
	var p *ceremony.Plan
	c.shell.background(func() (err error) {
		p, err = ceremony.LoadPlan(c.shell.ctx, path)
		return err
	}, func(err error) {
		if err != nil {
			c.msg.errorf(err)
			c.relayoutForm()
			return
		}
		c.showPlan(p)
	})
}

// showPlan shows a loaded plan and enables Start.
func (c *ceremonyScreen) showPlan(p *ceremony.Plan) {
	c.plan = p
	h := p.SHA256()
	var custodians []string
	for i, name := range p.Custodians {
		if d := p.Destination(i); !d.IsDefault() {
			name += " (" + d.String() + ")"
		}
		custodians = append(custodians, name)
	}
	c.summary.SetText(fmt.Sprintf("Ceremony %s: %s\nAdministrator %s; witnesses %s\nCustodians (%d of %d needed): %s\nKey %s, backup %v\nHSM module %s; operations token %s",
		p.ID, p.Certificate.CommonName, p.Administrator, strings.Join(p.Witnesses, ", "), p.Threshold, len(p.Custodians),
		strings.Join(custodians, ", "), p.Key.Algorithm, p.Backup, p.Module, p.OperationsToken))
	c.words.SetText(fmt.Sprintf("%x\n\n%s", h, p.HashWords()))
	c.planBox.Show()
	c.msg.ok("The plan is valid. The witness compares the words above with the reviewed copy, then the operator enters the PIN and starts.")
	c.start.Enable()
	c.relayoutForm()
}

func (c *ceremonyScreen) relayoutForm() {
	c.planBox.Refresh()
	c.form.Content.Refresh()
	c.form.Refresh()
}

// onStart starts the ceremony off the UI goroutine. The workflow checks the operator PIN,
// the HSM and the workspace before it touches a token; what it refuses is shown here, with
// the plan still loaded. From then on the run is kept when the person leaves the screen.
func (c *ceremonyScreen) onStart() {
	if c.plan == nil {
		return
	}
	if len(c.pin.Text) < 4 {
		c.msg.errorf(errors.New("enter the operator PIN of the operations token (at least 4 characters)"))
		return
	}
	opsPIN := takePIN(c.pin)
	c.start.Disable()
	c.checking.Show()
	c.msg.info("Checking the operator PIN, the HSM and the workspace before any token is touched…")
	c.shell.keep("ceremony", "A root key ceremony", c.plan.ID, c.root)
	env := c.shell.runEnv()
	env.Progress = func(e run.Event) { c.shell.do(func() { c.onProgress(env, e) }) }
	people := newGUIParticipants(c, strings.TrimSpace(c.sharesDir.Text))
	var res *ceremony.RootResult
	c.shell.background(func() error {
		defer zeroAll(opsPIN)
		defer people.wipe()
		var err error
		res, err = ceremony.Root(c.shell.ctx, env, c.plan, opsPIN, people)
		return err
	}, func(err error) {
		c.shell.ended("ceremony")
		c.checking.Hide()
		if err != nil {
			c.onFailed(err)
			return
		}
		c.onComplete(res)
	})
}

// onFailed shows why the ceremony stopped: on the plan form when it was refused before any
// step (the plan stays loaded, to start again), in the step view otherwise.
func (c *ceremonyScreen) onFailed(err error) {
	if c.panel == nil {
		c.msg.errorf(err)
		c.start.Enable()
		c.relayoutForm()
		return
	}
	c.status.set(widget.DangerImportance, "The ceremony stopped.")
	why := newNotice()
	why.errorf(err)
	next := widget.NewLabel("The journal says where. What this run made on the tokens was undone; fix the cause and run the same plan again from the start.")
	next.Wrapping = fyne.TextWrapWord
	again := widget.NewButtonWithIcon("Back to the plan", theme.NavigateBackIcon(), c.onAgain)
	c.show(container.NewVBox(heading2("The ceremony stopped"), why.object(), next, container.NewHBox(again)))
}

// onAgain goes back to the plan form with the same plan loaded, for a new run of it.
func (c *ceremonyScreen) onAgain() {
	plan := c.plan
	c.panel, c.scroll, c.steps, c.current = nil, nil, nil, ""
	c.states, c.results = map[string]record.Status{}, map[string]stepResult{}
	c.root.Objects = []fyne.CanvasObject{c.planForm()}
	c.root.Refresh()
	c.showPlan(plan)
}

// onComplete shows the finished ceremony: the root's fingerprint to read aloud, its files.
func (c *ceremonyScreen) onComplete(res *ceremony.RootResult) {
	fp := res.Fingerprint()
	c.status.ok("The root key ceremony is complete.")
	done := widget.NewLabel(fmt.Sprintf("Root %s\n%s\n\nRecord: %s\nJournal final hash: %s", c.plan.ID, res.RootPath, res.RecordPath, res.JournalHash))
	done.Wrapping = fyne.TextWrapBreak // paths and the hash are long words
	fpText := widget.NewLabel(fmt.Sprintf("Root SHA-256 fingerprint\n%s\n\n%s", fp.Grouped(), fp.Words()))
	fpText.Wrapping = fyne.TextWrapWord
	fpText.TextStyle = fyne.TextStyle{Monospace: true}
	opener := newRecordOpener(c.shell.background)
	opener.show(res.RecordPath)
	box := container.NewVBox(heading2("Ceremony complete"), wrapped("The administrator reads the fingerprint aloud; the witness writes it in the ceremony log."),
		fpText, done)
	for _, w := range res.Warnings { // what the people must still do: shares resting together
		box.Add(warning(w))
	}
	box.Add(opener.object())
	c.show(box)
}

// stepView replaces the plan form with the steps: their list on the left, what the people
// do now on the right.
func (c *ceremonyScreen) stepView() {
	c.status = newNotice()
	c.steps = widget.NewList(func() int { return len(ceremony.Steps("root")) },
		func() fyne.CanvasObject {
			title := widget.NewLabel("step title that is long")
			title.Truncation = fyne.TextTruncateEllipsis // a title cut at 1024x768 says so; the panel has it whole
			return container.NewBorder(nil, nil, widget.NewIcon(theme.RadioButtonIcon()), nil, title)
		}, c.stepRow)
	c.steps.OnSelected = c.onStepSelected
	c.panel = container.NewStack(widget.NewLabel("Starting…"))
	journal := widget.NewButtonWithIcon("Journal", theme.DocumentIcon(), c.onJournal)
	left := container.NewBorder(heading2("Steps"), journal, nil, nil, c.steps)
	c.scroll = container.NewVScroll(container.NewPadded(c.panel))
	split := container.NewHSplit(left, container.NewBorder(nil, c.status.object(), nil, nil, c.scroll))
	split.Offset = 0.28
	c.root.Objects = []fyne.CanvasObject{split}
	c.root.Refresh()
}

// stepRow draws step id of the list with its state.
func (c *ceremonyScreen) stepRow(id widget.ListItemID, o fyne.CanvasObject) {
	st := ceremony.Steps("root")[id]
	row := o.(*fyne.Container)
	icon := theme.RadioButtonIcon()
	switch c.states[st.ID] {
	case record.StatusBegin:
		icon = theme.MediaPlayIcon()
	case record.StatusDone:
		icon = theme.ConfirmIcon()
	case record.StatusFailed:
		icon = theme.ErrorIcon()
	}
	if c.current == st.ID && c.states[st.ID] == "" {
		icon = theme.NavigateNextIcon()
	}
	for _, o := range row.Objects { // the title, then the icon (a Border's order)
		switch w := o.(type) {
		case *widget.Icon:
			w.SetResource(icon)
		case *widget.Label:
			w.SetText(st.Title)
		}
	}
}

// onStepSelected shows a done step's result again, in a dialog: the screen goes on.
func (c *ceremonyScreen) onStepSelected(id widget.ListItemID) {
	c.steps.UnselectAll()
	st := ceremony.Steps("root")[id]
	res, ok := c.results[st.ID]
	if !ok {
		return
	}
	d := dialog.NewCustom(st.Title, "Close", container.NewVScroll(resultBox(st, res)), c.shell.win)
	d.Resize(fyne.NewSize(760, 520))
	d.Show()
}

// onProgress follows the run: the step list, the HSM at work, and each step's result.
func (c *ceremonyScreen) onProgress(env run.Env, e run.Event) {
	if c.panel == nil {
		c.stepView()
	}
	c.journal = env.JournalPath(e.Run)
	c.states[e.Step.ID] = e.Status
	c.current = e.Step.ID
	c.steps.Refresh()
	switch e.Status {
	case record.StatusBegin:
		c.show(container.NewVBox(heading2(e.Step.Title), widget.NewProgressBarInfinite(), widget.NewLabel("The HSM is working. Please wait.")))
	case record.StatusDone:
		if facts := ceremony.ResultFacts(e.Result); facts != nil {
			c.results[e.Step.ID] = stepResult{at: time.Now().UTC(), facts: facts}
		}
	}
}

// show replaces what the people see now.
func (c *ceremonyScreen) show(o fyne.CanvasObject) {
	if c.panel == nil {
		c.stepView()
	}
	c.panel.Objects = []fyne.CanvasObject{o}
	c.relayout()
	if c.scroll != nil {
		c.scroll.ScrollToTop() // each new thing to do starts at its top
	}
}

// relayout lays the panel out again after its content grew or shrank.
func (c *ceremonyScreen) relayout() {
	c.panel.Refresh()
	if c.scroll != nil {
		c.scroll.Refresh()
	}
}

func (c *ceremonyScreen) onJournal() {
	jf, err := record.ReadJournalFile(c.journal)
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
	d := dialog.NewCustom("Journal", "Close", container.NewVScroll(l), c.shell.win)
	d.Resize(fyne.NewSize(900, 600))
	d.Show()
}

// resultBox shows a step's result: when it completed and what the witness checks.
func resultBox(st run.Step, res stepResult) fyne.CanvasObject {
	box := container.NewVBox(widget.NewLabelWithStyle(st.Title+": completed at "+res.at.Format("15:04:05 UTC, 2006-01-02"),
		fyne.TextAlignLeading, fyne.TextStyle{Bold: true}))
	for _, f := range res.facts {
		v := widget.NewLabel(f.Value)
		v.Wrapping = fyne.TextWrapWord
		v.TextStyle = fyne.TextStyle{Monospace: f.Words}
		box.Add(field(f.Label, v))
	}
	return box
}

// guiParticipants are the people at the window, as the ceremony asks them: each call shows
// what they must do and waits until they have done it, or the ceremony is cancelled.
type guiParticipants struct {
	w         *ceremonyScreen
	typed     map[int]string    // shares typed back at once, returned when the ceremony reads them back
	dest      map[int]string    // where a share went, when not to the screen
	pins      map[string][]byte // each custodian's token PIN, typed once (CustodianPIN), zeroed by wipe
	sharesDir string            // the folder for shares the plan sends nowhere; "": the screen
}

// newGUIParticipants are the people at the window of screen w; sharesDir is the folder for
// the shares the plan sends nowhere, "" for the screen.
func newGUIParticipants(w *ceremonyScreen, sharesDir string) *guiParticipants {
	return &guiParticipants{w: w, typed: map[int]string{}, dest: map[int]string{}, pins: map[string][]byte{}, sharesDir: sharesDir}
}

// SharesDir is the folder the window was given for the shares of custodians the plan sends
// nowhere (ceremony.ShareFolder); empty, each is shown to its custodian on screen.
func (p *guiParticipants) SharesDir() string { return p.sharesDir }

// CustodianPIN has the custodian type the PIN of their own token in the window, once: the
// ceremony asks again to check the token, write the share and read it back
// (ceremony.CustodianPINs). The caller zeroes the copy it gets.
func (p *guiParticipants) CustodianPIN(ctx context.Context, custodian, token string) ([]byte, error) {
	key := custodian + "\x00" + token
	if pin, ok := p.pins[key]; ok {
		return append([]byte(nil), pin...), nil
	}
	pin, err := ask(ctx, p.w.shell, func(answer func([]byte)) fyne.CanvasObject {
		return p.w.custodianPINCard(custodian, token, answer)
	}, p.w.show)
	if err != nil {
		return nil, err
	}
	p.pins[key] = pin
	return append([]byte(nil), pin...), nil
}

// custodianPINCard asks custodian alone for the PIN of their token.
func (c *ceremonyScreen) custodianPINCard(custodian, token string, answer func([]byte)) fyne.CanvasObject {
	pin := pinEntry("the PIN of your token " + token)
	use := widget.NewButtonWithIcon("Use my PIN", theme.LoginIcon(), func() {
		if pin.Text == "" {
			return
		}
		c.show(widget.NewLabel("Opening " + token + "…"))
		answer(takePIN(pin))
	})
	use.Importance = widget.HighImportance
	defaultButton(use, pin)
	say := wrapped("The plan sends " + custodian + "'s share to their own token “" + token + "”. Only " + custodian +
		" types its PIN, once: Custos checks the token is theirs alone before anything starts, then writes the share there and reads it back.")
	box := container.NewVBox(heading2(custodian+": your token's PIN"), say, field("Token PIN", pin), container.NewHBox(use))
	return box
}

// tokenDestination lets a custodian have their share written to their own token (chosen
// among the module's tokens, unlocked with their PIN) instead of copying it; it is read back
// from the token at once and handed to done.
func (p *guiParticipants) tokenDestination(d ceremony.ShareDelivery, msg *notice, done func(back string)) fyne.CanvasObject {
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
			text, err := ceremony.ReadShareFromToken(s.ctx, module, token, pw, d)
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

// fileDestination lets a custodian have their share written to a file in a folder of their
// own medium (a USB stick they keep) instead of copying it; it is read back from the file at
// once and handed to done with the file's path.
func (p *guiParticipants) fileDestination(d ceremony.ShareDelivery, msg *notice, done func(back, path string)) fyne.CanvasObject {
	s := p.w.shell
	folder := widget.NewEntry()
	folder.SetPlaceHolder("a folder on your own medium, e.g. /media/cara")
	choose := widget.NewButton("Choose…", func() {
		dialog.NewFolderOpen(func(u fyne.ListableURI, err error) {
			if err == nil && u != nil {
				folder.SetText(u.Path())
			}
		}, s.win).Show()
	})
	write := widget.NewButtonWithIcon("Write my share to a file instead", theme.DocumentSaveIcon(), nil)
	write.OnTapped = func() {
		dir := strings.TrimSpace(folder.Text)
		if dir == "" {
			msg.errorf(errors.New("choose the folder on your own medium"))
			return
		}
		write.Disable()
		var back, path string
		s.background(func() error {
			var err error
			if path, err = ceremony.WriteShareFile(dir, d); err != nil {
				return err
			}
			text, err := ceremony.ReadShareFile(path)
			if err != nil {
				return err
			}
			_, groups := quorum.SplitEncoded(text)
			back = quorum.JoinGroups(groups)
			if want := d.Text[strings.LastIndex(d.Text, "\n")+1:]; !strings.EqualFold(back, want) {
				return fmt.Errorf("the share read back from %s differs from the one written", path)
			}
			return nil
		}, func(err error) {
			write.Enable()
			if err != nil {
				msg.errorf(err)
				return
			}
			done(back, path)
		})
	}
	return container.NewVBox(widget.NewLabelWithStyle("Or: "+d.Custodian+" has the share written to a file on their own medium, never shown", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		field("Folder", container.NewBorder(nil, nil, nil, choose, folder)), container.NewHBox(write))
}

func (p *guiParticipants) wipe() {
	for k := range p.typed {
		delete(p.typed, k)
	}
	for k, pin := range p.pins {
		zeroAll(pin)
		delete(p.pins, k)
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
		return p.w.confirmCard(st, p.people(), answer)
	}, p.w.show)
}

// confirmation is a person's answer to a step's result: who confirmed it, or why not.
type confirmation struct {
	by  record.Actor
	err error
}

// ConfirmResult shows the result of step st, once it ran, and waits for the person the script
// names to confirm it (ceremony.ResultConfirmer) or to stop the ceremony.
func (p *guiParticipants) ConfirmResult(ctx context.Context, st run.Step, result any) (record.Actor, error) {
	c, err := ask(ctx, p.w.shell, func(answer func(confirmation)) fyne.CanvasObject {
		return p.w.resultCard(st, result, p.people(), answer)
	}, p.w.show)
	if err != nil {
		return record.Actor{}, err
	}
	return c.by, c.err
}

// confirmCard asks to go ahead with step st: what is read aloud and what will be checked.
// The person the script names confirms the result after the step ran (resultCard).
func (c *ceremonyScreen) confirmCard(st run.Step, people []record.Actor, answer func(record.Actor)) fyne.CanvasObject {
	c.current = st.ID
	if c.steps != nil {
		c.steps.Refresh()
	}
	read, check := assets.Script(st.Script)
	readL := widget.NewLabel(read)
	readL.Wrapping = fyne.TextWrapWord
	checkL := warning("Check once it has run: " + check)
	who := c.personSelect(people, st.Confirmer)
	confirm := widget.NewButtonWithIcon("Confirmed: go ahead", theme.ConfirmIcon(), func() {
		actor := people[who.SelectedIndex()]
		c.show(container.NewVBox(heading2(st.Title), widget.NewProgressBarInfinite(), widget.NewLabel("The HSM is working. Please wait.")))
		answer(actor)
	})
	confirm.Importance = widget.HighImportance
	return container.NewVBox(heading2(st.Title), readL, checkL, field("Confirmed by", who), container.NewHBox(confirm))
}

// resultCard shows what step st made, for the person the script names to check against the
// script and confirm, or to stop the ceremony when it is not what it should be.
func (c *ceremonyScreen) resultCard(st run.Step, result any, people []record.Actor, answer func(confirmation)) fyne.CanvasObject {
	res, ok := c.results[st.ID]
	if !ok {
		res = stepResult{at: time.Now().UTC(), facts: ceremony.ResultFacts(result)}
		c.results[st.ID] = res
	}
	_, check := assets.Script(st.Script)
	checkL := warning("Check: " + check)
	who := c.personSelect(people, st.Confirmer)
	right := widget.NewButtonWithIcon("The result is right: confirmed", theme.ConfirmIcon(), func() {
		actor := people[who.SelectedIndex()]
		c.show(widget.NewLabel(st.Title + ": result confirmed by " + actor.Name + "."))
		answer(confirmation{by: actor})
	})
	right.Importance = widget.HighImportance
	wrong := widget.NewButtonWithIcon("It is not: stop the ceremony", theme.CancelIcon(), func() {
		actor := people[who.SelectedIndex()]
		dialog.ShowConfirm("Stop the ceremony?", "What this run made is undone; the same plan can run again.", func(stop bool) {
			if stop {
				answer(confirmation{err: fmt.Errorf("%s (%s) found the result not as the script says", actor.Name, actor.Role)})
			}
		}, c.shell.win)
	})
	wrong.Importance = widget.DangerImportance
	return container.NewVBox(heading2(st.Title+": check the result"), resultBox(st, res), checkL,
		field("Checked by", who), container.NewHBox(right, wrong))
}

// warning is text the people must heed, wrapped, in the warning colour.
func warning(text string) *widget.Label {
	l := wrapped(text)
	l.Importance = widget.WarningImportance
	return l
}

// personSelect chooses among people, the first whose role is role chosen.
func (c *ceremonyScreen) personSelect(people []record.Actor, role string) *widget.Select {
	var names []string
	chosen := -1
	for i, a := range people {
		names = append(names, a.Name+" ("+a.Role+")")
		if a.Role == role && chosen < 0 {
			chosen = i
		}
	}
	who := widget.NewSelect(names, nil)
	who.SetSelectedIndex(max(chosen, 0))
	return who
}

// stepByID is the root ceremony's step id.
func (c *ceremonyScreen) stepByID(id string) run.Step {
	for _, st := range ceremony.Steps("root") {
		if st.ID == id {
			return st
		}
	}
	return run.Step{ID: id, Title: id}
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
		msg := newNotice()
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
			entry.box, container.NewHBox(next), msg.object())
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
		toFile := p.fileDestination(d, msg, func(back, path string) {
			reveal.conceal()
			p.dest[d.Number] = "written to file " + path + " on " + d.Custodian + "'s own medium and read back"
			p.w.show(wrapped(d.Custodian + "'s share is in " + path + "."))
			answer(back)
		})
		reveal.onReveal = func() { // seen on screen: a token or file is no longer the choice
			toToken.Hide()
			toFile.Hide()
		}
		lc := fyne.CurrentApp().Lifecycle()
		lc.SetOnExitedForeground(func() { reveal.conceal() })
		card = container.NewVBox(heading2(fmt.Sprintf("Share %d of %d: %s", d.Number, d.Of, d.Custodian)), reveal.box, widget.NewSeparator(), typeBack,
			widget.NewSeparator(), toToken, widget.NewSeparator(), toFile)
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
