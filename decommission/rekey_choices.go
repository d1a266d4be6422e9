package decommission

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/custos-pki/custos/keyalg"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// RekeyChoices is what a rekey of one device may choose, for a form that offers it: the
// device as registered, its current key and certificate, and the issuing CAs Rekey accepts.
type RekeyChoices struct {
	Device registry.Device
	// Algorithm is the current key's, the default of a rekey; "" when it is none Custos makes.
	Algorithm         keyalg.Algorithm
	Token             string // the device token's label, as registered with the current key
	CertificateSerial string // the current certificate's serial, hex as openssl prints it
	// Issuers are the issuing CAs a rekey may issue from: the device's own first when it can
	// still sign, then the newer active ones under the same root, in the order they were made.
	Issuers []registry.Issuer
}

// ChoicesForRekey reads what a rekey of device serial may choose, by the rules Rekey applies
// (the same or a newer active issuing CA under the device's root). It opens no token.
func ChoicesForRekey(ctx context.Context, env run.Env, serial string) (RekeyChoices, error) {
	h, err := env.Registry.DeviceHistory(ctx, serial)
	if errors.Is(err, registry.ErrNotFound) {
		return RekeyChoices{}, run.NewFieldError("Serial", "rekey: device %s is not registered in this workspace", serial)
	}
	if err != nil {
		return RekeyChoices{}, fmt.Errorf("rekey %s: %w", serial, err)
	}
	c := RekeyChoices{Device: h.Device}
	if n := len(h.Certificates); n > 0 {
		cur := h.Certificates[n-1]
		c.CertificateSerial = pki.SerialHex(cur.Serial.Big())
		if cert, err := x509.ParseCertificate(cur.DER); err == nil {
			if alg, err := pki.KeyAlgorithmOf(cert.PublicKey); err == nil {
				c.Algorithm = alg
			}
		}
		for _, k := range h.Keys {
			if k.CertIssuerID == cur.IssuerID && k.CertSerial.String() == cur.Serial.String() {
				c.Token = k.TokenLabel
			}
		}
	}
	current, err := env.Registry.Issuer(ctx, h.Device.IssuerID)
	if err != nil {
		return c, fmt.Errorf("rekey %s: the device's issuing CA %s: %w", serial, h.Device.IssuerID, err)
	}
	all, err := env.Registry.Issuers(ctx)
	if err != nil {
		return c, fmt.Errorf("rekey %s: %w", serial, err)
	}
	if _, err := rekeyIssuer(ctx, env, serial, current, current.ID); err == nil {
		c.Issuers = append(c.Issuers, current)
	}
	for _, iss := range all {
		if iss.ID == current.ID || iss.Kind != registry.IssuerIssuing || iss.Status != registry.StatusActive {
			continue
		}
		if _, err := rekeyIssuer(ctx, env, serial, current, iss.ID); err == nil {
			c.Issuers = append(c.Issuers, iss)
		}
	}
	return c, nil
}
