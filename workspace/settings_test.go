package workspace

import (
	"context"
	"os"
	"strings"
	"testing"
)

func TestSettings(t *testing.T) {
	ctx := context.Background()
	ws, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	s, err := ws.Settings(ctx)
	if err != nil || !s.ValidatorRequired {
		t.Fatalf("the defaults: %+v, %v; a validator is required unless the policy says otherwise", s, err)
	}
	if v, set, err := ws.SettingValue(ctx, "validator-required"); v != "true" || set || err != nil {
		t.Errorf("validator-required = %q (set %v, %v), want the default true", v, set, err)
	}
	for _, c := range []struct{ name, value, problem string }{
		{"validator-required", "maybe", "true or false"},
		{"validator", "false", `no setting is named "validator"`},
	} {
		if err := ws.SetSetting(ctx, c.name, c.value); err == nil || !strings.Contains(err.Error(), c.problem) {
			t.Errorf("set %s %s: %v, want %q", c.name, c.value, err, c.problem)
		}
	}
	if _, err := os.Stat(ws.Path(SettingsFile)); err == nil {
		t.Error("a refused setting wrote the settings file")
	}
	if err := ws.SetSetting(ctx, "validator-required", "false"); err != nil {
		t.Fatal(err)
	}
	if s, err := ws.Settings(ctx); err != nil || s.ValidatorRequired {
		t.Errorf("after setting it false: %+v, %v", s, err)
	}
	if v, set, _ := ws.SettingValue(ctx, "validator-required"); v != "false" || !set {
		t.Errorf("validator-required = %q (set %v)", v, set)
	}
	b, _ := os.ReadFile(ws.Path(SettingsFile))
	if strings.TrimSpace(string(b)) != "{\n  \"validator-required\": false\n}" {
		t.Errorf("the settings file:\n%s", b)
	}
	// A file edited by hand into something else is refused, naming the file and the setting.
	for text, problem := range map[string]string{
		`{"validator-required": "no"}`: `"validator-required" is true or false`,
		`{"colour": "blue"}`:           `no setting is named "colour"`,
		`[true]`:                       "not a JSON object",
		`{} {}`:                        "more than one JSON object",
	} {
		if err := os.WriteFile(ws.Path(SettingsFile), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := ws.Settings(ctx)
		if err == nil || !strings.Contains(err.Error(), problem) || !strings.Contains(err.Error(), SettingsFile) {
			t.Errorf("%s: %v, want it refused saying %q and naming the file", text, err, problem)
		}
	}
}
