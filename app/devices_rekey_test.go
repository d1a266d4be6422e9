package app

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/decommission"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/registry"
)

// provisioned makes device serial on token "dev-"+serial, as the factory would.
func provisioned(t *testing.T, s *shell, issuer, serial string) *decommission.Provisioned {
	t.Helper()
	p, err := decommission.Provision(context.Background(), s.runEnv(), decommission.ProvisionRequest{Issuer: issuer, Serial: serial,
		Model: "Infusion Pump X2", Token: "dev-" + serial, OpsPIN: []byte("ops-pin-1234"), DevicePIN: []byte("device-pin-1")})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tokenListing is what pkcs11-tool, logged in with the device PIN, lists on a device token.
func tokenListing(t *testing.T, s *shell, token string) string {
	t.Helper()
	out, err := exec.Command("pkcs11-tool", "--module", s.cfg.Module, "--token-label", token, "--login", "--pin", "device-pin-1", "--list-objects").CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool on %s: %v\n%s", token, err, out)
	}
	return string(out)
}

// checkTokenHolds fails unless pkcs11-tool sees on token exactly one private key, one public
// key and one certificate, all under key id.
func checkTokenHolds(t *testing.T, s *shell, token string, id []byte) {
	t.Helper()
	l := tokenListing(t, s, token)
	privs, pubs, certs := strings.Count(l, "Private Key Object"), strings.Count(l, "Public Key Object"), strings.Count(l, "Certificate Object")
	if privs != 1 || pubs != 1 || certs != 1 || strings.Count(l, fmt.Sprintf("ID:         %x", id)) != 3 {
		t.Errorf("token %s: %d private keys, %d public keys, %d certificates, want one each under id %x:\n%s", token, privs, pubs, certs, id, l)
	}
}

// openRekey selects the device in the list and opens the Re-key tab with it.
func openRekey(t *testing.T, s *shell, serial string) {
	t.Helper()
	onUI(func() { s.show("devices") })
	eventually(t, "the device listed", func() bool { return strings.Contains(texts(s.body), "1 device matches.") })
	onUI(func() {
		findAll[*widget.Table](s.body)[0].Select(widget.TableCellID{Row: 0, Col: 0})
		test.Tap(button(s.body, "Re-key…"))
	})
	eventually(t, "the device in the Re-key tab", func() bool {
		return strings.Contains(texts(s.body), serial+" (Infusion Pump X2), active; key ecdsa-p256 on token “dev-"+serial+"”")
	})
}

