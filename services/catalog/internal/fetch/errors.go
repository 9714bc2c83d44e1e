package fetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/slipwayhq/slipway/pkg/outbound"
)

// statusError is the error for an HTTP status other than the one wanted,
// naming the host, what was asked and the status, never the body.
func statusError(host, what string, code int, withLogin bool) error {
	switch {
	case code == http.StatusNotFound || code == http.StatusGone:
		return fmt.Errorf("%w: %s answered HTTP %d for %s", ErrNotFound, host, code, what)
	case code == http.StatusUnauthorized || code == http.StatusForbidden || code == http.StatusProxyAuthRequired:
		if withLogin {
			return fmt.Errorf("%w: %s refused the repository's login for %s (HTTP %d)", ErrUnauthorized, host, what, code)
		}
		return fmt.Errorf("%w: %s needs a login for %s (HTTP %d)", ErrUnauthorized, host, what, code)
	case code == http.StatusTooManyRequests:
		return fmt.Errorf("%w: %s is rate limiting requests for %s (HTTP 429)", ErrUnavailable, host, what)
	case code == http.StatusRequestTimeout || code == http.StatusTooEarly || code >= 500:
		return fmt.Errorf("%w: %s answered HTTP %d for %s", ErrUnavailable, host, code, what)
	}
	return fmt.Errorf("%w: %s answered HTTP %d for %s", ErrBadResponse, host, code, what)
}

// classify turns the error of a request (or of reading its body) for what
// from host into one wrapping a sentinel, with a message safe to show.
// go-containerregistry's *transport.Error carries the registry's error
// messages, which are response bodies: only its status is used.
func (f *Fetcher) classify(ctx context.Context, err error, host, what string, withLogin bool) error {
	var tl *tooLargeError
	if errors.As(err, &tl) {
		return fmt.Errorf("%w: %s from %s is over %d bytes", ErrTooLarge, what, host, tl.limit)
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return statusError(host, what, te.StatusCode, withLogin)
	}
	if errors.Is(err, outbound.ErrDenied) {
		return fmt.Errorf("%s may not be contacted for %s: %w", host, what, outbound.RedactError(err))
	}
	if registryRefusal(err) {
		// Its message may quote the URL it refused, query and all.
		return fmt.Errorf("%s may not be contacted for %s: %w: the registry sent the request to a private or link-local address, or a token service over a scheme it may not use", host, what, outbound.ErrDenied)
	}
	if ctx.Err() != nil {
		// The caller gave up (or its deadline passed): not the server's fault.
		return fmt.Errorf("fetching %s from %s: %w", what, host, ctx.Err())
	}
	var (
		dnsErr    *net.DNSError
		netErr    net.Error
		unknownCA x509.UnknownAuthorityError
		badHost   x509.HostnameError
		badCert   x509.CertificateInvalidError
		verifyErr *tls.CertificateVerificationError
		recordErr tls.RecordHeaderError
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Errorf("%w: %s did not answer for %s within %s", ErrUnavailable, host, what, f.timeout)
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return fmt.Errorf("%w: host %s does not exist (DNS)", ErrUnavailable, dnsErr.Name)
	case errors.As(err, &unknownCA), errors.As(err, &badHost), errors.As(err, &badCert), errors.As(err, &verifyErr):
		return fmt.Errorf("%w: %s presented a certificate that is not trusted (add the repository's CA if it has its own): %v", ErrUnavailable, host, certMessage(err))
	case errors.As(err, &recordErr):
		return fmt.Errorf("%w: %s does not speak TLS on that port", ErrUnavailable, host)
	case errors.As(err, &syntaxErr), errors.As(err, &typeErr):
		return fmt.Errorf("%w: %s answered %s with JSON that does not decode", ErrBadResponse, host, what)
	}
	return fmt.Errorf("%w: asking %s for %s: %v", ErrUnavailable, host, what, outbound.RedactError(err))
}

// registryRefusal reports whether err is go-containerregistry's own SSRF
// check refusing a redirect or a token service (realm) at a private or
// link-local IP literal, or a realm's scheme. The policy would refuse most
// of these too, but go-containerregistry asks first. It has no error type
// for them: should its wording change, they are classified as
// ErrUnavailable, and TestSSRFRedirects says so.
func registryRefusal(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "SSRF protection:") ||
		strings.Contains(msg, "invalid realm in www-authenticate") ||
		strings.Contains(msg, "refusing token-server redirect")
}

// certMessage is the x509 part of a verification error, without the
// request it came from.
func certMessage(err error) string {
	var verifyErr *tls.CertificateVerificationError
	if errors.As(err, &verifyErr) && verifyErr.Err != nil {
		err = verifyErr.Err
	}
	for _, target := range []any{&x509.UnknownAuthorityError{}, &x509.HostnameError{}, &x509.CertificateInvalidError{}} {
		if errors.As(err, target) {
			return target.(error).Error()
		}
	}
	return outbound.RedactError(err).Error()
}
