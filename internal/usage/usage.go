// Package usage marks errors in how a command was called (a wrong flag
// value, a missing argument), which kiln's CLI reports with exit code 2.
// Library packages that own a command's flag table return them too, so the
// CLI maps them to the exit code in one place.
package usage

import (
	"errors"
	"fmt"
)

// Error is a wrong command line.
type Error struct{ Err error }

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Errorf formats a usage error; %w wraps as fmt.Errorf does.
func Errorf(format string, args ...any) error {
	return &Error{Err: fmt.Errorf(format, args...)}
}

// Wrap marks err as a usage error; nil stays nil.
func Wrap(err error) error {
	if err == nil {
		return nil
	}
	return &Error{Err: err}
}

// Is reports whether err, or an error it wraps, is a usage error.
func Is(err error) bool {
	var ue *Error
	return errors.As(err, &ue)
}
