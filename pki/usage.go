package pki

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
)

// extKeyUsageNames are the RFC 5280 names of the extended key usages Custos writes or
// refuses by name.
var extKeyUsageNames = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny:             "anyExtendedKeyUsage",
	x509.ExtKeyUsageServerAuth:      "serverAuth",
	x509.ExtKeyUsageClientAuth:      "clientAuth",
	x509.ExtKeyUsageCodeSigning:     "codeSigning",
	x509.ExtKeyUsageEmailProtection: "emailProtection",
	x509.ExtKeyUsageTimeStamping:    "timeStamping",
	x509.ExtKeyUsageOCSPSigning:     "OCSPSigning",
}

func extKeyUsageName(u x509.ExtKeyUsage) string {
	if n, ok := extKeyUsageNames[u]; ok {
		return n
	}
	return fmt.Sprintf("ExtKeyUsage(%d)", int(u))
}

// ExtKeyUsageNames names extended key usages as RFC 5280 does ("clientAuth", "serverAuth"),
// in their order.
func ExtKeyUsageNames(us []x509.ExtKeyUsage) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = extKeyUsageName(u)
	}
	return out
}

// caUsages are the extended key usages an issuing CA of device identities may have.
var caUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}

// ParseExtKeyUsages reads an issuing CA's extended key usages from a comma-separated list
// of RFC 5280 names, ignoring case and spaces: "clientAuth" or "clientAuth,serverAuth". An
// empty list is nil, which IssuingCA takes as clientAuth alone. anyExtendedKeyUsage and any
// other purpose are refused, naming the ones allowed.
func ParseExtKeyUsages(list string) ([]x509.ExtKeyUsage, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	var out []x509.ExtKeyUsage
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		var found bool
		for u, n := range extKeyUsageNames {
			if strings.EqualFold(name, n) {
				out = append(out, u)
				found = true
			}
		}
		if !found && strings.EqualFold(name, "any") {
			out, found = append(out, x509.ExtKeyUsageAny), true
		}
		if !found {
			return nil, fmt.Errorf("unknown extended key usage %q: use clientAuth, or clientAuth,serverAuth", name)
		}
	}
	return caExtKeyUsages(out)
}

// caExtKeyUsages checks an issuing CA's extended key usages and returns them in a fixed
// order, clientAuth alone when none are given.
func caExtKeyUsages(us []x509.ExtKeyUsage) ([]x509.ExtKeyUsage, error) {
	if len(us) == 0 {
		return []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil
	}
	var out []x509.ExtKeyUsage
	for _, u := range us {
		switch {
		case u == x509.ExtKeyUsageAny:
			return nil, fmt.Errorf("IssuingCA.ExtKeyUsages: anyExtendedKeyUsage is never allowed: it would let the issuing CA certify every purpose for everyone who trusts the root; list clientAuth, and serverAuth for devices that serve TLS")
		case !slices.Contains(caUsages, u):
			return nil, fmt.Errorf("IssuingCA.ExtKeyUsages: %s is not a purpose of device identities: use clientAuth, and serverAuth for devices that serve TLS", extKeyUsageName(u))
		case slices.Contains(out, u):
			return nil, fmt.Errorf("IssuingCA.ExtKeyUsages: %s is listed twice", extKeyUsageName(u))
		}
		out = append(out, u)
	}
	// clientAuth before serverAuth, however they were given: the same profile makes the same
	// certificate.
	slices.SortFunc(out, func(a, b x509.ExtKeyUsage) int { return slices.Index(caUsages, a) - slices.Index(caUsages, b) })
	return out, nil
}

// checkExtKeyUsageNesting refuses a certificate with an extended key usage its issuer's does
// not include: relying parties would reject it, and a CA limited to client identities must
// not be able to issue anything else. An issuer without the extension (a root) limits nothing.
func checkExtKeyUsageNesting(t, ic *x509.Certificate) error {
	if len(ic.ExtKeyUsage) == 0 && len(ic.UnknownExtKeyUsage) == 0 || slices.Contains(ic.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return nil
	}
	allowed := make([]string, 0, len(ic.ExtKeyUsage))
	for _, u := range ic.ExtKeyUsage {
		allowed = append(allowed, extKeyUsageName(u))
	}
	for _, u := range t.ExtKeyUsage {
		if !slices.Contains(ic.ExtKeyUsage, u) {
			return fmt.Errorf("issuer %q allows only the extended key usage %s, not %s: issue it from an issuing CA whose extended key usage includes %s",
				ic.Subject.CommonName, strings.Join(allowed, ", "), extKeyUsageName(u), extKeyUsageName(u))
		}
	}
	for _, o := range t.UnknownExtKeyUsage {
		if !slices.ContainsFunc(ic.UnknownExtKeyUsage, o.Equal) {
			return fmt.Errorf("issuer %q allows only the extended key usage %s, not %s", ic.Subject.CommonName, strings.Join(allowed, ", "), o)
		}
	}
	return nil
}

// anyPolicy is the certificate policy OID 2.5.29.32.0, which asserts no policy in particular.
var anyPolicy = mustOID("2.5.29.32.0")

func mustOID(s string) x509.OID {
	o, err := x509.ParseOID(s)
	if err != nil {
		panic(err)
	}
	return o
}

// ParsePolicy reads a certificate policy OID in dotted form, such as
// "1.3.6.1.4.1.55555.1.1". anyPolicy (2.5.29.32.0) is refused: it asserts nothing.
func ParsePolicy(s string) (x509.OID, error) {
	o, err := x509.ParseOID(strings.TrimSpace(s))
	if err != nil {
		return x509.OID{}, fmt.Errorf("certificate policy %q is not an OID: write it in dotted form, such as 1.3.6.1.4.1.55555.1.1", s)
	}
	if o.Equal(anyPolicy) {
		return x509.OID{}, fmt.Errorf("certificate policy %s is anyPolicy, which asserts nothing: name the policy the CA follows", s)
	}
	return o, nil
}

// checkPolicies refuses empty OIDs, anyPolicy and duplicates.
func checkPolicies(field string, ps []x509.OID) ([]x509.OID, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	for i, p := range ps {
		switch {
		case p.String() == "":
			return nil, fmt.Errorf("%s: policy %d is empty", field, i+1)
		case p.Equal(anyPolicy):
			return nil, fmt.Errorf("%s: anyPolicy (2.5.29.32.0) asserts nothing: name the policy the CA follows", field)
		case slices.ContainsFunc(ps[:i], p.Equal):
			return nil, fmt.Errorf("%s: policy %s is listed twice", field, p)
		}
	}
	return slices.Clone(ps), nil
}

// checkPolicyNesting refuses a certificate asserting a policy its issuer does not: under RFC
// 5280 path validation the policy would not hold for the certificate. A self-issued issuer
// is the trust anchor, whose policies path validation does not consult.
func checkPolicyNesting(t, ic *x509.Certificate) error {
	if len(t.Policies) == 0 || bytes.Equal(ic.RawIssuer, ic.RawSubject) || slices.ContainsFunc(ic.Policies, anyPolicy.Equal) {
		return nil
	}
	for _, p := range t.Policies {
		if !slices.ContainsFunc(ic.Policies, p.Equal) {
			if len(ic.Policies) == 0 {
				return fmt.Errorf("issuer %q asserts no certificate policy, so a certificate below it cannot assert %s", ic.Subject.CommonName, p)
			}
			return fmt.Errorf("issuer %q does not assert certificate policy %s (it asserts %s)", ic.Subject.CommonName, p, policyList(ic.Policies))
		}
	}
	return nil
}

func policyList(ps []x509.OID) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
