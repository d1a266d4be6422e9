package app

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/keyalg"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/quorum"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
)

// Quorum operations the window offers.
const (
	opIssueCA = "Issue an issuing CA"
	opCRL     = "Sign a root CRL"
	opRestore = "Restore the root into a new token"
	opDestroy = "Destroy the root (end of the CA's life)"
	opReshare = "Re-share to new custodians (every token that holds the root gets the new PINs)"
)

// quorumScreen runs an operation under quorum: the custodians enter their shares one after
// another, each checked against its commitment as it is entered, then the operation runs.
func (s *shell) quorumScreen() fyne.CanvasObject {
	ctx := s.ctx
	var roots []string
	if issuers, err := s.reg.Issuers(ctx); err == nil {
		for _, i := range issuers {
			if i.Kind == registry.IssuerRoot && i.Status == registry.StatusActive {
				roots = append(roots, i.ID)
			}
		}
	}
	msg := newNotice()
	outer := container.NewStack()         // the form, or a re-share's new shares
	var content fyne.CanvasObject = outer // the screen, kept while an operation is under way
	start := widget.NewButtonWithIcon("Run the operation", theme.MediaPlayIcon(), nil)
	start.Importance = widget.HighImportance
	start.Disable()
	shares := newSharePanel(s, nil)
	shares.onChange = func() {
		if shares.ready() && !shares.busy {
			start.Enable()
		} else {
			start.Disable()
		}
	}
	// The shares entered are zeroed when the screen is left.
	s.quorumShares, s.leave = shares, shares.clear
	rootSel := widget.NewSelect(roots, func(id string) {
		v, err := ceremony.VerifyQuorum(ctx, s.reg, id)
		if err != nil {
			shares.setRoot(nil)
			msg.errorf(err)
			return
		}
		shares.setRoot(v)
		msg.info("")
	})
	op := widget.NewRadioGroup([]string{opIssueCA, opCRL, opReshare, opRestore, opDestroy}, nil)
	op.SetSelected(opIssueCA)
	name := widget.NewEntry()
	name.SetPlaceHolder("e.g. Acme Devices CA 1")
	validity := widget.NewEntry()
	validity.SetPlaceHolder("years the issuing CA is valid (empty: 10)")
	var algs []string
	for _, a := range keyalg.All() {
		algs = append(algs, string(a))
	}
	alg := widget.NewSelect(algs, nil)
	alg.PlaceHolder = "key algorithm (empty: ecdsa-p384)"
	revoke := widget.NewEntry()
	revoke.SetPlaceHolder("serial of an issuing CA to revoke (optional)")
	var reasons []string
	for _, r := range ceremony.RootCRLReasons() {
		reasons = append(reasons, r.String())
	}
	reason := widget.NewSelect(reasons, nil)
	reason.SetSelected(reasons[0])
	backup := widget.NewEntry()
	backup.SetPlaceHolder("backup/<root>-epochN.wrapped")
	token := widget.NewEntry()
	token.SetPlaceHolder("label for the new token")
	sure := widget.NewCheck("I understand the root key will be destroyed and cannot be recovered", nil)
	custodians := widget.NewEntry()
	custodians.SetPlaceHolder("new custodians, comma-separated")
	threshold := widget.NewEntry()
	threshold.SetPlaceHolder("shares needed from now on, e.g. 3")
	params := container.NewStack()
	showParams := func(o string) {
		switch o {
		case opIssueCA:
			params.Objects = []fyne.CanvasObject{container.NewVBox(field("Issuing CA name", name),
				field("Validity (years)", validity), field("Key algorithm", alg))}
		case opCRL:
			params.Objects = []fyne.CanvasObject{container.NewVBox(field("Revoke", revoke), field("Reason", reason))}
		case opRestore:
			params.Objects = []fyne.CanvasObject{container.NewVBox(field("Backup file", backup), field("New token", token))}
		case opDestroy:
			params.Objects = []fyne.CanvasObject{sure}
		case opReshare:
			params.Objects = []fyne.CanvasObject{container.NewVBox(field("New custodians", custodians), field("Threshold", threshold))}
		}
		params.Refresh()
	}
	op.OnChanged = showParams
	showParams(opIssueCA)
	pin := pinEntry("operator PIN (signs the record)")
	progress := widget.NewProgressBarInfinite()
	progress.Hide()
	var runOp func()
	start.OnTapped = func() {
		if !shares.ready() || shares.busy {
			return
		}
		if op.Selected != opDestroy {
			runOp()
			return
		}
		if !sure.Checked {
			msg.errorf(errors.New("tick the box to confirm the destruction"))
			return
		}
		confirmTyped(s.win, "Destroy root "+rootSel.Selected, "The root key of "+rootSel.Selected+" is destroyed on the HSM, with its backups' use: nothing it signed can be signed again, and it cannot be recovered.", rootSel.Selected, runOp)
	}
	runOp = func() {
		opsPIN := takePIN(pin)
		env := s.runEnv()
		collected, what := shares.q, op.Selected
		shares.setBusy(true)
		start.Disable()
		s.keep("quorum", "A quorum operation", rootSel.Selected, content)
		progress.Show()
		progress.Start()
		msg.info("Working with the HSM…")
		var result string
		s.background(func() error {
			defer zeroAll(opsPIN)
			switch what {
			case opIssueCA:
				req, err := issueCARequest(name.Text, validity.Text, alg.Selected)
				if err != nil {
					return err
				}
				req.OpsPIN = opsPIN
				res, err := ceremony.IssueCA(ctx, env, collected, req)
				if err != nil {
					return err
				}
				result = fmt.Sprintf("Issuing CA %s made: %s\nCertificate %s", res.IssuerID, res.Certificate.Subject.CommonName, res.Path)
			case opCRL:
				req := ceremony.RootCRLRequest{Revoke: strings.TrimSpace(revoke.Text), OpsPIN: opsPIN}
				if req.Revoke != "" {
					r, err := pki.ParseReason(reason.Selected)
					if err != nil {
						return err
					}
					req.Reason = r
				}
				res, err := ceremony.RootCRL(ctx, env, collected, req)
				if err != nil {
					return err
				}
				result = fmt.Sprintf("Root CRL %d signed: %d entries\n%s", res.CRL.Number, res.CRL.Entries, res.CRL.DERPath)
			case opRestore:
				res, err := ceremony.Restore(ctx, env, collected, ceremony.RestoreRequest{Backup: backup.Text, Token: token.Text, OpsPIN: opsPIN})
				if err != nil {
					return err
				}
				result = fmt.Sprintf("The root was restored into token %q, now a holder of the root; the restored key is the root certificate's and signs for it.", res.Token)
			case opDestroy:
				res, err := ceremony.Destroy(ctx, env, collected, opsPIN)
				if err != nil {
					return err
				}
				result = fmt.Sprintf("The root was destroyed: its key on %s, none remain; its issuing CAs signed their last CRLs and their keys were destroyed; final root CRL %d.",
					strings.Join(res.Tokens, ", "), res.CRL.Number)
				if len(res.Outstanding) > 0 {
					result += "\nOutstanding, for people to destroy:\n- " + strings.Join(res.Outstanding, "\n- ")
				}
			case opReshare:
				res, err := s.reshare(collected, custodians.Text, threshold.Text, opsPIN, outer)
				if err != nil {
					return err
				}
				result = fmt.Sprintf("Re-shared: epoch %d. The new shares are with their custodians.\n%s", res.Epoch, strings.Join(res.Outcome(), "\n"))
			}
			return nil
		}, func(err error) {
			s.ended("quorum")
			progress.Stop()
			progress.Hide()
			shares.setBusy(false)
			if err != nil {
				// The shares stay, so a wrong CA name does not send the custodians back to
				// their safes; they are zeroed when the screen is left or cancelled.
				msg.errorf(err)
				msg.also("Correct it and run again, or cancel: the shares entered are kept.")
				shares.changed()
				return
			}
			shares.clear()
			shares.present.SetText("The operation is done and the shares were forgotten: enter them again for another operation.")
			msg.ok(result)
		})
	}
	intro := widget.NewLabel("Every use of the root needs a quorum of custodians. Each custodian in turn chooses their name and enters their share: typed (hidden unless they hold the button), from a share file, or from their own token. Each is checked at once against its commitment, and a mistyped group is named.")
	intro.Wrapping = fyne.TextWrapWord
	form := container.NewVScroll(container.NewPadded(container.NewVBox(
		heading("Quorum operations"), intro,
		field("Root", rootSel),
		heading2("Shares"), shares.object(),
		heading2("Operation"), op, params, field("Operator PIN", pin),
		container.NewBorder(nil, nil, start, nil, progress), msg.object())))
	outer.Objects = []fyne.CanvasObject{form}
	return content
}

