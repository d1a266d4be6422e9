package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/decommission"
	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/testhsm"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/quorum"
	"github.com/custos-pki/custos/run"
)

// wrongPINError is what SoftHSM2 says to a wrong user PIN, through the hsm package.
func wrongPINError(t *testing.T) error {
	env := testhsm.New(t)
	env.InitToken(t, "gui-ops", "so-pin-1234", "user-pin-1234")
	m := env.Open(t)
	sess, err := m.OpenSession(context.Background(), "gui-ops")
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	err = sess.Login(context.Background(), hsm.User, []byte("not-the-pin"))
	if err == nil {
		t.Fatal("a wrong PIN logged in")
	}
	return err
}

func TestExplainSaysWhatAPersonCanDo(t *testing.T) {
	limit := &pki.LimitError{What: "the CRL's nextUpdate", Value: time.Date(2031, 5, 1, 0, 0, 0, 0, time.UTC),
		Limit: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), Bound: `the notAfter of issuer "Devices CA"`, Advice: "choose fewer days"}
	cases := []struct {
		name     string
		err      error
		want     []string
		mustNot  []string
		fullStop bool
	}{
		{"wrong PIN from SoftHSM2", fmt.Errorf("decommission: identify: %w", wrongPINError(t)),
			[]string{"The PIN for token “gui-ops” is wrong", "type it again"}, []string{"CKR_", "hsm:", "decommission:"}, true},
		{"token missing", &hsm.Error{Op: "open session", Token: "root-1", Err: hsm.ErrTokenNotFound},
			[]string{"Token “root-1” is not connected", "Settings"}, []string{"hsm:"}, true},
		{"field", fmt.Errorf("decommission: %w", run.NewFieldError("Witness", "a witness must be named for a physical destruction")),
			[]string{"A witness must be named", "“Witness”"}, []string{"(--", "decommission:"}, true},
		{"manifest", fmt.Errorf("fleet: %w", decommission.ManifestError{{Line: 3, Problem: "unknown device"}, {Line: 5, Problem: "bad reason"}}),
			[]string{"2 lines of the manifest cannot be used", "Nothing was changed"}, []string{"["}, true},
		{"share group", &quorum.ShareError{Group: 4, Groups: 12, Msg: "checksum does not match"},
			[]string{"Group 4 of 12", "type that group again"}, nil, true},
		{"limit", fmt.Errorf("crl: %w", limit),
			[]string{"The CRL's nextUpdate would be 1 May 2031", "1 January 2030", "Choose fewer days", "Nothing was signed"}, []string{"crl:"}, true},
		{"cannot resume", fmt.Errorf("%w: ceremony r-1: the quorum secret is gone", run.ErrCannotResume),
			[]string{"cannot continue where it stopped", "quorum secret is gone", "Abort it"}, nil, true},
		{"field behind a workflow's prefix", fmt.Errorf("%w", run.NewFieldError("OpsPIN", "root ceremony: the operator PIN does not open operations token %q", "ops")),
			[]string{"The operator PIN does not open", "“Operator PIN”"}, []string{"root ceremony:", "Root the"}, true},
		{"cancelled", fmt.Errorf("fleet: %w", context.Canceled), []string{"Cancelled"}, nil, true},
		{"plan key", errors.New("plan.yaml: plan: custodians[2].deliver: token:ops is the operations token"),
			[]string{"custodians[2].deliver: token:ops"}, []string{"plan: "}, true},
		{"programmer formatting", errors.New("registry: destroyed [1] keys (--name) (CKR_DEVICE_ERROR) []"),
			[]string{"Destroyed 1 keys"}, []string{"[", "]", "--name", "CKR_", "registry:"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := explain(c.err)
			for _, w := range c.want {
				if !strings.Contains(strings.ToLower(got), strings.ToLower(w)) {
					t.Errorf("explain = %q, want it to say %q", got, w)
				}
			}
			for _, w := range c.mustNot {
				if strings.Contains(got, w) {
					t.Errorf("explain = %q, must not show %q", got, w)
				}
			}
			if c.fullStop && !strings.HasSuffix(got, ".") {
				t.Errorf("explain = %q, not a sentence", got)
			}
		})
	}
}

