// Package usererr marks a failure whose message is already what the user should read: one line,
// what went wrong and what to do. The commands return it as it is; the cause it wraps, if any,
// is shown with -v (cmd/kubectl-remocal prints the chain).
package usererr

import "errors"

// userError is a failure worded for the user, and its cause.
type userError struct {
	msg   string
	cause error
}

func (e *userError) Error() string { return e.msg }
func (e *userError) Unwrap() error { return e.cause }

// New is a failure whose message is msg, the user's line.
func New(msg string) error {
	return &userError{msg: msg}
}

// Wrap is a failure whose message is msg, the user's line, in place of cause's, which it wraps.
func Wrap(cause error, msg string) error {
	return &userError{msg: msg, cause: cause}
}

// Is tells whether err, or an error it wraps, is worded for the user already.
func Is(err error) bool {
	var u *userError
	return errors.As(err, &u)
}
