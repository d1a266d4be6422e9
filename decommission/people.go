package decommission

import (
	"context"
	"fmt"
	"strings"

	"github.com/custos-pki/custos/internal/personname"
	"github.com/custos-pki/custos/run"
)

// Destination is where a device's media go after its sanitization, as NIST SP 800-88 Rev. 2's
// certificate of sanitization records it.
type Destination string

// The destinations. NoDestination: not stated.
const (
	NoDestination Destination = ""
	Reuse         Destination = "reuse"     // back into service, inside the organization
	Return        Destination = "return"    // returned: to its owner, a lessor, a customer
	Recycle       Destination = "recycle"   // to a recycler
	Destroyed     Destination = "destroyed" // physically destroyed
)

// Destinations are the destinations a request names, in the order a menu offers them.
var Destinations = []Destination{Reuse, Return, Recycle, Destroyed}

// ParseDestination reads a destination by its name; "" is none stated.
func ParseDestination(s string) (Destination, error) {
	d := Destination(strings.ToLower(strings.TrimSpace(s)))
	if d == NoDestination {
		return d, nil
	}
	for _, k := range Destinations {
		if d == k {
			return d, nil
		}
	}
	return "", fmt.Errorf("destination %q: use reuse, return, recycle or destroyed", s)
}

// problem says why a device retired by method m cannot go to d, or "". A physically destroyed
// device is destroyed; an unreachable one is out of reach, so where it goes is not known.
func (d Destination) problem(m Method) string {
	switch {
	case m == Physical && d != NoDestination && d != Destroyed:
		return fmt.Sprintf("method physical destroys the device: its destination is destroyed, not %s", d)
	case m == Unreachable && d != NoDestination:
		return fmt.Sprintf("method unreachable: the device is out of reach, so no destination (%s) can be stated for it", d)
	}
	return ""
}

// For is the destination the record states for a device retired by method m: d, or destroyed
// for a device physically destroyed.
func (d Destination) For(m Method) Destination {
	if d == NoDestination && m == Physical {
		return Destroyed
	}
	return d
}

// Text is the destination as a record states it.
func (d Destination) Text() string {
	switch d {
	case Reuse:
		return "reuse: the device goes back into service"
	case Return:
		return "return: the device goes back to its owner or lessor"
	case Recycle:
		return "recycle: the device goes to a recycler"
	case Destroyed:
		return "destroyed"
	}
	return "not stated"
}

// checkValidator refuses a validator who is the technician (the same name to a reader, see
// personname), and a missing one when the workspace's policy (workspace.Settings,
// validator-required) requires one.
func checkValidator(ctx context.Context, env run.Env, what, technician, validator string) error {
	if strings.TrimSpace(validator) == "" {
		s, err := env.Workspace.Settings(ctx)
		if err != nil {
			return err
		}
		if s.ValidatorRequired {
			return run.NewFieldError("Validator", "%s: name the validator, another person than the technician, who checks the sanitization (the workspace's policy requires one; its setting validator-required false allows none)", what)
		}
		return nil
	}
	if personname.Same(validator, technician) {
		return run.NewFieldError("Validator", "%s: the validator %q is the technician: the validator is another person, who checks the technician's work", what, validator)
	}
	return nil
}

// validatorText is the validator as a record names them: their name, or that the workspace's
// policy let the run go without one.
func validatorText(validator string) string {
	if strings.TrimSpace(validator) == "" {
		return "none: the workspace's policy allows a decommission without one (validator-required false)"
	}
	return validator
}