// A device is re-keyed from the Devices screen onto a newer issuing CA and another algorithm:
// pkcs11-tool sees the new key alone on its token, the registry's history has the old key
// destroyed and its certificate revoked superseded, and the screen's history says so.
func TestDevicesScreenRekeysADevice(t *testing.T) {
	s, people, issuer := world(t, true)
	p := provisioned(t, s, issuer, "RK-0001")
	q, _ := ceremony.LoadQuorum(context.Background(), s.reg, "gui-root")
	q.Add(people.shares[1])
	q.Add(people.shares[2])
	second, err := ceremony.IssueCA(context.Background(), s.runEnv(), q, ceremony.IssueCARequest{CommonName: "GUI Devices CA 2", OpsPIN: []byte("ops-pin-1234")})
	if err != nil {
		t.Fatal(err)
	}
	openRekey(t, s, "RK-0001")
	onUI(func() {
		sels := findAll[*widget.Select](s.body)
		var alg, iss *widget.Select
		for _, sel := range sels {
			switch sel.PlaceHolder {
			case "the new key's algorithm":
				alg = sel
			case "choose the issuing CA":
				iss = sel
			}
		}
		if alg == nil || iss == nil {
			t.Fatalf("no algorithm or issuer choice:\n%s", texts(s.body))
		}
		// The defaults: the current key's algorithm and the device's CA; the newer CA offered.
		if alg.Selected != "ecdsa-p256" || iss.Selected != "GUI Devices CA ("+issuer+")" ||
			len(iss.Options) != 2 || iss.Options[1] != "GUI Devices CA 2 ("+second.IssuerID+")" {
			t.Fatalf("choices: algorithm %q, issuer %q of %q", alg.Selected, iss.Selected, iss.Options)
		}
		alg.SetSelected("ecdsa-p384")
		iss.SetSelected(iss.Options[1])
		entryWithPlaceholder(t, s, "technician").SetText("Tess Tech")
		entryWithPlaceholder(t, s, "operator PIN").SetText("ops-pin-1234")
		entryWithPlaceholder(t, s, "the device token's").SetText("device-pin-1")
		// A validity or a next update that is not a whole number is refused before anything.
		for _, bad := range []struct{ placeholder, text, want string }{
			{"10, or what the issuing CA has left", "three", "the validity is a whole number of years"},
			{"days from now", "0", "the CRL's next update is a whole number of days"},
		} {
			e := entryWithPlaceholder(t, s, bad.placeholder)
			old := e.Text
			e.SetText(bad.text)
			test.Tap(button(s.body, "Re-key"))
			if top := s.win.Canvas().Overlays().Top(); top != nil {
				t.Fatalf("%q asked for a confirmation:\n%s", bad.text, texts(top))
			}
			if !strings.Contains(texts(s.body), bad.want) {
				t.Errorf("%q: the screen does not say %q:\n%s", bad.text, bad.want, texts(s.body))
			}
			e.SetText(old)
		}
		entryWithPlaceholder(t, s, "10, or what the issuing CA has left").SetText("3")
		entryWithPlaceholder(t, s, "days from now").SetText("7")
		test.Tap(button(s.body, "Re-key"))
		top := s.win.Canvas().Overlays().Top()
		if top == nil {
			t.Fatal("no confirmation was asked")
		}
		what := texts(top)
		for _, want := range []string{"new ecdsa-p384 key, generated on its token “dev-RK-0001”", "new certificate from GUI Devices CA 2", "valid 3 years",
			"certificate " + pki.SerialHex(p.Certificate.SerialNumber) + " is revoked as superseded", "current key is destroyed"} {
			if !strings.Contains(what, want) {
				t.Errorf("the confirmation lacks %q:\n%s", want, what)
			}
		}
		confirmAction(t, s, "Re-key", "RK-0001")
		if entryWithPlaceholder(t, s, "operator PIN").Text != "" || entryWithPlaceholder(t, s, "the device token's").Text != "" {
			t.Error("a PIN stays in its entry after the rekey started")
		}
	})
	eventually(t, "the rekey", func() bool {
		txt := texts(s.body)
		return strings.Contains(txt, "Device RK-0001 is re-keyed on token “dev-RK-0001”") && strings.Contains(txt, "active; key ecdsa-p384")
	})
	snapshot(t, s, "devices-rekey")

	// The registry: two keys, the old destroyed and its certificate revoked superseded.
	ctx := context.Background()
	h, err := s.reg.DeviceHistory(ctx, "RK-0001")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Keys) != 2 || len(h.Certificates) != 2 || h.Keys[0].State != registry.KeyDestroyed || h.Keys[1].State != registry.KeyActive {
		t.Fatalf("history after the rekey: %d keys, %d certificates: %+v", len(h.Keys), len(h.Certificates), h.Keys)
	}
	if len(h.Revocations) != 1 || h.Revocations[0].Reason != pki.ReasonSuperseded || h.Device.IssuerID != second.IssuerID ||
		h.Certificates[1].IssuerID != second.IssuerID {
		t.Errorf("revocations %+v, device issuer %s, new certificate's %s; want the old one superseded and %s", h.Revocations,
			h.Device.IssuerID, h.Certificates[1].IssuerID, second.IssuerID)
	}
	// The old issuer's CRL, by openssl: the old certificate, superseded.
	crl, err := s.reg.LatestCRL(ctx, issuer)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("openssl", "crl", "-inform", "DER", "-in", crl.Path, "-noout", "-text").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Serial Number: "+pki.SerialHex(p.Certificate.SerialNumber)) || !strings.Contains(string(out), "Superseded") {
		t.Errorf("openssl crl %s: %v\n%s", crl.Path, err, out)
	}
	// The validity and the next update typed in: 3 years, 7 days, as openssl reads them.
	if next := opensslDate(t, "crl", crl.Path, "-nextupdate"); next.Sub(time.Now()) < 6*24*time.Hour || next.Sub(time.Now()) > 8*24*time.Hour {
		t.Errorf("the CRL's next update is %s, want about 7 days from now", next)
	}
	certPath := filepath.Join(t.TempDir(), "new.der")
	if err := os.WriteFile(certPath, h.Certificates[1].DER, 0o644); err != nil {
		t.Fatal(err)
	}
	if end := opensslDate(t, "x509", certPath, "-enddate"); end.Sub(time.Now().AddDate(3, 0, 0)).Abs() > 48*time.Hour {
		t.Errorf("the new certificate ends %s, want 3 years from now", end)
	}
	// The token, by pkcs11-tool: the new key alone, a P-384 key under the new id.
	checkTokenHolds(t, s, "dev-RK-0001", h.Keys[1].KeyID)
	if l := tokenListing(t, s, "dev-RK-0001"); !strings.Contains(l, "EC_POINT 384 bits") {
		t.Errorf("the new key is not P-384:\n%s", l)
	}
	// The screen: what was done, the record, and the device's history with both periods.
	onUI(func() {
		txt := texts(s.body)
		for _, want := range []string{"New key " + fmt.Sprintf("%x", h.Keys[1].KeyID), "revoked (superseded) on CRL number 1", "The signed record is "} {
			if !strings.Contains(txt, want) {
				t.Errorf("the Re-key tab lacks %q:\n%s", want, txt)
			}
		}
	})
	onUI(func() { devicesTab(s, 0) })
	eventually(t, "the history with the rekey", func() bool {
		txt := texts(s.body)
		return strings.Contains(txt, "certificate "+h.Certificates[1].Serial.String()+" of "+second.IssuerID) &&
			strings.Contains(txt, "superseded") && strings.Contains(txt, "destroyed")
	})
}

