package app

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/internal/testhsm"
	"github.com/custos-pki/custos/quorum"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

const testPlan = `id: gui-root
module: MODULE
operations_token: gui-ops
administrator: Ada Admin
witnesses: [Wes Witness]
custodians: [Cara Cruz, Zoë Ångström, 李雷]
threshold: 2
key: {algorithm: ecdsa-p256}
certificate: {common_name: GUI Root CA, organization: Acme Medical, country: US, validity_years: 20}
backup: true
`

// findAll returns every object of type T under o.
func findAll[T fyne.CanvasObject](o fyne.CanvasObject) []T {
	var out []T
	var walk func(fyne.CanvasObject)
	walk = func(o fyne.CanvasObject) {
		if o == nil || !o.Visible() {
			return
		}
		if v, ok := o.(T); ok {
			out = append(out, v)
		}
		switch w := o.(type) {
		case *fyne.Container:
			for _, c := range w.Objects {
				walk(c)
			}
		case fyne.Widget:
			for _, c := range test.WidgetRenderer(w).Objects() {
				walk(c)
			}
		}
	}
	walk(o)
	return out
}

// button returns the visible, enabled button whose text starts with prefix, or nil.
func button(o fyne.CanvasObject, prefix string) *widget.Button {
	for _, b := range findAll[*widget.Button](o) {
		if strings.HasPrefix(b.Text, prefix) && !b.Disabled() {
			return b
		}
	}
	return nil
}

// waitFor polls (on the UI goroutine) until find returns something.
var s0 *shell

