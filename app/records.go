package app

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/internal/inputfile"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
)

type recordFile struct {
	path, name, kind, date string
	outcome                string // from the run that wrote it, as the registry has it
}

// recordsScreen lists the workspace's signed records (the folder and the registry are read
// off the UI goroutine), verifies one with the same checks as `custos verify`, and opens it in
// the system's PDF viewer.
func (s *shell) recordsScreen() fyne.CanvasObject {
	var files []recordFile
	checks := container.NewVBox()
	msg := newNotice()
	opener := newRecordOpener(s.background)
	var selected *recordFile
	cells := map[fyne.CanvasObject][]*widget.Label{} // each list row's labels
	list := widget.NewList(func() int { return len(files) },
		func() fyne.CanvasObject {
			row, labels := recordRow()
			cells[row] = labels
			return row
		},
		func(id widget.ListItemID, o fyne.CanvasObject) {
			f := files[id]
			for i, text := range []string{f.date, f.kind, f.outcome, f.name} {
				cells[o][i].SetText(text)
			}
		})
	var loaded []recordFile
	s.background(func() error { loaded = s.recordFiles(); return nil }, func(error) {
		files = loaded
		list.Refresh()
	})
	verify := widget.NewButtonWithIcon("Verify", theme.ConfirmIcon(), nil)
	verify.Disable()
	list.OnSelected = func(id widget.ListItemID) {
		selected = &files[id]
		verify.Enable()
		opener.show(selected.path)
		checks.Objects = nil
		checks.Refresh()
	}
	verify.OnTapped = func() {
		f := selected
		if f == nil {
			return
		}
		msg.info("Verifying " + f.name + "…")
		var rep *record.Report
		s.background(func() error {
			data, err := inputfile.Read(s.ctx, "record", f.path, record.MaxFileSize)
			if err != nil {
				return err
			}
			rep = record.Verify(data, s.workspaceRoots())
			return nil
		}, func(err error) {
			if err != nil {
				msg.errorf(err)
				return
			}
			checks.Objects = nil
			for _, c := range rep.Checks {
				mark, imp := "PASS", widget.SuccessImportance
				if !c.OK {
					mark, imp = "FAIL", widget.DangerImportance
				}
				l := widget.NewLabel(fmt.Sprintf("%s  %s: %s", mark, c.Name, c.Detail))
				l.Wrapping = fyne.TextWrapWord
				l.Importance = imp
				checks.Add(l)
			}
			checks.Refresh()
			if rep.OK() {
				msg.ok(f.name + " verifies.")
			} else {
				msg.errorf(fmt.Errorf("%s does not verify", f.name))
			}
		})
	}
	intro := widget.NewLabel(fmt.Sprintf("Signed records in %s. Verifying checks the signature over the whole file, its chain to this workspace's root, the signer's document-signing usage, and the journal inside the record.", s.ws.Path("records")))
	intro.Wrapping = fyne.TextWrapWord
	return container.NewBorder(container.NewVBox(heading("Records"), intro), nil, nil, nil,
		container.NewVSplit(list, container.NewVScroll(container.NewVBox(container.NewHBox(verify), opener.object(), msg.object(), checks))))
}

func (s *shell) recordFiles() []recordFile {
	paths, _ := filepath.Glob(s.ws.Path("records", "*.pdf"))
	runs := map[string]registry.Run{}
	if byPath, err := s.reg.RecordedRuns(s.ctx); err == nil {
		for p, r := range byPath {
			runs[filepath.Base(p)] = r
		}
	}
	var out []recordFile
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			continue
		}
		f := recordFile{path: p, name: filepath.Base(p), date: info.ModTime().UTC().Format("2006-01-02 15:04")}
		if r, ok := runs[f.name]; ok {
			f.kind, f.outcome = s.describeRun(r)
		} else {
			f.kind, f.outcome = "?", "not written by this workspace's runs"
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].date > out[j].date })
	return out
}

// recordRow is one line of the records list: date, kind and outcome in columns of their own
// width, then the file name. It returns the row and its labels, in that order.
func recordRow() (fyne.CanvasObject, []*widget.Label) {
	var labels []*widget.Label
	label := func() *widget.Label {
		l := widget.NewLabel("")
		l.Truncation = fyne.TextTruncateEllipsis
		labels = append(labels, l)
		return l
	}
	cell := func(width float32) fyne.CanvasObject {
		l := label()
		return container.NewGridWrap(fyne.NewSize(width, l.MinSize().Height), l)
	}
	columns := container.NewHBox(cell(170), cell(170), cell(330))
	return container.NewBorder(nil, nil, columns, nil, label()), labels
}

// describeRun says what kind of run wrote a record and how it ended.
func (s *shell) describeRun(r registry.Run) (kind, outcome string) {
	switch {
	case r.Kind == registry.RunCeremony:
		return "ceremony " + r.Operation, fmt.Sprintf("%s (root %s)", r.Status, r.Subject)
	case r.Operation == "fleet":
		n, err := s.reg.RunOutcomes(s.ctx, r.ID)
		if err != nil {
			return "fleet", string(r.Status)
		}
		outcome = fmt.Sprintf("%d decommissioned", n[registry.OutcomeDecommissioned])
		if a := n[registry.OutcomeAlreadyDecommissioned]; a > 0 {
			outcome += fmt.Sprintf(", %d already", a)
		}
		if f := n[registry.OutcomeFailed]; f > 0 {
			outcome += fmt.Sprintf(", %d FAILED", f)
		}
		return "fleet", outcome
	default:
		return "decommission", fmt.Sprintf("%s decommissioned", r.Subject)
	}
}

// workspaceRoots are the root certificates the registry knows.
func (s *shell) workspaceRoots() []*x509.Certificate {
	issuers, err := s.reg.Issuers(s.ctx)
	if err != nil {
		return nil
	}
	var roots []*x509.Certificate
	for _, i := range issuers {
		if i.Kind == registry.IssuerRoot {
			if c, err := x509.ParseCertificate(i.Certificate); err == nil {
				roots = append(roots, c)
			}
		}
	}
	return roots
}
