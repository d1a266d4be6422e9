package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/internal/secret"
	"github.com/custos-pki/custos/run"
	"github.com/custos-pki/custos/workspace"
)

// envFlags are --workspace and --module: where a command works and which PKCS#11 module it
// loads.
type envFlags struct{ workspace, module *string }

// addEnvFlags registers --workspace and --module; moduleDefault says where the module comes
// from when --module is not given.
func addEnvFlags(fs *flag.FlagSet, moduleDefault string) envFlags {
	return envFlags{
		workspace: command.WorkspaceFlag(fs),
		module:    fs.String("module", "", "PKCS#11 module `PATH` (default: "+moduleDefault+")"),
	}
}

// open opens the workspace and its registry for a workflow, with --module when given (nil
// module: the command has no --module), and says on s.Err what opening it removed. Close the
// Env after.
func (f envFlags) open(ctx context.Context, s command.Streams) (run.Env, error) {
	env, err := run.Open(ctx, *f.workspace)
	if err != nil {
		return env, err
	}
	if f.module != nil {
		env.Module = *f.module
	}
	saySwept(s, env.Workspace)
	return env, nil
}

// saySwept tells the person what opening the workspace removed: files that runs interrupted
// by a crash or a kill had left half written, which nothing reads; and any it could not.
func saySwept(s command.Streams, ws *workspace.Workspace) {
	if swept := ws.Swept(); len(swept) > 0 {
		what := "files"
		if len(swept) == 1 {
			what = "file"
		}
		fmt.Fprintf(s.Err, "custos: removed %d unfinished %s that an interrupted run left in %s: %s\n",
			len(swept), what, ws.Dir, strings.Join(swept, ", "))
	}
	for _, err := range ws.Stuck() {
		fmt.Fprintf(s.Err, "custos: %v\n", err)
	}
}

// pinFile is a flag naming a file that holds a PIN (mode 0600: see secret.ReadPINFile).
type pinFile struct{ name, path string }

// addPINFile registers the flag name; usage says whose PIN the file holds and what for.
func addPINFile(fs *flag.FlagSet, name, usage string) *pinFile {
	p := &pinFile{name: name}
	fs.StringVar(&p.path, name, "", usage)
	return p
}

// opsPINFile registers --ops-pin-file; what says what the operator PIN is used for, if the
// flag's usage needs to say more.
func opsPINFile(fs *flag.FlagSet, what string) *pinFile {
	return addPINFile(fs, "ops-pin-file", "`FILE` holding the operations token's operator PIN"+what)
}

// read reads the PIN. Without the flag it is nil, or a usage error when the PIN is required;
// a missing file is a usage error. The caller zeroes the PIN.
func (p *pinFile) read(required bool) ([]byte, error) {
	if p.path == "" {
		if required {
			return nil, command.Usagef("--%s is required", p.name)
		}
		return nil, nil
	}
	if err := command.ExistingFile(p.path); err != nil {
		return nil, err
	}
	return secret.ReadPINFile(p.path)
}

// pinFiles are --ops-pin-file and --device-pin-file; device is nil for a command without it.
type pinFiles struct{ ops, device *pinFile }

// pins are the PINs a command read from its PIN files; either may be nil.
type pins struct{ ops, device []byte }

// read reads the PIN files; the flags say which must be given. The caller zeroes the PINs
// with pins.zero.
func (f pinFiles) read(opsRequired, deviceRequired bool) (pins, error) {
	var p pins
	var err error
	if p.ops, err = f.ops.read(opsRequired); err != nil {
		return pins{}, err
	}
	if f.device != nil {
		if p.device, err = f.device.read(deviceRequired); err != nil {
			secret.Zero(p.ops)
			return pins{}, err
		}
	}
	return p, nil
}

func (p pins) zero() { secret.ZeroAll(p.ops, p.device) }

// deviceFlags are the flags of a command that works on device tokens: where, with which
// modules (the operations token's, and the device tokens' when it is another), and the
// operator's and the device's PIN files.
type deviceFlags struct {
	env          envFlags
	deviceModule *string
	pins         pinFiles
}

// open opens the workspace and registry for a workflow, with both modules' flags. Close the
// Env after.
func (f deviceFlags) open(ctx context.Context, s command.Streams) (run.Env, error) {
	env, err := f.env.open(ctx, s)
	env.DeviceModule = *f.deviceModule
	return env, err
}

// withPINs reads both PIN files, each required, opens the workspace as open does, and runs
// work with them; the PINs are zeroed and the Env closed when work returns.
func (f deviceFlags) withPINs(ctx context.Context, s command.Streams, work func(env run.Env, p pins) error) error {
	p, err := f.pins.read(true, true)
	if err != nil {
		return err
	}
	defer p.zero()
	env, err := f.open(ctx, s)
	if err != nil {
		return err
	}
	defer env.Close()
	return work(env, p)
}

func addDeviceFlags(fs *flag.FlagSet) deviceFlags {
	return deviceFlags{
		env: addEnvFlags(fs, "the workspace's"),
		deviceModule: fs.String("device-module", "", "PKCS#11 module `PATH` the device tokens are reached through, when it is not "+
			"the operations token's (a device's TPM through tpm2-pkcs11, a secure element's module)"),
		pins: pinFiles{
			ops:    opsPINFile(fs, ""),
			device: addPINFile(fs, "device-pin-file", "`FILE` with the device token's PIN"),
		},
	}
}

// flagSet reports whether the flag name was given on the command line, as opposed to left at
// its default.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
