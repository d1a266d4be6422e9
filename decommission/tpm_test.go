package decommission

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/testtpm"
	"github.com/custos-pki/custos/keyalg"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
)

// Device tokens also live on a software TPM through tpm2-pkcs11 (the operations token stays on
// SoftHSM2, as a real HSM would be another module than a device's TPM). The TPM starts with
// the first test that asks for it.
func TestMain(m *testing.M) { testtpm.Main(m) }

// tpmFixture is the workspace of newFixture with its device tokens on the TPM.
func tpmFixture(t *testing.T) (*fixture, *testtpm.TPM) {
	t.Helper()
	tpm := testtpm.Get(t)
	f := newFixture(t)
	f.env.DeviceModule = tpm.ModulePath
	return f, tpm
}

// provisionTPM makes a device on a new TPM token and checks with pkcs11-tool that its key was
// made there and can never leave it.
func provisionTPM(t *testing.T, f *fixture, tpm *testtpm.TPM, serial string) *Provisioned {
	t.Helper()
	p, err := Provision(context.Background(), f.env, ProvisionRequest{Issuer: f.issuer, Serial: serial, Model: "Infusion Pump X2",
		Token: tpm.NewLabel("tpm-" + serial), OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)})
	if err != nil {
		t.Fatal(err)
	}
	out := command(t, "pkcs11-tool", "--module", tpm.ModulePath, "--token-label", p.Token, "--login", "--pin", devPIN,
		"--list-objects", "--type", "privkey", "--id", hex.EncodeToString(p.KeyID))
	for _, want := range []string{"always sensitive", "never extractable", "local"} {
		if !strings.Contains(out, want) {
			t.Errorf("device key of %s on the TPM is not %s:\n%s", serial, want, out)
		}
	}
	return p
}

// tpmObjects lists what pkcs11-tool, logged in with the device PIN, finds on a TPM token.
func tpmObjects(t *testing.T, tpm *testtpm.TPM, token string) string {
	t.Helper()
	return command(t, "pkcs11-tool", "--module", tpm.ModulePath, "--token-label", token, "--login", "--pin", devPIN, "--list-objects")
}

// Provision, identify, erase, verify and decommission a device whose key store is a TPM; a
// reinit, which the TPM cannot do through PKCS#11, is refused before anything changes.
func TestTPMDeviceDecommission(t *testing.T) {
	ctx := context.Background()
	f, tpm := tpmFixture(t)
	erased := provisionTPM(t, f, tpm, "TPM-ERASE")
	kept := provisionTPM(t, f, tpm, "TPM-REINIT")

	found, err := Detect(ctx, f.env)
	if err != nil || len(found) != 2 {
		t.Fatalf("detect on the TPM: %v %+v", err, found)
	}

	journals := func() int {
		e, _ := os.ReadDir(filepath.Join(f.env.Workspace.Dir, "journal"))
		return len(e)
	}
	before := journals()
	_, err = Decommission(ctx, f.env, Request{Serial: kept.Serial, Method: Reinit, Technician: "Tess Tech", Validator: "Vic Validator",
		OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)})
	if !errors.Is(err, hsm.ErrCannotReinit) || !strings.Contains(err.Error(), "use method erase") || !strings.Contains(err.Error(), "tpm2-pkcs11") {
		t.Fatalf("reinit on a TPM token: %v", err)
	}
	if journals() != before {
		t.Error("the refused reinit started a run")
	}
	if dev, _ := f.env.Registry.Device(ctx, kept.Serial); dev.Status != registry.DeviceActive {
		t.Errorf("refused device is %s", dev.Status)
	}
	if out := tpmObjects(t, tpm, kept.Token); strings.Count(out, "Object;") != 3 {
		t.Errorf("the refused device's token changed:\n%s", out)
	}

	res, err := Decommission(ctx, f.env, Request{Serial: erased.Serial, Method: Erase, Technician: "Tess Tech", Validator: "Vic Validator",
		OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)})
	if err != nil {
		t.Fatal(err)
	}
	if out := tpmObjects(t, tpm, erased.Token); strings.Contains(out, "Object;") {
		t.Errorf("objects remain on the TPM token after erase:\n%s", out)
	}
	crl := command(t, "openssl", "crl", "-in", res.CRL.PEMPath, "-noout", "-text")
	if !strings.Contains(crl, strings.ToUpper(pki.SerialHex(erased.Certificate.SerialNumber))) {
		t.Errorf("CRL lacks the erased device:\n%s", crl)
	}
	file, _ := os.ReadFile(res.RecordPath)
	rep := record.Verify(file, f.root(t))
	if !rep.OK() {
		t.Fatalf("record does not verify: %+v", rep.Checks)
	}
	// The journal names the token by label and says it has no serial of its own.
	var identify record.Entry
	for _, e := range rep.Journal.Entries {
		if e.Step == "identify" && e.Status == record.StatusDone {
			identify = e
		}
	}
	if p, err := record.Decode[Identified](identify); err != nil || p.Token != erased.Token || !strings.HasPrefix(p.TokenSerial, "none") || p.TokenManufacturer != "IBM" {
		t.Errorf("identify entry %+v: %v", p, err)
	}
	if o := command(t, "pdfsig", res.RecordPath); !strings.Contains(o, "Signature is Valid.") {
		t.Errorf("pdfsig: %s", o)
	}
}

