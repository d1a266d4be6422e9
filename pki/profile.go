package pki

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strings"
	"time"
)

// oidDocumentSigning is id-kp-documentSigning (RFC 9336): the key signs documents such as
// PDF records, and nothing else.
var oidDocumentSigning = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 36}

// Profile is a kind of certificate that a CA of Custos issues: IssuingCA, RecordSigner or
// DeviceIdentity. The root, which signs itself, is RootCA and goes through IssueRoot.
type Profile interface {
	// template builds the certificate with serial number serial for subject key pub; profile
	// fields are checked first.
	template(serial *big.Int, pub crypto.PublicKey) (*x509.Certificate, error)
	// kind names the profile in messages, such as "device identity".
	kind() string
}

func (RootCA) kind() string         { return "root CA" }
func (IssuingCA) kind() string      { return "issuing CA" }
func (RecordSigner) kind() string   { return "record signer" }
func (DeviceIdentity) kind() string { return "device identity" }

// RootCA is the profile of the self-signed root: basicConstraints CA with pathLen 1 (an
// issuing CA below it, nothing below that), keyUsage keyCertSign and cRLSign, both critical.
type RootCA struct {
	CommonName    string    // for example "Acme Medical Root CA 2026"; required
	Organization  string    // the manufacturer; required
	Country       string    // ISO 3166 two-letter code such as "US"; required
	NotBefore     time.Time // zero means now
	ValidityYears int       // 1 to 50
}

// IssuingCA is the profile of the CA the root signs to issue device certificates and sign
// device CRLs: pathLen 0, keyUsage keyCertSign and cRLSign, critical, and an extended key
// usage that limits what it may certify: clientAuth by default, serverAuth when asked, never
// anyExtendedKeyUsage. Relying parties (OpenSSL, Go, browsers) apply a CA's extended key usage
// to the certificates below it, so an issuing CA of client identities cannot be used to issue
// a TLS server certificate for any name to everyone who trusts the root; Issue refuses a
// certificate whose extended key usage or policies its issuer does not allow.
type IssuingCA struct {
	CommonName    string    // required
	Organization  string    // required
	Country       string    // required
	NotBefore     time.Time // zero means now
	ValidityYears int       // 1 to 50, and within the root's validity
	// CRLDistributionPoint is the http, https or ldap URL where the root's CRL is published,
	// written into the certificate so that relying parties find it; empty for none.
	CRLDistributionPoint string
	// ExtKeyUsages are the purposes of the certificates this CA may issue: ClientAuth,
	// ServerAuth or both (ParseExtKeyUsages reads them from "clientAuth,serverAuth"). Empty
	// means ClientAuth alone; ExtKeyUsageAny is refused.
	ExtKeyUsages []x509.ExtKeyUsage
	// Policies are certificate policy OIDs the CA asserts (ParsePolicy reads one), such as
	// the manufacturer's own arc for its device PKI; empty for none. anyPolicy is refused:
	// it asserts nothing.
	Policies []x509.OID
	// CAIssuersURL is the http URL where the root's certificate is published, written as the
	// authority information access caIssuers so that a relying party given only the device
	// and issuing CA certificates can find the root; empty for none.
	CAIssuersURL string
}

// RecordSigner is the profile of the key that signs PDF records: an end entity with keyUsage
// digitalSignature and contentCommitment (a record is an attestation a person stands
// behind, which is what contentCommitment, formerly nonRepudiation, says) and extended key
// usage id-kp-documentSigning (RFC 9336) alone, so it can sign nothing else, unless
// EmailProtection is set.
type RecordSigner struct {
	CommonName           string    // for example "Acme Medical Ceremony Records"; required
	Organization         string    // optional
	Country              string    // optional
	NotBefore            time.Time // zero means now
	ValidityYears        int       // 1 to 50, and within the issuer's validity
	CRLDistributionPoint string    // the issuer's CRL URL; empty for none
	// EmailProtection adds id-kp-emailProtection beside id-kp-documentSigning. NSS, and so
	// poppler's pdfsig, validates a PDF signer as an e-mail signer and rejects a certificate
	// whose extended key usage lacks it ("Unknown issue with Certificate"); the price is a
	// key that mail clients would also accept for S/MIME signatures.
	EmailProtection bool
}

