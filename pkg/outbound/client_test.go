package outbound

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// This test comes first in the file on purpose: net/http reads
// HTTP(S)_PROXY once per process, on the first request that asks for it.
// Were Transport to honour the environment again, an earlier test's request
// would freeze "no proxy" in place and hide the regression from the
// behavioural half of this test (the Proxy == nil check would still catch
// it).
func TestTransportIgnoresEnvironmentProxies(t *testing.T) {
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		http.Error(w, "this is the proxy", http.StatusBadGateway)
	}))
	t.Cleanup(proxy.Close)
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
		t.Setenv(k, proxy.URL)
	}
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")

	// net/http never proxies "localhost" or loopback literals, so the
	// servers are reached by a name that only the test's DNS knows.
	dns := startDNS(t, zone{"charts.test": {"127.0.0.1"}}.answer)
	p := mustNew(t, devConfig)
	for _, useTLS := range []bool{false, true} {
		srv := newServer(t, useTLS)
		scheme := mustParse(t, srv.URL).Scheme
		t.Run(scheme, func(t *testing.T) {
			tr := transport(t, p, dns.dialer(), srv)
			if tr.Proxy != nil {
				t.Errorf("Transport().Proxy is set; it must be nil so no proxy connects to tenants' addresses unchecked")
			}
			tr.TLSClientConfig.ServerName = "example.com" // in httptest's certificate
			u := scheme + "://charts.test:" + mustParse(t, srv.URL).Port() + "/index.yaml"
			if err := get(t, p.Client(tr, "http", "https"), u, nil); err != nil {
				t.Fatalf("GET %s: %v", u, err)
			}
			if n := srv.count(); n != 1 {
				t.Errorf("the server got %d requests, want 1", n)
			}
			if n := proxied.Load(); n != 0 {
				t.Errorf("the %s_PROXY proxy got %d requests, want none", strings.ToUpper(scheme), n)
			}
		})
	}
}