func waitFor[T any](t *testing.T, what string, find func() (T, bool)) T {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var v T
		var ok bool
		onUI(func() { v, ok = find() })
		if ok {
			return v
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s0 != nil {
		onUI(func() { t.Logf("screen:\n%s", texts(s0.body)) })
	}
	t.Fatalf("timed out waiting for %s", what)
	var zero T
	return zero
}

// loadPlan types the plan's path and loads it, and waits for the plan to show.
func loadPlan(t *testing.T, s *shell, path string) {
	t.Helper()
	onUI(func() {
		e := entryWithPlaceholder(t, s, "the reviewed plan file, e.g. /media/ceremony/plan.yaml")
		e.SetText(path)
		test.Tap(button(s.body, "Load"))
	})
	waitFor(t, "the plan", func() (bool, bool) { return true, button(s.body, "Start the ceremony") != nil })
}

// startCeremony types the operator PIN and presses Start.
func startCeremony(t *testing.T, s *shell, pin string) {
	t.Helper()
	onUI(func() {
		test.Type(entryWithPlaceholder(t, s, "operator PIN of the operations token"), pin)
		test.Tap(button(s.body, "Start the ceremony"))
	})
}

// driveCeremony goes through the ceremony as its people would until it is complete
// ("done") or stops ("failed"); onConfirm sees each confirmation before it is given.
func driveCeremony(t *testing.T, s *shell, onConfirm func(screen string)) (string, int) {
	t.Helper()
	shares := 0
	for {
		action := waitFor(t, "the next thing to do", func() (string, bool) {
			switch {
			case strings.Contains(texts(s.body), "Ceremony complete"):
				return "done", true
			case strings.Contains(texts(s.body), "The ceremony stopped"):
				return "failed", true
			case button(s.body, "Confirmed: go ahead") != nil:
				return "confirm", true
			case button(s.body, "The result is right") != nil:
				return "result", true
			case button(s.body, "Acknowledged by") != nil:
				return "ack", true
			case button(s.body, "Reveal my share") != nil:
				return "reveal", true
			}
			return "", false
		})
		switch action {
		case "done", "failed":
			return action, shares
		case "confirm", "ack", "result":
			screen := textsOnUI(s)
			if strings.Contains(screen, "Sign the root certificate: check the result") {
				snapshot(t, s, "ceremony-step")
			}
			if onConfirm != nil {
				onConfirm(screen)
			}
			// The screen may have moved on since it was looked at: tap only what is there.
			onUI(func() {
				for _, label := range []string{"Confirmed: go ahead", "Acknowledged by", "The result is right"} {
					if b := button(s.body, label); b != nil {
						test.Tap(b)
					}
				}
			})
			time.Sleep(30 * time.Millisecond)
		case "reveal":
			deliverShare(t, s, shares)
			shares++
		}
	}
}

// deliverShare has custodian n take their share: the second has it written to a file on
// their own medium (the folder in CUSTOS_TEST_MEDIUM, when set), the third to their own
// token, the first reveals it, copies it and types it back.
func deliverShare(t *testing.T, s *shell, n int) {
	t.Helper()
	if medium := os.Getenv("CUSTOS_TEST_MEDIUM"); n == 1 && medium != "" {
		onUI(func() {
			entryWithPlaceholder(t, s, "a folder on your own medium").SetText(medium)
			test.Tap(button(s.body, "Write my share to a file instead"))
		})
		waitFor(t, "the share in its file", func() (bool, bool) {
			txt := texts(s.body)
			return true, strings.Contains(txt, "share is in") || strings.Contains(txt, "Share 3 of 3")
		})
		return
	}
	if n == 2 {
		waitFor(t, "the custodian tokens", func() (bool, bool) {
			sel := findAll[*widget.Select](s.body)
			return true, len(sel) > 0 && len(sel[len(sel)-1].Options) > 0
		})
		onUI(func() {
			sel := findAll[*widget.Select](s.body)
			sel[len(sel)-1].SetSelected("lei-token")
			entryWithPlaceholder(t, s, "your token's PIN").SetText("lei-pin-1234")
			b := button(s.body, "Write my share to my token instead")
			if b == nil {
				t.Fatalf("no write button:\n%s", texts(s.body))
			}
			test.Tap(b)
		})
		// The flow moves on by itself once the share is written and read back.
		waitFor(t, "the share on the token", func() (bool, bool) {
			return true, strings.Contains(texts(s.body), "share is on their token") || button(s.body, "Confirmed: go ahead") != nil || button(s.body, "The result is right") != nil
		})
		return
	}
	var groups []string
	onUI(func() {
		test.Tap(button(s.body, "Reveal my share"))
		if n == 0 {
			uiLock.Unlock()
			snapshot(t, s, "ceremony-share")
			uiLock.Lock()
		}
		for _, tx := range findAll[*canvas.Text](s.body) {
			if tx.TextSize == 34 {
				groups = append(groups, tx.Text)
			}
		}
		if !strings.Contains(texts(s.body), "should be looking at the screen") {
			t.Error("no warning that only the custodian may look")
		}
		test.Tap(button(s.body, "Hide"))
	})
	if len(groups) != quorum.ShareGroups {
		t.Fatalf("%d groups shown", len(groups))
	}
	onUI(func() {
		es := findAll[*widget.Entry](s.body)
		// A mistyped group is marked at once.
		wrong := []byte(groups[0])
		wrong[2] ^= 1
		test.Type(es[0], string(wrong))
		if button(s.body, "My share is typed back") != nil {
			t.Error("a wrong group was accepted")
		}
		if n == 0 {
			uiLock.Unlock()
			snapshot(t, s, "ceremony-typeback")
			uiLock.Lock()
		}
		es[0].SetText("")
		for i, g := range groups {
			// SetText, not Type: the screen moves the focus to the next group as each is
			// completed, and the test driver would type into both.
			es[i].SetText(g)
		}
		b := button(s.body, "My share is typed back")
		if b == nil {
			var got []string
			for _, e := range es {
				got = append(got, e.Text)
			}
			t.Fatalf("typed %v, shown %v", got, groups)
		}
		test.Tap(b)
	})
}

// tapInDialog taps the button labelled label in the dialog on top of the window.
func tapInDialog(t *testing.T, s *shell, label string) {
	t.Helper()
	onUI(func() {
		top := s.win.Canvas().Overlays().Top()
		if top == nil || button(top, label) == nil {
			t.Fatalf("no dialog with %q", label)
		}
		test.Tap(button(top, label))
	})
}

// The whole ceremony in the window: a first run that fails at the certificate step (a file
// is in its way), left for the home screen half way and found where it was on coming back;
// then the same plan again, to the end. Each confirmation shows the step before's result and
// asks the person the script names.
func TestRootCeremonyWizard(t *testing.T) {
	env := testhsm.New(t)
	env.InitToken(t, "lei-token", "so-pin-1234", "lei-pin-1234")
	s, _ := newTestShell(t, env.ModulePath)
	planPath := filepath.Join(t.TempDir(), "plan.yaml")
	os.WriteFile(planPath, []byte(strings.Replace(testPlan, "MODULE", env.ModulePath, 1)), 0o644)
	onUI(func() { s.show("ceremony") })
	loadPlan(t, s, planPath)
	snapshot(t, s, "ceremony-plan")
	startCeremony(t, s, "ops-pin-1234")

	inTheWay := s.ws.Path("certs/gui-root-root.pem")
	left := false
	outcome, _ := driveCeremony(t, s, func(screen string) {
		switch {
		case strings.Contains(screen, "Initialise the root token\nThe administrator") && !left:
			left = true
			leaveAndComeBack(t, s)
		case strings.Contains(screen, "Sign the root certificate\nThe administrator"):
			if err := os.WriteFile(inTheWay, []byte("in the way"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})
	if outcome != "failed" || !left {
		t.Fatalf("first run: %s, left %v", outcome, left)
	}
	// Why, in words, with the workflow's text under a closed Details.
	if txt := textsOnUI(s); !strings.Contains(txt, "The ceremony stopped\n") || !detailsShown(s) || strings.Contains(txt, "root ceremony:") {
		t.Errorf("the failure is not said in words with Details:\n%s", txt)
	}
	// The same plan runs again: a new run, the root's id the plan's.
	os.Remove(inTheWay)
	onUI(func() { test.Tap(button(s.body, "Back to the plan")) })
	if !strings.Contains(textsOnUI(s), "Ceremony gui-root: GUI Root CA") {
		t.Fatalf("the plan is not loaded again:\n%s", textsOnUI(s))
	}
	startCeremony(t, s, "ops-pin-1234")
	medium := t.TempDir()
	t.Setenv("CUSTOS_TEST_MEDIUM", medium)
	var seen []string
	outcome, shares := driveCeremony(t, s, func(screen string) { seen = append(seen, screen) })
	if outcome != "done" {
		t.Fatalf("the ceremony stopped:\n%s", textsOnUI(s))
	}
	checkResultsShown(t, seen, strings.Replace(testPlan, "MODULE", env.ModulePath, 1))
	snapshot(t, s, "ceremony-done")
	if shares != 3 {
		t.Errorf("%d shares distributed, want 3", shares)
	}
	// The same artefacts as the command line: certificate, record, journal, registry root.
	runs, err := s.reg.RunsOf(context.Background(), "gui-root")
	if err != nil || len(runs) != 2 || runs[0].Status != registry.RunFailed || runs[1].Status != registry.RunCompleted {
		t.Fatalf("runs of gui-root: %+v, %v", runs, err)
	}
	runs = runs[1:]
	for _, p := range []string{s.ws.Path("certs/gui-root-root.pem"), s.ws.Path("certs/gui-root-record-signer.pem"), runs[0].RecordPath, runs[0].JournalPath} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("missing %s", p)
		}
	}
	if _, err := s.reg.Issuer(context.Background(), "gui-root"); err != nil {
		t.Error(err)
	}
	jf, err := record.ReadJournalFile(runs[0].JournalPath)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(runs[0].JournalPath)
	if !strings.Contains(string(raw), "written to 李雷's own token") {
		t.Error("the journal does not say the third share went to the custodian's token")
	}
	shareFile := filepath.Join(medium, "2-Zoë-Ångström.share")
	if info, err := os.Stat(shareFile); err != nil || info.Mode().Perm() != 0o600 || !strings.Contains(string(raw), "written to file "+shareFile) {
		t.Errorf("the second share's file: %v %v; journal says it: %v", info, err, strings.Contains(string(raw), shareFile))
	}
	// The witness, whom the script names, confirmed the key's generation after its result,
	// in an entry of its own right after the step's.
	confirmedAfter := false
	for i, e := range jf.Entries {
		if e.Step == "root.generate-key.confirmed" {
			prev := jf.Entries[i-1]
			confirmedAfter = e.Actor == "Wes Witness" && e.Role == "witness" && prev.Step == "root.generate-key" && prev.Status == record.StatusDone
		}
	}
	if !confirmedAfter {
		t.Error("the journal does not say the witness confirmed the key generation's result after it")
	}
}

// leaveAndComeBack leaves the ceremony for the home screen by the navigation, which asks
// first, and comes back to find it where it was.
func leaveAndComeBack(t *testing.T, s *shell) {
	t.Helper()
	onUI(func() { s.nav.Select(0) })
	if s.current != "ceremony" {
		t.Fatal("the ceremony was left without asking")
	}
	tapInDialog(t, s, "Stay")
	onUI(func() { s.nav.Select(0) })
	tapInDialog(t, s, "Leave it for now")
	if !strings.Contains(textsOnUI(s), "Open Root key ceremony") {
		t.Fatalf("the home screen is not shown:\n%s", textsOnUI(s))
	}
	// Closing the window asks too.
	onUI(s.closeIntercept)
	tapInDialog(t, s, "Stay")
	onUI(func() { s.nav.Select(1) })
	if screen := textsOnUI(s); !strings.Contains(screen, "Initialise the root token\nThe administrator") || button(s.body, "Confirmed: go ahead") == nil {
		t.Fatalf("the ceremony is not where it was:\n%s", screen)
	}
}

// checkResultsShown checks that each confirmation showed the result of the step before it:
// the plan's hash words and the HSM after pre-flight, the certificate's subject, validity
// and fingerprint words, the backup's SHA-256.
func checkResultsShown(t *testing.T, seen []string, planText string) {
	t.Helper()
	all := strings.Join(seen, "\n")
	plan, err := ceremony.ParsePlan([]byte(planText))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Pre-flight checks: completed at", plan.HashWords(), "SoftHSM", "serial",
		"Sign the root certificate: completed at", "CN=GUI Root CA", "UTC to 20", "SHA-256 fingerprint",
		"Back up the root key: completed at", "Backup SHA-256 (words)"} {
		if !strings.Contains(all, want) {
			t.Errorf("no confirmation showed %q", want)
		}
	}
}

// A wrong operator PIN is refused at Start: the plan stays loaded, Start can be pressed
// again, and no token was touched (pkcs11-tool lists no root token) and no run exists.
func TestRootCeremonyRefusesWrongOperatorPINAtStart(t *testing.T) {
	env := testhsm.New(t)
	env.InitToken(t, "gui-ops", "so-pin-1234", "ops-pin-1234")
	s, _ := newTestShell(t, env.ModulePath)
	planPath := filepath.Join(t.TempDir(), "plan.yaml")
	os.WriteFile(planPath, []byte(strings.Replace(testPlan, "MODULE", env.ModulePath, 1)), 0o644)
	onUI(func() { s.show("ceremony") })
	loadPlan(t, s, planPath)
	startCeremony(t, s, "wrong-pin-0000")
	waitFor(t, "the refusal", func() (bool, bool) { return true, strings.Contains(texts(s.body), "does not open operations token") })
	onUI(func() {
		if button(s.body, "Start the ceremony") == nil || !strings.Contains(texts(s.body), "Ceremony gui-root") {
			t.Errorf("the plan is not loaded to start again:\n%s", texts(s.body))
		}
		if !strings.Contains(texts(s.body), "Check the field “Operator PIN”") {
			t.Errorf("the error does not name the field:\n%s", texts(s.body))
		}
	})
	if s.busyRun() != "" {
		t.Error("a refused start is still kept as under way")
	}
	out, err := exec.Command("pkcs11-tool", "--module", env.ModulePath, "-L").CombinedOutput()
	if err != nil || strings.Contains(string(out), "gui-root") {
		t.Errorf("pkcs11-tool -L: %v\n%s", err, out)
	}
	if runs, err := s.reg.RunsOf(context.Background(), "gui-root"); err != nil || len(runs) != 0 {
		t.Errorf("runs: %v %v", runs, err)
	}
}

// killedAtSplit confirms every step and kills its process when the split is to begin: a
// ceremony whose window was killed with the root key made.
type killedAtSplit struct{ memoryPeople }

func (k *killedAtSplit) Confirm(ctx context.Context, st run.Step) (record.Actor, error) {
	if st.ID == "root.split" {
		os.Exit(3)
	}
	return k.memoryPeople.Confirm(ctx, st)
}

// TestKilledCeremonyHelper is the child of TestCeremonyScreenAbortsAStoppedCeremony.
func TestKilledCeremonyHelper(t *testing.T) {
	dir := os.Getenv("CUSTOS_TEST_APP_KILLED")
	if dir == "" {
		t.Skip("child process of TestCeremonyScreenAbortsAStoppedCeremony")
	}
	env, err := run.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := ceremony.ParsePlan([]byte(os.Getenv("CUSTOS_TEST_PLAN")))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ceremony.Root(context.Background(), env, plan, []byte("ops-pin-1234"), &killedAtSplit{})
	t.Fatalf("the ceremony was meant to be killed at the split: %v", err)
}

// A ceremony killed with its root key made is listed on the ceremony screen; Abort with the
// operator PIN re-initialises its root token empty (pkcs11-tool lists no token of the root's
// label), and the same plan can start again.
func TestCeremonyScreenAbortsAStoppedCeremony(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a child process")
	}
	env := testhsm.New(t)
	dir := filepath.Join(t.TempDir(), "ws")
	planText := strings.Replace(testPlan, "MODULE", env.ModulePath, 1)
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledCeremonyHelper$")
	cmd.Env = append(os.Environ(), "CUSTOS_TEST_APP_KILLED="+dir, "CUSTOS_TEST_PLAN="+planText)
	if out, err := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != 3 {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if out, _ := exec.Command("pkcs11-tool", "--module", env.ModulePath, "-L").CombinedOutput(); !strings.Contains(string(out), "gui-root") {
		t.Fatalf("the killed ceremony left no root token:\n%s", out)
	}
	s, _ := newTestShellIn(t, env.ModulePath, dir)
	onUI(func() { s.show("ceremony") })
	eventually(t, "the stopped ceremony", func() bool { return strings.Contains(texts(s.body), "stopped after step Create the record signer") })
	// What it made, as the ceremony reads its journal; it cannot resume (Resume is off).
	if txt := textsOnUI(s); !strings.Contains(txt, "It made:\n• root token \"gui-root\"") || !strings.Contains(txt, "root CA certificate CN=GUI Root CA") ||
		!strings.Contains(txt, "It cannot resume: the quorum secret") || button(s.body, "Resume") != nil {
		t.Errorf("the stopped ceremony's listing:\n%s", txt)
	}
	onUI(func() {
		entryWithPlaceholder(t, s, "operator PIN (abort").SetText("ops-pin-1234")
		test.Tap(button(s.body, "Abort"))
		// Abort asks to type the run's id first; its button names it and stays off until then.
		top := s.win.Canvas().Overlays().Top()
		if top == nil {
			t.Fatal("Abort did not ask to type the run's id")
		}
		var id string
		for _, b := range findAll[*widget.Button](top) {
			if strings.HasPrefix(b.Text, "Abort ") {
				id = strings.TrimPrefix(b.Text, "Abort ")
			}
		}
		if id == "" || button(top, "Abort "+id) != nil {
			t.Fatalf("the abort confirmation (id %q) is not off before the id is typed", id)
		}
		test.Type(findAll[*widget.Entry](top)[0], id)
		test.Tap(button(top, "Abort "+id))
	})
	eventually(t, "the abort", func() bool { return strings.Contains(texts(s.body), ": aborted") })
	if txt := textsOnUI(s); !strings.Contains(txt, `root token "gui-root" re-initialised empty`) {
		t.Errorf("the abort does not say the root token was emptied:\n%s", txt)
	}
	out, err := exec.Command("pkcs11-tool", "--module", env.ModulePath, "-L").CombinedOutput()
	if err != nil || strings.Contains(string(out), "token label        : gui-root\n") {
		t.Errorf("pkcs11-tool -L after the abort: %v\n%s", err, out)
	}
	planPath := filepath.Join(t.TempDir(), "plan.yaml")
	os.WriteFile(planPath, []byte(planText), 0o644)
	onUI(func() { s.show("home"); s.show("ceremony") })
	loadPlan(t, s, planPath)
	if txt := textsOnUI(s); strings.Contains(txt, "stopped half way") {
		t.Errorf("the aborted run is still listed:\n%s", txt)
	}
}

// recordInTheWay confirms every step and, as the ceremony closes, puts a folder where its
// record goes: the ceremony stops with the root registered and no record.
type recordInTheWay struct {
	memoryPeople
	env run.Env
}

func (w *recordInTheWay) Confirm(ctx context.Context, st run.Step) (record.Actor, error) {
	if st.ID == "root.close" {
		runs, err := w.env.Registry.RunsOf(ctx, "gui-root")
		if err != nil || len(runs) != 1 {
			return record.Actor{}, fmt.Errorf("runs: %v %v", runs, err)
		}
		if err := os.MkdirAll(w.env.RecordPath(runs[0].ID), 0o755); err != nil {
			return record.Actor{}, err
		}
	}
	return w.memoryPeople.Confirm(ctx, st)
}

// A ceremony that closed and could not write its record is listed on the ceremony screen
// with what it made and Resume, which writes and signs the record (pdfsig reads it).
func TestCeremonyScreenResumesACeremonyWithoutItsRecord(t *testing.T) {
	env := testhsm.New(t)
	s, _ := newTestShell(t, env.ModulePath)
	plan, err := ceremony.ParsePlan([]byte(strings.Replace(testPlan, "MODULE", env.ModulePath, 1)))
	if err != nil {
		t.Fatal(err)
	}
	people := &recordInTheWay{memoryPeople: memoryPeople{shares: map[int]string{}}, env: s.runEnv()}
	if _, err := ceremony.Root(context.Background(), s.runEnv(), plan, []byte("ops-pin-1234"), people); err == nil || !strings.Contains(err.Error(), "record could not be written") {
		t.Fatalf("err = %v", err)
	}
	runs, _ := s.reg.RunsOf(context.Background(), "gui-root")
	os.Remove(s.runEnv().RecordPath(runs[0].ID))
	onUI(func() { s.show("ceremony") })
	eventually(t, "the stopped ceremony", func() bool { return button(s.body, "Resume") != nil })
	if txt := textsOnUI(s); !strings.Contains(txt, "root registered with its quorum and record signer") || !strings.Contains(txt, "3 shares of epoch 1 handed out") {
		t.Errorf("the listing does not say what the run made:\n%s", txt)
	}
	onUI(func() { s.win.Resize(fyne.NewSize(1280, 800)) })
	snapshot(t, s, "ceremony-stopped")
	onUI(func() {
		entryWithPlaceholder(t, s, "operator PIN (abort").SetText("ops-pin-1234")
		test.Tap(button(s.body, "Resume"))
	})
	eventually(t, "the resume", func() bool { return strings.Contains(texts(s.body), ": record written. Done: the signed record") })
	onUI(func() {
		if button(s.body, "Resume") != nil || button(s.body, "Abort") != nil {
			t.Error("a resumed run can still be resumed or aborted")
		}
	})
	rr, err := s.reg.Run(context.Background(), runs[0].ID)
	if err != nil || rr.Status != registry.RunCompleted {
		t.Fatalf("after resume: %+v %v", rr, err)
	}
	if out, err := exec.Command("pdfsig", rr.RecordPath).CombinedOutput(); err != nil || !strings.Contains(string(out), "Signature is Valid") {
		t.Errorf("pdfsig: %v\n%s", err, out)
	}
}