// A fleet of ten TPM-backed devices is erased, revoked and recorded; a manifest that asks a
// reinit of a TPM token is refused first, naming its line.
func TestTPMFleet(t *testing.T) {
	ctx := context.Background()
	f, tpm := tpmFixture(t)
	var serials []string
	var devs []*Provisioned
	for i := range 10 {
		p := provisionTPM(t, f, tpm, "TPM-FLEET-"+string(rune('A'+i)))
		devs = append(devs, p)
		serials = append(serials, p.Serial)
	}
	req := func(path string) FleetRequest {
		return FleetRequest{ManifestPath: path, Technician: "Tess Tech", Validator: "Vic Validator", Witness: "Wes Witness", OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)}
	}

	bad := strings.Replace(manifestOf(serials, Erase), serials[3]+",erase", serials[3]+",reinit", 1)
	badPath := writeFile(t, filepath.Join(f.dir, "reinit.csv"), bad)
	m, err := ParseManifest(strings.NewReader(bad))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Fleet(ctx, f.env, m, req(badPath))
	var me ManifestError
	if !errors.As(err, &me) || len(me) != 1 || me[0].Line != 5 || !strings.Contains(me[0].Problem, "use method erase") {
		t.Fatalf("manifest with a reinit on the TPM: %v", err)
	}
	if out := tpmObjects(t, tpm, devs[3].Token); strings.Count(out, "Object;") != 3 {
		t.Errorf("the refused manifest changed a token:\n%s", out)
	}

	text := manifestOf(serials, Erase)
	path := writeFile(t, filepath.Join(f.dir, "fleet.csv"), text)
	if m, err = ParseManifest(strings.NewReader(text)); err != nil {
		t.Fatal(err)
	}
	res, err := Fleet(ctx, f.env, m, req(path))
	if err != nil {
		t.Fatal(err)
	}
	if res.Decommissioned != 10 || res.Failed != 0 || len(res.CRLs) != 1 || res.CRLs[0].Entries != 10 {
		t.Errorf("result %+v", res)
	}
	crl := command(t, "openssl", "crl", "-in", res.CRLs[0].PEMPath, "-noout", "-text")
	for _, p := range devs {
		if out := tpmObjects(t, tpm, p.Token); strings.Contains(out, "Object;") {
			t.Errorf("objects remain on %s:\n%s", p.Token, out)
		}
		if !strings.Contains(crl, strings.ToUpper(pki.SerialHex(p.Certificate.SerialNumber))) {
			t.Errorf("CRL lacks %s", p.Serial)
		}
	}
	file, _ := os.ReadFile(res.RecordPath)
	if rep := record.Verify(file, f.root(t)); !rep.OK() {
		t.Errorf("fleet record: %+v", rep.Checks)
	}
}

// A device whose key store is a TPM is re-keyed there, to P-384 and back to P-256 (the
// algorithms tpm2-pkcs11 makes): each new key is made on the TPM and can never leave it
// (pkcs11-tool), the token holds exactly one key pair and certificate after each, the old
// certificate is revoked superseded (openssl crl), and the record verifies (pdfsig too).
func TestTPMDeviceRekey(t *testing.T) {
	ctx := context.Background()
	f, tpm := tpmFixture(t)
	p := provisionTPM(t, f, tpm, "TPM-REKEY")
	old := p.Certificate
	for _, alg := range []keyalg.Algorithm{keyalg.ECDSAP384, keyalg.ECDSAP256} {
		req := rekeyRequest(p.Serial)
		req.Algorithm = alg
		res, err := Rekey(ctx, f.env, req)
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		cert := checkOneIdentity(t, f, tpm.ModulePath, p.Serial, p.Token)
		if !bytes.Equal(cert.Raw, res.NewCertificate.Raw) {
			t.Errorf("%s: the TPM token's certificate is not the new one", alg)
		}
		if got, _ := pki.KeyAlgorithmOf(cert.PublicKey); got != alg {
			t.Errorf("the new key is %s, want %s", got, alg)
		}
		out := command(t, "pkcs11-tool", "--module", tpm.ModulePath, "--token-label", p.Token, "--login", "--pin", devPIN,
			"--list-objects", "--type", "privkey", "--id", hex.EncodeToString(res.NewKeyID))
		for _, want := range []string{"always sensitive", "never extractable", "local"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: the new key on the TPM is not %s:\n%s", alg, want, out)
			}
		}
		crl := command(t, "openssl", "crl", "-in", res.CRL.PEMPath, "-noout", "-text")
		if !strings.Contains(crl, strings.ToUpper(pki.SerialHex(old.SerialNumber))) || !strings.Contains(crl, "Superseded") {
			t.Errorf("%s: the CRL lacks the old certificate as superseded:\n%s", alg, crl)
		}
		if o := command(t, "pdfsig", res.RecordPath); !strings.Contains(o, "Signature is Valid.") {
			t.Errorf("pdfsig: %s", o)
		}
		old = res.NewCertificate
	}
}
