package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/custos-pki/custos/decommission"
	"github.com/custos-pki/custos/registry"
)

// typeToConfirm answers the typed confirmation of a decommission that is open.
func typeToConfirm(t *testing.T, s *shell, serial string) {
	t.Helper()
	confirmAction(t, s, "Decommission", serial)
}

// confirmAction answers the typed confirmation of action on serial that is open: a wrong
// serial leaves the action disabled, the right one starts it.
func confirmAction(t *testing.T, s *shell, action, serial string) {
	t.Helper()
	top := s.win.Canvas().Overlays().Top()
	if top == nil {
		t.Fatal("no confirmation was asked")
	}
	entry := findAll[*widget.Entry](top)[0]
	test.Type(entry, serial+"X")
	if b := button(top, action+" "+serial); b != nil {
		t.Fatal("the confirmation accepts a wrong serial")
	}
	entry.SetText("")
	test.Type(entry, serial)
	b := button(top, action+" "+serial)
	if b == nil {
		t.Fatal("the confirmation refuses the right serial")
	}
	test.Tap(b)
}

func TestDecommissionScreen(t *testing.T) {
	s, _, issuer := world(t, true)
	if _, err := decommission.Provision(context.Background(), s.runEnv(), decommission.ProvisionRequest{Issuer: issuer,
		Serial: "PUMP-0001", Model: "Infusion Pump X2", Token: "dev-pump-1", OpsPIN: []byte("ops-pin-1234"), DevicePIN: []byte("device-pin-1")}); err != nil {
		t.Fatal(err)
	}
	onUI(func() {
		s.show("decommission")
		test.Tap(button(s.body, "Look for device tokens"))
	})
	eventually(t, "the device list", func() bool { return strings.Contains(texts(s.body), "1 device token found") })
	onUI(func() {
		findAll[*widget.List](s.body)[0].Select(0)
		if entryWithPlaceholder(t, s, "device serial").Text != "PUMP-0001" {
			t.Error("selecting the device does not fill its serial")
		}
		if !strings.Contains(texts(s.body), "Destroys the device's key") {
			t.Error("the method's consequence is not written out")
		}
		// Unreachable without a witness is refused by the workflow, shown at the step.
		findAll[*widget.RadioGroup](s.body)[0].SetSelected("unreachable")
		entryWithPlaceholder(t, s, "technician").SetText("Tess Tech")
		entryWithPlaceholder(t, s, "another person").SetText("Vic Validator")
		entryWithPlaceholder(t, s, "operator PIN").SetText("ops-pin-1234")
		test.Tap(button(s.body, "Decommission"))
		typeToConfirm(t, s, "PUMP-0001")
	})
	eventually(t, "the witness refusal", func() bool { return strings.Contains(texts(s.body), "needs a witness") })
	onUI(func() {
		findAll[*widget.RadioGroup](s.body)[0].SetSelected("erase")
		entryWithPlaceholder(t, s, "operator PIN").SetText("ops-pin-1234")
		entryWithPlaceholder(t, s, "device PIN").SetText("device-pin-1")
		test.Tap(button(s.body, "Decommission"))
		typeToConfirm(t, s, "PUMP-0001")
	})
	eventually(t, "the decommission", func() bool { return strings.Contains(texts(s.body), "PUMP-0001 is decommissioned") })
	snapshot(t, s, "decommission-done")
	txt := texts(s.body)
	// Each step by its title, as the workflow names it.
	for _, want := range []string{"✓ Identify the device (proof of possession)", "✓ Erase the device's keys", "✓ Verify the erasure",
		"✓ Revoke the certificate", "✓ Sign the CRL", "✓ Write the signed record", "nothing remains", "The signed record is "} {
		if !strings.Contains(txt, want) {
			t.Errorf("screen lacks %q", want)
		}
	}
	dev, _ := s.reg.Device(context.Background(), "PUMP-0001")
	if dev.Status != registry.DeviceDecommissioned {
		t.Errorf("status %s", dev.Status)
	}
	recs, _ := filepath.Glob(s.ws.Path("records", "PUMP-0001-decommission-*.pdf"))
	crls, _ := filepath.Glob(s.ws.Path("crl", issuer+"-*.crl"))
	if len(recs) != 1 || len(crls) != 1 {
		t.Errorf("records %v, CRLs %v", recs, crls)
	}

	// The records screen names the run that wrote each record and how it ended, verifies it,
	// and fails a tampered copy.
	onUI(func() {
		s.show("records")
		files := s.recordFiles()
		found := false
		for _, f := range files {
			if f.name == filepath.Base(recs[0]) {
				found = true
				if f.kind != "decommission" || f.outcome != "PUMP-0001 decommissioned" {
					t.Errorf("records screen says %q, %q of %s", f.kind, f.outcome, f.name)
				}
			}
		}
		if !found {
			t.Errorf("records screen lacks %s: %+v", filepath.Base(recs[0]), files)
		}
	})
	data, _ := os.ReadFile(recs[0])
	data[len(data)/2] ^= 1
	os.WriteFile(s.ws.Path("records", "tampered.pdf"), data, 0o644)
	for _, tc := range []struct{ name, want string }{{filepath.Base(recs[0]), "verifies."}, {"tampered.pdf", "FAIL  signature is valid"}} {
		onUI(func() { s.show("records") })
		eventually(t, "the records listed", func() bool { return findAll[*widget.List](s.body)[0].Length() > 0 })
		onUI(func() {
			l := findAll[*widget.List](s.body)[0]
			for i, f := range s.recordFiles() {
				if f.name == tc.name {
					l.Select(i)
				}
			}
			test.Tap(button(s.body, "Verify"))
		})
		eventually(t, "verification of "+tc.name, func() bool { return strings.Contains(texts(s.body), tc.want) })
	}
}

