package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/assets"
	"github.com/custos-pki/custos/internal/screenshot"
	"github.com/custos-pki/custos/internal/workstation"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
	"github.com/custos-pki/custos/workspace"
)

var iconResource = fyne.NewStaticResource("icon.png", assets.Icon)

// screen is one destination of the side navigation.
type screen struct {
	id    string
	title string
	icon  fyne.Resource
	// build makes the screen's content; it is called each time the screen is opened, so a
	// screen always shows the current state.
	build func() fyne.CanvasObject
}

// shell is the main window: navigation on the left, the current screen, and a status line.
type shell struct {
	ctx     context.Context
	win     fyne.Window
	ws      *workspace.Workspace
	reg     *registry.Registry
	cfg     Config
	module  string
	screens []screen
	nav     *widget.List
	body    *fyne.Container
	status  *statusLine
	current string
	kept    map[string]*keptRun // screens whose run is under way (keep.go)
	uiMu    sync.Mutex          // see do
	// leave is what the screen last built does when a screen is left (the Quorum screen
	// zeroes the shares entered).
	leave func()
	// quorumShares are the shares entered on the Quorum screen while it is open.
	quorumShares *sharePanel
	// tokenTable is the settings screen's token list while that screen is open.
	tokenTable *tokenTable
}

func newShell(ctx context.Context, w fyne.Window, ws *workspace.Workspace, reg *registry.Registry, cfg Config) *shell {
	s := &shell{ctx: ctx, win: w, ws: ws, reg: reg, cfg: cfg, module: cfg.Module}
	if s.module == "" {
		if m, err := run.SavedModule(ctx, reg); err == nil {
			s.module = m
		}
	}
	s.status = newStatusLine(ws.Dir)
	s.screens = []screen{
		{id: "home", title: "Home", icon: theme.HomeIcon(), build: s.homeScreen},
		{id: "ceremony", title: "Root key ceremony", icon: theme.AccountIcon(), build: s.ceremonyScreen},
		{id: "quorum", title: "Quorum operations", icon: theme.LoginIcon(), build: s.quorumScreen},
		{id: "decommission", title: "Decommission a device", icon: theme.DeleteIcon(), build: s.decommissionScreen},
		{id: "fleet", title: "Retire a fleet", icon: theme.ListIcon(), build: s.fleetScreen},
		{id: "devices", title: "Devices", icon: theme.StorageIcon(), build: s.devicesScreen},
		{id: "crl", title: "Publish a CRL", icon: theme.DocumentSaveIcon(), build: s.crlScreen},
		{id: "records", title: "Records", icon: theme.DocumentIcon(), build: s.recordsScreen},
		{id: "verify", title: "Verify a record", icon: theme.ConfirmIcon(), build: s.verifyScreen},
		{id: "settings", title: "Settings", icon: theme.SettingsIcon(), build: s.settingsScreen},
	}
	return s
}

// content lays out the window once; navigation swaps only the body.
func (s *shell) content() fyne.CanvasObject {
	s.body = container.NewStack()
	s.nav = widget.NewList(
		func() int { return len(s.screens) },
		func() fyne.CanvasObject { // as wide as the longest title, so none is cut at 1024x768
			return container.NewHBox(widget.NewIcon(theme.HomeIcon()), widget.NewLabel(s.longestTitle()))
		},
		func(id widget.ListItemID, o fyne.CanvasObject) {
			row := o.(*fyne.Container)
			row.Objects[0].(*widget.Icon).SetResource(s.screens[id].icon)
			row.Objects[1].(*widget.Label).SetText(s.screens[id].title)
		},
	)
	s.nav.OnSelected = func(id widget.ListItemID) {
		if s.screens[id].id != s.current {
			s.show(s.screens[id].id)
		}
	}
	s.nav.Select(0)
	s.status.refresh(s.module)
	go s.watchNetwork()
	split := container.NewHSplit(s.nav, s.body)
	split.Offset = 0.2
	return container.NewBorder(nil, s.status.object(), nil, nil, split)
}

// show opens the screen with the given id.
func (s *shell) show(id string) {
	if !s.mayLeave(id) {
		return
	}
	for i, sc := range s.screens {
		if sc.id != id {
			continue
		}
		if s.leave != nil {
			s.leave()
		}
		s.current = id
		s.body.Objects = []fyne.CanvasObject{s.screenContent(sc)}
		s.body.Refresh()
		s.nav.Select(i)
		return
	}
}

// setModule records the PKCS#11 module chosen on the settings screen.
func (s *shell) setModule(path string) {
	s.module = path
	s.status.refresh(path)
}

// watchNetwork re-checks the air gap now and then: a cable plugged in mid-ceremony must show.
func (s *shell) watchNetwork() {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		n := workstation.InspectNetwork()
		s.do(func() { s.status.setNetwork(n) })
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// saveScreenshots opens each main screen in turn and saves what the window shows, at the
// size CUSTOS_SCREENSHOT_SIZE names (such as 1024x768; 1280x800 when unset), so each screen
// can be looked at in every size it must work in. The light or dark theme is Fyne's
// FYNE_THEME.
func (s *shell) saveScreenshots(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	size, err := screenshotSize(os.Getenv("CUSTOS_SCREENSHOT_SIZE"))
	if err != nil {
		return err
	}
	s.do(func() { s.win.Resize(size) })
	time.Sleep(time.Second) // let the window map and draw once
	for _, sc := range s.screens {
		s.do(func() { s.show(sc.id) })
		time.Sleep(700 * time.Millisecond) // background loads (token lists) finish and draw
		err := screenshot.Window(s.win.Title(), filepath.Join(dir, sc.id+".png"))
		if err != nil {
			return fmt.Errorf("screenshot of %s: %w", sc.title, err)
		}
	}
	return nil
}

// screenshotSize reads WIDTHxHEIGHT; empty is 1280x800.
func screenshotSize(text string) (fyne.Size, error) {
	if text == "" {
		return fyne.NewSize(1280, 800), nil
	}
	var w, h int
	if _, err := fmt.Sscanf(text, "%dx%d", &w, &h); err != nil || w < 640 || h < 480 {
		return fyne.Size{}, fmt.Errorf("CUSTOS_SCREENSHOT_SIZE=%q: give WIDTHxHEIGHT, at least 640x480", text)
	}
	return fyne.NewSize(float32(w), float32(h)), nil
}

// longestTitle is the navigation's longest screen title.
func (s *shell) longestTitle() string {
	longest := ""
	for _, sc := range s.screens {
		if len([]rune(sc.title)) > len([]rune(longest)) {
			longest = sc.title
		}
	}
	return longest
}
