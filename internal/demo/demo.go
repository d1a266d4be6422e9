// Package demo prepares a throwaway workspace and SoftHSM2 token folder for trying Custos:
// `custos demo` opens the window on it. Nothing outside the demo folder is touched, and the
// demo never opens a real HSM.
package demo

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/softhsm"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/workspace"
)

// Demo PINs: printed on screen and written to PIN files in the demo folder, because they
// guard nothing but SoftHSM2 tokens in a temporary folder.
const (
	OpsToken = "demo-ops"
	OpsPIN   = "ops-pin-1234"
	OpsSOPIN = "ops-so-pin-1234"
)

// Setup is a prepared demo.
type Setup struct {
	Dir        string // the demo folder holding everything below
	Workspace  string
	Module     string // libsofthsm2.so, with SOFTHSM2_CONF set to the demo's token folder
	OpsPINFile string
	Banner     string // what was prepared, for the home screen
}

// Prepare makes a demo folder under the system's temporary folder, points SoftHSM2 at a token
// folder inside it (by setting SOFTHSM2_CONF for this process, before any module is opened),
// creates the workspace with the module remembered, and an operations token. log receives
// progress lines.
func Prepare(ctx context.Context, log io.Writer) (*Setup, error) {
	module, err := softhsm.LibraryPath()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "custos-demo-")
	if err != nil {
		return nil, fmt.Errorf("demo: make a temporary folder: %w", err)
	}
	conf, err := softhsm.WriteConfig(filepath.Join(dir, "softhsm"))
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if err := os.Setenv("SOFTHSM2_CONF", conf); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	d := &Setup{Dir: dir, Workspace: filepath.Join(dir, "workspace"), Module: module,
		OpsPINFile: filepath.Join(dir, "ops.pin")}
	fmt.Fprintf(log, "demo folder: %s\n", dir)
	if err := os.WriteFile(d.OpsPINFile, []byte(OpsPIN+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("demo: write the operator PIN file: %w", err)
	}
	ws, err := workspace.Open(d.Workspace)
	if err != nil {
		return nil, err
	}
	defer ws.Close()
	reg, err := registry.Open(ctx, ws.DBPath())
	if err != nil {
		return nil, err
	}
	defer reg.Close()
	if err := reg.SetSetting(ctx, "pkcs11.module", module); err != nil {
		return nil, err
	}
	if err := initToken(ctx, module, OpsToken, OpsSOPIN, OpsPIN); err != nil {
		return nil, err
	}
	d.Banner = strings.Join([]string{
		"This is a demo workspace in " + dir + ", with SoftHSM2 tokens standing in for the HSM and the devices.",
		fmt.Sprintf("Operations token %q, operator PIN %s (also in %s).", OpsToken, OpsPIN, d.OpsPINFile),
		"Nothing here is real: close the window and the folder can be deleted.",
	}, "\n")
	return d, nil
}

// initToken initialises a SoftHSM2 token on a free slot.
func initToken(ctx context.Context, module, label, soPIN, userPIN string) error {
	m, err := hsm.Open(module)
	if err != nil {
		return err
	}
	defer m.Close()
	slot, err := m.FreeSlot(ctx)
	if err != nil {
		return err
	}
	if _, err := m.InitToken(ctx, slot.ID, label, []byte(soPIN), []byte(userPIN)); err != nil {
		return fmt.Errorf("demo: initialise token %q: %w", label, err)
	}
	return nil
}
