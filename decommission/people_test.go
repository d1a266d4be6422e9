package decommission

import (
	"context"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-pki/custos/run"
)

// gs1UDI is a GS1 UDI as a label prints it (the FDA's GUDID example), and another of the same
// form for a second device.
const (
	gs1UDI   = "(01)00844588003288(21)SN-UDI-1"
	otherUDI = "(01)00844588003288(21)SN-OTHER"
)

// A validator is another person than the technician, and required unless the workspace's
// policy allows none; each refusal names the field, before anything changes.
func TestValidatorIsAnotherPerson(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := f.provision(t, "SN-VAL")
	req := Request{Serial: p.Serial, Method: Unreachable, Technician: "Tess Tech", Witness: "Wes Witness", OpsPIN: []byte(opsPIN)}
	for validator, problem := range map[string]string{
		"":           "name the validator",
		"tess  TECH": "is the technician",
		"Ｔｅｓｓ Tech":  "is the technician",
	} {
		req.Validator = validator
		_, err := Decommission(ctx, f.env, req)
		var fe *run.FieldError
		if !errors.As(err, &fe) || fe.Name != "Validator" || !strings.Contains(err.Error(), problem) {
			t.Errorf("validator %q: %v, want a Validator field error saying %q", validator, err, problem)
		}
	}
	if dev, _ := f.env.Registry.Device(ctx, p.Serial); dev.Status != "active" {
		t.Fatalf("a refused request changed the device: %+v", dev)
	}
	// The workspace's policy allows none: the record says so, and no validator signs.
	if err := f.env.Workspace.SetSetting(ctx, "validator-required", "false"); err != nil {
		t.Fatal(err)
	}
	req.Validator = ""
	res, err := Decommission(ctx, f.env, req)
	if err != nil {
		t.Fatal(err)
	}
	txt := pdfText(t, res.RecordPath)
	if !strings.Contains(txt, "Validator none: the workspace's policy allows a decommission without one") {
		t.Errorf("the record does not say no one validated it:\n%s", txt)
	}
	if strings.Contains(txt, "— validator") {
		t.Error("the record has a validator's signature line although none was named")
	}
}

// The device's UDI (given at provisioning), its media destination and the validator are in the
// certificate of sanitization; a physically destroyed device is destroyed, and an unreachable
// one can have no destination.
func TestSanitizationRecordNamesUDIDestinationAndValidator(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p, err := Provision(ctx, f.env, ProvisionRequest{Issuer: f.issuer, Serial: "SN-UDI-1", Model: "Infusion Pump X2", UDI: gs1UDI,
		Token: "dev-SN-UDI-1", OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)})
	if err != nil {
		t.Fatal(err)
	}
	if dev, _ := f.env.Registry.Device(ctx, p.Serial); dev.UDI != gs1UDI {
		t.Errorf("the registry has UDI %q", dev.UDI)
	}
	if _, err := Provision(ctx, f.env, ProvisionRequest{Issuer: f.issuer, Serial: "SN-BADUDI", Model: "X", UDI: "(01)00844588003289",
		Token: "dev-bad", OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)}); err == nil || !strings.Contains(err.Error(), "check digit") {
		t.Errorf("a mistyped UDI: %v", err)
	}
	for _, c := range []struct {
		m    Method
		d    Destination
		want string
	}{{Physical, Reuse, "destroys the device"}, {Unreachable, Recycle, "out of reach"}} {
		_, err := Decommission(ctx, f.env, Request{Serial: p.Serial, Method: c.m, Technician: "Tess Tech", Witness: "Wes Witness",
			Validator: "Vic Validator", Destination: c.d, OpsPIN: []byte(opsPIN)})
		var fe *run.FieldError
		if !errors.As(err, &fe) || fe.Name != "Destination" || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s to %s: %v", c.m, c.d, err)
		}
	}
	res, err := Decommission(ctx, f.env, Request{Serial: p.Serial, Method: Erase, Technician: "Tess Tech", Validator: "Vic Validator",
		Destination: Reuse, OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)})
	if err != nil {
		t.Fatal(err)
	}
	txt := pdfText(t, res.RecordPath)
	for _, w := range []string{"UDI " + gs1UDI, "Media destination reuse", "Validator Vic Validator", "Vic Validator — validator",
		"Media destination reuse: the device goes back into service", "Device UDI " + gs1UDI} {
		if !strings.Contains(txt, w) {
			t.Errorf("the record lacks %q", w)
		}
	}
}

