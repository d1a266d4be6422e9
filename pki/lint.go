package pki

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
)

// LintResult is what one zlint lint concluded about a certificate or CRL.
type LintResult struct {
	Lint    string // the lint's name, for example "e_ext_key_usage_not_critical"
	Source  string // the document it checks, for example "RFC5280"
	Status  string // "pass", "NA" (not applicable), "NE" (not yet effective), "info", "warn", "error" or "fatal"
	Details string // what the lint found, when it says more than its status
}

// LintReport is every lint run on one certificate or CRL, sorted by lint name.
type LintReport []LintResult

// Failures returns the results that refuse signing: error and fatal.
func (r LintReport) Failures() LintReport {
	return r.filter("error", "fatal")
}

// Warnings returns the results that do not refuse signing but deserve a look: warn and info.
func (r LintReport) Warnings() LintReport {
	return r.filter("warn", "info")
}

func (r LintReport) filter(statuses ...string) LintReport {
	var out LintReport
	for _, res := range r {
		for _, s := range statuses {
			if res.Status == s {
				out = append(out, res)
			}
		}
	}
	return out
}

// LintError refuses a certificate or CRL that zlint found errors in, naming each lint.
type LintError struct {
	What     string     // "certificate" or "CRL"
	Failures LintReport // the error and fatal results
}

func (e *LintError) Error() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "the %s fails %d lint(s), so it was not signed:", e.What, len(e.Failures))
	for _, f := range e.Failures {
		fmt.Fprintf(&sb, " %s (%s, %s)", f.Lint, f.Source, f.Status)
		if f.Details != "" {
			fmt.Fprintf(&sb, ": %s", f.Details)
		}
		sb.WriteByte(';')
	}
	return strings.TrimSuffix(sb.String(), ";")
}

// Which zlint lints Custos runs. Custos is a private device PKI: no browser trusts it, its
// root is offline, its devices have no DNS names and live ten years or more. So every lint
// of the documents that define X.509 and its algorithms runs on everything it signs
// (RFC 5280, RFC 3279, RFC 5480, RFC 8813, RFC 5891, and zlint's community lints, which are
// about malformed encodings), and the Web PKI's own rules run only where they are about
// good cryptography and DER or about what a CA certificate is.

// certificateSources are run on every certificate.
var certificateSources = []lint.LintSource{lint.RFC5280, lint.RFC3279, lint.RFC5480, lint.RFC8813, lint.RFC5891, lint.Community}

// encodingLints are the Mozilla and CA/Browser Forum lints run on every certificate, end
// entities included: key sizes, exponents, curves and the exact DER of algorithm identifiers
// and signatures are properties of sound cryptography, not of Web PKI policy.
var encodingLints = []string{
	"e_mp_authority_key_identifier_correct",
	"e_mp_ecdsa_pub_key_encoding_correct",
	"e_mp_ecdsa_signature_encoding_correct",
	"e_mp_exponent_cannot_be_one",
	"e_mp_modulus_must_be_2048_bits_or_more",
	"e_mp_modulus_must_be_divisible_by_8",
	"e_mp_rsassa-pss_in_spki",
	"e_mp_rsassa-pss_parameters_encoding_in_signature_algorithm_correct",
	"e_algorithm_identifier_improper_encoding",
	"e_br_prohibit_dsa_usage",
	"e_ec_improper_curves",
	"e_public_key_type_not_allowed",
	"e_rsa_mod_less_than_2048_bits",
	"e_rsa_public_exponent_not_odd",
	"e_rsa_public_exponent_too_small",
	"e_signature_algorithm_not_supported",
	"e_sub_cert_or_sub_ca_using_sha1",
	"e_subject_country_not_iso",
	"e_subject_rdns_correct_encoding",
	"w_rsa_mod_factors_smaller_than_752",
	"w_rsa_mod_not_odd",
	"w_rsa_public_exponent_not_in_range",
}

// caExclusions are the CA/Browser Forum Baseline Requirements lints not run on Custos's CA
// certificates (all the others are), each with the reason.
var caExclusions = map[string]string{
	"e_sub_ca_certificate_policies_missing":                         "policy OIDs tell browsers which Baseline Requirements policy a public CA follows; a private device PKI registers none, and anyPolicy would assert nothing",
	"e_invalid_ca_certificate_policies":                             "as e_sub_ca_certificate_policies_missing",
	"e_sub_ca_crl_distribution_points_missing":                      "the distribution point is optional: an air-gapped root's CRL may travel by hand, and RFC 5280 does not require the extension",
	"e_sub_ca_aia_missing":                                          "an offline root runs no OCSP responder and publishes no issuer URL; chains are installed with the devices",
	"w_sub_ca_aia_missing":                                          "as e_sub_ca_aia_missing",
	"n_ca_digital_signature_not_set":                                "Custos CAs sign no OCSP responses, so they need no digitalSignature",
	"w_root_ca_basic_constraints_path_len_constraint_field_present": "pathLen 1 on the root is deliberate: one issuing CA level, and a compromised issuing CA cannot create another",
}

