package helmexec

import (
	"errors"
	"fmt"
	"strings"

	"helm.sh/helm/v3/pkg/storage/driver"
)

// Sentinel errors. Every error an Executor method returns names the action,
// namespace and release, and matches at most one of these with errors.Is.
// The service maps them to gRPC codes.
var (
	// ErrReleaseNotFound: the release, or the asked revision, does not exist
	// (NOT_FOUND).
	ErrReleaseNotFound = errors.New("release not found")
	// ErrReleaseExists: Install of a name already in use (ALREADY_EXISTS).
	ErrReleaseExists = errors.New("release already exists")
	// ErrPending: Helm's "another operation (install/upgrade/rollback) is in
	// progress". The service runs one writer per release, so this means a
	// release left pending-* by an interrupted writer: see Recover
	// (FAILED_PRECONDITION).
	ErrPending = errors.New("another operation is in progress on the release")
	// ErrRecordTooLarge: the release's record would not fit in the Secret
	// Helm stores it in. Nothing was applied (FAILED_PRECONDITION).
	ErrRecordTooLarge = errors.New("release record too large")
	// ErrTimeout: a wait did not finish within the request's Timeout
	// (DEADLINE_EXCEEDED).
	ErrTimeout = errors.New("timed out")
	// ErrInvalidRequest: a request the executor refuses before contacting
	// the cluster: no chart, an invalid release or namespace name, a
	// negative revision (INVALID_ARGUMENT).
	ErrInvalidRequest = errors.New("invalid request")
	// ErrInvalidAccess: an Access no client can be built from: not https,
	// unreadable PEM, half a client certificate (FAILED_PRECONDITION). The
	// message never contains the PEM or the token.
	ErrInvalidAccess = errors.New("invalid cluster access")
)

// Helm's own errors that carry a meaning but no exported value.
const (
	helmPending  = "another operation (install/upgrade/rollback) is in progress"
	helmInUse    = "cannot re-use a name that is still in use"
	helmDeleted  = "is already deleted"
	helmNoVerPfx = "release has no "
)

// timeoutError is a wait that ran out of time.
type timeoutError struct{ msg string }

func (e *timeoutError) Error() string        { return e.msg }
func (e *timeoutError) Is(target error) bool { return target == ErrTimeout }

// tooLargeError is a record over the Secret limit.
type tooLargeError struct {
	name     string
	revision int
	size     int
}

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("the record of release %s revision %d would take %d bytes (%.2f MiB) in its Secret, over Kubernetes' limit of %d bytes (1 MiB); nothing was applied",
		e.name, e.revision, e.size, float64(e.size)/(1<<20), maxRecordBytes)
}
func (e *tooLargeError) Is(target error) bool { return target == ErrRecordTooLarge }

// kindOf returns the sentinel err stands for when err does not match one
// already.
func kindOf(err error) error {
	for _, s := range []error{ErrReleaseNotFound, ErrReleaseExists, ErrPending, ErrRecordTooLarge, ErrTimeout, ErrInvalidRequest, ErrInvalidAccess} {
		if errors.Is(err, s) {
			return nil
		}
	}
	msg := err.Error()
	switch {
	case errors.Is(err, driver.ErrReleaseNotFound), strings.Contains(msg, helmDeleted), strings.Contains(msg, helmNoVerPfx):
		return ErrReleaseNotFound
	case strings.Contains(msg, helmPending):
		return ErrPending
	case strings.Contains(msg, helmInUse), errors.Is(err, driver.ErrReleaseExists):
		return ErrReleaseExists
	case strings.Contains(msg, "values don't meet the specifications of the schema"):
		return ErrInvalidRequest
	}
	return nil
}

// wrapErr names what was being done and adds the sentinel err stands for.
func wrapErr(op, ns, name string, err error) error {
	if err == nil {
		return nil
	}
	if kind := kindOf(err); kind != nil {
		return fmt.Errorf("%s %s/%s: %w: %w", op, ns, name, kind, err)
	}
	return fmt.Errorf("%s %s/%s: %w", op, ns, name, err)
}

func errInvalidAccess(msg string) error { return fmt.Errorf("%w: %s", ErrInvalidAccess, msg) }

func errInvalid(format string, v ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRequest, fmt.Sprintf(format, v...))
}
