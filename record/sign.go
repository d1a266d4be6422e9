package record

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/digitorus/pdf"
	"github.com/digitorus/pdfsign/sign"

	"github.com/custos-pki/custos/workspace"
)

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// Sign adds a certification signature (no changes allowed afterwards) over the whole PDF,
// made by s.Key, with the signer's certificate and chain embedded.
func Sign(ctx context.Context, doc []byte, s Signer, reason string) ([]byte, error) {
	if s.Key == nil || s.Certificate == nil {
		return nil, errors.New("sign record: no record-signer key or certificate")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rdr, err := pdf.NewReader(bytes.NewReader(doc), int64(len(doc)))
	if err != nil {
		return nil, fmt.Errorf("sign record: read the rendered PDF: %w", err)
	}
	chain := append([]*x509.Certificate{s.Certificate}, s.Chain...)
	var out bytes.Buffer
	err = sign.Sign(bytes.NewReader(doc), &out, rdr, int64(len(doc)), sign.SignData{
		Signature: sign.SignDataSignature{
			CertType:   sign.CertificationSignature,
			DocMDPPerm: sign.DoNotAllowAnyChangesPerms,
			Info: sign.SignDataSignatureInfo{Name: s.Certificate.Subject.CommonName, Reason: reason,
				Location: "Custos workstation", Date: time.Now().UTC()},
		},
		Signer:            s.Key,
		DigestAlgorithm:   crypto.SHA256,
		Certificate:       s.Certificate,
		CertificateChains: [][]*x509.Certificate{chain},
	})
	if err != nil {
		return nil, fmt.Errorf("sign record: %w", err)
	}
	return out.Bytes(), nil
}

// WriteCeremony renders, signs and writes a ceremony record at path (never overwriting).
func WriteCeremony(ctx context.Context, path string, c *Ceremony, journal []byte, s Signer) error {
	doc, err := RenderCeremony(c, journal)
	if err != nil {
		return err
	}
	return signAndWrite(ctx, path, doc, s, "ceremony record "+c.ID)
}

// WriteDestruction renders, signs and writes a destruction record at path.
func WriteDestruction(ctx context.Context, path string, d *Destruction, journal []byte, s Signer) error {
	doc, err := RenderDestruction(d, journal)
	if err != nil {
		return err
	}
	return signAndWrite(ctx, path, doc, s, "destruction record "+d.ID)
}

// WriteModuleCheck renders, signs and writes a module check's record.
func WriteModuleCheck(ctx context.Context, path string, c *ModuleCheck, journal []byte, s Signer) error {
	doc, err := RenderModuleCheck(c, journal)
	if err != nil {
		return err
	}
	return signAndWrite(ctx, path, doc, s, "module check record "+c.ID)
}

func signAndWrite(ctx context.Context, path string, doc []byte, s Signer, reason string) error {
	signed, err := Sign(ctx, doc, s, reason)
	if err != nil {
		return err
	}
	if err := workspace.CreateExclusive(path, signed, 0o644); err != nil {
		return fmt.Errorf("write record: %w", err)
	}
	return nil
}