// ed25519Exclusions are lints not run when the subject or issuer key is Ed25519: the
// Baseline Requirements allow only RSA and ECDSA, while RFC 8410 defines Ed25519 for X.509
// and the RFC 5280 lints still check it.
var ed25519Exclusions = map[string]string{
	"e_algorithm_identifier_improper_encoding": "lists only RSA and ECDSA AlgorithmIdentifiers",
	"e_signature_algorithm_not_supported":      "lists only RSA and ECDSA signature algorithms",
}

// crlSources are run on every CRL, with the CA/Browser Forum CRL lints less crlExclusions.
var crlSources = []lint.LintSource{lint.RFC5280, lint.Community, lint.CABFBaselineRequirements}

var crlExclusions = map[string]string{
	"e_crl_next_update_invalid":       "the Baseline Requirements cap nextUpdate at 10 days; devices that connect rarely need longer windows, which the operator chooses",
	"e_cab_crl_has_valid_reason_code": "the Baseline Requirements omit cACompromise, which RFC 5280 defines and a root CRL revoking a compromised issuing CA must use; e_crl_has_valid_reason_code still checks every code",
}

// certificateRegistry returns the lints Custos runs on a CA or end-entity certificate;
// ed25519 is true when the subject or the issuer key is Ed25519.
func certificateRegistry(ca, ed25519 bool) (lint.Registry, error) {
	global := lint.GlobalRegistry()
	var names []string
	for _, name := range global.Names() {
		l := global.CertificateLints().ByName(name)
		if l == nil {
			continue
		}
		if ed25519 && ed25519Exclusions[name] != "" {
			continue
		}
		switch {
		case slices.Contains(certificateSources, l.Source), slices.Contains(encodingLints, name):
			names = append(names, name)
		case ca && l.Source == lint.CABFBaselineRequirements && caExclusions[name] == "":
			names = append(names, name)
		}
	}
	return global.Filter(lint.FilterOptions{IncludeNames: names})
}

// crlRegistry returns the lints Custos runs on a CRL.
func crlRegistry() (lint.Registry, error) {
	global := lint.GlobalRegistry()
	var names []string
	for _, name := range global.Names() {
		l := global.RevocationListLints().ByName(name)
		if l != nil && slices.Contains(crlSources, l.Source) && crlExclusions[name] == "" {
			names = append(names, name)
		}
	}
	return global.Filter(lint.FilterOptions{IncludeNames: names})
}

// lintCertificate runs the certificate lints on der and refuses on any error or fatal.
func lintCertificate(der []byte, ca, ed25519 bool) (LintReport, error) {
	c, err := zx509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("zlint cannot parse the certificate: %w", err)
	}
	reg, err := certificateRegistry(ca, ed25519)
	if err != nil {
		return nil, err
	}
	// zlint's framework would answer NA for every Baseline Requirements lint on a
	// certificate whose extended key usage lacks serverAuth: every issuing CA limited to
	// clientAuth, every device that only connects, every record signer. Custos chose those
	// lints for what they say about cryptography, DER and CAs, so it runs them on copies
	// that set OverrideFrameworkFilter, and each lint's own CheckApplies still decides.
	rs := &zlint.ResultSet{Results: map[string]*lint.LintResult{}}
	cfg := reg.GetConfiguration()
	for _, l := range reg.CertificateLints().Lints() {
		own := *l
		own.OverrideFrameworkFilter = true
		res := own.Execute(c, cfg)
		res.LintMetadata = l.LintMetadata
		rs.Results[l.Name] = res
	}
	return checkReport("certificate", rs)
}

// lintCRL runs the CRL lints on der and refuses on any error or fatal.
func lintCRL(der []byte) (LintReport, error) {
	reg, err := crlRegistry()
	if err != nil {
		return nil, err
	}
	return lintCRLWith(reg, der)
}

// lintCRLWith is lintCRL with the registry crlRegistry built, for many CRLs in a row.
func lintCRLWith(reg lint.Registry, der []byte) (LintReport, error) {
	rl, err := zx509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("zlint cannot parse the CRL: %w", err)
	}
	return checkReport("CRL", zlint.LintRevocationListEx(rl, reg))
}

func checkReport(what string, rs *zlint.ResultSet) (LintReport, error) {
	report := make(LintReport, 0, len(rs.Results))
	for name, res := range rs.Results {
		report = append(report, LintResult{
			Lint:    name,
			Source:  string(res.LintMetadata.Source),
			Status:  res.Status.String(),
			Details: res.Details,
		})
	}
	sort.Slice(report, func(i, j int) bool { return report[i].Lint < report[j].Lint })
	if f := report.Failures(); len(f) > 0 {
		return report, &LintError{What: what, Failures: f}
	}
	return report, nil
}
