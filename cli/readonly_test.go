package cli

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/custos-pki/custos/cli/command"
	"github.com/custos-pki/custos/internal/readonlytest"
)

// TestReadOnlyWorkspace: records on write-protected media. A workspace made by a real
// ceremony, an issuing CA, two devices (one decommissioned, one whose run stopped on a wrong
// PIN) is made read-only; runs, device list, device show, backup list and verify (against the
// workspace's root) then work and create or change nothing in it, and a command that writes is refused.
func TestReadOnlyWorkspace(t *testing.T) {
	readonlytest.Run(t, func(t *testing.T) string {
		b := newCeremonyBench(t)
		b.run(t, command.ExitOK, "ceremony", "root", "--plan", b.plan, "--shares-dir", b.shares, "--ops-pin-file", b.pin)
		two := b.share(1, "Cara-Cruz") + "," + b.share(2, "Cody-Chen")
		b.run(t, command.ExitOK, "ceremony", "issue-ca", "--root", "acme-root-2026", "--shares", two, "--name", "Acme Devices CA 1", "--ops-pin-file", b.pin)
		devPIN, wrongPIN := filepath.Join(b.dir, "device.pin"), filepath.Join(b.dir, "wrong.pin")
		os.WriteFile(devPIN, []byte("device-pin-1234\n"), 0o600)
		os.WriteFile(wrongPIN, []byte("not-the-pin\n"), 0o600)
		for _, sn := range []string{"SN-1", "SN-2"} {
			b.run(t, command.ExitOK, "device", "provision", "--issuer", "Acme Devices CA 1", "--serial", sn, "--model", "Pump X2",
				"--token", "dev-"+sn, "--ops-pin-file", b.pin, "--device-pin-file", devPIN)
		}
		b.run(t, command.ExitOK, "decommission", "--serial", "SN-1", "--method", "erase", "--technician", "Tess Tech", "--validator", "Vic Validator",
			"--ops-pin-file", b.pin, "--device-pin-file", devPIN)
		b.run(t, command.ExitFail, "decommission", "--serial", "SN-2", "--method", "erase", "--technician", "Tess Tech", "--validator", "Vic Validator",
			"--ops-pin-file", b.pin, "--device-pin-file", wrongPIN)
		return b.ws
	}, func(t *testing.T, ws string) {
		inWS := func(want int, args ...string) string {
			t.Helper()
			code, out, errs := custos(t, append(args, "--workspace", ws)...)
			if code != want {
				t.Fatalf("custos %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errs)
			}
			return out + errs
		}
		out := inWS(command.ExitOK, "runs")
		if !strings.Contains(out, "decommission single  SN-2") {
			t.Errorf("runs:\n%s", out)
		}
		out = inWS(command.ExitOK, "device", "list")
		if !strings.Contains(out, "SN-1") || !strings.Contains(out, "decommissioned") || !strings.Contains(out, "2 devices") {
			t.Errorf("device list:\n%s", out)
		}
		out = inWS(command.ExitOK, "device", "show", "SN-1")
		if !strings.Contains(out, "status   decommissioned") || !strings.Contains(out, "destroyed") {
			t.Errorf("device show:\n%s", out)
		}
		out = inWS(command.ExitOK, "backup", "list", "--root", "acme-root-2026")
		if !strings.Contains(out, "current") {
			t.Errorf("backup list:\n%s", out)
		}
		records, _ := filepath.Glob(filepath.Join(ws, "records", "*.pdf"))
		if len(records) < 2 {
			t.Fatalf("records: %v", records)
		}
		for _, rec := range records {
			if out := inWS(command.ExitOK, "verify", rec); !strings.Contains(out, "verifies") {
				t.Errorf("verify %s:\n%s", rec, out)
			}
		}
		journals, _ := filepath.Glob(filepath.Join(ws, "journal", "*.jsonl"))
		for _, j := range journals {
			inWS(command.ExitOK, "verify", j)
		}
		if syscall.Access(ws, 2 /* W_OK */) == nil {
			return // root on a folder made read-only by its modes: a writer would write
		}
		pin := filepath.Join(t.TempDir(), "ops.pin")
		os.WriteFile(pin, []byte("ops-pin-1234\n"), 0o600)
		if out := inWS(command.ExitFail, "crl", "publish", "--issuer", "Acme Devices CA 1", "--ops-pin-file", pin); !strings.Contains(out, "the workspace is not writable") {
			t.Errorf("crl publish on a read-only workspace:\n%s", out)
		}
	})
}
