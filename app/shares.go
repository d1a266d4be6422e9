package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/internal/secret"
	"github.com/custos-pki/custos/quorum"
)

// Where a custodian's share comes from on the Quorum screen.
const (
	fromTyped = "Type it"
	fromFile  = "Load a file"
	fromToken = "Read it from my token"
)

// sharePanel collects custodians' shares for a quorum operation from the three sources (typed,
// a file, the custodian's token), each checked against its commitment as it comes. It owns
// the collector: the shares stay across a failed operation and are zeroed by clear (the
// screen is left, or the custodians cancel). The rules are ceremony's and quorum's; the panel
// only asks.
type sharePanel struct {
	s *shell
	v *ceremony.VerifiedQuorum
	q *quorum.Collector

	custodian *widget.Select
	lookAway  *widget.Label // "Only NAME should look at the screen now"
	source    *widget.RadioGroup
	typed     *widget.Entry // masked
	reveal    *holdButton
	add       *widget.Button
	file      *widget.Entry
	identity  *widget.Entry
	load      *widget.Button
	token     *widget.Entry
	tokenPIN  *widget.Entry
	read      *widget.Button
	cancel    *widget.Button
	present   *widget.Label
	msg       *notice
	inputs    *fyne.Container
	busy      bool
	// clearWhenDone is set when the shares are to be forgotten while an operation uses them.
	clearWhenDone bool
	// onChange is told whenever the shares present change (the screen enables its start).
	onChange func()
}

func newSharePanel(s *shell, onChange func()) *sharePanel {
	p := &sharePanel{s: s, onChange: onChange, msg: newNotice()}
	p.present = widget.NewLabel("Choose the root first.")
	p.present.Wrapping = fyne.TextWrapWord
	p.lookAway = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	p.custodian = widget.NewSelect(nil, func(name string) {
		p.lookAway.SetText(fmt.Sprintf("Only %s should look at the screen now", name))
		p.inputs.Show()
	})
	p.custodian.PlaceHolder = "who enters a share now"
	p.typed = widget.NewEntry()
	p.typed.Password = true
	p.typed.TextStyle = fyne.TextStyle{Monospace: true}
	p.typed.SetPlaceHolder("custos-share … XXXXX-XXXXX-… (hidden as you type)")
	p.reveal = newHoldButton("Hold to show", func() { p.typed.Password = false; p.typed.Refresh() },
		func() { p.typed.Password = true; p.typed.Refresh() })
	p.add = widget.NewButtonWithIcon("Add this share", theme.ContentAddIcon(), p.addTyped)
	p.file = widget.NewEntry()
	p.file.SetPlaceHolder("share file: …/1-Cara-Cruz.share or .share.age")
	p.identity = widget.NewEntry()
	p.identity.SetPlaceHolder("age identity file, for a .share.age file")
	p.load = widget.NewButtonWithIcon("Load this share", theme.FileIcon(), p.loadFile)
	p.token = widget.NewEntry()
	p.token.SetPlaceHolder("your token's label")
	p.tokenPIN = pinEntry("your token's PIN")
	p.read = widget.NewButtonWithIcon("Read my share from my token", theme.LoginIcon(), p.readToken)
	p.cancel = widget.NewButtonWithIcon("Cancel and forget the shares", theme.CancelIcon(), func() {
		p.clear()
		p.msg.info("The shares entered were forgotten.")
	})
	typed := container.NewVBox(field("Share", p.typed), container.NewHBox(p.reveal, p.add))
	fromFilePanel := container.NewVBox(field("Share file", p.file), field("Identity file", p.identity), container.NewHBox(p.load))
	fromTokenPanel := container.NewVBox(field("Token label", p.token), field("Token PIN", p.tokenPIN), container.NewHBox(p.read))
	stack := container.NewStack(typed, fromFilePanel, fromTokenPanel)
	p.source = widget.NewRadioGroup([]string{fromTyped, fromFile, fromToken}, func(from string) {
		for i, o := range stack.Objects {
			if []string{fromTyped, fromFile, fromToken}[i] == from {
				o.Show()
			} else {
				o.Hide()
			}
		}
		stack.Refresh()
	})
	p.source.Horizontal = true
	p.source.SetSelected(fromTyped)
	p.inputs = container.NewVBox(p.lookAway, p.source, stack)
	p.inputs.Hide()
	return p
}

// object is the panel as the screen shows it.
func (p *sharePanel) object() fyne.CanvasObject {
	return container.NewVBox(field("Custodian", p.custodian), p.inputs, p.present, p.msg.object(), container.NewHBox(p.cancel))
}

// setRoot starts collecting for the root v states (nil: none); shares of another root are
// forgotten.
func (p *sharePanel) setRoot(v *ceremony.VerifiedQuorum) {
	p.clear()
	p.v = v
	if v == nil {
		return
	}
	p.q = v.Collector()
	p.custodian.Options = p.q.Params().Names()
	p.custodian.Refresh()
	st := v.Statement
	p.present.SetText(fmt.Sprintf("0 of %d shares present. Custodians: %s.\nCompare with your ceremony record: root %s (statement %d), fingerprint %s; module %s, SHA-256 %s.",
		p.q.Needed(), strings.Join(p.q.Params().Names(), ", "), st.Root, v.Seq, v.Fingerprint.Words(), st.Module.Path, st.Module.SHA256))
}

