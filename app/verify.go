package app

import (
	"bufio"
	"bytes"
	"path/filepath"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/cli/audit"
	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/run"
	"github.com/custos-pki/custos/workspace"
)

// verifyScreen checks any signed PDF record, or a bare journal, against a root the auditor
// chooses: a root certificate of this workspace or any file. It runs custos-verify's own
// verify command in the process (cli/audit), so the window and the auditor's tool make the
// same checks and say the same PASS and FAIL.
type verifyScreen struct {
	s      *shell
	file   *widget.Entry
	root   *widget.Select
	verify *widget.Button
	checks *fyne.Container
	note   *notice
}

// otherRoot is the root choice that asks for a file.
const otherRoot = "Another root certificate file…"

func (s *shell) verifyScreen() fyne.CanvasObject {
	v := &verifyScreen{s: s, file: widget.NewEntry(), root: widget.NewSelect(nil, nil), checks: container.NewVBox(), note: newNotice()}
	v.file.SetPlaceHolder("a signed record (PDF) or a journal (.jsonl)")
	v.root.PlaceHolder = "choose the root to check against"
	v.root.OnChanged = v.onRoot
	v.verify = widget.NewButtonWithIcon("Verify", theme.ConfirmIcon(), v.onVerify)
	v.verify.Importance = widget.HighImportance
	defaultButton(v.verify, v.file)
	v.loadRoots()
	return v.layout()
}

func (v *verifyScreen) layout() fyne.CanvasObject {
	intro := wrapped("A record verifies when its signature covers the whole file, its signer chains to the root you choose with the document-signing usage, and the journal inside it is intact and is the one the record states. A bare journal is checked for its hash chain. These are the checks custos-verify makes on any computer.")
	chooseFile := widget.NewButton("Choose…", func() {
		dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
			if err == nil && r != nil {
				r.Close()
				v.file.SetText(r.URI().Path())
			}
		}, v.s.win).Show()
	})
	form := container.NewVBox(heading("Verify a record"), intro,
		field("Record or journal", container.NewBorder(nil, nil, nil, chooseFile, v.file)),
		field("Root", v.root), container.NewHBox(v.verify), v.note.object())
	return container.NewBorder(form, nil, nil, nil, container.NewVScroll(container.NewPadded(v.checks)))
}

// loadRoots offers the workspace's root certificates, found off the UI goroutine.
func (v *verifyScreen) loadRoots() {
	var found []string
	v.s.background(func() error {
		found, _ = filepath.Glob(v.s.ws.Path(workspace.CertsDir, "*-root.pem"))
		return nil
	}, func(error) {
		v.root.Options = append(found, otherRoot)
		if len(found) == 1 {
			v.root.SetSelected(found[0])
		}
		v.root.Refresh()
	})
}

// onRoot asks for a file when the auditor brings their own root.
func (v *verifyScreen) onRoot(choice string) {
	if choice != otherRoot {
		return
	}
	dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
		if err != nil || r == nil {
			v.root.ClearSelected()
			return
		}
		r.Close()
		path := r.URI().Path()
		v.root.Options = append([]string{path}, v.root.Options...)
		v.root.SetSelected(path)
	}, v.s.win).Show()
}

// onVerify runs the auditor's verify off the UI goroutine and shows each check.
func (v *verifyScreen) onVerify() {
	file, root := strings.TrimSpace(v.file.Text), v.root.Selected
	if file == "" {
		v.note.errorf(run.NewFieldError("Record", "choose the record or journal to verify"))
		return
	}
	args := []string{"verify", "--workspace", v.s.ws.Dir}
	if root != "" && root != otherRoot {
		args = append(args, "--root", root)
	}
	args = append(args, file)
	v.verify.Disable()
	v.note.info("Verifying " + filepath.Base(file) + "…")
	var out, errOut bytes.Buffer
	var status int
	v.s.background(func() error {
		status = audit.Program().Run(v.s.ctx, args, command.Streams{Out: &out, Err: &errOut})
		return nil
	}, func(error) {
		v.verify.Enable()
		v.show(file, status, out.String(), errOut.String())
	})
}

// show lists the checks the verify printed, PASS in green and FAIL in red, and its verdict.
func (v *verifyScreen) show(file string, status int, out, errOut string) {
	v.checks.Objects = nil
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		l := wrapped(line)
		switch {
		case strings.HasPrefix(line, "PASS"):
			l.Importance = widget.SuccessImportance
		case strings.HasPrefix(line, "FAIL"):
			l.Importance = widget.DangerImportance
		}
		v.checks.Add(l)
	}
	v.checks.Refresh()
	switch status {
	case command.ExitOK:
		v.note.ok(filepath.Base(file) + " verifies: every check passed.")
	case command.ExitFail:
		v.note.errorf(verifyError{summary: filepath.Base(file) + " does not verify: see the checks marked FAIL.", text: errOut})
	default:
		v.note.errorf(verifyError{summary: plainText(verifyMessage(errOut)), text: errOut})
	}
}

// verifyMessage is the verify's own error without its command-line framing.
func verifyMessage(errOut string) string {
	msg := strings.TrimSpace(errOut)
	msg = strings.TrimPrefix(msg, "custos-verify verify: ")
	if i := strings.Index(msg, " (run 'custos-verify"); i > 0 {
		msg = msg[:i]
	}
	return strings.ReplaceAll(msg, "with --root", "under Root")
}

// verifyError is a verify that did not pass: what to tell the auditor, and what the
// command said, for Details.
type verifyError struct{ summary, text string }

func (e verifyError) Error() string { return strings.TrimSpace(e.text) }

// Explain is what the screen says of it.
func (e verifyError) Explain() string { return e.summary }
