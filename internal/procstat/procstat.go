// Package procstat measures what a benchmark's operation costs the running process beyond
// its time: peak resident memory, which Go's allocation counts miss (what the heap keeps
// between collections, what the operating system charges), and CPU time, which other work on
// a shared machine disturbs less than the time on the clock.
package procstat

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Meter holds the process's CPU time at Start.
type Meter struct {
	cpu time.Duration
}

// Start returns the heap to the operating system and resets the kernel's high-water mark of
// this process's resident memory (writing 5 to /proc/self/clear_refs), so that what a
// benchmark's setup left behind is not counted, and notes the CPU time used so far.
func Start(tb testing.TB) *Meter {
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		tb.Logf("cannot reset the peak RSS: %v", err)
	}
	return &Meter{cpu: cpuTime()}
}

// PeakRSS returns the process's peak resident memory since Start, in bytes.
func (m *Meter) PeakRSS() float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) * 1024
		}
	}
	return 0
}

// CPU returns the user and system CPU time of every thread of the process since Start.
func (m *Meter) CPU() time.Duration { return cpuTime() - m.cpu }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
