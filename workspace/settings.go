package workspace

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/custos-pki/custos/internal/inputfile"
)

// SettingsFile is the workspace's policy settings, a JSON object of the settings that differ
// from their defaults, e.g. {"validator-required": false}. It holds no secret.
const SettingsFile = "settings.json"

// maxSettings bounds the settings file: a handful of names and values.
const maxSettings = 64 << 10

// Settings are the workspace's policy: what its workflows require beyond what they always do.
type Settings struct {
	// ValidatorRequired: a decommission needs a validator, a person other than the technician
	// who checks the sanitization (NIST SP 800-88 Rev. 2). True unless the policy allows none.
	ValidatorRequired bool
}

// Setting describes one setting: its name in the file and on the command line, what it means,
// and its default.
type Setting struct {
	Name    string
	Help    string
	Default string
}

// KnownSettings are the settings a workspace has, in the order `custos settings show` lists them.
var KnownSettings = []Setting{
	{Name: "validator-required", Default: "true",
		Help: "a decommission names a validator, another person than the technician, who checks the sanitization; false lets a run go without one (its record then says no one validated it)"},
}

func defaultSettings() Settings { return Settings{ValidatorRequired: true} }

// Settings reads the workspace's settings: the defaults, with what SettingsFile sets. A file
// that is not a JSON object of known settings with values of their kind is refused, naming
// the file and the setting; a missing file is the defaults.
func (w *Workspace) Settings(ctx context.Context) (Settings, error) {
	s, _, err := w.readSettings(ctx)
	return s, err
}

// SettingValue is a setting's value as text, and whether the file sets it (else the default).
func (w *Workspace) SettingValue(ctx context.Context, name string) (value string, set bool, err error) {
	i := slices.IndexFunc(KnownSettings, func(s Setting) bool { return s.Name == name })
	if i < 0 {
		return "", false, unknownSetting(name)
	}
	_, raw, err := w.readSettings(ctx)
	if err != nil {
		return "", false, err
	}
	if v, ok := raw[name]; ok {
		return string(v), true, nil
	}
	return KnownSettings[i].Default, false, nil
}

func (w *Workspace) readSettings(ctx context.Context) (Settings, map[string]json.RawMessage, error) {
	s := defaultSettings()
	path := w.Path(SettingsFile)
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return s, nil, nil
	}
	b, err := inputfile.Read(ctx, "settings file", path, maxSettings)
	if err != nil {
		return s, nil, err
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return s, nil, fmt.Errorf("%s: not a JSON object of settings (%v): fix it, or set each with custos settings set NAME VALUE", path, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return s, nil, fmt.Errorf("%s: more than one JSON object", path)
	}
	for name, v := range raw {
		switch name {
		case "validator-required":
			if err := json.Unmarshal(v, &s.ValidatorRequired); err != nil {
				return s, nil, fmt.Errorf("%s: setting %q is true or false, not %s", path, name, v)
			}
		default:
			return s, nil, fmt.Errorf("%s: %w", path, unknownSetting(name))
		}
	}
	return s, raw, nil
}

func unknownSetting(name string) error {
	var names []string
	for _, s := range KnownSettings {
		names = append(names, s.Name)
	}
	return fmt.Errorf("no setting is named %q (settings: %s)", name, strings.Join(names, ", "))
}

// SetSetting sets the setting name to value (its text, as `custos settings set` takes it) in
// SettingsFile, which is replaced whole: written beside, synced, renamed into place. The value
// is checked first; nothing changes when it is refused.
func (w *Workspace) SetSetting(ctx context.Context, name, value string) error {
	if w.readOnly {
		return fmt.Errorf("workspace %s is open read-only: settings cannot change", w.Dir)
	}
	_, raw, err := w.readSettings(ctx)
	if err != nil {
		return err
	}
	if raw == nil {
		raw = map[string]json.RawMessage{}
	}
	switch name {
	case "validator-required":
		b, err := strconv.ParseBool(value)
		if err != nil {
			return fmt.Errorf("setting %q is true or false, not %q", name, value)
		}
		raw[name] = json.RawMessage(strconv.FormatBool(b))
	default:
		return unknownSetting(name)
	}
	text, err := json.MarshalIndent(raw, "", "  ")
	if err != nil {
		return err
	}
	return replaceFile(w.Path(SettingsFile), append(text, '\n'), 0o600)
}

// replaceFile writes data to path whole or not at all, replacing what was there.
func replaceFile(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".partial-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	merr := f.Chmod(perm)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, merr, serr, cerr); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return SyncDir(dir)
}
