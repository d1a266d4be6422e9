package ceremony

import (
	"context"
	"testing"

	"github.com/custos-pki/custos/internal/inputfile/inputfiletest"
	"github.com/custos-pki/custos/run"
)

// TestRestoreRefusesHostileBackups: a backup file that is a device, a FIFO nobody writes to,
// a socket, a folder or a file over 64 KiB is refused at once, naming it, before any share
// is used or any token is touched.
func TestRestoreRefusesHostileBackups(t *testing.T) {
	for _, h := range inputfiletest.Inputs(t, "backup", maxBackupFile) {
		t.Run(h.Name, func(t *testing.T) {
			inputfiletest.Refuse(t, h, func(path string) error {
				_, err := Restore(context.Background(), run.Env{}, nil, RestoreRequest{Backup: path, Token: "acme-root-2026-b"})
				return err
			})
		})
	}
}