func TestNoticeKeepsDetailsUnderAnExpander(t *testing.T) {
	test.NewTempApp(t)
	n := newNotice()
	w := test.NewTempWindow(t, n.object())
	err := fmt.Errorf("decommission: identify: %w", &hsm.Error{Op: "log in as user", Token: "dev-1", Code: 0xA0, Err: hsm.ErrPINIncorrect})
	n.errorf(err)
	if n.text() != explain(err) || n.summary.Importance != widget.DangerImportance {
		t.Errorf("summary %q (%v)", n.text(), n.summary.Importance)
	}
	if !n.expand.Visible() || n.expand.Items[0].Title != "Details" || n.expand.Items[0].Open {
		t.Error("the details are not under a closed Details expander")
	}
	if n.details.Text != err.Error() {
		t.Errorf("details %q, want the error's full text", n.details.Text)
	}
	n.ok("done")
	if n.expand.Visible() || n.text() != "done" {
		t.Error("a result still shows the last error's details")
	}
	_ = w
}

// A 2000-character error wraps inside a 1024x768 window instead of growing it.
func TestLongErrorWrapsInsideTheWindow(t *testing.T) {
	test.NewTempApp(t)
	n := newNotice()
	w := test.NewTempWindow(t, fyne.NewContainerWithoutLayout())
	w.SetContent(n.object())
	w.Resize(fyne.NewSize(1024, 768))
	long := strings.Repeat("the token at /var/lib/custos/very/long/path refused ", 40)[:2000]
	n.errorf(errors.New(long))
	n.expand.Open(0)
	if got := w.Canvas().Size(); got.Width > 1024 || got.Height > 768 {
		t.Errorf("the window grew to %v", got)
	}
	if min := n.object().MinSize(); min.Width > 1024 {
		t.Errorf("the error needs %v wide", min)
	}
}

func TestEnterPressesTheDefaultButton(t *testing.T) {
	test.NewTempApp(t)
	pressed := 0
	b := widget.NewButton("Go", func() { pressed++ })
	e := widget.NewEntry()
	w := test.NewTempWindow(t, e)
	defaultButton(b, e)
	w.Canvas().Focus(e)
	test.Type(e, "x")
	e.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	if pressed != 1 {
		t.Fatalf("Enter pressed the button %d times", pressed)
	}
	b.Disable()
	e.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	if pressed != 1 {
		t.Error("Enter pressed a disabled button")
	}
}

func TestConfirmTypedNeedsTheExactSerial(t *testing.T) {
	test.NewTempApp(t)
	w := test.NewTempWindow(t, widget.NewLabel("screen"))
	w.Resize(fyne.NewSize(1024, 768))
	acted := 0
	c := confirmTyped(w, "Decommission", "The keys of device SN-0042 are erased.", "SN-0042", func() { acted++ })
	if !c.confirm.Disabled() {
		t.Fatal("confirm enabled before the serial is typed")
	}
	c.entry.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	test.Type(c.entry, "SN-004")
	c.entry.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	if acted != 0 || !c.confirm.Disabled() {
		t.Fatal("a partial serial confirmed")
	}
	test.Type(c.entry, "2")
	test.Tap(c.confirm)
	if acted != 1 {
		t.Fatalf("acted %d times after the serial was typed", acted)
	}
	if w.Canvas().Overlays().Top() != nil {
		t.Error("the confirmation is still open")
	}
}

func TestRecordOpenerSaysWhereTheFileIs(t *testing.T) {
	test.NewTempApp(t)
	r := newRecordOpener(func(work func() error, done func(error)) { done(work()) })
	r.viewer = func(ctx context.Context, path string) error { return errors.New("xdg-open: no method available") }
	test.NewTempWindow(t, r.object())
	if r.object().Visible() {
		t.Error("shown before a record exists")
	}
	r.show("/ws/records/decommission-r1.pdf")
	if !strings.Contains(r.where.Text, "/ws/records/decommission-r1.pdf") {
		t.Errorf("where = %q", r.where.Text)
	}
	test.Tap(r.open)
	if !strings.Contains(r.where.Text, "No PDF viewer opened the record") || !strings.Contains(r.where.Text, "/ws/records/decommission-r1.pdf") {
		t.Errorf("after a failed open: %q", r.where.Text)
	}
	// The real opener on a workstation without xdg-open fails instead of doing nothing.
	t.Setenv("PATH", t.TempDir())
	if err := openWithDesktop(context.Background(), "/ws/records/decommission-r1.pdf"); err == nil {
		t.Error("opening without xdg-open reported success")
	}
}
