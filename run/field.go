package run

import (
	"errors"
	"fmt"
)

// FieldError is a workflow's error about one field of its request: which field, and what is
// wrong with it, in words that name no front end's control. The command line adds the flag
// that sets the field (cli/command's hints), the window names its own field.
type FieldError struct {
	Name    string // the request field's Go name, e.g. "Technician", "OpsPIN"
	Problem string // e.g. "the technician must be named"
	Err     error  // the cause, when there is one (a file that cannot be read)
}

// NewFieldError is a FieldError for the field name, its problem formatted as fmt.Sprintf does.
func NewFieldError(name, format string, args ...any) *FieldError {
	return &FieldError{Name: name, Problem: fmt.Sprintf(format, args...)}
}

func (e *FieldError) Error() string { return e.Problem }

// Field is the request field's name; the command line maps it to a flag.
func (e *FieldError) Field() string { return e.Name }

// Unwrap is the cause, if any.
func (e *FieldError) Unwrap() error { return e.Err }

// FieldOf is the name of the first field error in err's chain, or "".
func FieldOf(err error) string {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe.Name
	}
	return ""
}
