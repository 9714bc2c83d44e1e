package outbound

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// maxRedirects matches net/http's default.
const maxRedirects = 10

// credentialHeaders are the headers net/http itself treats as credentials
// when following a redirect, and Referer, which net/http fills with the
// previous URL, query (and any token in it) included.
var credentialHeaders = []string{"Authorization", "Www-Authenticate", "Cookie", "Cookie2", "Proxy-Authorization", "Proxy-Authenticate", "Referer"}

// Client returns a client sending through rt (p.Transport() when nil) that
// checks every request, the first and each redirect, with CheckURL's rules
// for schemes (https when none are given). It makes at most 10 requests (9 redirects), as net/http does,
// and once one leaves the first request's origin (scheme, host and port) it
// sends no Authorization, Cookie, Proxy-Authorization or Referer for the rest of the
// chain. rt must dial through p.DialContext, as p.Transport() does: the
// client checks URLs, only the dialer can check the addresses behind names.
func (p *Policy) Client(rt http.RoundTripper, schemes ...string) *http.Client {
	return p.client(rt, schemes, nil)
}

// OriginClient is Client for a transport that presents a TLS client
// certificate, or any credential that cannot be taken off a request: it
// refuses every request, the first and each redirect, whose scheme, host
// and port differ from origin's. A nil origin refuses everything.
func (p *Policy) OriginClient(rt http.RoundTripper, origin *url.URL) *http.Client {
	only := originOf(origin)
	scheme := ""
	if origin != nil {
		scheme = origin.Scheme
	}
	return p.client(rt, []string{scheme}, &only)
}

func (p *Policy) client(rt http.RoundTripper, schemes []string, only *string) *http.Client {
	if rt == nil {
		rt = p.Transport()
	}
	return &http.Client{
		Transport: &checked{rt: rt, check: func(u *url.URL) error { return p.checkURL(u, schemes) }, only: only},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return denied("stopped after %d redirects", maxRedirects)
			}
			// net/http copies the first request's headers to every hop and
			// strips credentials only for hosts that are not a subdomain;
			// we strip them for any other origin, for the rest of the chain.
			o := origin(via[0].URL)
			if origin(req.URL) != o || slices.ContainsFunc(via, func(r *http.Request) bool { return origin(r.URL) != o }) {
				for _, h := range credentialHeaders {
					req.Header.Del(h)
				}
			}
			return nil
		},
	}
}

// checked refuses requests the policy does not allow before rt sees them.
type checked struct {
	rt    http.RoundTripper
	check func(*url.URL) error
	only  *string // when set, the only origin requests may go to
}

func (c *checked) RoundTrip(req *http.Request) (*http.Response, error) {
	err := c.check(req.URL)
	if err == nil && c.only != nil && origin(req.URL) != *c.only {
		err = denied("%s is not %s, the only origin this client may reach (it holds credentials for it)", origin(req.URL), *c.only)
	}
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close() // a RoundTripper must close the body, even on error
		}
		return nil, err
	}
	return c.rt.RoundTrip(req)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach rt.
func (c *checked) CloseIdleConnections() {
	if ci, ok := c.rt.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// BindCredentials returns a RoundTripper that calls set on a copy of each
// request whose scheme, host and port equal origin's, and passes every
// other request on untouched. Credentials applied this way never reach
// another host, whatever redirects do. A nil origin never gets them.
func BindCredentials(rt http.RoundTripper, origin *url.URL, set func(*http.Request)) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	return &bound{rt: rt, origin: originOf(origin), set: set}
}

type bound struct {
	rt     http.RoundTripper
	origin string
	set    func(*http.Request)
}

func (b *bound) RoundTrip(req *http.Request) (*http.Response, error) {
	if b.origin != "" && origin(req.URL) == b.origin {
		req = req.Clone(req.Context()) // a RoundTripper must not modify its request
		b.set(req)
	}
	return b.rt.RoundTrip(req)
}

func (b *bound) CloseIdleConnections() {
	if ci, ok := b.rt.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// originOf is origin, or "" (matching no request) for a URL without a host.
func originOf(u *url.URL) string {
	if u == nil || u.Hostname() == "" {
		return ""
	}
	return origin(u)
}

// origin is scheme://host:port, lower-cased, with the scheme's default port
// made explicit so https://a and https://a:443 are one origin.
func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// RedactError returns err with the URL of any *url.Error in it (which
// net/http's Client puts there, query included) cut to scheme, host and
// path. errors.Is and errors.As see the same chain as before.
func RedactError(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) || ue.URL == "" {
		return err
	}
	safe := "(unparsable URL)"
	if u, perr := url.Parse(ue.URL); perr == nil {
		safe = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	}
	// url.Error quotes its URL (%q), escaping the " and \ a query may hold:
	// replace the quoted form as well as the bare one.
	msg := strings.ReplaceAll(err.Error(), strconv.Quote(ue.URL), strconv.Quote(safe))
	return &redacted{msg: strings.ReplaceAll(msg, ue.URL, safe), err: err}
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }
