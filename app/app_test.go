package app

import (
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/internal/testhsm"
	"github.com/custos-pki/custos/internal/version"
	"github.com/custos-pki/custos/run"
)

// newTestShell opens a shell on a fresh workspace in a headless test window.
func newTestShell(t *testing.T, module string) (*shell, fyne.Window) {
	t.Helper()
	return newTestShellIn(t, module, filepath.Join(t.TempDir(), "ws"))
}

// newTestShellIn is newTestShell on the workspace in dir.
func newTestShellIn(t *testing.T, module, dir string) (*shell, fyne.Window) {
	t.Helper()
	test.NewTempApp(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	env, err := run.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	ws, reg := env.Workspace, env.Registry
	test.ApplyTheme(t, newReadableTheme())
	w := test.NewTempWindow(t, nil)
	s := newShell(ctx, w, ws, reg, Config{Module: module})
	uiLock = &s.uiMu
	s0 = s
	onUI(func() { // content starts background work that updates the screen
		w.SetContent(s.content())
		w.Resize(fyne.NewSize(1280, 860))
	})
	return s, w
}

// uiLock is the shell's UI lock: the test driver runs fyne.Do in place, so the test takes the
// same lock as background updates (shell.do) while it looks at or taps the screen.
var uiLock *sync.Mutex

func onUI(f func()) {
	uiLock.Lock()
	defer uiLock.Unlock()
	f()
}

// eventually polls cond (on the UI goroutine) until it holds, for work done in the background.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var ok bool
		onUI(func() { ok = cond() })
		if ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// texts collects the text of every label and button under o.
func texts(o fyne.CanvasObject) string {
	var b strings.Builder
	var walk func(fyne.CanvasObject)
	walk = func(o fyne.CanvasObject) {
		switch w := o.(type) {
		case *widget.Label:
			b.WriteString(w.Text + "\n")
		case *widget.Button:
			b.WriteString("[" + w.Text + "]\n")
		case *widget.Card:
			b.WriteString(w.Title + "\n" + w.Subtitle + "\n")
			if w.Content != nil {
				walk(w.Content)
			}
		case *widget.Entry:
			b.WriteString("<" + w.Text + ">\n")
		case *fyne.Container:
			for _, c := range w.Objects {
				walk(c)
			}
		case fyne.Widget:
			r := test.WidgetRenderer(w)
			for _, c := range r.Objects() {
				walk(c)
			}
		}
	}
	walk(o)
	return b.String()
}

func TestHomeNamesWorkflowsAndWorkstation(t *testing.T) {
	env := testhsm.New(t)
	env.InitToken(t, "acme-ops", "so-pin-1234", "user-pin-1234")
	s, _ := newTestShell(t, env.ModulePath)
	eventually(t, "the token summary", func() bool { return strings.Contains(texts(s.body), "Tokens: acme-ops") })
	onUI(func() {
		home := texts(s.body)
		for _, wf := range workflows {
			if !strings.Contains(home, wf.title) {
				t.Errorf("home screen lacks %q", wf.title)
			}
		}
		if !strings.Contains(home, "Workspace: "+s.ws.Dir) {
			t.Errorf("home screen does not name the workspace:\n%s", home)
		}
		if !strings.Contains(texts(s.status.object()), "PKCS#11 module: "+env.ModulePath) {
			t.Error("status line does not name the module")
		}
	})
}

// The home screen says what opening the workspace removed that an interrupted run had left.
func TestHomeSaysWhatOpeningRemoved(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ws")
	if err := os.MkdirAll(filepath.Join(dir, "records"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "records", ".run-1.pdf.partial-5"), []byte("%PDF"), 0o600); err != nil {
		t.Fatal(err)
	}
	// One that cannot be removed, where the filesystem and the user allow making it so.
	stuck := filepath.Join(dir, "records", ".run-2.pdf.partial-6")
	if err := os.WriteFile(stuck, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	immutable := exec.Command("chattr", "+i", stuck).Run() == nil
	if immutable {
		t.Cleanup(func() { exec.Command("chattr", "-i", stuck).Run() })
	} else {
		os.Remove(stuck)
	}
	s, _ := newTestShellIn(t, "", dir)
	onUI(func() {
		home := texts(s.body)
		if !strings.Contains(home, "removed 1 unfinished file that an interrupted run had left: records/.run-1.pdf.partial-5") {
			t.Errorf("the home screen does not say what was removed:\n%s", home)
		}
		if immutable && !strings.Contains(home, "Cannot remove records/.run-2.pdf.partial-6, which an interrupted run left (operation not permitted): remove it by hand.") {
			t.Errorf("the home screen does not say what it could not remove:\n%s", home)
		}
	})
}

// The settings screen's About says which build this is, with the binary's SHA-256, as
// --version does.
func TestSettingsSaysWhichBuild(t *testing.T) {
	s, _ := newTestShell(t, "")
	onUI(func() { s.show("settings") })
	want := version.Current()
	eventually(t, "the build", func() bool {
		txt := texts(s.body)
		return strings.Contains(txt, "About this Custos") && strings.Contains(txt, want.Version) && strings.Contains(txt, want.SHA256)
	})
}

func TestSettingsChoosesModuleAndListsTokens(t *testing.T) {
	env := testhsm.New(t)
	env.InitToken(t, "acme-ops", "so-pin-1234", "user-pin-1234")
	env.InitToken(t, "Zoë's token", "so-pin-1234", "user-pin-1234")
	s, _ := newTestShell(t, "")
	var entry *widget.Entry
	onUI(func() {
		s.show("settings")
		if !strings.Contains(texts(s.body), "Choose a module") {
			t.Fatalf("settings without a module:\n%s", texts(s.body))
		}
		// A wrong path is an error on the screen, not a crash.
		entry = findEntry(t, s.body)
		test.Type(entry, "/nonexistent/libpkcs11.so")
		test.Tap(findButton(t, s.body, "Use this module"))
	})
	eventually(t, "the missing-module error", func() bool { return strings.Contains(texts(s.body), "not found") })

	onUI(func() {
		entry.SetText("")
		test.Type(entry, env.ModulePath)
		entry.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn}) // Enter applies, for keyboard-only use
	})
	eventually(t, "the token list", func() bool { return strings.Contains(texts(s.body), "slots") })
	onUI(func() {
		var labels []string
		tbl := findTable(t, s.body)
		rows, _ := tbl.Length()
		for r := 0; r < rows; r++ {
			labels = append(labels, tokenColumns[1].value(s.tokenTable.rows[r]))
		}
		got := strings.Join(labels, ",")
		for _, want := range []string{"acme-ops", "Zoë's token", "(not initialised)"} {
			if !strings.Contains(got, want) {
				t.Errorf("token table %q lacks %q", got, want)
			}
		}
		if !strings.Contains(texts(s.status.object()), env.ModulePath) {
			t.Error("status line does not show the chosen module")
		}
	})
	if v, err := run.SavedModule(context.Background(), s.reg); v != env.ModulePath {
		t.Errorf("module setting = %q, %v; want it remembered", v, err)
	}
}