// issueCARequest is the issuing CA the form asks for: its name, validity in years (empty for
// the workflow's default) and key algorithm (empty for the root's).
func issueCARequest(name, years, alg string) (ceremony.IssueCARequest, error) {
	req := ceremony.IssueCARequest{CommonName: name, Algorithm: keyalg.Algorithm(alg)}
	if y := strings.TrimSpace(years); y != "" {
		n, err := strconv.Atoi(y)
		if err != nil || n < 1 {
			return req, fmt.Errorf("the validity %q is not a whole number of years", y)
		}
		req.ValidityYears = n
	}
	return req, nil
}

// reshare runs a re-share, showing its confirmation and each new share to its custodian as
// the root ceremony does, in a view of its own in place of the form in outer (so nothing of
// it is below the fold), and the form again when it ends. It runs off the UI goroutine.
func (s *shell) reshare(q *quorum.Collector, names, threshold string, opsPIN []byte, outer *fyne.Container) (*ceremony.ReshareResult, error) {
	var custodians []string
	for _, n := range strings.Split(names, ",") {
		if n = strings.TrimSpace(n); n != "" {
			custodians = append(custodians, n)
		}
	}
	m, err := strconv.Atoi(strings.TrimSpace(threshold))
	if err != nil {
		return nil, fmt.Errorf("threshold %q is not a number", threshold)
	}
	rq, err := s.reg.Quorum(s.ctx, q.Params().CeremonyID)
	if err != nil {
		return nil, err
	}
	plan, err := ceremony.ParsePlan(rq.Plan)
	if err != nil {
		return nil, err
	}
	w := &ceremonyScreen{shell: s, plan: plan, states: map[string]record.Status{}, results: map[string]stepResult{},
		panel: container.NewStack()}
	w.scroll = container.NewVScroll(container.NewPadded(w.panel))
	form := outer.Objects
	s.do(func() {
		outer.Objects = []fyne.CanvasObject{container.NewBorder(heading2("Re-share to "+strings.Join(custodians, ", ")), nil, nil, nil, w.scroll)}
		outer.Refresh()
	})
	defer s.do(func() {
		outer.Objects = form
		outer.Refresh()
	})
	people := newGUIParticipants(w, "")
	defer people.wipe()
	return ceremony.Reshare(s.ctx, s.runEnv(), q, ceremony.ReshareRequest{Custodians: custodians, Threshold: m, OpsPIN: opsPIN}, people)
}