func TestDialContext(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	onlyOne := Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	onlyTwo := Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}

	tests := []struct {
		name    string
		cfg     Config
		network string
		addr    string // %s is the listener's port
		want    string // substring of the refusal; "" means the dial reaches the listener
		queries []string
	}{
		{name: "denied literal", addr: "127.0.0.1:%s", want: "127.0.0.1 is in denied range 127.0.0.0/8; allow it with --outbound-allow-cidrs"},
		{name: "denied literal next to an allowed one", cfg: onlyOne, addr: "127.0.0.2:%s", want: "127.0.0.2 is in denied range 127.0.0.0/8"},
		{name: "denied ipv4-mapped literal", addr: "[::ffff:127.0.0.1]:%s", want: "::ffff:127.0.0.1 is in denied range 127.0.0.0/8"},
		{name: "unspecified address reaching loopback", addr: "0.0.0.0:%s", want: "denied range 0.0.0.0/8"},
		{name: "allowed literal", cfg: devConfig, addr: "127.0.0.1:%s"},
		{name: "allowed literal, tcp4", cfg: devConfig, network: "tcp4", addr: "127.0.0.1:%s"},
		{name: "allowed ipv4-mapped literal is dialed as ipv4", cfg: devConfig, addr: "[::ffff:127.0.0.1]:%s"},
		{name: "name from the hosts file resolving to a denied address", addr: "localhost:%s", want: "(host localhost) is in denied range 127.0.0.0/8"},
		{name: "name from the hosts file resolving to an allowed address", cfg: devConfig, addr: "localhost:%s"},
		{
			name: "name resolving to a denied address", network: "tcp4", addr: "loopback.test:%s",
			want: "127.0.0.1 (host loopback.test) is in denied range 127.0.0.0/8", queries: []string{"A loopback.test"},
		},
		// Whatever order the resolver sorts the two answers in, one of
		// these has the allowed address first.
		{name: "name with a denied address after an allowed one", cfg: onlyOne, addr: "mixed.test:%s", want: "127.0.0.2 (host mixed.test) is in denied range 127.0.0.0/8"},
		{name: "name with an allowed address after a denied one", cfg: onlyTwo, addr: "mixed.test:%s", want: "127.0.0.1 (host mixed.test) is in denied range 127.0.0.0/8"},
		{name: "name with an ipv4-mapped loopback AAAA", addr: "mapped.test:%s", want: "(host mapped.test) is in denied range 127.0.0.0/8"},
		{name: "allowing loopback does not allow metadata", cfg: devConfig, addr: "metadata.test:80", want: "169.254.169.254 (host metadata.test) is in denied range 169.254.0.0/16"},
		{
			// One lookup for one dial: the address checked is the address
			// dialed, so a second answer cannot rebind the name.
			name: "allowed name is resolved once and its checked address dialed", cfg: devConfig, network: "tcp4",
			addr: "charts.test:%s", queries: []string{"A charts.test"},
		},
		{name: "rebinding name", cfg: devConfig, network: "tcp4", addr: "rebind.test:%s", queries: []string{"A rebind.test"}},
		{name: "unix socket", cfg: devConfig, network: "unix", addr: "/run/docker.sock", want: `network "unix" is not allowed (only tcp)`},
		{name: "udp", cfg: devConfig, network: "udp", addr: "127.0.0.1:%s", want: `network "udp" is not allowed`},
		{name: "empty host", cfg: devConfig, addr: ":%s", want: `address ":` + port + `" has no host`},
		{name: "empty bracketed host", cfg: devConfig, addr: "[]:%s", want: "has no host"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dns := startDNS(t, func(name string, n int) []netip.Addr {
				switch name {
				case "rebind.test": // allowed when first asked, metadata when asked again
					if n > 0 {
						return addrs("169.254.169.254")
					}
					return addrs("127.0.0.1")
				case "mixed.test":
					return addrs("127.0.0.1", "127.0.0.2")
				case "mapped.test":
					return addrs("::ffff:127.0.0.1")
				case "metadata.test":
					return addrs("169.254.169.254")
				case "loopback.test", "charts.test":
					return addrs("127.0.0.1")
				}
				return nil
			})
			network := cmp.Or(tc.network, "tcp")
			addr := tc.addr
			if strings.Contains(addr, "%s") {
				addr = fmt.Sprintf(addr, port)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			conn, err := mustNew(t, tc.cfg).DialContext(dns.dialer())(ctx, network, addr)
			if conn != nil {
				defer conn.Close()
			}
			// Every connection the listener has is accepted here, before
			// anything can fail, so none is left for the next case: a
			// refused dial must have made none, an allowed one exactly the
			// one it returned.
			got := acceptUpTo(t, ln)
			if tc.want != "" {
				if len(got) != 0 {
					t.Errorf("the refused dial reached the listener from %v", got)
				}
				wantDenied(t, err, tc.want)
			} else {
				if err != nil {
					t.Fatalf("DialContext(%s, %s): %v", network, addr, err)
				}
				if !slices.Equal(got, []string{conn.LocalAddr().String()}) {
					t.Errorf("the listener accepted %v, want only the dialed connection from %s", got, conn.LocalAddr())
				}
			}
			if tc.queries != nil && !slices.Equal(dns.queries(), tc.queries) {
				t.Errorf("DNS queries = %q, want %q", dns.queries(), tc.queries)
			}
		})
	}
}

// acceptUpTo accepts what ln has queued, up to and including a connection
// it makes itself, and returns the remote addresses of the others.
func acceptUpTo(t *testing.T, ln net.Listener) []string {
	t.Helper()
	probe, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	if err := ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var others []string
	for {
		c, err := ln.Accept()
		if err != nil {
			t.Fatalf("accept: %v", err)
		}
		from := c.RemoteAddr().String()
		_ = c.Close()
		if from == probe.LocalAddr().String() {
			return others
		}
		others = append(others, from)
	}
}

