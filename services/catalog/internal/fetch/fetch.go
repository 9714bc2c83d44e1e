// Package fetch is how the catalog reaches tenants' chart repositories:
// HTTP(S) Helm repositories (index.yaml and the archives it lists) and OCI
// registries holding charts as OCI artifacts.
//
// Tenants choose these URLs, so every request goes through the outbound
// policy (pkg/outbound): CheckURL refuses hostile URLs when a repository is
// added, every request and redirect is checked again, and the addresses
// behind names are checked when dialed. A repository's login goes only to
// the repository's origin (scheme, host and port): basic and bearer
// credentials are bound to it per request, and a TLS client certificate is
// presented only on connections to it. Helm's "pass credentials to all
// domains" is never done. A repository's extra CA is trusted for the
// requests made for that repository only; it is a trust anchor, not a
// credential, so it is used for archives on other hosts too.
//
// Everything read is bounded: callers say how many bytes an index or an
// archive may have, and OCI API answers (catalog pages, tag lists,
// manifests, configs) have fixed limits.
//
// Errors wrap one of the sentinels below and say what failed in words safe
// to show the tenant: the host, what was fetched and the HTTP status, never
// credentials, query strings or response bodies.
package fetch

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/pkg/outbound"
)

// Errors of fetching; each is wrapped with a message naming the host.
// Refusals of the outbound policy wrap outbound.ErrDenied instead.
var (
	// ErrInvalidURL: a repository or archive URL is malformed or has parts
	// a repository URL may not have (query, fragment, an IPv4 address in a
	// non-canonical form).
	ErrInvalidURL = errors.New("invalid repository URL")
	// ErrInvalidAuth: the repository's login cannot be used as given (a CA
	// or client certificate that does not parse, both basic and bearer
	// credentials).
	ErrInvalidAuth = errors.New("unusable repository login")
	// ErrTooLarge: an answer is larger than allowed.
	ErrTooLarge = errors.New("response too large")
	// ErrNotFound: the server answered 404 (or 410).
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized: the server refused the login, or wants one (401, 403).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUnavailable: the server could not be asked or failed to answer
	// (timeouts, connection and TLS failures, 5xx, 429). Retrying later may
	// succeed.
	ErrUnavailable = errors.New("repository unavailable")
	// ErrBadResponse: the server answered something unusable (an
	// unexpected status, a body that does not decode).
	ErrBadResponse = errors.New("unusable response")
	// ErrNotChart: an OCI manifest that is not a Helm chart.
	ErrNotChart = errors.New("not a Helm chart")
	// ErrCatalogUnsupported: the registry refuses to list its repositories;
	// the charts must be named (oci_charts).
	ErrCatalogUnsupported = errors.New("registry does not list its repositories")
)

// Auth is a repository login (from the clusters service); nil is anonymous.
type Auth struct {
	Username, Password string // HTTP basic
	BearerToken        string
	// ClientCertPEM and ClientKeyPEM are a TLS client certificate and its
	// key, presented only to the repository's origin.
	ClientCertPEM, ClientKeyPEM []byte
	// CAPEM holds extra CA certificates trusted (with the system's) for
	// this repository.
	CAPEM []byte
}

func (a *Auth) basic() bool  { return a != nil && (a.Username != "" || a.Password != "") }
func (a *Auth) bearer() bool { return a != nil && a.BearerToken != "" }

// login reports whether a carries credentials the server checks (not just a CA).
func (a *Auth) login() bool {
	return a.basic() || a.bearer() || (a != nil && len(a.ClientCertPEM) > 0)
}

// Options configure a Fetcher.
type Options struct {
	Policy *outbound.Policy // required
	// AllowHTTP accepts http:// repository URLs and plain-HTTP OCI
	// registries (local development); otherwise only https:// and oci://
	// over TLS.
	AllowHTTP bool
	// Timeout bounds each HTTP request, redirects and body included
	// (default 30 s). An OCI call makes a few requests, each bounded.
	Timeout   time.Duration
	UserAgent string
}

// DefaultTimeout is Options.Timeout when it is zero.
const DefaultTimeout = 30 * time.Second

// Fetcher fetches from chart repositories. It is safe for concurrent use;
// it keeps one transport per (CA, client certificate), so connections to a
// repository are reused across calls.
type Fetcher struct {
	policy     *outbound.Policy
	allowHTTP  bool
	timeout    time.Duration
	userAgent  string
	transports *transportCache
}

