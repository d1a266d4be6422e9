package run

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/workspace"
)

// Env is what every run works in: the locked workspace and its registry, which PKCS#11 module
// to load and how, the clock, and who hears each step. The GUI, the command line and the tests
// make one and hand it to the workflows; it is a value, so a front end sets Progress on its own
// copy for one run.
type Env struct {
	Workspace *workspace.Workspace
	Registry  *registry.Registry
	// Module, when set, is the PKCS#11 module the HSM's tokens (root, operations) are reached
	// through, whatever the plan, the quorum or the workspace's setting names (the front ends'
	// --module). Empty: see ModulePath.
	Module string
	// DeviceModule, when set, is the PKCS#11 module the device tokens are reached through, when
	// it is not the HSM's: a device's TPM through tpm2-pkcs11, a secure element or smart card
	// through its vendor's module. Empty: the HSM's module.
	DeviceModule string
	// HSMOptions are passed to hsm.Open; tests inject faults with them.
	HSMOptions []hsm.Option
	// Progress, when set, hears each step begin and end and each device of a fleet.
	Progress func(Event)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// RecordFault, when set, is asked before each signed record is written; an error it
	// returns is the write's. Tests inject a full disk (syscall.ENOSPC) with it.
	RecordFault func(path string) error
}

// Open opens and locks the workspace in dir (the default one when dir is empty) and its
// registry, for an Env. Close releases both.
func Open(ctx context.Context, dir string) (Env, error) {
	ws, reg, err := registry.OpenWorkspace(ctx, dir)
	if err != nil {
		return Env{}, err
	}
	return Env{Workspace: ws, Registry: reg}, nil
}

// Close closes the registry and releases the workspace. Every copy of e shares them: close
// one, once.
func (e Env) Close() error {
	return errors.Join(e.Registry.Close(), e.Workspace.Close())
}

// Clock is the time now, in UTC.
func (e Env) Clock() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

// JournalPath is where the journal of run id is.
func (e Env) JournalPath(id string) string {
	return e.Workspace.Path(workspace.JournalDir, id+".jsonl")
}

// RecordPath is where the signed record of run id is written.
func (e Env) RecordPath(id string) string {
	return e.Workspace.Path(workspace.RecordsDir, id+".pdf")
}

// moduleSetting is the registry setting that remembers the workspace's PKCS#11 module.
const moduleSetting = "pkcs11.module"

// SavedModule is the PKCS#11 module the workspace remembers ("" when none was chosen yet).
func SavedModule(ctx context.Context, reg *registry.Registry) (string, error) {
	v, _, err := reg.Setting(ctx, moduleSetting)
	return v, err
}

// SaveModule makes path the workspace's PKCS#11 module, for later runs and the next start, as
// an operation with a journal of its own (a module chosen on the Settings screen). Choosing
// the module the workspace has already changes nothing.
func SaveModule(ctx context.Context, env Env, path string) error {
	if saved, err := SavedModule(ctx, env.Registry); err != nil || saved == path {
		return err
	}
	op, err := StartOperation(ctx, env, "settings", "module")
	if err != nil {
		return err
	}
	err = op.SaveModule(ctx, path)
	return errors.Join(err, op.Close())
}

// SaveModule makes path the workspace's PKCS#11 module, journaled as a fact of r (a root
// ceremony remembers the module it ran on).
func (r *Run) SaveModule(ctx context.Context, path string) error {
	return r.Registry().SetSetting(ctx, moduleSetting, path)
}

// ModulePath is the PKCS#11 module a run loads: e.Module when set, else known (the module a
// plan, a quorum or a journal names, when there is one), else the workspace's saved one.
func (e Env) ModulePath(ctx context.Context, known string) (string, error) {
	switch {
	case e.Module != "":
		return e.Module, nil
	case known != "":
		return known, nil
	}
	saved, err := SavedModule(ctx, e.Registry)
	if err != nil {
		return "", err
	}
	if saved == "" {
		return "", NewFieldError("Module", "no PKCS#11 module chosen: choose the module, or run a root ceremony in this workspace first")
	}
	return saved, nil
}

// OpenModule loads the PKCS#11 module ModulePath names, with e's HSM options.
func (e Env) OpenModule(ctx context.Context, known string) (*hsm.Module, error) {
	path, err := e.ModulePath(ctx, known)
	if err != nil {
		return nil, err
	}
	return hsm.Open(path, e.HSMOptions...)
}

// Modules are the module of the operations token and the module of the device tokens, the same
// one unless Env.DeviceModule names another, until Close.
type Modules struct{ Ops, Devices *hsm.Module }

// OpenModules loads the operations token's module (OpenModule) and, when Env.DeviceModule
// names another, the device tokens' module.
func (e Env) OpenModules(ctx context.Context) (Modules, error) {
	ops, err := e.OpenModule(ctx, "")
	if err != nil {
		return Modules{}, err
	}
	if e.DeviceModule == "" {
		return Modules{Ops: ops, Devices: ops}, nil
	}
	dev, err := e.OpenDeviceModule(ctx)
	if err != nil {
		ops.Close()
		return Modules{}, err
	}
	return Modules{Ops: ops, Devices: dev}, nil
}

// OpenDeviceModule loads the module the device tokens are reached through.
func (e Env) OpenDeviceModule(ctx context.Context) (*hsm.Module, error) {
	if e.DeviceModule == "" {
		return e.OpenModule(ctx, "")
	}
	m, err := hsm.Open(e.DeviceModule, e.HSMOptions...)
	if err != nil {
		return nil, fmt.Errorf("the device tokens' module: %w", err)
	}
	return m, nil
}

// Close closes both modules.
func (m Modules) Close() {
	m.Ops.Close()
	if m.Devices != m.Ops {
		m.Devices.Close()
	}
}
