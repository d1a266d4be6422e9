package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/run"
)

// certificatesOf writes n device certificates issued elsewhere by the issuing CA, as a
// factory's PEM files in a folder.
func certificatesOf(t *testing.T, s *shell, issuer string, serials ...string) string {
	ctx := context.Background()
	m, err := hsm.Open(s.cfg.Module)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ca, err := run.OpenIssuer(ctx, s.reg, m, issuer, []byte("ops-pin-1234"), run.SignCertificates)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	dir := t.TempDir()
	for _, sn := range serials {
		dk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		serial, _ := pki.NewSerial(rand.Reader)
		c, _, err := pki.Issue(pki.DeviceIdentity{SerialNumber: sn, Manufacturer: "Acme Medical", Model: "Monitor M7", ValidityYears: 5}, serial, dk.Public(), ca.Signer())
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, sn+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o644)
	}
	return dir
}

func devicesTab(s *shell, i int) {
	findAll[*container.AppTabs](s.body)[0].SelectIndex(i)
}

func TestDevicesScreenProvisionsImportsFindsAndShows(t *testing.T) {
	s, _, issuer := world(t, true)
	onUI(func() { s.show("devices") })
	eventually(t, "the empty list", func() bool { return strings.Contains(texts(s.body), "No devices are registered yet") })

	// Provision: a wrong operator PIN is said in words, and the form keeps what was typed.
	eventually(t, "the issuing CAs", func() bool {
		devicesTab(s, 1)
		sel := findAll[*widget.Select](s.body)
		return len(sel) > 0 && sel[0].Selected == "GUI Devices CA ("+issuer+")"
	})
	onUI(func() {
		entryWithPlaceholder(t, s, "device serial").SetText("DEV-0001")
		entryWithPlaceholder(t, s, "device model").SetText("Infusion Pump X2")
		entryWithPlaceholder(t, s, "label for the device token").SetText("dev-0001")
		entryWithPlaceholder(t, s, "operator PIN").SetText("wrong-pin-99")
		entryWithPlaceholder(t, s, "device PIN").SetText("device-pin-1")
		test.Tap(button(s.body, "Provision"))
	})
	eventually(t, "the wrong PIN", func() bool { return strings.Contains(texts(s.body), "is wrong. Type it again") })
	onUI(func() {
		if txt := texts(s.body); strings.Contains(strings.SplitN(txt, "[Details]", 2)[0], "CKR_") {
			t.Errorf("a PKCS#11 code is shown outside the details:\n%s", txt)
		}
		if entryWithPlaceholder(t, s, "device serial").Text != "DEV-0001" {
			t.Error("a failed provision dropped the serial")
		}
		entryWithPlaceholder(t, s, "operator PIN").SetText("ops-pin-1234")
		entryWithPlaceholder(t, s, "device PIN").SetText("device-pin-1")
		entryWithPlaceholder(t, s, "device PIN").TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn}) // Enter provisions
	})
	eventually(t, "the provision", func() bool {
		return strings.Contains(texts(s.body), "Device DEV-0001 is provisioned on token “dev-0001”")
	})
	// pkcs11-tool sees the device token and its key.
	out, err := exec.Command("pkcs11-tool", "--module", s.cfg.Module, "--token-label", "dev-0001", "--login", "--pin", "device-pin-1", "--list-objects").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Private Key Object") || !strings.Contains(string(out), "Certificate Object") {
		t.Errorf("pkcs11-tool on dev-0001: %v\n%s", err, out)
	}

	// Import: two certificates from a folder.
	dir := certificatesOf(t, s, issuer, "IMP-0001", "IMP-0002")
	onUI(func() {
		devicesTab(s, 2)
	})
	eventually(t, "the import form", func() bool {
		sel := findAll[*widget.Select](s.body)
		return len(sel) > 0 && strings.Contains(sel[0].Selected, issuer)
	})
	// A UDI list with a mistyped check digit on its line 3 is refused, naming the file and
	// line, and nothing is registered; put right, it gives IMP-0001 its UDI.
	udis := filepath.Join(t.TempDir(), "udis.csv")
	if err := os.WriteFile(udis, []byte("serial,udi\nIMP-0001,(01)00844588003288(21)IMP-0001\nIMP-0002,(01)00844588003289(21)IMP-0002\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	onUI(func() {
		entryWithPlaceholder(t, s, "certificate files").SetText(dir)
		entryWithPlaceholder(t, s, "CSV file with columns serial,udi").SetText(udis)
		test.Tap(button(s.body, "Import"))
	})
	eventually(t, "the bad UDI list", func() bool {
		txt := texts(s.body)
		return strings.Contains(txt, "1 line of the UDI list cannot be used: line 3, device IMP-0002: the GTIN 00844588003289 in the UDI has the check digit 9") &&
			strings.Contains(txt, "udis.csv: UDI list: line 3: device IMP-0002: the GTIN")
	})
	snapshot(t, s, "devices-import-udi")
	if d, err := s.reg.Device(context.Background(), "IMP-0001"); err == nil {
		t.Fatalf("a refused import registered %+v", d)
	}
	if err := os.WriteFile(udis, []byte("serial,udi\nIMP-0001,(01)00844588003288(21)IMP-0001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	onUI(func() { test.Tap(button(s.body, "Import")) })
	eventually(t, "the import", func() bool {
		return strings.Contains(texts(s.body), "2 devices registered under GUI Devices CA") && strings.Contains(texts(s.body), "1 device given a UDI from udis.csv.")
	})
	for serial, want := range map[string]string{"IMP-0001": "(01)00844588003288(21)IMP-0001", "IMP-0002": ""} {
		if d, err := s.reg.Device(context.Background(), serial); err != nil || d.UDI != want {
			t.Errorf("%s: UDI %q, want %q (%v)", serial, d.UDI, want, err)
		}
	}

	// The list: every device, the search, the status filter, a device's history.
	onUI(func() { devicesTab(s, 0) })
	eventually(t, "three devices", func() bool { return strings.Contains(texts(s.body), "3 devices match.") })
	onUI(func() { entryWithPlaceholder(t, s, "search serial").SetText("imp-") })
	eventually(t, "the search", func() bool { return strings.Contains(texts(s.body), "2 devices match.") })
	onUI(func() { findAll[*widget.Select](s.body)[0].SetSelected("Decommissioned") })
	eventually(t, "the filter", func() bool { return strings.Contains(texts(s.body), "0 devices match.") })
	onUI(func() {
		findAll[*widget.Select](s.body)[0].SetSelected("Active")
		entryWithPlaceholder(t, s, "search serial").SetText("pump")
	})
	eventually(t, "the model search", func() bool { return strings.Contains(texts(s.body), "1 device matches.") })
	onUI(func() { findAll[*widget.Table](s.body)[0].Select(widget.TableCellID{Row: 0, Col: 0}) })
	eventually(t, "the history", func() bool { return strings.Contains(texts(s.body), "device DEV-0001") })
	h, err := s.reg.DeviceHistory(context.Background(), "DEV-0001")
	if err != nil || len(h.Certificates) != 1 || len(h.Keys) != 1 {
		t.Fatalf("history: %+v %v", h, err)
	}
	serial := h.Certificates[0].Serial.String()
	onUI(func() {
		txt := texts(s.body)
		// As custos device show prints it: each certificate and key with the period it served.
		for _, want := range []string{"model    Infusion Pump X2", "certificate " + serial + " of " + issuer + "  valid ", "until", ": current",
			`on "dev-0001", public key SHA-256`, "active"} {
			if !strings.Contains(txt, want) {
				t.Errorf("the history lacks %q:\n%s", want, txt)
			}
		}
	})
	snapshot(t, s, "devices-history")

	// As it was at a moment: before it was registered, and now.
	onUI(func() {
		entryWithPlaceholder(t, s, "2026-03-01T14:30:00Z").SetText("2001-01-01")
		test.Tap(button(s.body, "As it was then"))
	})
	eventually(t, "the device then", func() bool {
		return strings.Contains(texts(s.body), "device DEV-0001 at 2001-01-01T00:00:00Z: not yet registered\nno certificate yet")
	})
	onUI(func() {
		entryWithPlaceholder(t, s, "2026-03-01T14:30:00Z").SetText(time.Now().UTC().Add(time.Minute).Format(time.RFC3339))
		entryWithPlaceholder(t, s, "2026-03-01T14:30:00Z").TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	})
	eventually(t, "the device now", func() bool {
		return strings.Contains(texts(s.body), "certificate "+serial+" of "+issuer+": valid then, not revoked as of then")
	})
	onUI(func() {
		entryWithPlaceholder(t, s, "2026-03-01T14:30:00Z").SetText("yesterday")
		test.Tap(button(s.body, "As it was then"))
		if txt := texts(s.body); !strings.Contains(txt, "Check the field “At”") {
			t.Errorf("a bad moment is not named:\n%s", txt)
		}
	})

	// Who had a certificate (by its serial, with colons as openssl prints it) or a key.
	colons := strings.ToUpper(serial[:2]) + ":" + serial[2:]
	onUI(func() {
		entryWithPlaceholder(t, s, "a certificate serial").SetText(colons)
		test.Tap(button(s.body, "Find"))
	})
	eventually(t, "the certificate's device", func() bool {
		txt := texts(s.body)
		return strings.Contains(txt, "1 device had it.") && strings.Contains(txt, "device DEV-0001 (Infusion Pump X2), active\n  certificate "+serial)
	})
	onUI(func() {
		entryWithPlaceholder(t, s, "a certificate serial").SetText(strings.Repeat("ab", 31) + "cd")
		test.Tap(button(s.body, "Find"))
	})
	eventually(t, "nobody had it", func() bool { return strings.Contains(texts(s.body), "No device in this workspace has had it.") })
	onUI(func() {
		entryWithPlaceholder(t, s, "a certificate serial").SetText(fmt.Sprintf("%x", h.Keys[0].PublicKeySHA256))
		entryWithPlaceholder(t, s, "a certificate serial").TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	})
	eventually(t, "the key's device", func() bool {
		txt := texts(s.body) // the key's period, and its certificate's
		return strings.Contains(txt, "1 device had it.") && strings.Contains(txt, "device DEV-0001 (Infusion Pump X2), active\n  certificate ") &&
			strings.Contains(txt, "\n  key "+fmt.Sprintf("%x", h.Keys[0].KeyID))
	})
}
