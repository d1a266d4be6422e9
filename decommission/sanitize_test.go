package decommission

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/run"
)

// A copy of the device's certificate and of its public key stored under other ids survived
// an erase that looked by key id alone. Erase finds them by certificate value and public
// key, destroys them, lists them in the record, and pkcs11-tool finds nothing left.
func TestEraseFindsTheIdentityWhateverItsID(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := f.provision(t, "SN-COPY")
	der := filepath.Join(f.dir, "dev.der")
	if err := os.WriteFile(der, p.Certificate.Raw, 0o644); err != nil {
		t.Fatal(err)
	}
	spki := filepath.Join(f.dir, "dev-pub.der")
	if err := os.WriteFile(spki, p.Certificate.RawSubjectPublicKeyInfo, 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"--module", f.hsm.ModulePath, "--token-label", p.Token, "--login", "--pin", devPIN}
	command(t, "pkcs11-tool", append(base, "--write-object", der, "--type", "cert", "--id", "c0ffee01", "--label", "stray copy")...)
	command(t, "pkcs11-tool", append(base, "--write-object", spki, "--type", "pubkey", "--id", "c0ffee02", "--label", "stray key")...)

	res, err := Decommission(ctx, f.env, Request{Serial: p.Serial, Method: Erase, Technician: "Tess Tech", Validator: "Vic Validator",
		OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)})
	if err != nil {
		t.Fatal(err)
	}
	if out := command(t, "pkcs11-tool", append(base, "-O")...); strings.Contains(out, "Object") {
		t.Errorf("objects remain after erase:\n%s", out)
	}
	j, err := record.ReadJournalFile(res.JournalPath)
	if err != nil {
		t.Fatal(err)
	}
	var erased Erased
	var verified Verified
	for _, e := range j.Entries {
		if e.Status != record.StatusDone {
			continue
		}
		switch e.Step {
		case stepErase.ID:
			erased, _ = record.Decode[Erased](e)
		case stepVerify.ID:
			verified, _ = record.Decode[Verified](e)
		}
	}
	by := map[string]string{}
	for _, o := range erased.Objects {
		by[o.Class+" "+o.Label] = strings.Join(o.FoundBy, ",")
	}
	for obj, how := range map[string]string{"certificate stray copy": "certificate value", "public-key stray key": "public key",
		"private-key device " + p.Serial: "key id"} {
		if !strings.Contains(by[obj], how) {
			t.Errorf("%s found by %q, want %q (all: %v)", obj, by[obj], how, by)
		}
	}
	if len(erased.Objects) != 5 {
		t.Errorf("%d objects destroyed, want the key pair, its certificate and the two copies: %+v", len(erased.Objects), erased.Objects)
	}
	if erased.Category != Purge || !strings.Contains(erased.Copies, "no copy of the key can exist elsewhere") {
		t.Errorf("category %q: %s", erased.Category, erased.Copies)
	}
	if len(verified.Searches) < 5 {
		t.Errorf("searches after the erasure: %+v", verified.Searches)
	}
	for _, s := range verified.Searches {
		if s.Found != 0 {
			t.Errorf("search %q found %d after the erasure", s.Search, s.Found)
		}
	}
	txt := strings.Join(strings.Fields(command(t, "pdftotext", res.RecordPath, "-")), " ")
	for _, w := range []string{"NIST SP 800-88 Rev. 2", "Method category Purge", "stray copy", "stray key", "certificate value",
		"CKA_LOCAL true", "Searches made after the erasure", "Key store manufacturer", "firmware"} {
		if !strings.Contains(txt, w) {
			t.Errorf("record lacks %q", w)
		}
	}
	if strings.Contains(txt, "Rev. 1") {
		t.Error("the record cites Rev. 1")
	}
}

// A device not reached is recorded as not sanitized by Custos, with what was attested and by
// whom; it claims no erasure.
func TestUnreachedDeviceIsNotSanitizedByCustos(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := f.provision(t, "SN-LOST")
	res, err := Decommission(ctx, f.env, Request{Serial: p.Serial, Method: Unreachable, Technician: "Tess Tech", Validator: "Vic Validator", Witness: "Wes Witness",
		OpsPIN: []byte(opsPIN)})
	if err != nil {
		t.Fatal(err)
	}
	txt := strings.Join(strings.Fields(command(t, "pdftotext", res.RecordPath, "-")), " ")
	for _, w := range []string{"Method category not sanitized by Custos", "lost or out of reach", "attested by Wes Witness"} {
		if !strings.Contains(txt, w) {
			t.Errorf("record lacks %q", w)
		}
	}
	for _, w := range []string{"Purge", "Objects destroyed"} {
		if strings.Contains(txt, "category "+w) || strings.Contains(txt, w+" on the key store") {
			t.Errorf("record of an unreached device claims %q", w)
		}
	}
}