// A fleet's manifest gives each device's destination and, for a device the registry has none
// of, its UDI; the fleet's table and results.csv show them with the key store each reached
// device was found on, and a UDI that contradicts the registry's refuses the line.
func TestFleetRecordNamesUDIDestinationAndKeyStore(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if _, err := Provision(ctx, f.env, ProvisionRequest{Issuer: f.issuer, Serial: "SN-F1", Model: "Infusion Pump X2", UDI: gs1UDI,
		Token: "dev-SN-F1", OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)}); err != nil {
		t.Fatal(err)
	}
	f.provision(t, "SN-F2")
	f.provision(t, "SN-F3")
	bad := writeFile(t, filepath.Join(f.dir, "bad.csv"), "serial,method,reason,udi\nSN-F1,erase,,"+otherUDI+"\n")
	m, err := LoadManifest(ctx, bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := Preview(ctx, f.env, m); err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "is it the same device") {
		t.Errorf("a UDI that contradicts the registry's: %v", err)
	}
	if _, err := ParseManifest(strings.NewReader("serial,method,reason,destination\nSN-F1,physical,,reuse\nSN-F2,erase,,shredder\n")); err == nil ||
		!strings.Contains(err.Error(), "line 2: method physical destroys the device") || !strings.Contains(err.Error(), `line 3: destination "shredder"`) {
		t.Errorf("bad destinations: %v", err)
	}
	path := writeFile(t, filepath.Join(f.dir, "fleet.csv"), "serial,method,reason,destination,udi\n"+
		"SN-F1,erase,,return,\nSN-F2,erase,,recycle,"+otherUDI+"\nSN-F3,physical,,,\n")
	if m, err = LoadManifest(ctx, path); err != nil {
		t.Fatal(err)
	}
	res, err := Fleet(ctx, f.env, m, FleetRequest{ManifestPath: path, Technician: "Tess Tech", Witness: "Wes Witness",
		Validator: "Vic Validator", OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)})
	if err != nil {
		t.Fatal(err)
	}
	// A table cell wraps a long value anywhere, and pdftotext joins a word broken at a hyphen:
	// the table's values are compared without blanks and hyphens.
	txt := squeeze(pdfText(t, res.RecordPath))
	for _, w := range []string{"Validator Vic Validator", "UDI " + gs1UDI, "UDI " + otherUDI + " (from the manifest)",
		"destination: return", "destination: recycle", "destination: destroyed", "SoftHSM project SoftHSM v2 serial", "not reached"} {
		if !strings.Contains(txt, squeeze(w)) {
			t.Errorf("the fleet record lacks %q", w)
		}
	}
	dir := t.TempDir()
	command(t, "pdfdetach", "-saveall", "-o", dir, res.RecordPath)
	fh, err := os.Open(filepath.Join(dir, "results.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	rows, err := csv.NewReader(fh).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	got := map[string][]string{}
	for _, r := range rows[1:] {
		got[r[0]] = []string{r[col["udi"]], r[col["destination"]], r[col["key_store"]]}
	}
	if g := got["SN-F1"]; g[0] != gs1UDI || g[1] != "return" || !strings.HasPrefix(g[2], "SoftHSM project") {
		t.Errorf("results.csv SN-F1: %q", g)
	}
	if g := got["SN-F3"]; g[0] != "" || g[1] != "destroyed" || g[2] != "" {
		t.Errorf("results.csv SN-F3 (physical): %q", g)
	}
}

// pdfText is a record's text as pdftotext reads it, its runs of blanks as one.
func pdfText(t *testing.T, path string) string {
	t.Helper()
	return strings.Join(strings.Fields(command(t, "pdftotext", path, "-")), " ")
}

// squeeze is s without blanks and hyphens.
func squeeze(s string) string {
	return strings.NewReplacer(" ", "", "-", "", "\u00ad", "").Replace(s)
}
