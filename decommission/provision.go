package decommission

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/csv"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/custos-pki/custos/hsm"
	"github.com/custos-pki/custos/internal/inputfile"
	"github.com/custos-pki/custos/keyalg"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/record"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
	"github.com/custos-pki/custos/udi"
)

// ProvisionRequest is a device to make, as the factory does at key injection.
type ProvisionRequest struct {
	Issuer    string // issuing CA id or common name
	Serial    string
	Model     string
	UDI       string // the device's Unique Device Identifier (see package udi); "" when not known
	Token     string // the device token's label; a free slot is initialised with it
	OpsPIN    []byte // the operations token's operator PIN (the issuing CA key)
	DevicePIN []byte // the device token's PIN, set as its user and SO PIN
	// ValidityYears of the device certificate; 0 means 10.
	ValidityYears int
}

// Provisioned is a device made and registered.
type Provisioned struct {
	Serial      string
	Token       string
	KeyID       []byte
	Certificate *x509.Certificate
}

// Provision initialises a device token, generates the device key on it, issues the device
// certificate from the issuing CA (lint-then-sign), stores the certificate on the token and
// registers the device. The PINs in req stay the caller's.
func Provision(ctx context.Context, env run.Env, req ProvisionRequest) (*Provisioned, error) {
	if strings.TrimSpace(req.Serial) == "" {
		return nil, run.NewFieldError("Serial", "provision: a device needs a serial")
	}
	if req.Token == "" {
		return nil, run.NewFieldError("Token", "provision %s: name the device's token", req.Serial)
	}
	if len(req.OpsPIN) == 0 {
		return nil, run.NewFieldError("OpsPIN", "provision %s: the operator PIN is needed: the issuing CA signs the device certificate", req.Serial)
	}
	if len(req.DevicePIN) == 0 {
		return nil, run.NewFieldError("DevicePIN", "provision %s: the device PIN is needed: it is set on the new device token", req.Serial)
	}
	if req.UDI != "" {
		if _, err := udi.Check(req.UDI); err != nil {
			return nil, run.NewFieldError("UDI", "provision %s: %v", req.Serial, err)
		}
	}
	if _, err := env.Registry.Device(ctx, req.Serial); err == nil {
		return nil, run.NewFieldError("Serial", "provision: device %s is already registered", req.Serial)
	}
	// Before the modules are loaded: a root, or a CA that may not sign, is refused before any
	// login.
	if _, err := run.CheckIssuer(ctx, env.Registry, req.Issuer, run.SignCertificates); err != nil {
		return nil, fmt.Errorf("provision %s: %w", req.Serial, issuerError(err))
	}
	mods, err := env.OpenModules(ctx)
	if err != nil {
		return nil, err
	}
	defer mods.Close()
	mod := mods.Devices
	ca, err := run.OpenIssuer(ctx, env.Registry, mods.Ops, req.Issuer, req.OpsPIN, run.SignCertificates)
	if err != nil {
		return nil, fmt.Errorf("provision %s: %w", req.Serial, err)
	}
	defer ca.Close()
	iss := ca.Entry
	if _, err := mod.TokenByLabel(ctx, req.Token); err == nil {
		return nil, run.NewFieldError("Token", "provision %s: a token labelled %q exists already", req.Serial, req.Token)
	}
	// Journaled before the token is touched: a provisioning that stops half way leaves a
	// journal saying which token it was making.
	op, err := run.StartOperation(ctx, env, "provision", req.Serial)
	if err != nil {
		return nil, err
	}
	defer op.Close()
	var out *Provisioned
	err = op.Step(stepProvision, record.System, func() (any, error) {
		var err error
		out, err = provision(ctx, op, mod, req, ca)
		if err != nil {
			return nil, err
		}
		fp := pki.CertificateFingerprint(out.Certificate)
		return DeviceProvisioned{Serial: req.Serial, Model: req.Model, Issuer: iss.ID, Token: req.Token, KeyID: out.KeyID,
			CertificateSerial: pki.SerialHex(out.Certificate.SerialNumber), CertificateSHA256: fp.String(),
			NotBefore: out.Certificate.NotBefore, NotAfter: out.Certificate.NotAfter}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("provision %s: %w", req.Serial, err)
	}
	return out, nil
}

// provision makes the device on a free slot of mod and registers it through op.
func provision(ctx context.Context, op *run.Run, mod *hsm.Module, req ProvisionRequest, ca *run.Issuer) (*Provisioned, error) {
	env, iss := op.Env, ca.Entry
	slot, err := mod.FreeSlot(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := mod.InitToken(ctx, slot.ID, req.Token, req.DevicePIN, req.DevicePIN); err != nil {
		return nil, err
	}
	s, err := mod.OpenSession(ctx, req.Token)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if err := s.Login(ctx, hsm.User, req.DevicePIN); err != nil {
		return nil, err
	}
	defer s.Logout(context.WithoutCancel(ctx))
	id, err := s.Random(ctx, 16)
	if err != nil {
		return nil, err
	}
	key, err := s.GenerateKeyPair(ctx, hsm.KeySpec{Algorithm: keyalg.ECDSAP256, ID: id, Label: "device " + req.Serial})
	if err != nil {
		return nil, err
	}
	serial, err := pki.NewSerial(run.TokenRand(ctx, s))
	if err != nil {
		return nil, err
	}
	cert, _, err := pki.Issue(deviceProfile(ca, req.Serial, req.Model, env.Clock(), req.ValidityYears), serial, key.Public(), ca.Signer())
	if err != nil {
		return nil, err
	}
	if err := s.StoreCertificate(ctx, cert, id, "device "+req.Serial); err != nil {
		return nil, err
	}
	rc, err := registry.CertificateFromX509(iss.ID, cert)
	if err != nil {
		return nil, err
	}
	if err := op.Registry().RegisterDevice(ctx, registry.NewDevice{
		Device:      registry.Device{Serial: req.Serial, Model: req.Model, UDI: req.UDI, IssuerID: iss.ID, RegisteredAt: env.Clock()},
		Certificate: rc,
		Key:         registry.DeviceKey{KeyID: id, PublicKeySHA256: registry.PublicKeySHA256(cert), TokenLabel: req.Token, GeneratedAt: cert.NotBefore},
	}); err != nil {
		return nil, err
	}
	return &Provisioned{Serial: req.Serial, Token: req.Token, KeyID: id, Certificate: cert}, nil
}

// deviceProfile is the certificate the issuing CA ca gives device serial of model: valid from
// notBefore for years (10 when 0), or as many whole years as the CA has left; asserting the
// CA's policies; naming its shard's CRL when the CA splits its CRL.
func deviceProfile(ca *run.Issuer, serial, model string, notBefore time.Time, years int) pki.DeviceIdentity {
	if years == 0 {
		years = 10
	}
	p := pki.DeviceIdentity{SerialNumber: serial, Manufacturer: ca.Certificate.Subject.Organization[0], Model: model,
		NotBefore: notBefore, ValidityYears: min(years, yearsLeft(ca.Certificate, notBefore)), Policies: ca.Certificate.Policies}
	if sh, ok := ca.Entry.Shards(); ok {
		p.CRLShards = sh
	}
	return p
}

func yearsLeft(issuer *x509.Certificate, now time.Time) int {
	return max(1, int(issuer.NotAfter.Sub(now).Hours()/24/366))
}

// Import registers devices from existing certificates (PEM or DER files, or folders of them),
// each of which must be signed by the issuing CA. Nothing is registered if any file is bad:
// the error names it.
func Import(ctx context.Context, env run.Env, issuerRef string, paths []string, udis map[string]string) (int, error) {
	iss, err := env.Registry.Issuer(ctx, issuerRef)
	if err != nil {
		return 0, err
	}
	issCert, err := x509.ParseCertificate(iss.Certificate)
	if err != nil {
		return 0, err
	}
	var files []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return 0, fmt.Errorf("import: %w", err)
		}
		if !info.IsDir() {
			files = append(files, p)
			continue
		}
		for _, pat := range []string{"*.pem", "*.crt", "*.cer", "*.der"} {
			m, _ := filepath.Glob(filepath.Join(p, pat))
			files = append(files, m...)
		}
	}
	var devices []registry.NewDevice
	for _, f := range files {
		certs, err := readCerts(ctx, f)
		if err != nil {
			return 0, fmt.Errorf("import: %w", err)
		}
		for _, c := range certs {
			if err := c.CheckSignatureFrom(issCert); err != nil {
				return 0, fmt.Errorf("import %s: %s is not signed by issuer %s: %w", f, c.Subject.CommonName, iss.ID, err)
			}
			serial := c.Subject.SerialNumber
			if serial == "" {
				serial = c.Subject.CommonName
			}
			if serial == "" {
				return 0, fmt.Errorf("import %s: the certificate names no device serial (subject serialNumber or CN)", f)
			}
			rc, err := registry.CertificateFromX509(iss.ID, c)
			if err != nil {
				return 0, fmt.Errorf("import %s: %w", f, err)
			}
			model := ""
			if len(c.Subject.OrganizationalUnit) > 0 {
				model = c.Subject.OrganizationalUnit[0]
			}
			devices = append(devices, registry.NewDevice{Device: registry.Device{Serial: serial, Model: model, UDI: udis[serial], IssuerID: iss.ID},
				Certificate: rc, Key: registry.DeviceKey{PublicKeySHA256: registry.PublicKeySHA256(c)}})
		}
	}
	if len(devices) == 0 {
		return 0, errors.New("import: no certificates found")
	}
	if len(udis) > 0 {
		imported := make(map[string]bool, len(devices))
		for _, d := range devices {
			imported[d.Device.Serial] = true
		}
		var missing []string
		for serial := range udis {
			if !imported[serial] {
				missing = append(missing, serial)
			}
		}
		if len(missing) > 0 {
			slices.Sort(missing)
			return 0, fmt.Errorf("import: the UDI list names devices none of the certificates is of: %s; nothing was registered", strings.Join(missing, ", "))
		}
	}
	op, err := run.StartOperation(ctx, env, "import", iss.ID)
	if err != nil {
		return 0, err
	}
	defer op.Close()
	n := 0
	err = op.Step(stepImport, record.System, func() (any, error) {
		var err error
		n, err = op.Registry().ImportDevices(ctx, func(yield func(registry.NewDevice, error) bool) {
			now := env.Clock()
			for _, d := range devices {
				d.Device.RegisteredAt = now
				if !yield(d, nil) {
					return
				}
			}
		})
		if err != nil {
			return nil, err
		}
		return DevicesImported{Issuer: iss.ID, Files: files, Devices: n}, nil
	})
	if err != nil {
		return 0, fmt.Errorf("import: %w", err)
	}
	return n, nil
}