// New returns a Fetcher with o.
func New(o Options) (*Fetcher, error) {
	if o.Policy == nil {
		return nil, errors.New("fetch: an outbound policy is required")
	}
	if o.Timeout < 0 {
		return nil, fmt.Errorf("fetch: negative timeout %s", o.Timeout)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	return &Fetcher{
		policy:     o.Policy,
		allowHTTP:  o.AllowHTTP,
		timeout:    o.Timeout,
		userAgent:  o.UserAgent,
		transports: newTransportCache(o.Policy, nil),
	}, nil
}

// httpSchemes are the schemes requests (and redirects) may use.
func (f *Fetcher) httpSchemes() []string {
	if f.allowHTTP {
		return []string{"https", "http"}
	}
	return []string{"https"}
}

// CheckURL validates a repository URL when it is added and returns it
// normalised (scheme and host in lower case, no default port, no trailing
// slash). It accepts https:// (http:// too with AllowHTTP) and oci:// URLs
// with a host, without userinfo, query or fragment, that the policy allows. Hosts the URL
// standard reads as IPv4 addresses (2130706433, 0x7f000001, 0177.0.0.1,
// 127.1) are checked as the address they mean and must then be written as a
// dotted quad; localhost names are checked as loopback. Other names are
// checked when dialed, on every request.
func (f *Fetcher) CheckURL(raw string) (string, error) {
	u, err := f.checkURL(raw)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

func (f *Fetcher) checkURL(raw string) (*url.URL, error) {
	schemes := append(f.httpSchemes(), "oci")
	u, err := f.policy.CheckURL(raw, schemes...)
	if err != nil {
		return nil, err
	}
	host := u.Hostname()
	if u.Opaque != "" {
		return nil, fmt.Errorf("%w: %s: want scheme://host/path", ErrInvalidURL, host)
	}
	if u.RawQuery != "" || u.ForceQuery {
		return nil, fmt.Errorf("%w: the URL for %s has a query; a repository URL may not", ErrInvalidURL, host)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, fmt.Errorf("%w: the URL for %s has a fragment; a repository URL may not", ErrInvalidURL, host)
	}
	if err := f.checkHost(host); err != nil {
		return nil, err
	}
	n := &url.URL{
		Scheme:  strings.ToLower(u.Scheme),
		Host:    strings.ToLower(u.Host),
		Path:    strings.TrimRight(u.Path, "/"),
		RawPath: strings.TrimRight(u.RawPath, "/"),
	}
	// "host:" and the scheme's default port mean the host alone, so one
	// repository has one URL.
	if p := u.Port(); p == "" || p == map[string]string{"http": "80", "https": "443", "oci": "443"}[n.Scheme] {
		n.Host = strings.ToLower(u.Hostname())
		if strings.Contains(n.Host, ":") {
			n.Host = "[" + n.Host + "]"
		}
	}
	if n.Scheme == "oci" {
		if _, err := ociPath(n); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// checkHost refuses what the policy's literal check does not see: names
// that are IPv4 addresses to the URL standard (and to inet_aton, so to
// anything a tenant might put between us and the host) and localhost names.
func (f *Fetcher) checkHost(host string) error {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if ip, numeric, ok := parseLegacyIPv4(h); numeric {
		if !ok {
			return fmt.Errorf("%w: host %s is neither a name nor an IPv4 address", ErrInvalidURL, host)
		}
		if err := f.policy.CheckIP(ip); err != nil {
			return fmt.Errorf("host %s is the address %s: %w", host, ip, err)
		}
		if h != ip.String() || h != host {
			return fmt.Errorf("%w: host %s is the address %s: write it as %s", ErrInvalidURL, host, ip, ip)
		}
		return nil
	}
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		for _, ip := range []string{"127.0.0.1", "::1"} {
			if err := f.policy.CheckIP(netip.MustParseAddr(ip)); err != nil {
				return fmt.Errorf("host %s names this machine: %w", host, err)
			}
		}
	}
	return nil
}

// hostOf is the host (and port, when given) to name in messages.
func hostOf(u *url.URL) string {
	if u == nil {
		return "(no host)"
	}
	return u.Host
}

// origin is scheme://host:port with the scheme's default port made
// explicit, lower-cased: what decides where a login may go.
func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// setUserAgent sets the User-Agent header when one is configured.
func (f *Fetcher) setUserAgent(h http.Header) {
	if f.userAgent != "" {
		h.Set("User-Agent", f.userAgent)
	}
}