func TestClientRefuses(t *testing.T) {
	dns := startDNS(t, zone{"metadata.test": {"169.254.169.254"}}.answer)
	a, b, plain := newServer(t, true), newServer(t, true), newServer(t, false)
	p := mustNew(t, devConfig)
	tr := transport(t, p, dns.dialer(), a)
	httpsOnly, httpOnly := p.Client(tr), p.Client(tr, "http")
	strict := mustNew(t, Config{})

	tests := []struct {
		name      string
		client    *http.Client
		url       string
		want      string    // substring of the refusal
		untouched *recorder // gets no request
		secrets   []string  // absent from the error
	}{
		{
			name: "first request to a denied address", client: strict.Client(transport(t, strict, nil, a)), url: a.URL + "/final",
			want: "127.0.0.1 is in denied range 127.0.0.0/8", untouched: a,
		},
		{
			name: "redirect to a denied literal", client: httpsOnly, url: redirect(a, "https://169.254.169.254/latest/meta-data/"),
			want: "169.254.169.254 is in denied range 169.254.0.0/16",
		},
		{
			name: "redirect to a name resolving to a denied address", client: httpsOnly, url: redirect(a, "https://metadata.test:"+mustParse(t, b.URL).Port()+"/"),
			want: "169.254.169.254 (host metadata.test) is in denied range 169.254.0.0/16", untouched: b,
		},
		{
			name: "redirect from https to http", client: httpsOnly, url: redirect(a, plain.URL+"/final"),
			want: `scheme "http" is not allowed here (allowed: https)`, untouched: plain,
		},
		{
			name: "redirect from http to https on an http-only client", client: httpOnly, url: redirect(plain, a.URL+"/final"),
			want: `scheme "https" is not allowed here (allowed: http)`, untouched: a,
		},
		{
			name: "redirect to a URL with credentials", client: httpsOnly, url: redirect(a, "https://user:hunter2@"+mustParse(t, b.URL).Host+"/final"),
			want: "carries credentials", untouched: b, secrets: []string{"hunter2"},
		},
		{name: "endless redirects", client: httpsOnly, url: a.URL + "/loop?n=1000", want: "stopped after 10 redirects"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before int
			if tc.untouched != nil {
				before = tc.untouched.count()
			}
			err := get(t, tc.client, tc.url, nil)
			wantDenied(t, err, tc.want, tc.secrets...)
			if tc.untouched != nil {
				if n := tc.untouched.count() - before; n != 0 {
					t.Errorf("%s got %d requests, want none", tc.untouched.URL, n)
				}
			}
		})
	}

	// net/http's limit: ten requests, so nine redirects are followed and
	// the tenth is refused.
	t.Run("nine redirects are followed", func(t *testing.T) {
		before := a.count()
		if err := get(t, httpsOnly, a.URL+"/loop?n=9", nil); err != nil {
			t.Fatalf("GET: %v", err)
		}
		if n := a.count() - before; n != 10 {
			t.Errorf("the server got %d requests, want 10", n)
		}
	})
	t.Run("the tenth redirect is not followed", func(t *testing.T) {
		before := a.count()
		wantDenied(t, get(t, httpsOnly, a.URL+"/loop?n=10", nil), "stopped after 10 redirects")
		if n := a.count() - before; n != 10 {
			t.Errorf("the server got %d requests, want 10", n)
		}
	})
}

var credentials = http.Header{
	"Authorization":       {"Bearer s3cret-token"},
	"Cookie":              {"session=s3cret-cookie"},
	"Proxy-Authorization": {"Basic s3cret-proxy"},
}

