package decommission

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/inputfile/inputfiletest"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

func TestImport(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	m, err := hsm.Open(f.hsm.ModulePath)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := run.OpenIssuer(ctx, f.env.Registry, m, f.issuer, []byte(opsPIN), run.SignCertificates)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// Devices made elsewhere by this issuing CA: one PEM file, one DER file in a folder.
	for i, name := range []string{"IMP-1.pem", "IMP-2.der"} {
		dk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		sn, _ := pki.NewSerial(rand.Reader)
		c, _, err := pki.Issue(pki.DeviceIdentity{SerialNumber: strings.TrimSuffix(name, filepath.Ext(name)), Manufacturer: "Acme Medical",
			Model: "Monitor M7", ValidityYears: 5}, sn, dk.Public(), ca.Signer())
		if err != nil {
			t.Fatal(err)
		}
		data := c.Raw
		if i == 0 {
			data = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		}
		os.WriteFile(filepath.Join(dir, name), data, 0o644)
	}
	ca.Close()
	m.Close()
	// The UDI list: each line checked, naming the file and line; a device the certificates do
	// not name is refused, and nothing is registered.
	bad := writeFile(t, filepath.Join(f.dir, "bad-udis.csv"), "serial,udi\nIMP-1,(01)00844588003289\nIMP-2,+H123PN1\nIMP-2,+H123PN2\n")
	var lines UDIListError
	if _, err := LoadUDIList(ctx, bad); err == nil || !strings.Contains(err.Error(), "bad-udis.csv: UDI list: ") ||
		!strings.Contains(err.Error(), "line 2: device IMP-1: the GTIN") || !strings.Contains(err.Error(), "line 4: serial IMP-2 is also on line 3") ||
		!errors.As(err, &lines) || len(lines) != 2 {
		t.Errorf("a bad UDI list: %v", err)
	}
	stray, err := LoadUDIList(ctx, writeFile(t, filepath.Join(f.dir, "stray.csv"), "serial,udi\nIMP-9,+H123PN9\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Import(ctx, f.env, f.issuer, []string{dir}, stray); err == nil || !strings.Contains(err.Error(), "IMP-9") {
		t.Errorf("a UDI of a device not imported: %v", err)
	}
	udis, err := LoadUDIList(ctx, writeFile(t, filepath.Join(f.dir, "udis.csv"), "udi,serial\n(01)00844588003288(21)IMP-1,IMP-1\n"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := Import(ctx, f.env, "Acme Devices CA", []string{dir}, udis)
	if err != nil || n != 2 {
		t.Fatalf("import: %d, %v", n, err)
	}
	d, err := f.env.Registry.Device(ctx, "IMP-2")
	if err != nil || d.Model != "Monitor M7" || d.UDI != "" {
		t.Errorf("IMP-2: %+v %v", d, err)
	}
	if d, _ := f.env.Registry.Device(ctx, "IMP-1"); d.UDI != "(01)00844588003288(21)IMP-1" {
		t.Errorf("IMP-1's UDI: %q", d.UDI)
	}
	// A certificate from another CA is refused, naming the file, and nothing is registered.
	other := newFixture(t)
	p := other.provision(t, "FOREIGN-1")
	foreign := filepath.Join(t.TempDir(), "foreign.pem")
	os.WriteFile(foreign, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Certificate.Raw}), 0o644)
	if _, err := Import(ctx, f.env, f.issuer, []string{foreign}, nil); err == nil || !strings.Contains(err.Error(), "foreign.pem") || !strings.Contains(err.Error(), "not signed by") {
		t.Errorf("foreign certificate: %v", err)
	}
	garbage := filepath.Join(t.TempDir(), "junk.der")
	os.WriteFile(garbage, []byte("not a certificate"), 0o644)
	if _, err := Import(ctx, f.env, f.issuer, []string{garbage}, nil); err == nil || !strings.Contains(err.Error(), "junk.der") {
		t.Errorf("garbage: %v", err)
	}
}

// TestImportRefusesHostileInputs: a certificate file that is a device, a FIFO nobody writes
// to, a socket or a file over 16 MiB is refused at once, naming it, before it is read, given
// alone or found in a folder; nothing is registered.
func TestImportRefusesHostileInputs(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	for _, h := range inputfiletest.Inputs(t, "certificate file", maxCertFile) {
		if h.Name == "folder" {
			continue // a folder is a valid input: its *.pem, *.crt, *.cer and *.der files are read
		}
		t.Run(h.Name, func(t *testing.T) {
			inputfiletest.Refuse(t, h, func(path string) error {
				_, err := Import(ctx, f.env, f.issuer, []string{path}, nil)
				return err
			})
		})
	}
	dir := t.TempDir()
	fifo := filepath.Join(dir, "device.pem")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	inputfiletest.Refuse(t, inputfiletest.Hostile{Name: "FIFO in a folder", Path: fifo, Want: "is a FIFO (named pipe), not a regular file"},
		func(string) error { _, err := Import(ctx, f.env, f.issuer, []string{dir}, nil); return err })
	n := 0
	for _, err := range f.env.Registry.ListDevices(ctx, registry.DeviceQuery{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 0 {
		t.Errorf("%d devices registered by refused imports", n)
	}
}
