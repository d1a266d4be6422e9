package pki

import (
	"crypto/x509"
	"fmt"
	"time"
)

// DefaultMaxNextUpdate is the longest a CRL of an issuing CA may stay current when the
// workspace's policy says nothing else: a year and a day, so a yearly CRL always fits. A
// root's bound comes from its ceremony plan.
const DefaultMaxNextUpdate = 366 * 24 * time.Hour

// LimitError refuses a date past a limit: a certificate that would outlive its issuer, or a
// CRL whose nextUpdate would pass its issuer's notAfter or the policy's maximum. It is bad
// input rather than a failure (a command line exits 2 with it), and it names both dates and
// what sets the limit. Nothing was signed.
type LimitError struct {
	What   string    // what was asked for, such as "the CRL's nextUpdate"
	Value  time.Time // the date asked for
	Limit  time.Time // the latest date allowed
	Bound  string    // what sets Limit, such as `the notAfter of issuer "Acme Devices CA 1"`
	Advice string    // what to do, such as "choose a shorter ValidityYears"
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s would be %s, after %s (%s): %s", e.What, e.Value.UTC().Format(timeLayout), e.Bound, e.Limit.UTC().Format(timeLayout), e.Advice)
}

// LatestNextUpdate returns the latest nextUpdate a CRL of issuer signed at thisUpdate may
// have: thisUpdate plus max, or the issuer's notAfter when that comes first (a CRL never
// promises a next one from a CA that will have expired), and what sets it. SignCRL and
// SignCRLSet refuse a later one with a *LimitError.
func LatestNextUpdate(issuer *x509.Certificate, thisUpdate time.Time, max time.Duration) (time.Time, string) {
	this := thisUpdate.UTC().Truncate(time.Second)
	limit := this.Add(max)
	bound := "the policy's maximum of " + formatDuration(max) + " after thisUpdate"
	if na := issuer.NotAfter.UTC(); na.Before(limit) {
		limit, bound = na, fmt.Sprintf("the notAfter of issuer %q", issuer.Subject.CommonName)
	}
	return limit, bound
}

// CheckNextUpdate refuses, with a *LimitError, a nextUpdate past LatestNextUpdate: what
// SignCRL and SignCRLSet check, for a caller that asks before it allocates a CRL number.
func CheckNextUpdate(issuer *x509.Certificate, this, next time.Time, max time.Duration) error {
	if max <= 0 {
		return fmt.Errorf("CRL.MaxNextUpdate is %v: pass the policy's limit (DefaultMaxNextUpdate for an issuing CA, the plan's for a root)", max)
	}
	limit, bound := LatestNextUpdate(issuer, this, max)
	if next.After(limit) {
		return &LimitError{What: "the CRL's nextUpdate", Value: next, Limit: limit, Bound: bound, Advice: "choose an earlier nextUpdate"}
	}
	return nil
}

// formatDuration writes whole days as "366 days" and anything else as Go does.
func formatDuration(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == day:
		return "1 day"
	case d%day == 0:
		return fmt.Sprintf("%d days", d/day)
	}
	return d.String()
}