func TestClassifyPurgeOrClear(t *testing.T) {
	good := hsm.Object{Class: hsm.ClassPrivateKey, ID: []byte{1}, Local: true, NeverExtractable: true, AlwaysSensitive: true}
	imported := good
	imported.Local = false
	exportable := good
	exportable.Extractable, exportable.NeverExtractable = true, false
	cert := hsm.Object{Class: hsm.ClassCertificate, ID: []byte{1}}
	for _, tc := range []struct {
		name  string
		objs  []hsm.Object
		id    identity
		want  string
		words string
	}{
		{"made on the key store, never extractable", []hsm.Object{good, cert}, identity{provisioned: true}, Purge, "custos device provision"},
		{"imported device, key store says local", []hsm.Object{good}, identity{}, Purge, "did not see the key made"},
		{"key imported into the key store", []hsm.Object{imported, cert}, identity{provisioned: true}, Clear, "CKA_LOCAL false"},
		{"key exportable", []hsm.Object{exportable}, identity{provisioned: true}, Clear, "CKA_EXTRACTABLE true"},
		{"one of two private keys exportable", []hsm.Object{good, exportable}, identity{provisioned: true}, Clear, "CKA_NEVER_EXTRACTABLE false"},
		{"no private key left", []hsm.Object{cert}, identity{provisioned: true}, Clear, "cannot say"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var found []hsm.IdentityObject
			for _, o := range tc.objs {
				found = append(found, hsm.IdentityObject{Object: o})
			}
			got, why := classify(found, tc.id)
			if got != tc.want || !strings.Contains(why, tc.words) {
				t.Errorf("classify = %s: %s; want %s saying %q", got, why, tc.want, tc.words)
			}
		})
	}
}

// A device an earlier run retired is "already decommissioned (run, date)" in a fleet, not
// failed, and the run succeeds.
func TestFleetReportsADeviceRetiredEarlier(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	old, fresh := f.provision(t, "SN-OLD"), f.provision(t, "SN-NEW")
	first, err := Decommission(ctx, f.env, Request{Serial: old.Serial, Method: Erase, Technician: "Tess Tech", Validator: "Vic Validator",
		OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)})
	if err != nil {
		t.Fatal(err)
	}
	text := "serial,method,reason,note\n" + old.Serial + ",erase,,\n" + fresh.Serial + ",erase,,\n"
	path := writeFile(t, filepath.Join(f.dir, "fleet.csv"), text)
	m, err := ParseManifest(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Fleet(ctx, f.env, m, FleetRequest{ManifestPath: path, Technician: "Tess Tech", Validator: "Vic Validator", Witness: "Wes Witness",
		OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Decommissioned != 1 || res.AlreadyDone != 1 || res.Failed != 0 {
		t.Errorf("result %+v", res)
	}
	txt := strings.Join(strings.Fields(command(t, "pdftotext", res.RecordPath, "-")), " ")
	for _, w := range []string{"already decommissioned (run " + old.Serial, first.RunID[len(first.RunID)-4:] + ", " + time.Now().UTC().Format(time.DateOnly), "1 decommissioned, 1 already decommissioned, 0 failed", "Purge (cryptographic erase)"} {
		if !strings.Contains(squeeze(txt), squeeze(w)) { // a table cell wraps anywhere
			t.Errorf("fleet record lacks %q", w)
		}
	}
	if strings.Contains(txt, "fix them") {
		t.Error("the record asks to fix a device that cannot be fixed")
	}
}

// crl publish is journaled like every other use of an issuing CA key, entered in the record
// log, and signed as a short record with the operator PIN.
func TestPublishCRLJournalsAndSignsARecord(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := f.provision(t, "SN-CRL")
	if _, err := Decommission(ctx, f.env, Request{Serial: p.Serial, Method: Unreachable, Technician: "Tess Tech", Validator: "Vic Validator", Witness: "Wes Witness",
		OpsPIN: []byte(opsPIN)}); err != nil {
		t.Fatal(err)
	}
	if _, err := PublishCRL(ctx, f.env, PublishRequest{Issuer: f.issuer, OpsPIN: []byte("wrong-pin-99"), CRL: run.CRLRequest{NextUpdate: 24 * time.Hour}}); err == nil {
		t.Fatal("a wrong operator PIN published a CRL")
	}
	pub, err := PublishCRL(ctx, f.env, PublishRequest{Issuer: f.issuer, Operator: "Olga Operator", OpsPIN: []byte(opsPIN), CRL: run.CRLRequest{NextUpdate: 24 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	if pub.Number != 2 || pub.Entries != 1 {
		t.Errorf("CRL %d with %d entries, want number 2 with 1", pub.Number, pub.Entries)
	}
	j, err := record.ReadJournalFile(pub.JournalPath)
	if err != nil {
		t.Fatal(err)
	}
	signed := false
	for _, e := range j.Entries {
		if e.Step == stepPublish.ID && e.Status == record.StatusDone && e.Actor == "Olga Operator" && strings.Contains(string(e.Data), `"number":2`) {
			signed = true
		}
	}
	if !signed {
		t.Errorf("the journal does not say who signed CRL 2: %+v", j.Entries)
	}
	file, err := os.ReadFile(pub.RecordPath)
	if err != nil {
		t.Fatal(err)
	}
	rep := record.Verify(file, f.root(t))
	if !rep.OK() || rep.Kind != "crl-publish" {
		t.Errorf("record of kind %q does not verify: %+v", rep.Kind, rep.Checks)
	}
	if o := command(t, "pdfsig", pub.RecordPath); !strings.Contains(o, "Signature is Valid.") {
		t.Errorf("pdfsig: %s", o)
	}
	txt := strings.Join(strings.Fields(command(t, "pdftotext", pub.RecordPath, "-")), " ")
	for _, w := range []string{"CRL publication", "CRL number 2", "Olga Operator", pub.Fingerprint.String()[:8]} {
		if !strings.Contains(txt, w) {
			t.Errorf("record lacks %q", w)
		}
	}
}
