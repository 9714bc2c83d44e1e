// Package validate checks user input and reports the field at fault.
//
// Services validate in their domain layer and return a *FieldError; the
// transport turns it into InvalidArgument naming the field (see grpcerr).
package validate

import (
	"errors"
	"fmt"
	"regexp"
	"unicode/utf8"
)

// FieldError is bad input in one field of a request.
type FieldError struct {
	Field  string // dotted path as the API spells it, e.g. "image.reference"
	Reason string // what is wrong, lower-case, no trailing period
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Field returns a *FieldError for field.
func Field(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// AsFieldError reports whether err is or wraps a *FieldError.
func AsFieldError(err error) (*FieldError, bool) {
	var fe *FieldError
	ok := errors.As(err, &fe)
	return fe, ok
}

// DNS1123LabelMaxLen is the longest DNS-1123 label.
const DNS1123LabelMaxLen = 63

var dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// DNSLabel checks that v is a DNS-1123 label: lower-case alphanumerics and
// '-', starting and ending alphanumeric, at most 63 characters.
func DNSLabel(field, v string) error {
	switch {
	case v == "":
		return Field(field, "required")
	case len(v) > DNS1123LabelMaxLen:
		return Field(field, "must be at most %d characters, got %d", DNS1123LabelMaxLen, len(v))
	case !dns1123Label.MatchString(v):
		return Field(field, "must be a DNS-1123 label (lower-case letters, digits and '-', starting and ending with a letter or digit), got %q", v)
	}
	return nil
}

// MaxLen checks that v, when set, is valid UTF-8 of at most n bytes.
func MaxLen(field, v string, n int) error {
	switch {
	case len(v) > n:
		return Field(field, "must be at most %d bytes, got %d", n, len(v))
	case !utf8.ValidString(v):
		return Field(field, "must be valid UTF-8")
	}
	return nil
}

// First returns the first non-nil error, so checks read as a list.
func First(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