func TestClientCredentialsStayWithOrigin(t *testing.T) {
	dns := startDNS(t, zone{"charts.test": {"127.0.0.1"}, "sub.charts.test": {"127.0.0.1"}}.answer)
	a, b, plain := newServer(t, true), newServer(t, true), newServer(t, false)
	p := mustNew(t, devConfig)
	tr := transport(t, p, dns.dialer(), a)
	httpsOnly, httpOnly := p.Client(tr), p.Client(tr, "http")
	plainPort := mustParse(t, plain.URL).Port()

	tests := []struct {
		name   string
		client *http.Client
		url    string
		at     *recorder // answers the request for /final
		keep   bool      // whether /final gets the credentials
	}{
		{name: "no redirect", client: httpsOnly, url: a.URL + "/final", at: a, keep: true},
		{name: "same-origin redirect", client: httpsOnly, url: redirect(a, "/final"), at: a, keep: true},
		{name: "same-origin redirect by absolute URL", client: httpsOnly, url: redirect(a, a.URL+"/final"), at: a, keep: true},
		// net/http itself would keep them: it compares host names only.
		{name: "redirect to another port", client: httpsOnly, url: redirect(a, b.URL+"/final"), at: b},
		{name: "back at the origin after leaving it", client: httpsOnly, url: redirect(a, redirect(b, a.URL+"/final")), at: a},
		{name: "redirect to another host name for the same address", client: httpOnly, url: redirect(plain, "http://charts.test:"+plainPort+"/final"), at: plain},
		// net/http itself would keep them for a subdomain.
		{
			name: "redirect to a subdomain", client: httpOnly, at: plain,
			url: redirect2("http://charts.test:"+plainPort, "http://sub.charts.test:"+plainPort+"/final"),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := maps.Clone(credentials)
			h.Set("X-Request-Id", "not-a-credential")
			if err := get(t, tc.client, tc.url, h); err != nil {
				t.Fatalf("GET: %v", err)
			}
			got, ok := tc.at.last("/final")
			if !ok {
				t.Fatalf("%s got no request for /final", tc.at.URL)
			}
			if got.header.Get("X-Request-Id") != "not-a-credential" {
				t.Errorf("X-Request-Id = %q, want the other headers kept", got.header.Get("X-Request-Id"))
			}
			// net/http fills Referer with the previous URL, query included.
			if r := got.header.Get("Referer"); !tc.keep && r != "" {
				t.Errorf("Referer %q reached %s, another origin", r, got.host)
			}
			for k, v := range credentials {
				switch g := got.header.Values(k); {
				case tc.keep && !slices.Equal(g, v):
					t.Errorf("%s = %q, want %q kept within the origin", k, g, v)
				case !tc.keep && len(g) != 0:
					t.Errorf("%s = %q reached %s, another origin", k, g, got.host)
				}
			}
		})
	}
}

func TestBindCredentials(t *testing.T) {
	a, b := newServer(t, true), newServer(t, true)
	p := mustNew(t, devConfig)
	tr := transport(t, p, nil, a)
	aPort := mustParse(t, a.URL).Port()

	tests := []struct {
		name   string
		origin *url.URL
		url    string
		bound  *recorder // the server whose requests carry the credentials; nil for none
	}{
		{name: "its origin", origin: mustParse(t, a.URL), url: a.URL + "/final", bound: a},
		{name: "its origin, given with a path", origin: mustParse(t, a.URL+"/charts/"), url: a.URL + "/final", bound: a},
		{name: "same-origin redirect", origin: mustParse(t, a.URL), url: redirect(a, "/final"), bound: a},
		{name: "another origin", origin: mustParse(t, a.URL), url: b.URL + "/final", bound: a},
		{name: "redirect to another origin", origin: mustParse(t, a.URL), url: redirect(a, b.URL+"/final"), bound: a},
		{name: "redirect back to its origin", origin: mustParse(t, a.URL), url: redirect(b, a.URL+"/final"), bound: a},
		{name: "same host and port, other scheme", origin: mustParse(t, "http://127.0.0.1:"+aPort), url: a.URL + "/final"},
		{name: "nil origin", url: a.URL + "/final"},
		{name: "origin without a host", origin: &url.URL{Scheme: "https", Path: "/final"}, url: a.URL + "/final"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			rt := BindCredentials(tr, tc.origin, func(r *http.Request) {
				calls.Add(1)
				r.Header.Set("Authorization", "Bearer s3cret")
				r.Header.Set("X-Registry-Key", "s3cret")
			})
			before := map[*recorder]int{a: a.count(), b: b.count()}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := do(p.Client(rt), req); err != nil {
				t.Fatalf("GET: %v", err)
			}
			if len(req.Header) != 0 {
				t.Errorf("the caller's request was modified: %v", req.Header)
			}
			var with int
			for srv, n := range before {
				for _, got := range srv.since(n) {
					has := got.header.Get("Authorization") != "" || got.header.Get("X-Registry-Key") != ""
					if has != (srv == tc.bound) {
						t.Errorf("request to %s%s has credentials: %v, want %v", srv.URL, got.path, has, srv == tc.bound)
					}
					if has {
						with++
					}
				}
			}
			if n := int(calls.Load()); n != with {
				t.Errorf("the credential function ran %d times for %d requests carrying credentials", n, with)
			}
			if n := a.count() + b.count() - before[a] - before[b]; n == 0 {
				t.Errorf("no request reached the servers")
			}
		})
	}
}

