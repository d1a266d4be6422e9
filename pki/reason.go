package pki

import (
	"fmt"
	"strings"
)

// Reason is an RFC 5280 CRLReason (section 5.3.1), the reason a certificate was revoked.
type Reason int

// The reasons Custos writes. ReasonUnspecified writes no reasonCode extension at all, as
// RFC 5280 asks instead of the code 0. certificateHold is left out on purpose: a hold can be
// lifted, and a retired device's identity must stay revoked. removeFromCRL belongs to delta
// CRLs and aACompromise to attribute authorities, neither of which Custos has.
const (
	ReasonUnspecified          Reason = 0
	ReasonKeyCompromise        Reason = 1
	ReasonCACompromise         Reason = 2
	ReasonAffiliationChanged   Reason = 3
	ReasonSuperseded           Reason = 4
	ReasonCessationOfOperation Reason = 5
	ReasonPrivilegeWithdrawn   Reason = 9
)

// reasonNames are the RFC 5280 names, which `openssl crl -text` shows as words.
var reasonNames = []struct {
	r    Reason
	name string
}{
	{ReasonUnspecified, "none"},
	{ReasonKeyCompromise, "keyCompromise"},
	{ReasonCACompromise, "cACompromise"},
	{ReasonAffiliationChanged, "affiliationChanged"},
	{ReasonSuperseded, "superseded"},
	{ReasonCessationOfOperation, "cessationOfOperation"},
	{ReasonPrivilegeWithdrawn, "privilegeWithdrawn"},
}

// Reasons returns every reason Custos accepts, ReasonUnspecified first.
func Reasons() []Reason {
	out := make([]Reason, len(reasonNames))
	for i, rn := range reasonNames {
		out[i] = rn.r
	}
	return out
}

// String returns the RFC 5280 name, such as "keyCompromise", or "none" for
// ReasonUnspecified.
func (r Reason) String() string {
	for _, rn := range reasonNames {
		if rn.r == r {
			return rn.name
		}
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// Valid reports whether Custos writes this reason.
func (r Reason) Valid() bool {
	for _, rn := range reasonNames {
		if rn.r == r {
			return true
		}
	}
	return false
}

// ParseReason reads a reason by its RFC 5280 name, ignoring case; "none", "unspecified"
// and "" mean ReasonUnspecified. An unknown name is an error listing the valid ones.
func ParseReason(s string) (Reason, error) {
	t := strings.TrimSpace(s)
	if t == "" || strings.EqualFold(t, "unspecified") {
		return ReasonUnspecified, nil
	}
	for _, rn := range reasonNames {
		if strings.EqualFold(t, rn.name) {
			return rn.r, nil
		}
	}
	names := make([]string, len(reasonNames))
	for i, rn := range reasonNames {
		names[i] = rn.name
	}
	if strings.EqualFold(t, "certificateHold") {
		return 0, fmt.Errorf("revocation reason certificateHold is not supported: a hold can be lifted, and a retired device must stay revoked; use one of %s", strings.Join(names, ", "))
	}
	return 0, fmt.Errorf("unknown revocation reason %q: use one of %s", s, strings.Join(names, ", "))
}

// ReasonNames lists reasons by name, comma-separated, for messages and help texts.
func ReasonNames(rs []Reason) string {
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = r.String()
	}
	return strings.Join(names, ", ")
}
