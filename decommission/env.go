// Package decommission retires medical devices: it proves a device is the one registered,
// erases its keys on its key store (a PKCS#11 token), verifies the erasure, revokes its
// certificates, signs a new CRL with the issuing CA and leaves a signed destruction record.
// One device, or a fleet from a manifest. It also provisions and imports devices, as the
// factory does at key injection.
//
// Every step that changes a token or the registry is journaled as begun before it acts and
// as done after, so a run that stops half way is found, resumed or aborted.
package decommission

import (
	"context"
	"fmt"
	"time"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/workspace"
)

// Env is what decommissioning works in.
type Env struct {
	Workspace *workspace.Workspace
	Registry  *registry.Registry
	// Module is the PKCS#11 module of the operations token (the issuing CA and the record
	// signer); empty means the workspace's setting.
	Module string
	// DeviceModule is the PKCS#11 module the device tokens are reached through, when it is not
	// the operations token's: a device's TPM through tpm2-pkcs11, a secure element or smart
	// card through its vendor's module. Empty means Module.
	DeviceModule string
	HSMOptions   []hsm.Option
	// Progress, when set, hears each step and each device of a fleet.
	Progress func(Progress)
	Now      func() time.Time
}

// Progress is a step or a device starting or ending.
type Progress struct {
	Step   string // identify, erase, verify, revoke, crl, record; or "fleet" for a fleet's devices
	Status record.Status
	Detail string
	Err    error
	Done   int // for a fleet: devices handled so far
	Total  int // for a fleet: devices in the manifest
}

func (e Env) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

func (e Env) progress(p Progress) {
	if e.Progress != nil {
		e.Progress(p)
	}
}

// openModule opens the configured PKCS#11 module.
func (e Env) openModule(ctx context.Context) (*hsm.Module, error) {
	path := e.Module
	if path == "" {
		v, ok, err := e.Registry.Setting(ctx, "pkcs11.module")
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("no PKCS#11 module chosen: pass --module PATH, or run a root ceremony in this workspace first")
		}
		path = v
	}
	return hsm.Open(path, e.HSMOptions...)
}

// modules are the operations token's module and the device tokens' module, which is the same
// Module unless Env.DeviceModule names another.
type modules struct{ ops, devices *hsm.Module }

// openModules opens the operations module and, when it is another, the device module.
func (e Env) openModules(ctx context.Context) (modules, error) {
	ops, err := e.openModule(ctx)
	if err != nil {
		return modules{}, err
	}
	if e.DeviceModule == "" {
		return modules{ops: ops, devices: ops}, nil
	}
	dev, err := hsm.Open(e.DeviceModule, e.HSMOptions...)
	if err != nil {
		ops.Close()
		return modules{}, fmt.Errorf("the device tokens' module: %w", err)
	}
	return modules{ops: ops, devices: dev}, nil
}

// openDeviceModule opens the module the device tokens are reached through.
func (e Env) openDeviceModule(ctx context.Context) (*hsm.Module, error) {
	if e.DeviceModule == "" {
		return e.openModule(ctx)
	}
	m, err := hsm.Open(e.DeviceModule, e.HSMOptions...)
	if err != nil {
		return nil, fmt.Errorf("the device tokens' module: %w", err)
	}
	return m, nil
}

// Close closes both modules.
func (m modules) Close() {
	m.ops.Close()
	if m.devices != m.ops {
		m.devices.Close()
	}
}

// step journals st begun, runs fn, and journals it done or failed.
func step(env Env, j *record.Journal, name string, who record.Actor, fn func() (map[string]string, error)) error {
	if err := j.Begin(name, who, nil); err != nil {
		return err
	}
	env.progress(Progress{Step: name, Status: record.StatusBegin})
	data, err := fn()
	if err != nil {
		j.Fail(name, who, err)
		env.progress(Progress{Step: name, Status: record.StatusFailed, Err: err})
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := j.Done(name, who, data); err != nil {
		return err
	}
	env.progress(Progress{Step: name, Status: record.StatusDone})
	return nil
}