// A wrong device PIN is said in words; the device keeps its old identity, on its token and in
// the registry; the run it stopped is listed in the Re-key tab and resumes there with the
// right PINs.
func TestDevicesScreenRekeyWrongDevicePIN(t *testing.T) {
	s, _, issuer := world(t, true)
	provisioned(t, s, issuer, "RK-0002")
	ctx := context.Background()
	before, err := s.reg.DeviceHistory(ctx, "RK-0002")
	if err != nil {
		t.Fatal(err)
	}
	openRekey(t, s, "RK-0002")
	onUI(func() {
		entryWithPlaceholder(t, s, "technician").SetText("Tess Tech")
		entryWithPlaceholder(t, s, "operator PIN").SetText("ops-pin-1234")
		entryWithPlaceholder(t, s, "the device token's").SetText("wrong-pin-99")
		test.Tap(button(s.body, "Re-key"))
		confirmAction(t, s, "Re-key", "RK-0002")
	})
	eventually(t, "the wrong PIN", func() bool { return strings.Contains(texts(s.body), "is wrong. Type it again") })
	onUI(func() {
		txt := texts(s.body)
		if strings.Contains(strings.SplitN(txt, "[Details]", 2)[0], "CKR_") {
			t.Errorf("a PKCS#11 code is shown outside the details:\n%s", txt)
		}
		if strings.Contains(txt, "is re-keyed") {
			t.Errorf("a failed rekey says it re-keyed:\n%s", txt)
		}
	})
	checkTokenHolds(t, s, "dev-RK-0002", before.Keys[0].KeyID)
	after, err := s.reg.DeviceHistory(ctx, "RK-0002")
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Keys) != 1 || len(after.Certificates) != 1 || len(after.Revocations) != 0 || after.Keys[0].State != registry.KeyActive {
		t.Fatalf("after a wrong device PIN: %d keys, %d certificates, %d revocations, key %s", len(after.Keys), len(after.Certificates),
			len(after.Revocations), after.Keys[0].State)
	}

	// The stopped run, listed in the tab, resumes with the right PINs.
	eventually(t, "the stopped rekey", func() bool {
		txt := texts(s.body)
		return strings.Contains(txt, "Runs that stopped half way") && strings.Contains(txt, ": rekey of RK-0002, failed since")
	})
	snapshot(t, s, "devices-rekey-stopped")
	onUI(func() {
		entryWithPlaceholder(t, s, "operator PIN (abort").SetText("ops-pin-1234")
		entryWithPlaceholder(t, s, "device PIN (to finish").SetText("device-pin-1")
		test.Tap(button(s.body, "Resume"))
	})
	eventually(t, "the resumed rekey", func() bool { return strings.Contains(texts(s.body), "device RK-0002 re-keyed") })
	h, err := s.reg.DeviceHistory(ctx, "RK-0002")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Keys) != 2 || h.Keys[0].State != registry.KeyDestroyed || h.Keys[1].State != registry.KeyActive {
		t.Fatalf("after the resume: %+v", h.Keys)
	}
	checkTokenHolds(t, s, "dev-RK-0002", h.Keys[1].KeyID)
}

// opensslDate is the date `openssl KIND -inform DER -in path -noout FLAG` prints
// (nextUpdate=..., notAfter=...).
func opensslDate(t *testing.T, kind, path, flag string) time.Time {
	t.Helper()
	out, err := exec.Command("openssl", kind, "-inform", "DER", "-in", path, "-noout", flag).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s %s: %v\n%s", kind, flag, err, out)
	}
	_, v, ok := strings.Cut(strings.TrimSpace(string(out)), "=")
	at, perr := time.Parse("Jan _2 15:04:05 2006 MST", v)
	if !ok || perr != nil {
		t.Fatalf("openssl %s %s: %q: %v", kind, flag, out, perr)
	}
	return at
}