// maxCertFile bounds one file that device import reads: a device certificate is about 1 KiB
// as PEM, so 16 MiB holds a bundle of some 15,000; a larger set goes in a folder of files.
const maxCertFile = 16 << 20

// readCerts reads the certificates of one file, refusing anything but a regular file of at
// most maxCertFile bytes before it is read. Errors name the file.
func readCerts(ctx context.Context, path string) ([]*x509.Certificate, error) {
	b, err := inputfile.Read(ctx, "certificate file", path, maxCertFile)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(string(b), "-----BEGIN") {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return nil, fmt.Errorf("%s: neither PEM nor a DER certificate: %w", path, err)
		}
		return []*x509.Certificate{c}, nil
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no CERTIFICATE block", path)
	}
	return out, nil
}

// maxUDIList bounds a UDI list: a million devices at some 80 bytes a line.
const maxUDIList = 128 << 20

// UDIListError lists every line of a UDI list that cannot be used, each with its number.
type UDIListError []RowError

// Unwrap lists the lines' errors.
func (e UDIListError) Unwrap() []error { return rowErrors(e) }

func (e UDIListError) Error() string { return "UDI list: " + rowsText(e) }

// LoadUDIList reads a device import's UDI list: CSV with a header row naming the columns
// serial and udi, one device a line, each UDI checked (see package udi). Every bad line is
// reported with its number in a UDIListError, naming the file; nothing is returned then.
func LoadUDIList(ctx context.Context, path string) (map[string]string, error) {
	data, err := inputfile.Read(ctx, "UDI list", path, maxUDIList)
	if err != nil {
		return nil, err
	}
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: line 1: no header row (serial,udi): %v", path, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	for _, need := range []string{"serial", "udi"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("%s: line 1: the header has no %q column (it needs serial,udi)", path, need)
		}
	}
	out := map[string]string{}
	lines := map[string]int{}
	var bad UDIListError
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		line, _ := cr.FieldPos(0)
		get := func(name string) string {
			if i := col[name]; i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		serial, u := get("serial"), get("udi")
		switch {
		case serial == "" && u == "":
			continue // blank line
		case serial == "":
			bad = append(bad, RowError{Line: line, Problem: "no serial"})
		case lines[serial] != 0:
			bad = append(bad, RowError{Line: line, Problem: fmt.Sprintf("serial %s is also on line %d", serial, lines[serial])})
		default:
			if _, err := udi.Check(u); err != nil {
				bad = append(bad, RowError{Line: line, Problem: fmt.Sprintf("device %s: %v", serial, err)})
				continue
			}
			lines[serial], out[serial] = line, u
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s: %w", path, bad)
	}
	return out, nil
}
