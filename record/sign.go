package record

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/big"
	"path/filepath"
	"strings"
	"time"

	"github.com/custos-pki/custos/workspace"
)

// The certification signature is a CMS SignedData (adbe.pkcs7.detached, SHA-256) over every
// byte of the file but the signature's own /Contents. Its room in the file is measured before
// the file is written: a CMS structure is built with the signer's real certificates and a
// stand-in signature of the largest size the signer's key and algorithm can produce, and the
// placeholder is that long. The key then signs once; a signature that somehow did not fit is
// an error, never a second signature by the HSM.

var (
	oidDocumentSigning = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 36}
	oidExtKeyUsage     = asn1.ObjectIdentifier{2, 5, 29, 37}
)

// hasDocumentSigning reports whether c's extended key usage extension lists
// id-kp-documentSigning (RFC 9336, 1.3.6.1.5.5.7.3.36), read as an OID from the extension
// itself, whatever name a library gives it.
func hasDocumentSigning(c *x509.Certificate) bool {
	for _, ext := range c.Extensions {
		if !ext.Id.Equal(oidExtKeyUsage) {
			continue
		}
		var usages []asn1.ObjectIdentifier
		if rest, err := asn1.Unmarshal(ext.Value, &usages); err != nil || len(rest) > 0 {
			return false
		}
		for _, u := range usages {
			if u.Equal(oidDocumentSigning) {
				return true
			}
		}
	}
	return false
}

// placeholder is the signature's room in a record being assembled.
type placeholder struct {
	size int // bytes of DER the /Contents hex string holds
}

// byteRangeMark is the /ByteRange as first written: as wide as the widest real one.
const byteRangeMark = "/ByteRange [0 0000000000 0000000000 0000000000]"

// timeSlack covers the one thing in the signed attributes whose length can differ between
// measuring and signing: the signing time turns from UTCTime into GeneralizedTime in 2050.
const timeSlack = 16

// newPlaceholder checks the signer and measures its signature.
func newPlaceholder(s *Signer) (*placeholder, error) {
	if s.Key == nil || s.Certificate == nil {
		return nil, errors.New("sign record: no record-signer key or certificate")
	}
	if !hasDocumentSigning(s.Certificate) {
		return nil, fmt.Errorf("sign record: the record signer %q lacks the extended key usage id-kp-documentSigning (1.3.6.1.5.5.7.3.36): it may not sign records",
			s.Certificate.Subject.CommonName)
	}
	stand, err := maxSignature(s.Key.Public())
	if err != nil {
		return nil, err
	}
	der, err := signedData(make([]byte, sha256.Size), s, standIn{pub: s.Key.Public(), sig: stand})
	if err != nil {
		return nil, err
	}
	return &placeholder{size: len(der) + timeSlack}, nil
}

// dict is the signature dictionary with the placeholder's /ByteRange and /Contents.
func (p *placeholder) dict(s *Signer, reason string) string {
	return "<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /adbe.pkcs7.detached\n" + byteRangeMark + "\n" +
		"/Contents <" + strings.Repeat("0", 2*p.size) + ">\n" +
		fmt.Sprintf("/M %s /Name %s /Reason %s /Location (Custos workstation)\n", pdfDate(time.Now()), pdfText(s.Certificate.Subject.CommonName), pdfText(reason)) +
		"/Reference [<< /Type /SigRef /TransformMethod /DocMDP /TransformParams << /Type /TransformParams /P 1 /V /1.2 >> >>] >>"
}

// sign fills the placeholder in tail, the end of the assembled file from the signature's
// dictionary on, which follows base bytes whose hash is head: the byte range, then the
// signature.
func (p *placeholder) sign(ctx context.Context, tail []byte, base int, head hash.Hash, s *Signer) error {
	at := bytes.Index(tail, []byte(byteRangeMark))
	if at < 0 || bytes.Count(tail, []byte(byteRangeMark)) != 1 {
		return errors.New("sign record: the signature's byte range is not in the file exactly once")
	}
	open := at + bytes.Index(tail[at:], []byte("/Contents <")) + len("/Contents ")
	closeAt := open + 1 + 2*p.size
	if open < at || closeAt >= len(tail) || tail[closeAt] != '>' {
		return errors.New("sign record: the signature's placeholder is not where it was written")
	}
	after := closeAt + 1
	size := base + len(tail)
	br := fmt.Sprintf("/ByteRange [0 %d %d %d]", base+open, base+after, size-base-after)
	if len(br) > len(byteRangeMark) {
		return fmt.Errorf("sign record: a %d-byte record is too large for its byte range", size)
	}
	copy(tail[at:], br+strings.Repeat(" ", len(byteRangeMark)-len(br)))
	head.Write(tail[:open])
	head.Write(tail[after:])
	der, err := signedData(head.Sum(nil), s, ctxSigner{ctx: ctx, Signer: s.Key})
	if err != nil {
		return err
	}
	if len(der) > p.size {
		return fmt.Errorf("sign record: the signature is %d bytes, more than the %d measured for its key and certificates; the record was not written", len(der), p.size)
	}
	hex.Encode(tail[open+1:], der)
	return nil
}

