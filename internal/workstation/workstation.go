// Package workstation describes the computer a ceremony runs on: its name, operating system,
// the Custos build, the clock, and whether it is really air-gapped. Ceremony records carry
// this so an auditor can tell where and with what a key was made.
package workstation

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/custos-pki/custos/internal/version"
)

// Identity is what a record says about the workstation.
type Identity struct {
	Host    string    `json:"host"`
	OS      string    `json:"os"`
	Custos  string    `json:"custos"`
	Build   string    `json:"build"`
	Clock   time.Time `json:"clock"`
	Network Network   `json:"network"`
}

// Network is the state of the workstation's network interfaces.
type Network struct {
	// Up lists the non-loopback interfaces that are up, with their addresses.
	Up []string `json:"up"`
	// Err is set when the interfaces could not be listed; the air gap is then unknown.
	Err string `json:"error,omitempty"`
}

// AirGapped reports whether no non-loopback interface is up.
func (n Network) AirGapped() bool { return n.Err == "" && len(n.Up) == 0 }

// Summary is one line for a status bar or a journal entry.
func (n Network) Summary() string {
	switch {
	case n.Err != "":
		return "network state unknown: " + n.Err
	case len(n.Up) == 0:
		return "air-gapped: no network interface is up other than loopback"
	default:
		return "NOT air-gapped: " + strings.Join(n.Up, "; ")
	}
}

// Inspect reads the workstation's identity now.
func Inspect() Identity {
	build := version.Current()
	host, err := os.Hostname()
	if err != nil {
		host = "unknown (" + err.Error() + ")"
	}
	return Identity{
		Host:    host,
		OS:      osDescription(),
		Custos:  build.Version,
		Build:   build.ShortRevision(),
		Clock:   time.Now().UTC(),
		Network: InspectNetwork(),
	}
}

// InspectNetwork lists the non-loopback interfaces that are up. An air-gapped workstation
// should have none; Custos warns but does not refuse, since the decision is the operator's.
func InspectNetwork() Network {
	ifaces, err := net.Interfaces()
	if err != nil {
		return Network{Err: err.Error()}
	}
	return Network{Up: upInterfaces(ifaces)}
}

func upInterfaces(ifaces []net.Interface) []string {
	var up []string
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		desc := ifc.Name
		if addrs, err := ifc.Addrs(); err == nil && len(addrs) > 0 {
			var s []string
			for _, a := range addrs {
				s = append(s, a.String())
			}
			desc += " (" + strings.Join(s, ", ") + ")"
		}
		up = append(up, desc)
	}
	return up
}

// osDescription is the distribution's pretty name where /etc/os-release has one.
func osDescription() string {
	desc := runtime.GOOS + "/" + runtime.GOARCH
	data, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return desc
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return fmt.Sprintf("%s (%s)", strings.Trim(v, `"`), desc)
		}
	}
	return desc
}