// DeviceIdentity is the profile of a medical device's TLS identity: subject common name and
// serialNumber attribute are the device serial, O the manufacturer, OU the model. keyUsage is
// digitalSignature only: TLS 1.2 ECDHE and TLS 1.3 use the certified key only to sign, so
// keyAgreement (static ECDH) and keyEncipherment (RSA key transport) would only widen what a
// stolen key could do. Extended key usage is clientAuth, plus serverAuth when ServerAuth is
// set for devices that accept connections (DICOM TLS, a service port).
type DeviceIdentity struct {
	SerialNumber  string    // the device serial; required
	Manufacturer  string    // required
	Model         string    // optional
	Country       string    // optional
	NotBefore     time.Time // zero means now
	ValidityYears int       // 1 to 50, and within the issuer's validity
	// ServerAuth adds id-kp-serverAuth for a device that serves TLS as well as connecting;
	// the issuing CA's extended key usage must allow it.
	ServerAuth bool
	// CRLDistributionPoint is a fixed CRL URL for the device; empty for none. Leave it empty
	// when CRLShards is set.
	CRLDistributionPoint string
	// CRLShards, when set, gives the device a CRL distribution point naming its own shard,
	// CRLShards.URL(ShardOf(serial, CRLShards.Count)): the small CRL that lists every revoked
	// certificate of its shard and that a device with little storage can hold.
	CRLShards CRLShards
	// Policies are certificate policy OIDs the device certificate asserts; each must be one
	// its issuing CA asserts (pass the issuing CA certificate's Policies). Empty for none.
	Policies []x509.OID
}

// Upper bounds from RFC 5280 appendix A.1 (ub-common-name and friends), counted in
// characters as X.520 does.
const (
	maxCommonName   = MaxCommonName
	maxOrganization = MaxOrganization
	maxOrgUnit      = 64
	maxSerialNumber = 64
	maxValidity     = 50
)

func (p RootCA) template(serial *big.Int, pub crypto.PublicKey) (*x509.Certificate, error) {
	subject, err := caSubject("RootCA", p.CommonName, p.Organization, p.Country)
	if err != nil {
		return nil, err
	}
	t, err := baseTemplate("RootCA", subject, serial, pub, p.NotBefore, p.ValidityYears)
	if err != nil {
		return nil, err
	}
	t.IsCA = true
	t.MaxPathLen = 1
	t.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	// A self-signed certificate may omit the authority key identifier (RFC 5280 4.2.1.1),
	// but carrying its own key identifier there helps path builders and is what the
	// CA/Browser Forum recommends for roots.
	t.AuthorityKeyId = t.SubjectKeyId
	return t, nil
}

// CheckOptions checks what an issuing CA states beyond its names (its extended key usages,
// policies, caIssuers URL and CRL distribution point) without a key, so that a request is
// refused before the CA's key is made.
func (p IssuingCA) CheckOptions() error {
	if _, err := distributionPoints("IssuingCA", p.CRLDistributionPoint); err != nil {
		return err
	}
	if _, err := caExtKeyUsages(p.ExtKeyUsages); err != nil {
		return err
	}
	if _, err := checkPolicies("IssuingCA.Policies", p.Policies); err != nil {
		return err
	}
	if p.CAIssuersURL != "" {
		return checkURL("IssuingCA.CAIssuersURL", p.CAIssuersURL, "http")
	}
	return nil
}

func (p IssuingCA) template(serial *big.Int, pub crypto.PublicKey) (*x509.Certificate, error) {
	subject, err := caSubject("IssuingCA", p.CommonName, p.Organization, p.Country)
	if err != nil {
		return nil, err
	}
	t, err := baseTemplate("IssuingCA", subject, serial, pub, p.NotBefore, p.ValidityYears)
	if err != nil {
		return nil, err
	}
	t.IsCA = true
	t.MaxPathLen = 0
	t.MaxPathLenZero = true
	t.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	if t.CRLDistributionPoints, err = distributionPoints("IssuingCA", p.CRLDistributionPoint); err != nil {
		return nil, err
	}
	if t.ExtKeyUsage, err = caExtKeyUsages(p.ExtKeyUsages); err != nil {
		return nil, err
	}
	if t.Policies, err = checkPolicies("IssuingCA.Policies", p.Policies); err != nil {
		return nil, err
	}
	if p.CAIssuersURL != "" {
		if err := checkURL("IssuingCA.CAIssuersURL", p.CAIssuersURL, "http"); err != nil {
			return nil, err
		}
		t.IssuingCertificateURL = []string{p.CAIssuersURL}
	}
	return t, nil
}

