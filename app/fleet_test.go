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

// fleetCell is the text of the preview table's cell at row, col.
func fleetCell(s *shell, row, col int) string {
	t := findAll[*widget.Table](s.body)[0]
	l := widget.NewLabel("")
	t.UpdateCell(widget.TableCellID{Row: row, Col: col}, l)
	return l.Text
}

func TestFleetScreenMarksEveryBadLine(t *testing.T) {
	s, _, issuer := world(t, true)
	for _, sn := range []string{"F-1", "F-2"} {
		if _, err := decommission.Provision(context.Background(), s.runEnv(), decommission.ProvisionRequest{Issuer: issuer,
			Serial: sn, Model: "Pump", Token: "dev-" + sn, OpsPIN: []byte("ops-pin-1234"), DevicePIN: []byte("device-pin-1")}); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("serial,method,reason,note\nF-1,unreachable,,lost\nF-2,incinerate,,\n"), 0o644)
	unknown := filepath.Join(dir, "unknown.csv")
	os.WriteFile(unknown, []byte("serial,method,reason,note\nF-1,unreachable,,lost\nDEMO-UNKNOWN-9,physical,,\nF-2,physical,,crushed\n"), 0o644)
	good := filepath.Join(dir, "good.csv")
	os.WriteFile(good, []byte("serial,method,reason,note\nF-1,unreachable,,lost\nF-2,physical,,crushed\n"), 0o644)
	load := func(path string) {
		onUI(func() {
			entryWithPlaceholder(t, s, "fleet manifest").SetText(path)
			test.Tap(button(s.body, "Load"))
		})
		eventually(t, "the preview of "+filepath.Base(path), func() bool { return !strings.Contains(texts(s.body), "Reading ") })
	}
	onUI(func() { s.show("fleet") })

	load(bad)
	onUI(func() {
		if txt := texts(s.body); !strings.Contains(txt, "1 line of the manifest cannot be used") {
			t.Errorf("bad manifest:\n%s", txt)
		}
		if got := fleetCell(s, 1, 3); !strings.Contains(got, `method "incinerate"`) {
			t.Errorf("line 3 is marked %q", got)
		}
		if button(s.body, "Retire the fleet") != nil {
			t.Error("a manifest with a bad line can be run")
		}
	})

	// A device this workspace does not know is marked in the preview, before Run.
	load(unknown)
	onUI(func() {
		if got := fleetCell(s, 1, 3); !strings.Contains(got, "DEMO-UNKNOWN-9 is not registered") || fleetCell(s, 1, 1) != "DEMO-UNKNOWN-9" {
			t.Errorf("the unknown device's line says %q", got)
		}
		if fleetCell(s, 0, 3) != "" || fleetCell(s, 2, 3) != "" {
			t.Error("a good line is marked")
		}
		if button(s.body, "Retire the fleet") != nil {
			t.Error("a manifest with an unknown device can be run")
		}
		findAll[*widget.Table](s.body)[0].Select(widget.TableCellID{Row: 1, Col: 0})
		if !strings.Contains(texts(s.body), "Line 3: device DEMO-UNKNOWN-9 is not registered in this workspace") {
			t.Error("choosing the marked line does not show its problem in full")
		}
	})
	snapshot(t, s, "fleet-unknown-device")

	// A line that needs a witness, run without one, is marked; no hint to run it again.
	load(good)
	onUI(func() {
		entryWithPlaceholder(t, s, "technician").SetText("Tess Tech")
		entryWithPlaceholder(t, s, "another person").SetText("Vic Validator")
		entryWithPlaceholder(t, s, "operator PIN").SetText("ops-pin-1234")
		test.Tap(button(s.body, "Retire the fleet"))
	})
	eventually(t, "the witness refusal", func() bool { return strings.Contains(fleetCell(s, 0, 3), "needs a witness") })
	onUI(func() {
		if txt := texts(s.body); strings.Contains(txt, "run the same manifest again") {
			t.Errorf("a refusal tells to run the manifest again:\n%s", txt)
		}
	})
	load(good)
	onUI(func() {
		entryWithPlaceholder(t, s, "required for physical").SetText("Wanda Witness")
		entryWithPlaceholder(t, s, "operator PIN").SetText("ops-pin-1234")
		entryWithPlaceholder(t, s, "operator PIN").TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn}) // Enter retires
	})
	eventually(t, "the fleet", func() bool { return strings.Contains(texts(s.body), "2 decommissioned") })
	if n, _ := s.reg.CountDevices(context.Background(), registry.DeviceDecommissioned); n != 2 {
		t.Errorf("%d decommissioned", n)
	}
	onUI(func() {
		if txt := texts(s.body); !strings.Contains(txt, "The signed record is "+s.ws.Path("records")) {
			t.Errorf("the record's place is not said:\n%s", txt)
		}
		var said []string
		for _, f := range s.recordFiles() {
			said = append(said, f.kind+": "+f.outcome)
		}
		got := strings.Join(said, "; ")
		for _, want := range []string{"fleet: 2 decommissioned", "ceremony root: completed (root gui-root)", "ceremony issue-ca: completed"} {
			if !strings.Contains(got, want) {
				t.Errorf("records screen says %q, lacks %q", got, want)
			}
		}
	})
}
