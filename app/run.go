package app

import (
	"context"
	"fmt"
	"image/color"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/decommission"
	"github.com/custos-pki/custos/internal/secret"
	"github.com/custos-pki/custos/run"
)

// background runs work off the UI goroutine — HSM and disk work must never freeze the window —
// and then done on the UI goroutine with work's error.
func (s *shell) background(work func() error, done func(error)) {
	go func() {
		err := work()
		s.do(func() { done(err) })
	}()
}

// do runs f on the UI goroutine (fyne.Do) and waits for it. The lock serialises updates from
// background work with each other and with headless tests, whose driver runs fyne.Do in place.
func (s *shell) do(f func()) {
	fyne.DoAndWait(func() {
		s.uiMu.Lock()
		defer s.uiMu.Unlock()
		f()
	})
}

// runEnv is the environment the workflows run in from the window. The module is the one
// chosen when Custos was started (--module), if any; otherwise each workflow takes the module
// its plan or quorum names, or the one the Settings screen saved.
func (s *shell) runEnv() run.Env {
	return run.Env{Workspace: s.ws, Registry: s.reg, Module: s.cfg.Module}
}

// handlers are the kinds of stopped runs the window resumes and aborts.
func handlers() run.Handlers {
	return run.Handlers{ceremony.Handler(), decommission.Handler(), decommission.RekeyHandler()}
}

// pinEntry is a password entry for a PIN; its text is read once and cleared by takePIN.
func pinEntry(placeholder string) *widget.Entry {
	e := widget.NewPasswordEntry()
	e.SetPlaceHolder(placeholder)
	return e
}

// takePIN copies a PIN out of its entry and clears the entry, so it stays on screen no longer
// than needed. The caller zeroes the result.
func takePIN(e *widget.Entry) []byte {
	pin := []byte(e.Text)
	e.SetText("")
	return pin
}

// fieldLabels are the screens' names for the workflow request fields a person fills in.
var fieldLabels = map[string]string{
	"CommonName": "Issuing CA name", "Custodians": "New custodians", "DevicePIN": "Device PIN",
	"OpsPIN": "Operator PIN", "Reason": "Revocation reason", "Revoke": "Revoke", "Serial": "Device serial",
	"Technician": "Technician", "Threshold": "Threshold", "Token": "New token", "Backup": "Backup file",
	"Witness": "Witness", "Validator": "Validator", "Destination": "Media destination", "UDI": "UDI",
	"Module":     "PKCS#11 module, under Settings",
	"Identities": "Identity file", "Shares": "Shares", "At": "At", "Find": "Who had",
	"Algorithm": "New key", "Issuer": "Issuing CA",
}

// field is a labelled form row.
func field(label string, w fyne.CanvasObject) fyne.CanvasObject {
	l := widget.NewLabelWithStyle(label, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	return container.NewBorder(nil, nil, container.NewGridWrap(fyne.NewSize(230, 40), l), nil, w)
}

// mono is large monospace text that cannot be selected or copied: shares are shown this way.
func mono(text string, size float32) *canvas.Text {
	t := canvas.NewText(text, theme.Color(theme.ColorNameForeground))
	t.TextStyle = fyne.TextStyle{Monospace: true}
	t.TextSize = size
	return t
}

// stateColor is the colour of a group or step state.
func stateColor(ok bool) color.Color {
	if ok {
		return theme.Color(theme.ColorNameSuccess)
	}
	return theme.Color(theme.ColorNameError)
}

// withCancel is a context the screen cancels when the person cancels or the window closes.
func (s *shell) withCancel() (context.Context, context.CancelFunc) { return context.WithCancel(s.ctx) }

// zeroAll zeroes PINs taken from entries.
func zeroAll(pins ...[]byte) { secret.ZeroAll(pins...) }

// wholeNumber reads a count a person typed (years, days, bytes): a whole number above zero.
func wholeNumber(s string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	return n, err == nil && n > 0
}

// validityYears reads a certificate's validity in years; empty is 0, the workflow's default.
func validityYears(text string) (int, error) {
	if strings.TrimSpace(text) == "" {
		return 0, nil
	}
	n, ok := wholeNumber(text)
	if !ok {
		return 0, run.NewFieldError("ValidityYears", "the validity is a whole number of years, such as 10, or empty for 10")
	}
	return n, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