// Nothing is done until the serial is typed: cancelling the confirmation changes nothing.
func TestDecommissionAsksToTypeTheSerial(t *testing.T) {
	s, _, issuer := world(t, true)
	if _, err := decommission.Provision(context.Background(), s.runEnv(), decommission.ProvisionRequest{Issuer: issuer,
		Serial: "PUMP-0002", Model: "Pump", Token: "dev-pump-2", OpsPIN: []byte("ops-pin-1234"), DevicePIN: []byte("device-pin-1")}); err != nil {
		t.Fatal(err)
	}
	onUI(func() {
		s.show("decommission")
		entryWithPlaceholder(t, s, "device serial").SetText("PUMP-0002")
		findAll[*widget.RadioGroup](s.body)[0].SetSelected("unreachable")
		entryWithPlaceholder(t, s, "technician").SetText("Tess Tech")
		entryWithPlaceholder(t, s, "another person").SetText("Vic Validator")
		entryWithPlaceholder(t, s, "required for physical").SetText("Wanda Witness")
		entryWithPlaceholder(t, s, "operator PIN").SetText("ops-pin-1234")
		entryWithPlaceholder(t, s, "operator PIN").TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn}) // Enter asks too
		top := s.win.Canvas().Overlays().Top()
		if top == nil || !strings.Contains(texts(top), "Type PUMP-0002 to confirm") {
			t.Fatal("Enter decommissioned without asking to type the serial")
		}
		test.Tap(button(top, "Cancel"))
	})
	if d, _ := s.reg.Device(context.Background(), "PUMP-0002"); d.Status != registry.DeviceActive {
		t.Errorf("a cancelled confirmation left the device %s", d.Status)
	}
	if runs, _ := s.reg.RunsOf(context.Background(), "PUMP-0002"); len(runs) != 0 {
		t.Errorf("a cancelled confirmation started %d runs", len(runs))
	}
}

// A 2000-character error (a serial of 2000 characters nobody registered) wraps inside a
// 1024x768 window: the window keeps its size.
func TestDecommissionLongErrorKeepsTheWindowSize(t *testing.T) {
	s, _, _ := world(t, true)
	serial := strings.Repeat("SN-LONG-0123456789", 120)[:2000]
	onUI(func() {
		s.win.Resize(fyne.NewSize(1024, 768))
		s.show("decommission")
		entryWithPlaceholder(t, s, "device serial").SetText(serial)
		findAll[*widget.RadioGroup](s.body)[0].SetSelected("unreachable")
		entryWithPlaceholder(t, s, "technician").SetText("Tess Tech")
		entryWithPlaceholder(t, s, "another person").SetText("Vic Validator")
		entryWithPlaceholder(t, s, "required for physical").SetText("Wanda Witness")
		entryWithPlaceholder(t, s, "operator PIN").SetText("ops-pin-1234")
		test.Tap(button(s.body, "Decommission"))
		top := s.win.Canvas().Overlays().Top()
		findAll[*widget.Entry](top)[0].SetText(serial)
		test.Tap(button(top, "Decommission "))
	})
	eventually(t, "the refusal", func() bool { return strings.Contains(texts(s.body), "is not registered") })
	onUI(func() {
		for _, a := range findAll[*widget.Accordion](s.body) {
			a.OpenAll() // the details too
		}
		if got := s.win.Canvas().Size(); got.Width != 1024 || got.Height != 768 {
			t.Errorf("the window is %v after a long error", got)
		}
		if min := s.win.Content().MinSize(); min.Width > 1024 || min.Height > 768 {
			t.Errorf("the window needs %v for a long error", min)
		}
	})
	snapshot(t, s, "decommission-long-error")
}

// The validator is another person than the technician: the screen says so naming the field,
// and the device stays as it was.
func TestDecommissionValidatorIsAnotherPerson(t *testing.T) {
	s, _, issuer := world(t, true)
	if _, err := decommission.Provision(context.Background(), s.runEnv(), decommission.ProvisionRequest{Issuer: issuer,
		Serial: "PUMP-0003", Model: "Pump", Token: "dev-pump-3", OpsPIN: []byte("ops-pin-1234"), DevicePIN: []byte("device-pin-1")}); err != nil {
		t.Fatal(err)
	}
	onUI(func() {
		s.show("decommission")
		entryWithPlaceholder(t, s, "device serial").SetText("PUMP-0003")
		findAll[*widget.RadioGroup](s.body)[0].SetSelected("unreachable")
		entryWithPlaceholder(t, s, "technician").SetText("Tess Tech")
		entryWithPlaceholder(t, s, "another person").SetText("TESS TECH")
		entryWithPlaceholder(t, s, "required for physical").SetText("Wanda Witness")
		entryWithPlaceholder(t, s, "operator PIN").SetText("ops-pin-1234")
		test.Tap(button(s.body, "Decommission"))
		top := s.win.Canvas().Overlays().Top()
		findAll[*widget.Entry](top)[0].SetText("PUMP-0003")
		test.Tap(button(top, "Decommission "))
	})
	eventually(t, "the refusal", func() bool {
		txt := texts(s.body)
		return strings.Contains(txt, "Validator") && strings.Contains(txt, "is the technician")
	})
	if d, _ := s.reg.Device(context.Background(), "PUMP-0003"); d.Status != registry.DeviceActive {
		t.Errorf("a refused validator left the device %s", d.Status)
	}
}
