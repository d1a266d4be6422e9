// Package version says which Custos this is, for records and the journal: an auditor must be
// able to tell which build ran a ceremony.
package version

import "runtime/debug"

// Version is the release, set at build time with
// -ldflags "-X github.com/custos-pki/custos/internal/version.Version=v1.2.3".
var Version = "0.1.0-dev"

// Build returns the VCS revision the binary was built from, with "+dirty" when the tree had
// uncommitted changes, or "unknown" when the build carries no VCS information (go test, go run).
func Build() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return "unknown"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified == "true" {
		rev += "+dirty"
	}
	return rev
}

// String is "Custos <version> (<build>)", as shown in records and --version.
func String() string {
	return "Custos " + Version + " (" + Build() + ")"
}