func TestOriginClient(t *testing.T) {
	a, b := newServer(t, true), newServer(t, true)
	p := mustNew(t, devConfig)
	tr := transport(t, p, nil, a)
	aPort := mustParse(t, a.URL).Port()
	toA := p.OriginClient(tr, mustParse(t, a.URL))
	onlyA := fmt.Sprintf("https://127.0.0.1:%s is not https://127.0.0.1:%s, the only origin this client may reach", mustParse(t, b.URL).Port(), aPort)

	tests := []struct {
		name      string
		client    *http.Client
		url       string
		want      string    // substring of the refusal; "" means allowed
		untouched *recorder // gets no request
	}{
		{name: "its origin", client: toA, url: a.URL + "/final"},
		{name: "same-origin redirect", client: toA, url: redirect(a, "/final")},
		{name: "origin given with a path", client: p.OriginClient(tr, mustParse(t, a.URL+"/charts/index.yaml")), url: a.URL + "/final"},
		{name: "another origin", client: toA, url: b.URL + "/final", want: onlyA, untouched: b},
		{name: "redirect to another origin", client: toA, url: redirect(a, b.URL+"/final"), want: onlyA, untouched: b},
		{name: "same host and port, other scheme", client: toA, url: "http://127.0.0.1:" + aPort + "/final", want: `scheme "http" is not allowed`, untouched: a},
		{name: "nil origin", client: p.OriginClient(tr, nil), url: a.URL + "/final", want: `scheme "https" is not allowed here`, untouched: a},
		{name: "origin without a host", client: p.OriginClient(tr, &url.URL{Scheme: "https"}), url: a.URL + "/final", want: "the only origin this client may reach", untouched: a},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before int
			if tc.untouched != nil {
				before = tc.untouched.count()
			}
			err := get(t, tc.client, tc.url, nil)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("GET: %v", err)
				}
				if _, ok := a.last("/final"); !ok {
					t.Errorf("%s got no request for /final", a.URL)
				}
			} else {
				wantDenied(t, err, tc.want)
			}
			if tc.untouched != nil {
				if n := tc.untouched.count() - before; n != 0 {
					t.Errorf("%s got %d requests, want none", tc.untouched.URL, n)
				}
			}
		})
	}
}

