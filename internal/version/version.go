// Package version says which build of Custos is running, for `--version`, the window's About,
// the first entry of every journal and every record: an auditor must be able to tell which
// binary ran a ceremony, down to its bytes.
package version

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// Version is the release, set at build time by `make release` (packaging/release.sh) with
// -ldflags "-X github.com/custos-pki/custos/internal/version.Version=0.2.0". Empty means:
// the main module's version from the build information when it names a release tag, else Dev.
var Version string

// Dev is the version of a build from an untagged commit: the next release, marked -dev. Its
// number before "-dev" is FyneApp.toml's Version (a test keeps the two equal).
const Dev = "0.2.0-dev"

// Info is one build of Custos.
type Info struct {
	Version   string    // "0.2.0" for a release, "0.2.0-dev..." otherwise
	Revision  string    // the full VCS commit hash; "" when the binary carries no VCS information
	Time      time.Time // the commit's time; zero when unknown
	Modified  bool      // the work tree had uncommitted changes when it was built
	GoVersion string    // the Go toolchain that built it, such as "go1.26.8"
	// SHA256 is the hex SHA-256 of the running executable (os.Executable); "" when it could
	// not be read, and then BinaryErr says why.
	SHA256    string
	BinaryErr string
}

var current = sync.OnceValue(func() Info {
	bi, _ := debug.ReadBuildInfo()
	return inspect(Version, bi, executableSHA256)
})

// Current describes the running binary. The executable is hashed once, on the first call.
func Current() Info { return current() }

// String is "Custos <version> (<build>)", as PDF metadata and one-line summaries show it.
func String() string { return Current().String() }

// inspect builds an Info from what the linker set, the build information (nil when the binary
// has none) and the executable's hash.
func inspect(linked string, bi *debug.BuildInfo, hash func() (string, error)) Info {
	info := Info{Version: linked, GoVersion: runtime.Version()}
	if bi != nil {
		info.GoVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Revision = s.Value
			case "vcs.time":
				info.Time, _ = time.Parse(time.RFC3339, s.Value)
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
		if info.Version == "" {
			info.Version = releaseVersion(bi.Main.Version)
		}
	}
	if info.Version == "" {
		info.Version = Dev
	}
	sum, err := hash()
	if err != nil {
		info.BinaryErr = err.Error()
	}
	info.SHA256 = sum
	return info
}

// pseudo matches the commit part of a Go pseudo-version (v0.0.0-20261125101500-9883bf5c1a2b).
var pseudo = regexp.MustCompile(`\d{14}-[0-9a-f]{12}`)

// releaseVersion is the main module's version without its "v" when the go command took it
// from a release tag (Go 1.24 and later do), or "" for a pseudo-version or "(devel)".
func releaseVersion(v string) string {
	if !strings.HasPrefix(v, "v") || pseudo.MatchString(v) {
		return ""
	}
	return strings.TrimPrefix(v, "v")
}

func executableSHA256() (string, error) {
	path, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("locate the running executable: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read the running executable: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read the running executable %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ShortRevision is the first 12 characters of the commit, with "+modified" for a build from a
// changed tree, or "unknown revision" for a binary without VCS information (go test, go run).
func (i Info) ShortRevision() string {
	if i.Revision == "" {
		return "unknown revision"
	}
	r := i.Revision
	if len(r) > 12 {
		r = r[:12]
	}
	if i.Modified {
		r += "+modified"
	}
	return r
}

// String is "Custos 0.2.0 (9883bf5c1a2b, go1.26.8)".
func (i Info) String() string {
	return fmt.Sprintf("Custos %s (%s, %s)", i.Version, i.ShortRevision(), i.GoVersion)
}

// Field is one labelled line of a build description.
type Field struct{ Name, Value string }

// Fields are the lines `custos --version` prints and the About box shows, in order.
func (i Info) Fields() []Field {
	rev := i.Revision
	if rev == "" {
		rev = "unknown (the binary carries no VCS information)"
	}
	commit := ""
	if !i.Time.IsZero() {
		commit = i.Time.UTC().Format(time.RFC3339)
	}
	sum := i.SHA256
	if sum == "" {
		sum = "unknown (" + i.BinaryErr + ")"
	}
	fields := []Field{
		{"version", i.Version},
		{"revision", rev},
		{"modified", fmt.Sprint(i.Modified)},
	}
	if commit != "" {
		fields = append(fields, Field{"commit time", commit})
	}
	return append(fields, Field{"go", i.GoVersion}, Field{"binary sha256", sum})
}

// Text is Fields as aligned lines, for `--version`.
func (i Info) Text(program string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", program, i.Version)
	for _, f := range i.Fields()[1:] {
		fmt.Fprintf(&b, "%-14s %s\n", f.Name, f.Value)
	}
	return b.String()
}

// JournalBuild is the build as a journal payload: what the first entry of every run carries,
// and what a run continued by another build notes.
type JournalBuild struct {
	Custos       string `json:"custos"`
	Revision     string `json:"revision"`
	Modified     bool   `json:"modified"`
	Go           string `json:"go"`
	BinarySHA256 string `json:"binary_sha256"`
}

// JournalData is the build as a journal payload.
func (i Info) JournalData() JournalBuild {
	d := JournalBuild{Custos: i.Version, Revision: i.Revision, Modified: i.Modified, Go: i.GoVersion, BinarySHA256: i.SHA256}
	if i.Revision == "" {
		d.Revision = "unknown"
	}
	if i.SHA256 == "" {
		d.BinarySHA256 = "unknown: " + i.BinaryErr
	}
	return d
}

// FromJournalData reads back what JournalData wrote; ok is false when d holds no build.
func FromJournalData(d JournalBuild) (Info, bool) {
	if d.Custos == "" || d.BinarySHA256 == "" {
		return Info{}, false
	}
	i := Info{Version: d.Custos, Revision: d.Revision, Modified: d.Modified, GoVersion: d.Go, SHA256: d.BinarySHA256}
	if i.Revision == "unknown" {
		i.Revision = ""
	}
	if rest, ok := strings.CutPrefix(i.SHA256, "unknown: "); ok {
		i.SHA256, i.BinaryErr = "", rest
	}
	return i, true
}

// Same reports whether i and o are the same binary.
func (i Info) Same(o Info) bool {
	return i.Version == o.Version && i.Revision == o.Revision && i.Modified == o.Modified &&
		i.GoVersion == o.GoVersion && i.SHA256 == o.SHA256
}
