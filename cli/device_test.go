package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestDeviceAndDecommissionCommands(t *testing.T) {
	b := newCeremonyBench(t)
	b.run(t, ExitOK, "ceremony", "root", "--plan", b.plan, "--shares-dir", b.shares, "--ops-pin-file", b.pin)
	two := b.share(1, "Cara-Cruz") + "," + b.share(2, "Cody-Chen")
	out := b.run(t, ExitOK, "ceremony", "issue-ca", "--root", "acme-root-2026", "--shares", two, "--name", "Acme Devices CA 1", "--ops-pin-file", b.pin)
	issuer := regexp.MustCompile(`issuing CA (ica-[0-9a-f]+)`).FindStringSubmatch(out)[1]
	devPIN := filepath.Join(b.dir, "device.pin")
	os.WriteFile(devPIN, []byte("device-pin-1234\n"), 0o600)

	for _, sn := range []string{"SN-1", "SN-2", "SN-3", "SN-4"} {
		// --issuer takes the id or the common name.
		ref := issuer
		if sn == "SN-2" {
			ref = "Acme Devices CA 1"
		}
		b.run(t, ExitOK, "device", "provision", "--issuer", ref, "--serial", sn, "--model", "Pump X2", "--token", "dev-"+sn,
			"--ops-pin-file", b.pin, "--device-pin-file", devPIN)
	}
	b.run(t, ExitUsage, "device", "provision", "--issuer", issuer, "--serial", "SN-9", "--model", "M", "--token", "t", "--ops-pin-file", b.pin)
	if out := b.run(t, ExitOK, "device", "list", "--status", "active"); strings.Count(out, "Pump X2") != 4 {
		t.Errorf("device list:\n%s", out)
	}
	b.run(t, ExitUsage, "device", "list", "--status", "broken")

	out = b.run(t, ExitOK, "decommission", "--serial", "SN-1", "--method", "erase", "--technician", "Tess Tech",
		"--ops-pin-file", b.pin, "--device-pin-file", devPIN)
	record := regexp.MustCompile(`record\s+(\S+\.pdf)`).FindStringSubmatch(out)
	if record == nil {
		t.Fatalf("no record named:\n%s", out)
	}
	b.run(t, ExitOK, "verify", record[1])
	if out := b.run(t, ExitOK, "device", "show", "SN-1"); !strings.Contains(out, "decommissioned") || !strings.Contains(out, "destroyed") {
		t.Errorf("device show:\n%s", out)
	}
	// Refusals: again, no witness for unreachable, unknown method.
	b.run(t, ExitFail, "decommission", "--serial", "SN-1", "--method", "erase", "--technician", "T", "--ops-pin-file", b.pin, "--device-pin-file", devPIN)
	if out := b.run(t, ExitFail, "decommission", "--serial", "SN-2", "--method", "unreachable", "--technician", "T", "--ops-pin-file", b.pin); !strings.Contains(out, "witness") {
		t.Errorf("no witness: %s", out)
	}
	b.run(t, ExitUsage, "decommission", "--serial", "SN-2", "--method", "shred", "--technician", "T", "--ops-pin-file", b.pin)
	b.run(t, ExitUsage, "decommission", "--serial", "SN-2", "--manifest", "x.csv", "--technician", "T", "--ops-pin-file", b.pin)

	// A fleet with a malformed line is refused, naming it, before anything changes.
	bad := filepath.Join(b.dir, "bad.csv")
	os.WriteFile(bad, []byte("serial,method,reason,note\nSN-2,unreachable,,lost\nSN-3,melt,,\n"), 0o644)
	if out := b.run(t, ExitFail, "decommission", "--manifest", bad, "--technician", "T", "--witness", "W", "--ops-pin-file", b.pin); !strings.Contains(out, "line 3") {
		t.Errorf("bad manifest: %s", out)
	}
	good := filepath.Join(b.dir, "fleet.csv")
	os.WriteFile(good, []byte("serial,method,reason,note\nSN-2,unreachable,,lost\nSN-3,physical,,crushed\nSN-4,reinit,superseded,\n"), 0o644)
	out = b.run(t, ExitOK, "decommission", "--manifest", good, "--technician", "Tess Tech", "--witness", "Wes Witness", "--ops-pin-file", b.pin, "--device-pin-file", devPIN)
	if !strings.Contains(out, "3 decommissioned") {
		t.Errorf("fleet:\n%s", out)
	}
	if out := b.run(t, ExitOK, "decommission", "--manifest", good, "--technician", "Tess Tech", "--witness", "Wes Witness", "--ops-pin-file", b.pin); !strings.Contains(out, "already complete") {
		t.Errorf("fleet again:\n%s", out)
	}
	out = b.run(t, ExitOK, "crl", "publish", "--issuer", issuer, "--ops-pin-file", b.pin, "--next-update-days", "90")
	pemPath := regexp.MustCompile(`PEM\s+(\S+)`).FindStringSubmatch(out)[1]
	txt, _ := exec.Command("openssl", "crl", "-in", pemPath, "-noout", "-text").CombinedOutput()
	if strings.Count(string(txt), "Serial Number:") != 4 || !strings.Contains(string(txt), "Key Compromise") || !strings.Contains(string(txt), "Superseded") {
		t.Errorf("CRL:\n%s", txt)
	}
	if out := b.run(t, ExitOK, "runs"); !strings.Contains(out, "no unfinished runs") {
		t.Errorf("runs: %s", out)
	}
	checkNoSecretsLeaked(t, b, []string{b.shares})
}