func findEntry(t *testing.T, o fyne.CanvasObject) *widget.Entry {
	t.Helper()
	if e := find[*widget.Entry](o, nil); e != nil {
		return e
	}
	t.Fatal("no entry on screen")
	return nil
}

func findButton(t *testing.T, o fyne.CanvasObject, text string) *widget.Button {
	t.Helper()
	if b := find(o, func(b *widget.Button) bool { return b.Text == text }); b != nil {
		return b
	}
	t.Fatalf("no button %q on screen", text)
	return nil
}

func findTable(t *testing.T, o fyne.CanvasObject) *widget.Table {
	t.Helper()
	if tb := find[*widget.Table](o, nil); tb != nil {
		return tb
	}
	t.Fatal("no table on screen")
	return nil
}

// find returns the first object of type T under o that ok accepts (nil accepts any).
func find[T fyne.CanvasObject](o fyne.CanvasObject, ok func(T) bool) T {
	var zero T
	if v, is := o.(T); is && (ok == nil || ok(v)) {
		return v
	}
	var children []fyne.CanvasObject
	switch w := o.(type) {
	case *fyne.Container:
		children = w.Objects
	case *widget.Card:
		children = []fyne.CanvasObject{w.Content}
	case fyne.Widget:
		children = test.WidgetRenderer(w).Objects()
	}
	for _, c := range children {
		if c == nil {
			continue
		}
		if v := find(c, ok); any(v) != any(zero) {
			return v
		}
	}
	return zero
}

// snapshot saves what the test window shows as docs/screenshots/<name>.png when
// CUSTOS_SCREENSHOTS names that folder (`make screenshots` sets it), for the README: the
// screens mid-procedure that the main-screen screenshots cannot reach.
func snapshot(t *testing.T, s *shell, name string) {
	dir := os.Getenv("CUSTOS_SCREENSHOTS")
	if dir == "" {
		return
	}
	var img image.Image
	onUI(func() {
		defer func() {
			if r := recover(); r != nil { // the test painter cannot draw every state
				t.Logf("no snapshot %s: %v", name, r)
			}
		}()
		img = s.win.Canvas().Capture()
	})
	if img == nil {
		return
	}
	f, err := os.Create(filepath.Join(dir, name+".png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}
