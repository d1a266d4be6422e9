// Package app is Custos's window: the screens and wizards that walk custodians, technicians
// and auditors through the workflows. It is the only package that imports Fyne, and it only
// presents and collects: every rule lives in the workflow packages. HSM and disk work run off
// the UI goroutine; their results come back through fyne.Do. The reasons, methods, steps and
// what a stopped run can do come from the workflows (decommission.Reasons, Steps,
// run.Handlers); a workflow's error about a request field is shown with the screen's name for
// that field (fieldLabels).
//
// # Secrets
//
// The owner zeroes: a PIN typed into the window is taken out of its entry (takePIN), handed to
// the workflow, and zeroed by the screen once the workflow returns; workflows never zero it.
package app

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"

	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
	"github.com/custos-pki/custos/workspace"
)

// Config says which workspace and PKCS#11 module the window works on.
type Config struct {
	Workspace string // folder; empty for the default
	Module    string // PKCS#11 module path; empty for the workspace's saved setting
	// Banner, when set, is shown on the home screen (the demo says what it prepared).
	Banner string
	// Screenshots, when set, makes the window save a PNG of each main screen there and quit.
	Screenshots string
}

// Run opens the main window and returns when it is closed. A workspace whose registry is lost
// while its journals remain opens on a window that says so and offers to rebuild it.
func Run(ctx context.Context, cfg Config) error {
	env, err := run.Open(ctx, cfg.Workspace)
	lost := errors.Is(err, registry.ErrRegistryLost)
	if err != nil && !lost {
		return err
	}
	var closeEnv sync.Once
	defer func() {
		closeEnv.Do(func() {
			if env.Registry != nil {
				env.Close()
			}
		})
	}()

	a := fyneapp.NewWithID("io.custos.app")
	a.Settings().SetTheme(newReadableTheme())
	a.SetIcon(iconResource)
	w := a.NewWindow("Custos")
	w.Resize(fyne.NewSize(1280, 860))
	w.SetMaster()
	if lost {
		dir := cfg.Workspace
		if dir == "" {
			if dir, err = workspace.DefaultDir(); err != nil {
				return err
			}
		}
		var mu sync.Mutex
		l := newLostScreen(ctx, dir, err, &mu, func() error {
			opened, err := run.Open(ctx, dir)
			if err != nil {
				return err
			}
			env = opened
			fyne.DoAndWait(func() {
				u := newShell(ctx, w, env.Workspace, env.Registry, cfg)
				w.SetContent(u.content())
				w.SetCloseIntercept(u.closeIntercept)
			})
			return nil
		})
		w.SetContent(l.content())
	} else {
		u := newShell(ctx, w, env.Workspace, env.Registry, cfg)
		w.SetContent(u.content())
		w.SetCloseIntercept(u.closeIntercept)
		if cfg.Screenshots != "" {
			go func() {
				if err := u.saveScreenshots(cfg.Screenshots); err != nil {
					fmt.Println("screenshots:", err)
				}
				fyne.Do(a.Quit)
			}()
		}
	}
	go func() {
		<-ctx.Done()
		fyne.Do(a.Quit)
	}()
	w.ShowAndRun()
	return nil
}
