//go:build linux

package nodump

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestApplyInAProcess runs Apply in a child process (this test binary again), which then reads
// back what the kernel holds for it: prctl(PR_GET_DUMPABLE), getrlimit(RLIMIT_CORE) and the
// "Max core file size" line of /proc/self/limits.
func TestApplyInAProcess(t *testing.T) {
	if os.Getenv("NODUMP_CHILD") == "1" {
		child()
		return
	}
	// Before: a test process is dumpable (the child is, until it applies).
	if d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0); err != nil || d != 1 {
		t.Fatalf("this test process: dumpable = %d, %v; want 1 before Apply", d, err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestApplyInAProcess$")
	cmd.Env = append(os.Environ(), "NODUMP_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	for _, want := range []string{"dumpable 0", "rlimit core 0 0", "limits Max core file size 0 0 bytes"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("child says\n%s\nwant %q", out, want)
		}
	}
}

func child() {
	if err := Apply(); err != nil {
		println("apply:", err.Error())
		os.Exit(2)
	}
	d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	if err != nil {
		println("prctl:", err.Error())
		os.Exit(2)
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CORE, &lim); err != nil {
		println("getrlimit:", err.Error())
		os.Exit(2)
	}
	limits, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		println("limits:", err.Error())
		os.Exit(2)
	}
	line := ""
	for _, l := range strings.Split(string(limits), "\n") {
		if strings.HasPrefix(l, "Max core file size") {
			line = strings.Join(strings.Fields(l), " ")
		}
	}
	os.Stdout.WriteString("dumpable " + strconv.Itoa(d) + "\nrlimit core " + strconv.FormatUint(lim.Cur, 10) + " " + strconv.FormatUint(lim.Max, 10) + "\nlimits " + line + "\n")
	os.Exit(0)
}
