// Package procstat measures what a benchmark's operation costs the running process beyond
// its time: peak resident memory, which Go's allocation counts miss (what the heap keeps
// between collections, what the operating system charges), and CPU time, which other work on
// a shared machine disturbs less than the time on the clock.
package procstat

import (
	"os"
	"os/exec"
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

// Report reports the peak resident memory since Start as peak-MB, and the CPU time since
// Start per operation as cpu-s/op.
func (m *Meter) Report(b *testing.B) {
	b.ReportMetric(m.PeakRSS()/1e6, "peak-MB")
	b.ReportMetric(m.CPU().Seconds()/float64(b.N), "cpu-s/op")
}

// Children sums what the commands a benchmark runs cost, such as `openssl ca -gencrl`
// measured beside Custos: the largest peak resident memory of any, and their CPU time.
type Children struct {
	peakKB int64
	cpu    time.Duration
}

// Run runs cmd and adds its cost; a command that fails fails tb, with its output.
func (c *Children) Run(tb testing.TB, cmd *exec.Cmd) {
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		c.peakKB = max(c.peakKB, ru.Maxrss)
	}
	c.cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

// Report reports the commands' peak-MB and cpu-s/op.
func (c *Children) Report(b *testing.B) {
	b.ReportMetric(float64(c.peakKB)*1024/1e6, "peak-MB")
	b.ReportMetric(c.cpu.Seconds()/float64(b.N), "cpu-s/op")
}
