package decommission

import (
	"fmt"
	"time"

	"github.com/custos-pki/custos/pki"
)

// ParseCompromisedAt reads the time since which a lost device's key may be known, as the
// technician gives it: RFC 3339 ("2026-03-01T14:30:00Z", "2026-03-01T15:30:00+01:00") or a
// date alone ("2026-03-01", midnight UTC). It is the invalidity date of the revocation.
func ParseCompromisedAt(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: give it as 2026-03-01T14:30:00Z (RFC 3339) or 2026-03-01", s)
}

// Where an invalidity date came from, as journals and records say it.
const (
	FromTechnician = "the technician" // the request or a manifest line gave the date
	FromRunTime    = "the run's time" // not given: the time of the revocation
)

// invalidity is the invalidity date of a revocation for reason, and where it came from: the
// technician's compromisedAt, or now when none was given. Only keyCompromise has one.
func invalidity(reason pki.Reason, compromisedAt, now time.Time) (time.Time, string) {
	if reason != pki.ReasonKeyCompromise {
		return time.Time{}, ""
	}
	if compromisedAt.IsZero() {
		return now, FromRunTime
	}
	return compromisedAt, FromTechnician
}

// compromisedAtProblem says what is wrong with a compromise time for a revocation for reason
// at now, or "" when nothing is: it is for keyCompromise only, and not after now.
func compromisedAtProblem(reason pki.Reason, compromisedAt, now time.Time) string {
	switch {
	case compromisedAt.IsZero():
		return ""
	case reason != pki.ReasonKeyCompromise:
		return fmt.Sprintf("a compromise time is for keyCompromise revocations, not %s", reason)
	case compromisedAt.After(now):
		return fmt.Sprintf("the compromise time %s is after now (%s)", compromisedAt.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return ""
}

// invalidityText is how a record's device row states an invalidity date and its source.
func invalidityText(at time.Time, from string) string {
	if at.IsZero() {
		return ""
	}
	if from == "" {
		return "; compromised at " + at.UTC().Format(time.RFC3339)
	}
	return "; compromised at " + at.UTC().Format(time.RFC3339) + " (" + from + ")"
}
