package secrets

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	vault "github.com/hashicorp/vault/api"
)

var (
	// ErrUnavailable: Vault is sealed, down, unreachable or too slow, or the
	// service is not logged in (yet). Retrying later may succeed.
	ErrUnavailable = errors.New("vault unavailable")
	// ErrConflict: a check-and-set write found another version than the
	// one it was given.
	ErrConflict = errors.New("vault check-and-set conflict")
	// ErrNotFound: no live version at the path.
	ErrNotFound = errors.New("vault secret not found")
	// ErrForbidden: Vault refused a valid token, i.e. the service's policy
	// does not allow the path. Retrying will not help.
	ErrForbidden = errors.New("vault permission denied")
)

// opError is every error the package returns for a Vault call. Its text
// is built only from the operation, the path, the sentinel and Vault's
// status and messages, so that no value, token or secret id can reach a
// caller's log; the cause stays reachable with errors.As.
type opError struct {
	op, path string
	kind     error // one of the sentinels, or nil
	detail   string
	cause    error
}

func (e *opError) Error() string {
	var b strings.Builder
	b.WriteString("vault ")
	b.WriteString(e.op)
	if e.path != "" {
		b.WriteString(" ")
		b.WriteString(e.path)
	}
	if e.kind != nil {
		b.WriteString(": ")
		b.WriteString(e.kind.Error())
	}
	if e.detail != "" {
		b.WriteString(": ")
		b.WriteString(e.detail)
	}
	return b.String()
}

func (e *opError) Unwrap() []error {
	var errs []error
	if e.kind != nil {
		errs = append(errs, e.kind)
	}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

// callError classifies err from a Vault call.
func callError(op, path string, err error) error {
	kind := ErrUnavailable
	if !unavailable(err) {
		kind = nil
		var re *vault.ResponseError
		if errors.As(err, &re) {
			switch {
			case re.StatusCode == http.StatusForbidden:
				kind = ErrForbidden
			case re.StatusCode == http.StatusBadRequest && mentions(re, "check-and-set"):
				kind = ErrConflict
			case re.StatusCode == http.StatusNotFound:
				kind = ErrNotFound
			}
		}
	}
	return &opError{op: op, path: path, kind: kind, detail: describe(err), cause: err}
}

// unavailable reports whether err says that Vault could not answer (now),
// as opposed to an answer refusing the request.
func unavailable(err error) bool {
	var re *vault.ResponseError
	if errors.As(err, &re) {
		switch re.StatusCode {
		case http.StatusRequestTimeout, http.StatusPreconditionFailed, http.StatusTooManyRequests:
			return true // 412: a performance standby not caught up yet
		}
		return re.StatusCode >= 500
	}
	if errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	// A certificate Vault's address does not verify against is a
	// configuration to fix, not an outage to wait out.
	var ce *tls.CertificateVerificationError
	if errors.As(err, &ce) {
		return false
	}
	// The http client reports every transport failure (refused, reset,
	// DNS, TLS) as a *url.Error. Not net.Error: a syscall.Errno is one, so
	// a missing token file would pass for a network problem.
	var ue *url.Error
	return errors.As(err, &ue)
}

func denied(err error) bool {
	var re *vault.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusForbidden
}

func mentions(re *vault.ResponseError, s string) bool {
	for _, m := range re.Errors {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// describe is the part of err a caller may see: Vault's status and
// messages rather than the api's multi-line text, or the transport error,
// which names only the method and URL.
func describe(err error) string {
	if err == nil {
		return ""
	}
	var re *vault.ResponseError
	if errors.As(err, &re) {
		msg := strconv.Itoa(re.StatusCode)
		if len(re.Errors) > 0 && !re.RawError {
			msg += " " + strings.Join(re.Errors, "; ")
		}
		return msg
	}
	var oe *opError
	if errors.As(err, &oe) {
		return oe.detail
	}
	return err.Error()
}
