//go:build linux

package nodump

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Apply sets RLIMIT_CORE to 0 (soft and hard, so nothing in the process can raise it again)
// and PR_SET_DUMPABLE to 0. It is called before any secret exists.
func Apply() error {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		return fmt.Errorf("disable core dumps (RLIMIT_CORE 0): %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("disable core dumps and ptrace attach (PR_SET_DUMPABLE 0): %w", err)
	}
	return nil
}
