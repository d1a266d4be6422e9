package decommission

import (
	"context"
	"testing"

	"github.com/custos-pki/custos/ceremony"
	"github.com/custos-pki/custos/keyalg"
	"github.com/custos-pki/custos/pki"
	"github.com/custos-pki/custos/registry"
	"github.com/custos-pki/custos/run"
)

// A form's choices for a rekey are those Rekey accepts: the device's own issuing CA and the
// newer ones under its root, and after a move to the newer CA, that one alone.
func TestChoicesForRekey(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	first := f.issuer
	p := f.provision(t, "CH-1")
	second := f.issueCA(t, ceremony.IssueCARequest{CommonName: "Acme Devices CA 2"}).IssuerID

	ids := func(issuers []registry.Issuer) []string {
		var out []string
		for _, iss := range issuers {
			out = append(out, iss.ID)
		}
		return out
	}
	c, err := ChoicesForRekey(ctx, f.env, "CH-1")
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(c.Issuers); len(got) != 2 || got[0] != first || got[1] != second {
		t.Errorf("issuers %v, want [%s %s]", got, first, second)
	}
	alg, err := pki.KeyAlgorithmOf(p.Certificate.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if c.Algorithm != alg || c.Token != p.Token || c.CertificateSerial != pki.SerialHex(p.Certificate.SerialNumber) || c.Device.Serial != "CH-1" {
		t.Errorf("choices %s %s %s %s, want algorithm %s, token %s, certificate %s", c.Algorithm, c.Token, c.CertificateSerial, c.Device.Serial, alg, p.Token, pki.SerialHex(p.Certificate.SerialNumber))
	}

	req := rekeyRequest("CH-1")
	req.Issuer, req.Algorithm = second, keyalg.ECDSAP384
	res, err := Rekey(ctx, f.env, req)
	if err != nil {
		t.Fatal(err)
	}
	c, err = ChoicesForRekey(ctx, f.env, "CH-1")
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(c.Issuers); len(got) != 1 || got[0] != second {
		t.Errorf("after the move to %s: issuers %v, want only it (the first CA is older)", second, got)
	}
	if c.Algorithm != keyalg.ECDSAP384 || c.CertificateSerial != pki.SerialHex(res.NewCertificate.SerialNumber) {
		t.Errorf("after the rekey: choices %s %s, want ecdsa-p384 and certificate %s", c.Algorithm, c.CertificateSerial, pki.SerialHex(res.NewCertificate.SerialNumber))
	}

	if _, err := ChoicesForRekey(ctx, f.env, "NO-SUCH"); run.FieldOf(err) != "Serial" {
		t.Errorf("an unknown device: %v, want an error naming the serial", err)
	}
}
