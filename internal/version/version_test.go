package version

import (
	"errors"
	"os"
	"os/exec"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestInspect(t *testing.T) {
	vcs := func(rev, when, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "-trimpath", Value: "true"}, {Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: rev}, {Key: "vcs.time", Value: when}, {Key: "vcs.modified", Value: modified}}
	}
	const rev = "9883bf5c1a2b3c4d5e6f708192a3b4c5d6e7f801"
	hash := func() (string, error) { return "ab12", nil }
	for _, tc := range []struct {
		name     string
		linked   string
		bi       *debug.BuildInfo
		version  string
		short    string
		modified bool
	}{
		{"make release of a tag", "0.2.0", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.2.0"}, Settings: vcs(rev, "2026-11-25T10:15:00Z", "false")},
			"0.2.0", "9883bf5c1a2b", false},
		{"go build of a tag", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.2.0"}, Settings: vcs(rev, "2026-11-25T10:15:00Z", "false")},
			"0.2.0", "9883bf5c1a2b", false},
		{"go build of a changed tag", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.2.0+dirty"}, Settings: vcs(rev, "2026-11-25T10:15:00Z", "true")},
			"0.2.0+dirty", "9883bf5c1a2b+modified", true},
		{"go build between tags", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.1.1-0.20261125101500-9883bf5c1a2b"}, Settings: vcs(rev, "2026-11-25T10:15:00Z", "false")},
			Dev, "9883bf5c1a2b", false},
		{"go build without VCS", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			Dev, "unknown revision", false},
		{"no build information", "", nil, Dev, "unknown revision", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i := inspect(tc.linked, tc.bi, hash)
			if i.Version != tc.version || i.ShortRevision() != tc.short || i.Modified != tc.modified || i.SHA256 != "ab12" {
				t.Errorf("got %+v (short %q), want version %q, short %q, modified %v", i, i.ShortRevision(), tc.version, tc.short, tc.modified)
			}
			if tc.bi != nil && len(tc.bi.Settings) > 0 && !i.Time.Equal(time.Date(2026, 11, 25, 10, 15, 0, 0, time.UTC)) {
				t.Errorf("commit time %v", i.Time)
			}
		})
	}
}

func TestUnreadableBinary(t *testing.T) {
	i := inspect("", nil, func() (string, error) { return "", errors.New("read the running executable: permission denied") })
	if i.SHA256 != "" || !strings.Contains(i.Text("custos"), "binary sha256  unknown (read the running executable: permission denied)") {
		t.Errorf("%q", i.Text("custos"))
	}
	back, ok := FromJournalData(i.JournalData())
	if !ok || !back.Same(i) || back.BinaryErr != i.BinaryErr {
		t.Errorf("journal round trip: %+v, want %+v", back, i)
	}
}

// The running test binary's hash, as sha256sum computes it.
func TestCurrentHashesTheRunningBinary(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sha256sum", exe).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Fields(string(out))[0]
	if got := Current(); got.SHA256 != want {
		t.Errorf("SHA256 = %q, sha256sum says %q", got.SHA256, want)
	}
	text := Current().Text("custos")
	for _, line := range []string{"custos " + Current().Version + "\n", "binary sha256  " + want + "\n", "go             go1."} {
		if !strings.Contains(text, line) {
			t.Errorf("--version text lacks %q:\n%s", line, text)
		}
	}
}

func TestJournalDataRoundTrip(t *testing.T) {
	i := Info{Version: "0.2.0", Revision: "9883bf5c1a2b3c4d5e6f708192a3b4c5d6e7f801", Modified: true, GoVersion: "go1.26.8", SHA256: "ab12"}
	back, ok := FromJournalData(i.JournalData())
	if !ok || !back.Same(i) {
		t.Errorf("%+v", back)
	}
	if _, ok := FromJournalData(JournalBuild{}); ok {
		t.Error("a journal entry without a build read as one")
	}
}

// FyneApp.toml's Version is the release Dev leads to; `make release` names packages after it.
func TestDevMatchesFyneApp(t *testing.T) {
	b, err := os.ReadFile("../../FyneApp.toml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*Version\s*=\s*"([^"]+)"`).FindSubmatch(b)
	if m == nil {
		t.Fatal("FyneApp.toml has no Version")
	}
	if want := string(m[1]) + "-dev"; Dev != want {
		t.Errorf("Dev = %q, but FyneApp.toml's Version makes %q", Dev, want)
	}
}
