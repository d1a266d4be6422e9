package workstation

import (
	"net"
	"strings"
	"testing"
)

func TestUpInterfaces(t *testing.T) {
	ifaces := []net.Interface{
		{Index: 1, Name: "lo", Flags: net.FlagUp | net.FlagLoopback},
		{Index: 99991, Name: "eth0", Flags: net.FlagUp},
		{Index: 99992, Name: "wlan0"},
	}
	got := upInterfaces(ifaces)
	if len(got) != 1 || !strings.HasPrefix(got[0], "eth0") {
		t.Fatalf("upInterfaces = %q, want only eth0", got)
	}
}

func TestNetworkSummary(t *testing.T) {
	tests := []struct {
		n         Network
		airGapped bool
		want      string
	}{
		{Network{}, true, "air-gapped"},
		{Network{Up: []string{"eth0 (10.0.0.2/24)"}}, false, "NOT air-gapped: eth0"},
		{Network{Err: "permission denied"}, false, "unknown"},
	}
	for _, tt := range tests {
		if got := tt.n.AirGapped(); got != tt.airGapped {
			t.Errorf("%+v AirGapped = %v, want %v", tt.n, got, tt.airGapped)
		}
		if got := tt.n.Summary(); !strings.Contains(got, tt.want) {
			t.Errorf("%+v Summary = %q, want it to contain %q", tt.n, got, tt.want)
		}
	}
}

func TestInspect(t *testing.T) {
	id := Inspect()
	if id.Host == "" || id.OS == "" || id.Custos == "" || id.Clock.IsZero() {
		t.Fatalf("Inspect left fields empty: %+v", id)
	}
}
