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
type recordsScreen struct {
	s        *shell
	files    []recordFile
	selected *recordFile
	list     *widget.List
	cells    map[fyne.CanvasObject][]*widget.Label // each list row's labels
	verify   *widget.Button
	opener   *recordOpener
	note     *notice
	checks   *fyne.Container // the verification's checks, PASS or FAIL each
}

func (s *shell) recordsScreen() fyne.CanvasObject { return newRecordsScreen(s).object() }

func newRecordsScreen(s *shell) *recordsScreen {
	r := &recordsScreen{s: s, cells: map[fyne.CanvasObject][]*widget.Label{}, opener: newRecordOpener(s.background),
		note: newNotice(), checks: container.NewVBox()}
	r.list = widget.NewList(func() int { return len(r.files) }, r.newRow, r.updateRow)
	r.list.OnSelected = r.onSelected
	r.verify = widget.NewButtonWithIcon("Verify", theme.ConfirmIcon(), r.onVerify)
	r.verify.Disable()
	r.load()
	return r
}

func (r *recordsScreen) object() fyne.CanvasObject {
	intro := wrapped(fmt.Sprintf("Signed records in %s. Verifying checks the signature over the whole file, its chain to this workspace's root, the signer's document-signing usage, and the journal inside the record.", r.s.ws.Path("records")))
	detail := container.NewVScroll(container.NewVBox(container.NewHBox(r.verify), r.opener.object(), r.note.object(), r.checks))
	return container.NewBorder(container.NewVBox(heading("Records"), intro), nil, nil, nil, container.NewVSplit(r.list, detail))
}

// load reads the records folder and the registry off the UI goroutine.
func (r *recordsScreen) load() {
	var loaded []recordFile
	r.s.background(func() error { loaded = r.s.recordFiles(); return nil }, func(error) {
		r.files = loaded
		r.list.Refresh()
	})
}

func (r *recordsScreen) newRow() fyne.CanvasObject {
	row, labels := recordRow()
	r.cells[row] = labels
	return row
}

func (r *recordsScreen) updateRow(id widget.ListItemID, o fyne.CanvasObject) {
	f := r.files[id]
	for i, text := range []string{f.date, f.kind, f.outcome, f.name} {
		r.cells[o][i].SetText(text)
	}
}

func (r *recordsScreen) onSelected(id widget.ListItemID) {
	r.selected = &r.files[id]
	r.verify.Enable()
	r.opener.show(r.selected.path)
	r.checks.Objects = nil
	r.checks.Refresh()
}

// onVerify reads and verifies the chosen record off the UI goroutine.
func (r *recordsScreen) onVerify() {
	f := r.selected
	if f == nil {
		return
	}
	r.note.info("Verifying " + f.name + "…")
	var rep *record.Report
	r.s.background(func() error {
		data, err := inputfile.Read(r.s.ctx, "record", f.path, record.MaxFileSize)
		if err != nil {
			return err
		}
		rep = record.Verify(data, r.s.workspaceRoots())
		return nil
	}, func(err error) {
		if err != nil {
			r.note.errorf(err)
			return
		}
		r.showReport(f, rep)
	})
}

// showReport lists each check of rep, PASS in green and FAIL in red.
func (r *recordsScreen) showReport(f *recordFile, rep *record.Report) {
	r.checks.Objects = nil
	for _, c := range rep.Checks {
		mark, imp := "PASS", widget.SuccessImportance
		if !c.OK {
			mark, imp = "FAIL", widget.DangerImportance
		}
		l := wrapped(fmt.Sprintf("%s  %s: %s", mark, c.Name, c.Detail))
		l.Importance = imp
		r.checks.Add(l)
	}
	r.checks.Refresh()
	if rep.OK() {
		r.note.ok(f.name + " verifies.")
	} else {
		r.note.errorf(fmt.Errorf("%s does not verify", f.name))
	}
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
	columns := container.NewHBox(cell(150), cell(150), cell(260)) // the file name keeps room at 1024x768
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