// clear zeroes every share entered and empties the fields.
func (p *sharePanel) clear() {
	if p.busy {
		p.clearWhenDone = true
		return
	}
	if p.q != nil {
		p.q.Wipe()
	}
	p.typed.SetText("")
	p.tokenPIN.SetText("")
	p.custodian.ClearSelected()
	p.lookAway.SetText("")
	p.inputs.Hide()
	if p.q != nil {
		p.present.SetText(fmt.Sprintf("0 of %d shares present. Custodians: %s", p.q.Needed(), strings.Join(p.q.Params().Names(), ", ")))
	}
	p.changed()
}

// ready says whether a quorum of shares is present.
func (p *sharePanel) ready() bool { return p.q != nil && p.q.Present() >= p.q.Needed() }

// setBusy stops the shares from changing while an operation uses them.
func (p *sharePanel) setBusy(busy bool) {
	p.busy = busy
	for _, b := range []*widget.Button{p.add, p.load, p.read, p.cancel} {
		if busy {
			b.Disable()
		} else {
			b.Enable()
		}
	}
	if !busy && p.clearWhenDone {
		p.clearWhenDone = false
		p.clear()
	}
}

// accept adds a share's text; the field it came from is cleared by the caller whatever the
// outcome, and a refused share is never echoed (the collector's errors name a group, never
// its characters).
func (p *sharePanel) accept(text []byte, from string) {
	defer secret.Zero(text)
	if p.q == nil {
		p.msg.errorf(errors.New("choose the root first"))
		return
	}
	n, err := p.q.Add(string(text))
	if err != nil {
		p.msg.errorf(fmt.Errorf("%s: %w; enter it again", from, err))
		return
	}
	p.present.SetText(fmt.Sprintf("%d of %d shares present: %s", p.q.Present(), p.q.Needed(), strings.Join(p.q.Holders(), ", ")))
	p.msg.ok(fmt.Sprintf("Share #%d accepted: it matches its commitment. Next custodian.", n))
	p.custodian.ClearSelected()
	p.lookAway.SetText("")
	p.inputs.Hide()
	p.changed()
}

func (p *sharePanel) changed() {
	if p.onChange != nil {
		p.onChange()
	}
}

func (p *sharePanel) addTyped() {
	if p.busy {
		return
	}
	text := []byte(p.typed.Text)
	p.typed.SetText("")
	p.typed.Password = true
	p.typed.Refresh()
	p.accept(text, "the share typed")
}

// loadFile reads a share file, decrypting a .share.age one with the identity file, off the UI
// goroutine.
func (p *sharePanel) loadFile() {
	if p.busy || p.v == nil {
		return
	}
	src, idPath := ceremony.ShareSource{File: strings.TrimSpace(p.file.Text)}, strings.TrimSpace(p.identity.Text)
	p.readSource(src, func() (ceremony.ShareKeys, error) {
		if idPath == "" {
			return ceremony.ShareKeys{}, nil
		}
		ids, err := ceremony.ParseIdentityFile(idPath, nil)
		return ceremony.ShareKeys{Identities: ids}, err
	})
}

// readToken reads the custodian's share from their token with the PIN they typed.
func (p *sharePanel) readToken() {
	if p.busy || p.v == nil {
		return
	}
	label, pin := strings.TrimSpace(p.token.Text), takePIN(p.tokenPIN)
	p.readSource(ceremony.ShareSource{Token: label}, func() (ceremony.ShareKeys, error) {
		return ceremony.ShareKeys{PIN: func(context.Context, string) ([]byte, error) {
			return append([]byte(nil), pin...), nil
		}}, nil
	}, pin)
}

// readSource reads one share off the UI goroutine, then accepts it on it; pins are zeroed
// after.
func (p *sharePanel) readSource(src ceremony.ShareSource, keys func() (ceremony.ShareKeys, error), pins ...[]byte) {
	v, env := p.v, p.s.runEnv()
	p.setBusy(true)
	p.msg.info("Reading the share…")
	var text []byte
	p.s.background(func() error {
		defer zeroAll(pins...)
		k, err := keys()
		if err != nil {
			return err
		}
		text, err = v.ReadShare(p.s.ctx, env, src, k)
		return err
	}, func(err error) {
		p.setBusy(false)
		if err != nil {
			p.msg.errorf(fmt.Errorf("%s: %w", src, err))
			return
		}
		p.accept(text, src.String())
	})
}

// holdButton does something while it is held down, and undoes it when it is released (or the
// pointer leaves it): a share is shown only while its custodian holds the button.
type holdButton struct {
	widget.Button
	press, release func()
	held           bool
}

func newHoldButton(label string, press, release func()) *holdButton {
	b := &holdButton{press: press, release: release}
	b.Text = label
	b.Icon = theme.VisibilityIcon()
	b.ExtendBaseWidget(b)
	return b
}

// Tapped alone shows nothing: the share is shown only while the button is held.
func (b *holdButton) Tapped(*fyne.PointEvent) {}

func (b *holdButton) MouseDown(*desktop.MouseEvent) {
	b.held = true
	b.press()
}

func (b *holdButton) MouseUp(*desktop.MouseEvent) { b.letGo() }

func (b *holdButton) MouseOut() {
	b.Button.MouseOut()
	b.letGo()
}

func (b *holdButton) letGo() {
	if b.held {
		b.held = false
		b.release()
	}
}
