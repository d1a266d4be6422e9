package pki

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"

	"github.com/custos-pki/custos/keyalg"
)

// Issuer is a CA certificate together with the key that signs for it, usually a
// crypto.Signer backed by an HSM token.
type Issuer struct {
	Certificate *x509.Certificate
	Signer      crypto.Signer
}

// IssueRoot makes the self-signed root certificate for signer's key, lint-then-sign: see
// Issue. serial should come from NewSerial.
func IssueRoot(p RootCA, serial *big.Int, signer crypto.Signer) (*x509.Certificate, LintReport, error) {
	if signer == nil {
		return nil, nil, errors.New("issue root certificate: no signer")
	}
	pub := signer.Public()
	t, err := p.template(serial, pub)
	if err != nil {
		return nil, nil, fmt.Errorf("issue root certificate: %w", err)
	}
	c, report, err := signCertificate(t, pub, Issuer{Signer: signer})
	if err != nil {
		return nil, report, fmt.Errorf("issue root certificate %q: %w", p.CommonName, err)
	}
	return c, report, nil
}

// Issue makes a certificate of profile p for the subject key pub, signed by issuer, and
// returns it with the lints of the final certificate.
//
// Lint, then sign: the certificate is first signed with a throwaway software key of the
// issuer's algorithm, so that its to-be-signed part is exactly what the issuer will sign, and
// linted with zlint; any error or fatal lint refuses it and the issuer's key is not used.
// Then the issuer signs; the signed to-be-signed bytes must equal the linted ones, the
// signature must verify under the issuer certificate, and the final certificate is linted
// again. serial should come from NewSerial.
func Issue(p Profile, serial *big.Int, pub crypto.PublicKey, issuer Issuer) (*x509.Certificate, LintReport, error) {
	if p == nil {
		return nil, nil, errors.New("issue certificate: no profile")
	}
	what := "issue " + p.kind() + " certificate"
	if _, ok := p.(RootCA); ok {
		return nil, nil, errors.New("issue certificate: a root is self-signed: use IssueRoot")
	}
	t, err := p.template(serial, pub)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := checkIssuer(t, issuer); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	c, report, err := signCertificate(t, pub, issuer)
	if err != nil {
		return nil, report, fmt.Errorf("%s for %q: %w", what, t.Subject.CommonName, err)
	}
	return c, report, nil
}

// checkIssuer refuses an issuer that cannot sign t: not a CA, no keyCertSign, a path length
// that forbids another CA, an extended key usage or certificate policies that do not cover
// t's, a validity that does not cover t's (a *LimitError: a certificate never outlives its
// issuer, and Custos refuses rather than shortens it, so what is signed is what was asked),
// or a signer whose key is not the certificate's.
func checkIssuer(t *x509.Certificate, issuer Issuer) error {
	ic := issuer.Certificate
	if ic == nil {
		return errors.New("the issuer certificate is missing")
	}
	name := ic.Subject.CommonName
	if issuer.Signer == nil {
		return fmt.Errorf("no signer for issuer %q", name)
	}
	if !ic.BasicConstraintsValid || !ic.IsCA {
		return fmt.Errorf("issuer %q is not a CA", name)
	}
	if ic.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fmt.Errorf("issuer %q may not sign certificates (no keyCertSign key usage)", name)
	}
	if t.IsCA && ic.MaxPathLen == 0 {
		return fmt.Errorf("issuer %q has path length 0: it may not sign another CA", name)
	}
	if len(ic.SubjectKeyId) == 0 {
		return fmt.Errorf("issuer %q has no subject key identifier to put in the authority key identifier", name)
	}
	if t.NotBefore.Before(ic.NotBefore) {
		return fmt.Errorf("NotBefore %s is before issuer %q becomes valid (%s)", t.NotBefore.Format(timeLayout), name, ic.NotBefore.UTC().Format(timeLayout))
	}
	if t.NotAfter.After(ic.NotAfter) {
		return &LimitError{What: "the certificate's notAfter", Value: t.NotAfter, Limit: ic.NotAfter.UTC(),
			Bound: fmt.Sprintf("the notAfter of issuer %q", name), Advice: "choose a shorter ValidityYears"}
	}
	if err := checkExtKeyUsageNesting(t, ic); err != nil {
		return err
	}
	if err := checkPolicyNesting(t, ic); err != nil {
		return err
	}
	return checkSignerKey(issuer)
}