func TestRedactError(t *testing.T) {
	a := newServer(t, true)
	strict := mustNew(t, Config{})
	clientErr := get(t, strict.Client(transport(t, strict, nil, a)), a.URL+"/index.yaml?token=SECRET", nil)
	p := mustNew(t, devConfig)
	redirectErr := get(t, p.Client(transport(t, p, nil, a)), redirect(a, "https://169.254.169.254/?token=SECRET"), nil)
	tooMany := get(t, p.Client(transport(t, p, nil, a)), a.URL+"/loop?n=20&token=SECRET", nil)

	tests := []struct {
		name string
		err  error
		want string // substring of the redacted message
	}{
		{name: "client error", err: clientErr, want: `Get "` + a.URL + `/index.yaml": outbound policy: 127.0.0.1 is in denied range`},
		{name: "client error, wrapped", err: fmt.Errorf("loading the index: %w", clientErr), want: `loading the index: Get "` + a.URL + `/index.yaml": `},
		{name: "redirect refused", err: redirectErr, want: `Get "https://169.254.169.254/": outbound policy: 169.254.169.254 is in denied range`},
		// The URL of a refused redirect is the Location header as sent.
		{name: "too many redirects", err: tooMany, want: `Get "/loop": outbound policy: stopped after 10 redirects`},
		{name: "userinfo and fragment", err: &url.Error{Op: "Get", URL: "https://user:SECRET@h.example/p?q=SECRET#SECRET", Err: ErrDenied}, want: `Get "https://h.example/p": `},
		{name: "characters url.Error quotes", err: &url.Error{Op: "Get", URL: `https://h.example/p?token=SE"CR\ET`, Err: ErrDenied}, want: `Get "https://h.example/p": `},
		{name: "unparsable URL", err: &url.Error{Op: "Get", URL: "https://h.example/%zz?token=SECRET", Err: ErrDenied}, want: `Get "(unparsable URL)": `},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var orig *url.Error
			if !errors.As(tc.err, &orig) || !strings.Contains(orig.URL, "SE") {
				t.Fatalf("the error to redact is %v, want a *url.Error with a secret in its URL", tc.err)
			}
			got := RedactError(tc.err)
			if msg := got.Error(); strings.Contains(msg, "SECRET") || strings.Contains(msg, "CR") {
				t.Errorf("RedactError(...) = %q gives the secret away", msg)
			}
			if !strings.Contains(got.Error(), tc.want) {
				t.Errorf("RedactError(...) = %q, want it to contain %q", got, tc.want)
			}
			if !errors.Is(got, ErrDenied) {
				t.Errorf("errors.Is(RedactError(...), ErrDenied) = false")
			}
			var ue *url.Error
			if !errors.As(got, &ue) || ue != orig {
				t.Errorf("errors.As(RedactError(...), *url.Error) = %v, want the original %v", ue, orig)
			}
			if !errors.Is(got, tc.err) {
				t.Errorf("errors.Is(RedactError(err), err) = false")
			}
		})
	}

	t.Run("nothing to redact", func(t *testing.T) {
		plain := errors.New("plain")
		for _, err := range []error{nil, plain, &url.Error{Op: "Get", Err: plain}} {
			if got := RedactError(err); got != err {
				t.Errorf("RedactError(%v) = %v, want it unchanged", err, got)
			}
		}
	})
}

// recorder is a test server that records every request reaching it. It
// answers /redirect?to=URL with a redirect to URL, /loop?n=N with a
// redirect to /loop?n=N-1 while N > 0, and anything else with 200.
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

type seen struct {
	path, host string
	header     http.Header
}

func newServer(t *testing.T, useTLS bool) *recorder {
	t.Helper()
	s := &recorder{}
	s.Server = httptest.NewUnstartedServer(s)
	if useTLS {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

func (s *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.reqs = append(s.reqs, seen{path: r.URL.Path, host: r.Host, header: r.Header.Clone()})
	s.mu.Unlock()
	q := r.URL.Query()
	switch r.URL.Path {
	case "/redirect":
		http.Redirect(w, r, q.Get("to"), http.StatusFound)
	case "/loop":
		if n, _ := strconv.Atoi(q.Get("n")); n > 0 {
			q.Set("n", strconv.Itoa(n-1))
			http.Redirect(w, r, "/loop?"+q.Encode(), http.StatusFound)
			return
		}
		fallthrough
	default:
		_, _ = io.WriteString(w, "ok")
	}
}

func (s *recorder) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

// since returns the requests after the first n.
func (s *recorder) since(n int) []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs[n:])
}

func (s *recorder) last(path string) (seen, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range slices.Backward(s.reqs) {
		if r.path == path {
			return r, true
		}
	}
	return seen{}, false
}

