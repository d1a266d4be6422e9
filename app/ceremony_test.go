package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/internal/testhsm"
	"github.com/custos-pki/custos/quorum"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
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

func TestRootCeremonyWizard(t *testing.T) {
	env := testhsm.New(t)
	env.InitToken(t, "lei-token", "so-pin-1234", "lei-pin-1234")
	s, _ := newTestShell(t, env.ModulePath)
	s0 = s
	planPath := filepath.Join(t.TempDir(), "plan.yaml")
	os.WriteFile(planPath, []byte(strings.Replace(testPlan, "MODULE", env.ModulePath, 1)), 0o644)
	s.show("ceremony")
	entries := findAll[*widget.Entry](s.body)
	test.Type(entries[0], planPath)
	test.Tap(button(s.body, "Load"))
	if !strings.Contains(texts(s.body), "Plan SHA-256") {
		t.Fatalf("plan not shown:\n%s", texts(s.body))
	}
	snapshot(t, s, "ceremony-plan")
	test.Type(findAll[*widget.Entry](s.body)[1], "ops-pin-1234")
	test.Tap(button(s.body, "Start the ceremony"))

	shares := 0
	for done := false; !done; {
		action := waitFor(t, "the next thing to do", func() (string, bool) {
			switch {
			case strings.Contains(texts(s.body), "Ceremony complete"):
				return "done", true
			case strings.Contains(texts(s.body), "The ceremony stopped"):
				return "failed", true
			case button(s.body, "Confirmed: go ahead") != nil:
				return "confirm", true
			case button(s.body, "Acknowledged by") != nil:
				return "ack", true
			case button(s.body, "Reveal my share") != nil:
				return "reveal", true
			}
			return "", false
		})
		switch action {
		case "done":
			done = true
		case "failed":
			t.Fatalf("the ceremony stopped:\n%s", texts(s.body))
		case "confirm", "ack":
			if strings.Contains(textsOnUI(s), "Generate the root key\nThe administrator") {
				snapshot(t, s, "ceremony-step")
			}
			// The screen may have moved on since it was looked at: tap only what is there.
			onUI(func() {
				for _, label := range []string{"Confirmed: go ahead", "Acknowledged by"} {
					if b := button(s.body, label); b != nil {
						test.Tap(b)
					}
				}
			})
			time.Sleep(30 * time.Millisecond)
		case "reveal":
			if shares == 2 {
				// The third custodian has the share written to their own token instead.
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
					return true, strings.Contains(texts(s.body), "share is on their token") || button(s.body, "Confirmed: go ahead") != nil
				})
				shares++
				continue
			}
			var groups []string
			onUI(func() {
				test.Tap(button(s.body, "Reveal my share"))
				if shares == 0 {
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
				if shares == 0 {
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
			shares++
		}
	}
	snapshot(t, s, "ceremony-done")
	if shares != 3 {
		t.Errorf("%d shares distributed, want 3", shares)
	}
	// The same artefacts as the command line: certificate, record, journal, registry root.
	runs, err := s.reg.RunsOf(context.Background(), "gui-root")
	if err != nil || len(runs) != 1 || runs[0].Status != registry.RunCompleted {
		t.Fatalf("runs of gui-root: %+v, %v", runs, err)
	}
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
	var confirmedBy bool
	for _, e := range jf.Entries {
		confirmedBy = confirmedBy || (e.Step == "root.generate-key" && e.Actor == "Ada Admin")
	}
	if !confirmedBy {
		t.Error("the journal does not say who confirmed the key generation")
	}
}