const timeLayout = "2006-01-02 15:04:05 UTC"

// checkSignerKey refuses a signer whose public key is not the issuer certificate's: most
// often the wrong token or key was chosen.
func checkSignerKey(issuer Issuer) error {
	pub, ok := issuer.Signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(issuer.Certificate.PublicKey) {
		return fmt.Errorf("the signing key is not the key of issuer %q: check that the right token and key are selected", issuer.Certificate.Subject.CommonName)
	}
	return nil
}

// signCertificate is lint-then-sign for template t with subject key pub. A zero
// issuer.Certificate means t signs itself.
func signCertificate(t *x509.Certificate, pub crypto.PublicKey, issuer Issuer) (*x509.Certificate, LintReport, error) {
	selfSigned := issuer.Certificate == nil
	issuerPub := issuer.Signer.Public()
	alg, err := KeyAlgorithmOf(issuerPub)
	if err != nil {
		return nil, nil, fmt.Errorf("issuer key: %w", err)
	}
	t.SignatureAlgorithm = signatureAlgorithm(alg)

	// The throwaway key signs a copy whose parent differs from the real one only in its
	// public key, which is not part of the to-be-signed bytes; for a root the template is
	// its own parent and carries no public key, so nothing differs at all.
	throwaway, err := generateKey(alg)
	if err != nil {
		return nil, nil, fmt.Errorf("generate throwaway %s key for linting: %w", alg, err)
	}
	lintParent, realParent := t, t
	if !selfSigned {
		p := *issuer.Certificate
		p.PublicKey = throwaway.Public()
		lintParent, realParent = &p, issuer.Certificate
	}
	lintDER, err := x509.CreateCertificate(rand.Reader, t, lintParent, pub, throwaway)
	if err != nil {
		return nil, nil, fmt.Errorf("build certificate to lint: %w", err)
	}
	linted, err := x509.ParseCertificate(lintDER)
	if err != nil {
		return nil, nil, fmt.Errorf("read back certificate to lint: %w", err)
	}
	subjectAlg, err := KeyAlgorithmOf(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("subject key: %w", err)
	}
	ed := alg == keyalg.Ed25519 || subjectAlg == keyalg.Ed25519
	report, err := lintCertificate(lintDER, t.IsCA, ed)
	if err != nil {
		return nil, report, err
	}

	der, err := x509.CreateCertificate(rand.Reader, t, realParent, pub, issuer.Signer)
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate: %w", err)
	}
	c, err := checkSigned(der, linted.RawTBSCertificate, issuer.Certificate)
	if err != nil {
		return nil, nil, err
	}
	report, err = lintCertificate(der, t.IsCA, ed)
	if err != nil {
		return nil, report, fmt.Errorf("signed certificate: %w", err)
	}
	return c, report, nil
}

// checkSigned parses a freshly signed certificate and checks it is what was linted and that
// its signature verifies under the issuer (itself when parent is nil). Nothing is returned
// when a check fails: a signer that signs with another key, or a TBS that changed after
// linting, must not leave a certificate behind.
func checkSigned(der, lintedTBS []byte, parent *x509.Certificate) (*x509.Certificate, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("read back signed certificate: %w", err)
	}
	if !bytes.Equal(c.RawTBSCertificate, lintedTBS) {
		return nil, errors.New("the signed certificate differs from the linted one: refusing it")
	}
	if parent == nil {
		parent = c
	}
	if err := c.CheckSignatureFrom(parent); err != nil {
		return nil, fmt.Errorf("the signature does not verify under the issuer certificate %q: %w", parent.Subject.CommonName, err)
	}
	return c, nil
}