func (p RecordSigner) template(serial *big.Int, pub crypto.PublicKey) (*x509.Certificate, error) {
	subject := pkix.Name{CommonName: p.CommonName}
	if err := checkText("RecordSigner.CommonName", p.CommonName, maxCommonName, true); err != nil {
		return nil, err
	}
	if err := checkText("RecordSigner.Organization", p.Organization, maxOrganization, false); err != nil {
		return nil, err
	}
	if p.Organization != "" {
		subject.Organization = []string{p.Organization}
	}
	if err := optionalCountry("RecordSigner", p.Country, &subject); err != nil {
		return nil, err
	}
	t, err := baseTemplate("RecordSigner", subject, serial, pub, p.NotBefore, p.ValidityYears)
	if err != nil {
		return nil, err
	}
	t.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment
	t.UnknownExtKeyUsage = []asn1.ObjectIdentifier{oidDocumentSigning}
	if p.EmailProtection {
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}
	}
	if t.CRLDistributionPoints, err = distributionPoints("RecordSigner", p.CRLDistributionPoint); err != nil {
		return nil, err
	}
	return t, nil
}

func (p DeviceIdentity) template(serial *big.Int, pub crypto.PublicKey) (*x509.Certificate, error) {
	if err := checkText("DeviceIdentity.SerialNumber", p.SerialNumber, maxSerialNumber, true); err != nil {
		return nil, err
	}
	// X.520 makes serialNumber a PrintableString, so its characters are limited.
	for _, r := range p.SerialNumber {
		if !isPrintable(r) {
			return nil, fmt.Errorf("DeviceIdentity.SerialNumber %q contains %q: a device serial may hold only letters A-Z and a-z, digits, spaces and ' ( ) + , - . / : = ?",
				p.SerialNumber, r)
		}
	}
	if err := checkText("DeviceIdentity.Manufacturer", p.Manufacturer, maxOrganization, true); err != nil {
		return nil, err
	}
	if err := checkText("DeviceIdentity.Model", p.Model, maxOrgUnit, false); err != nil {
		return nil, err
	}
	subject := pkix.Name{
		CommonName:   p.SerialNumber,
		SerialNumber: p.SerialNumber,
		Organization: []string{p.Manufacturer},
	}
	if p.Model != "" {
		subject.OrganizationalUnit = []string{p.Model}
	}
	if err := optionalCountry("DeviceIdentity", p.Country, &subject); err != nil {
		return nil, err
	}
	t, err := baseTemplate("DeviceIdentity", subject, serial, pub, p.NotBefore, p.ValidityYears)
	if err != nil {
		return nil, err
	}
	t.KeyUsage = x509.KeyUsageDigitalSignature
	t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if p.ServerAuth {
		t.ExtKeyUsage = append(t.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if p.CRLShards != (CRLShards{}) {
		if p.CRLDistributionPoint != "" {
			return nil, fmt.Errorf("DeviceIdentity has both CRLDistributionPoint %q and CRLShards: a device names one CRL, so set only one", p.CRLDistributionPoint)
		}
		if err := p.CRLShards.Check(); err != nil {
			return nil, fmt.Errorf("DeviceIdentity.%w", err)
		}
		t.CRLDistributionPoints = []string{p.CRLShards.URL(ShardOf(t.SerialNumber, p.CRLShards.Count))}
	} else if t.CRLDistributionPoints, err = distributionPoints("DeviceIdentity", p.CRLDistributionPoint); err != nil {
		return nil, err
	}
	if t.Policies, err = checkPolicies("DeviceIdentity.Policies", p.Policies); err != nil {
		return nil, err
	}
	return t, nil
}

// baseTemplate holds what every profile shares: serial number, subject, validity, the
// subject key identifier computed from the real public key (so the throwaway key that signs
// the linted copy cannot change it), and basic constraints present.
func baseTemplate(profile string, subject pkix.Name, serial *big.Int, pub crypto.PublicKey, notBefore time.Time, years int) (*x509.Certificate, error) {
	if err := checkSerial(serial); err != nil {
		return nil, fmt.Errorf("certificate %w", err)
	}
	if pub == nil {
		return nil, fmt.Errorf("%s: the subject public key is missing", profile)
	}
	if _, err := KeyAlgorithmOf(pub); err != nil {
		return nil, fmt.Errorf("%s: subject key: %w", profile, err)
	}
	if years < 1 || years > maxValidity {
		return nil, fmt.Errorf("%s.ValidityYears is %d: it must be between 1 and %d", profile, years, maxValidity)
	}
	if notBefore.IsZero() {
		notBefore = time.Now()
	}
	// DER times carry whole seconds; truncating here keeps the template equal to what is
	// encoded, so the validity that is checked is the validity that is signed.
	notBefore = notBefore.UTC().Truncate(time.Second)
	// The certificate is valid through its last second: NotAfter is inclusive (RFC 5280
	// 4.1.2.5), so a 25-year certificate ends one second before the 25th anniversary.
	notAfter := notBefore.AddDate(years, 0, 0).Add(-time.Second)
	ski, err := subjectKeyID(pub)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", profile, err)
	}
	return &x509.Certificate{
		SerialNumber:          new(big.Int).Set(serial),
		Subject:               subject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		SubjectKeyId:          ski,
		BasicConstraintsValid: true,
	}, nil
}

// subjectKeyID is method 1 of RFC 7093 section 2: the leftmost 160 bits of the SHA-256 of
// the subjectPublicKey bits, as Go computes it for CAs, applied here to every profile.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode subject public key: %w", err)
	}
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &info); err != nil {
		return nil, fmt.Errorf("read back subject public key: %w", err)
	}
	sum := sha256.Sum256(info.PublicKey.Bytes)
	return sum[:20], nil
}