// maxSignature is a stand-in for the longest signature pub's algorithm makes: an ECDSA
// signature whose two integers are as long as the group order's, an RSA signature as long as
// the modulus, an Ed25519 signature.
func maxSignature(pub crypto.PublicKey) ([]byte, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		top := new(big.Int).Sub(k.Curve.Params().N, big.NewInt(1))
		return asn1.Marshal(struct{ R, S *big.Int }{top, top})
	case *rsa.PublicKey:
		return bytes.Repeat([]byte{0xff}, k.Size()), nil
	case ed25519.PublicKey:
		return make([]byte, ed25519.SignatureSize), nil
	}
	return nil, fmt.Errorf("sign record: a %T record-signer key is not supported", pub)
}

// standIn signs with a fixed signature: it measures a CMS structure without the real key.
type standIn struct {
	pub crypto.PublicKey
	sig []byte
}

func (s standIn) Public() crypto.PublicKey { return s.pub }
func (s standIn) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return s.sig, nil
}

// ctxSigner passes ctx to a key that takes one (an HSM key), so a cancelled run stops before
// the token signs.
type ctxSigner struct {
	ctx context.Context
	crypto.Signer
}

func (c ctxSigner) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if cs, ok := c.Signer.(interface {
		SignContext(context.Context, []byte, crypto.SignerOpts) ([]byte, error)
	}); ok {
		return cs.SignContext(c.ctx, digest, opts)
	}
	if err := c.ctx.Err(); err != nil {
		return nil, err
	}
	return c.Signer.Sign(rand, digest, opts)
}

// WriteCeremony lays out, certifies and writes a ceremony record at path (never overwriting).
func WriteCeremony(ctx context.Context, path string, c *Ceremony, journal []byte, s Signer) error {
	l, err := layoutCeremony(c, journal, filepath.Dir(path))
	if err != nil {
		return err
	}
	return l.write(ctx, path, s, "ceremony record "+c.ID)
}

// WriteDestruction lays out, certifies and writes a destruction record at path.
func WriteDestruction(ctx context.Context, path string, d *Destruction, journal []byte, s Signer) error {
	l, err := layoutDestruction(d, journal, filepath.Dir(path))
	if err != nil {
		return err
	}
	return l.write(ctx, path, s, "destruction record "+d.ID)
}

// WriteModuleCheck lays out, certifies and writes a module check's record.
func WriteModuleCheck(ctx context.Context, path string, c *ModuleCheck, journal []byte, s Signer) error {
	l, err := layoutModuleCheck(c, journal, filepath.Dir(path))
	if err != nil {
		return err
	}
	return l.write(ctx, path, s, "module check record "+c.ID)
}

// WriteCRLPublication lays out, certifies and writes the record of a CRL publication.
func WriteCRLPublication(ctx context.Context, path string, c *CRLPublication, journal []byte, s Signer) error {
	l, err := layoutCRLPublication(c, journal, filepath.Dir(path))
	if err != nil {
		return err
	}
	return l.write(ctx, path, s, "CRL publication record "+c.ID)
}

// laidOut is a record's pages and what the assembled file carries besides.
type laidOut struct {
	volumes []*fpdfDoc
	meta    docMeta
	files   []Attachment
}

// write assembles, certifies and writes the record to path, which it must not replace: the
// file appears whole or not at all.
func (l *laidOut) write(ctx context.Context, path string, s Signer, reason string) error {
	var aerr error
	err := workspace.WriteExclusive(path, 0o644, func(w io.Writer) error {
		aerr = assemble(ctx, w, l.volumes, l.meta, l.files, &s, reason)
		return aerr
	})
	if err != nil && aerr == nil {
		return fmt.Errorf("write record: %w", err)
	}
	return err
}

func (l *laidOut) unsigned() ([]byte, error) {
	var b bytes.Buffer
	err := assemble(context.Background(), &b, l.volumes, l.meta, l.files, nil, "")
	return b.Bytes(), err
}