// redirect is the URL at which srv redirects to to.
func redirect(srv *recorder, to string) string { return redirect2(srv.URL, to) }

func redirect2(base, to string) string {
	return base + "/redirect?" + url.Values{"to": {to}}.Encode()
}

// transport is p.Transport() trusting httptest's certificate and, when d is
// not nil, dialing through p.DialContext(d).
func transport(t *testing.T, p *Policy, d *net.Dialer, tlsServer *recorder) *http.Transport {
	t.Helper()
	tr := p.Transport()
	if d != nil {
		tr.DialContext = p.DialContext(d)
	}
	if c := tlsServer.Certificate(); c != nil {
		pool := x509.NewCertPool()
		pool.AddCert(c)
		tr.TLSClientConfig.RootCAs = pool
	}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// get sends a GET with header h through c and returns its error, or an
// error for a status other than 200.
func get(t *testing.T, c *http.Client, u string, h http.Header) error {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(req.Header, h)
	return do(c, req)
}

func do(c *http.Client, req *http.Request) error {
	resp, err := c.Do(req)
	if resp != nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %s", resp.Status)
	}
	return err
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

// zone maps names to their addresses.
type zone map[string][]string

// answer answers each name of z with its addresses whenever asked.
func (z zone) answer(name string, _ int) []netip.Addr {
	if s, ok := z[name]; ok {
		return addrs(s...)
	}
	return nil
}

// dnsServer is a DNS server on 127.0.0.1 answering A and AAAA queries
// from answer: the addresses for the n-th (from 0) query of a name and
// type, nil for NXDOMAIN. It records the queries it gets.
type dnsServer struct {
	pc     net.PacketConn
	answer func(name string, n int) []netip.Addr
	mu     sync.Mutex
	asked  []string // "A name", "AAAA name"
}

func startDNS(t *testing.T, answer func(name string, n int) []netip.Addr) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{pc: pc, answer: answer}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := s.reply(buf[:n]); resp != nil {
				_, _ = pc.WriteTo(resp, from)
			}
		}
	}()
	t.Cleanup(func() {
		_ = pc.Close()
		<-done
	})
	return s
}

func (s *dnsServer) reply(q []byte) []byte {
	if len(q) < 12 {
		return nil
	}
	i := 12
	var labels []string
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if l > 63 || i+1+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	if i+5 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i+1:])
	i += 5 // root label, type, class
	name := strings.ToLower(strings.Join(labels, "."))
	typ := map[uint16]string{1: "A", 28: "AAAA"}[qtype]
	if typ == "" {
		typ = strconv.Itoa(int(qtype))
	}
	key := typ + " " + name
	s.mu.Lock()
	n := 0
	for _, k := range s.asked {
		if k == key {
			n++
		}
	}
	s.asked = append(s.asked, key)
	s.mu.Unlock()
	answers := s.answer(name, n)

	// Header: same ID, response with recursion desired and available,
	// one question, the answers.
	resp := append([]byte{q[0], q[1], 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0}, q[12:i]...)
	if answers == nil {
		resp[3] |= 3 // NXDOMAIN
	}
	var count uint16
	for _, a := range answers {
		if !(qtype == 1 && a.Is4() || qtype == 28 && a.Is6()) {
			continue
		}
		b := a.AsSlice()
		// Name: a pointer to the question's; class IN; TTL 60 s.
		resp = append(resp, 0xc0, 12, byte(qtype>>8), byte(qtype), 0, 1, 0, 0, 0, 60, 0, byte(len(b)))
		resp = append(resp, b...)
		count++
	}
	binary.BigEndian.PutUint16(resp[6:], count)
	return resp
}

func (s *dnsServer) queries() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.asked)
}

// dialer is a net.Dialer whose resolver asks only s.
func (s *dnsServer) dialer() *net.Dialer {
	return &net.Dialer{
		Timeout: 10 * time.Second,
		Resolver: &net.Resolver{
			PreferGo: true,
			Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "udp4", s.pc.LocalAddr().String())
			},
		},
	}
}