func caSubject(profile, cn, org, country string) (pkix.Name, error) {
	if err := checkText(profile+".CommonName", cn, maxCommonName, true); err != nil {
		return pkix.Name{}, err
	}
	if err := checkText(profile+".Organization", org, maxOrganization, true); err != nil {
		return pkix.Name{}, err
	}
	if err := checkCountry(profile+".Country", country); err != nil {
		return pkix.Name{}, err
	}
	return pkix.Name{CommonName: cn, Organization: []string{org}, Country: []string{country}}, nil
}

func optionalCountry(profile, country string, subject *pkix.Name) error {
	if country == "" {
		return nil
	}
	if err := checkCountry(profile+".Country", country); err != nil {
		return err
	}
	subject.Country = []string{country}
	return nil
}

// checkText refuses what would make a bad name: empty when required, too long, surrounding
// spaces (zlint flags them, and they make two names look alike), control characters or
// invalid UTF-8.
func checkText(field, s string, max int, required bool) error {
	if s == "" {
		if required {
			return fmt.Errorf("%s is empty: it is required", field)
		}
		return nil
	}
	if p := SubjectTextProblem(s, max); p != "" {
		return fmt.Errorf("%s %s", field, p)
	}
	return nil
}

// isPrintable reports whether r is in the ASN.1 PrintableString alphabet.
func isPrintable(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(" '()+,-./:=?", r)
}

func checkCountry(field, c string) error {
	if p := CountryProblem(c); p != "" {
		return fmt.Errorf("%s %s", field, p)
	}
	return nil
}

func distributionPoints(profile, u string) ([]string, error) {
	if u == "" {
		return nil, nil
	}
	if err := checkURL(profile+".CRLDistributionPoint", u, "http", "https", "ldap"); err != nil {
		return nil, err
	}
	return []string{u}, nil
}

// checkURL refuses what is not an absolute URL of one of the schemes with a host.
func checkURL(field, u string, schemes ...string) error {
	parsed, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("%s %q is not a URL: %w", field, u, err)
	}
	if !slices.Contains(schemes, parsed.Scheme) {
		return fmt.Errorf("%s %q must be an %s URL", field, u, orList(schemes))
	}
	if parsed.Host == "" {
		return fmt.Errorf("%s %q has no host", field, u)
	}
	return nil
}

// orList writes "http", "http or https", "http, https or ldap".
func orList(words []string) string {
	if len(words) == 1 {
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}
