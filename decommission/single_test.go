package decommission

import (
	"context"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/keyalg"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
)

func TestDecommissionEachMethod(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	devs := map[Method]*Provisioned{}
	for _, m := range []Method{Erase, Reinit, Physical, Unreachable} {
		devs[m] = f.provision(t, "SN-"+string(m))
	}
	found, err := Detect(ctx, f.env)
	if err != nil || len(found) != 4 {
		t.Fatalf("detect: %v %+v", err, found)
	}
	issPEM := filepath.Join(f.env.Workspace.Dir, "certs", f.issuer+".pem")
	rootPEM := filepath.Join(f.env.Workspace.Dir, "certs", "acme-root-root.pem")
	chain := filepath.Join(f.dir, "chain.pem")
	a, _ := os.ReadFile(issPEM)
	b, _ := os.ReadFile(rootPEM)
	os.WriteFile(chain, append(a, b...), 0o644)

	for _, m := range []Method{Erase, Reinit, Physical, Unreachable} {
		t.Run(string(m), func(t *testing.T) {
			p := devs[m]
			devCert := filepath.Join(f.dir, p.Serial+".pem")
			os.WriteFile(devCert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Certificate.Raw}), 0o644)
			command(t, "openssl", "verify", "-CAfile", chain, devCert)

			res, err := Decommission(ctx, f.env, Request{Serial: p.Serial, Method: m, Technician: "Tess Tech", Validator: "Vic Validator",
				Witness: "Wes Witness", OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)})
			if err != nil {
				t.Fatal(err)
			}
			if m.reaches() {
				// pkcs11-tool, logged in where the token still has a user PIN, sees none of it.
				args := []string{"--module", f.hsm.ModulePath, "--token-label", p.Token, "-O"}
				if m == Erase {
					args = append(args, "--login", "--pin", devPIN)
				}
				if out := command(t, "pkcs11-tool", args...); strings.Contains(out, "Object") {
					t.Errorf("objects remain after %s:\n%s", m, out)
				}
			}
			crl := command(t, "openssl", "crl", "-in", res.CRL.PEMPath, "-noout", "-text")
			want := map[Method]string{Erase: "Cessation Of Operation", Reinit: "Cessation Of Operation", Physical: "Cessation Of Operation", Unreachable: "Key Compromise"}[m]
			if !strings.Contains(crl, strings.ToUpper(pki.SerialHex(p.Certificate.SerialNumber))) || !strings.Contains(crl, want) {
				t.Errorf("CRL lacks the serial or %q:\n%s", want, crl)
			}
			command(t, "openssl", "crl", "-in", res.CRL.PEMPath, "-CAfile", issPEM, "-noout", "-verify")
			out, err := execOut("openssl", "verify", "-crl_check", "-CRLfile", res.CRL.PEMPath, "-CAfile", chain, devCert)
			if err == nil || !strings.Contains(out, "certificate revoked") {
				t.Errorf("openssl verify -crl_check accepted a revoked device: %s", out)
			}
			if o := command(t, "pdfsig", res.RecordPath); !strings.Contains(o, "Signature is Valid.") {
				t.Errorf("pdfsig: %s", o)
			}
			file, _ := os.ReadFile(res.RecordPath)
			root := f.root(t)
			if rep := record.Verify(file, root); !rep.OK() {
				t.Errorf("record does not verify: %+v", rep.Checks)
			}
			txt := command(t, "pdftotext", res.RecordPath, "-")
			for _, w := range []string{p.Serial, "Tess Tech", "Certificate of sanitization"} {
				if !strings.Contains(txt, w) {
					t.Errorf("record lacks %q", w)
				}
			}
			h, _ := f.env.Registry.DeviceHistory(ctx, p.Serial)
			if h.Device.Status != registry.DeviceDecommissioned {
				t.Errorf("device status %s", h.Device.Status)
			}
			// A second decommission is refused.
			if _, err := Decommission(ctx, f.env, Request{Serial: p.Serial, Method: m, Technician: "T", Validator: "Vic Validator", Witness: "W",
				OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)}); err == nil || !strings.Contains(err.Error(), "already decommissioned") {
				t.Errorf("second decommission: %v", err)
			}
		})
	}
}

func TestDecommissionRefusals(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := f.provision(t, "SN-1")
	req := func(m Method) Request {
		return Request{Serial: p.Serial, Method: m, Technician: "Tess", Validator: "Vic Validator", OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)}
	}
	for name, tc := range map[string]struct {
		r    Request
		want string
	}{
		"unknown device":     {Request{Serial: "NOPE", Method: Erase, Technician: "T", Validator: "Vic Validator", OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)}, "not registered"},
		"no witness":         {req(Unreachable), "needs a witness"},
		"no technician":      {Request{Serial: p.Serial, Method: Erase, OpsPIN: []byte(opsPIN), DevicePIN: []byte(devPIN)}, "technician"},
		"wrong operator PIN": {Request{Serial: p.Serial, Method: Erase, Technician: "T", Validator: "Vic Validator", OpsPIN: []byte("wrong-pin-99"), DevicePIN: []byte(devPIN)}, "PIN"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Decommission(ctx, f.env, tc.r); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
	// A token that carries the device's certificate but another key fails the proof.
	m, _ := hsm.Open(f.hsm.ModulePath)
	s, _ := m.OpenSession(ctx, p.Token)
	s.Login(ctx, hsm.User, []byte(devPIN))
	if _, err := s.Destroy(ctx, hsm.Match{ID: p.KeyID}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: keyalg.ECDSAP256, ID: p.KeyID, Label: "impostor"}); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreCertificate(ctx, p.Certificate, p.KeyID, "device SN-1"); err != nil {
		t.Fatal(err)
	}
	s.Logout(ctx)
	s.Close()
	m.Close()
	if _, err := Decommission(ctx, f.env, req(Erase)); err == nil || !strings.Contains(err.Error(), "proof of possession failed") {
		t.Errorf("impostor: %v", err)
	}
	dev, _ := f.env.Registry.Device(ctx, p.Serial)
	if dev.Status != registry.DeviceActive {
		t.Errorf("a refused decommission changed the device: %s", dev.Status)
	}
}
