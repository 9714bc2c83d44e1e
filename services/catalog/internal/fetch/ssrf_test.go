package fetch

import (
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/slipwayhq/slipway/pkg/outbound"
)

// canary is a TLS server on 127.0.0.1 that hostile URLs point at: were one
// let through, the request would land here.
func canary(t *testing.T) (*server, string) {
	t.Helper()
	c := newServer(t, true, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, indexYAML) })
	return c, c.port()
}

// fetchAll asks for raw with every call that takes a repository URL and
// returns their errors, named.
func fetchAll(t *testing.T, f *Fetcher, raw string, auth *Auth) map[string]error {
	t.Helper()
	ctx := t.Context()
	errs := map[string]error{}
	_, errs["CheckURL"] = f.CheckURL(raw)
	if strings.HasPrefix(strings.ToLower(raw), "oci:") {
		_, errs["OCICharts"] = f.OCICharts(ctx, raw, nil, auth)
		_, errs["OCITags"] = f.OCITags(ctx, raw, "hello", auth)
		_, errs["OCIVersion"] = f.OCIVersion(ctx, raw, "hello", "0.1.0", auth)
		_, errs["OCIArchive"] = f.OCIArchive(ctx, raw, "hello", "sha256:"+strings.Repeat("0", 64), auth, 1<<20)
	} else {
		_, errs["Index"] = f.Index(ctx, raw, auth, "", "", 1<<20)
		_, errs["Archive"] = f.Archive(ctx, raw, "hello-0.1.0.tgz", auth, 1<<20)
	}
	return errs
}

// TestSSRFRepositoryURLs refuses hostile repository URLs with the
// production policy (no allow list), when added and when used.
func TestSSRFRepositoryURLs(t *testing.T) {
	c, port := canary(t)
	strict := newFetcher(t, Options{Policy: policy(t)}, nil)
	withHTTP := newFetcher(t, Options{Policy: policy(t), AllowHTTP: true}, nil)

	tests := []struct {
		name string
		f    *Fetcher // strict when nil
		raw  string
		err  error // outbound.ErrDenied when nil
	}{
		{name: "http without AllowHTTP", raw: "http://charts.example.com/"},
		{name: "file", raw: "file:///etc/passwd"},
		{name: "gopher to a local redis", raw: "gopher://127.0.0.1:6379/_FLUSHALL"},
		{name: "ftp", raw: "ftp://charts.example.com/"},
		{name: "dict", raw: "dict://127.0.0.1:" + port + "/"},
		{name: "javascript", raw: "javascript:alert(1)"},
		{name: "userinfo", raw: "https://user:pass@charts.example.com/"},
		{name: "user only", raw: "https://token@charts.example.com/"},
		{name: "userinfo hiding the host", raw: "https://charts.example.com@127.0.0.1:" + port + "/"},
		{name: "backslash confusion", raw: `https://charts.example.com\@127.0.0.1:` + port + "/"},
		{name: "loopback", raw: "https://127.0.0.1:" + port + "/"},
		{name: "loopback over http", f: withHTTP, raw: "http://127.0.0.1:" + port + "/"},
		{name: "other loopback address", raw: "https://127.0.0.2:" + port + "/"},
		{name: "localhost", raw: "https://localhost:" + port + "/"},
		{name: "localhost, upper case, trailing dot", raw: "https://LOCALHOST.:" + port + "/"},
		{name: "a localhost subdomain", raw: "https://charts.localhost:" + port + "/"},
		{name: "ipv6 loopback", raw: "https://[::1]:" + port + "/"},
		{name: "unspecified", raw: "https://0.0.0.0:" + port + "/"},
		{name: "ipv6 unspecified", raw: "https://[::]:" + port + "/"},
		{name: "metadata", raw: "https://169.254.169.254/latest/meta-data/"},
		{name: "metadata over http", f: withHTTP, raw: "http://169.254.169.254/computeMetadata/v1/"},
		{name: "ipv4-mapped loopback", raw: "https://[::ffff:127.0.0.1]:" + port + "/"},
		{name: "ipv4-mapped metadata in hex", raw: "https://[::ffff:a9fe:a9fe]/"},
		{name: "decimal loopback", raw: "https://2130706433:" + port + "/"},
		{name: "hex loopback", raw: "https://0x7f000001:" + port + "/"},
		{name: "octal loopback", raw: "https://017700000001:" + port + "/"},
		{name: "short loopback", raw: "https://127.1:" + port + "/"},
		{name: "octal-dotted loopback", raw: "https://0177.0.0.1:" + port + "/"},
		{name: "mixed-radix metadata", raw: "http://0xa9.254.0251.0xfe/", f: withHTTP},
		{name: "short metadata", raw: "https://169.254.43518/"},
		{name: "loopback with a trailing dot", raw: "https://127.0.0.1.:" + port + "/"},
		{name: "link-local ipv6 with a zone", raw: "https://[fe80::1%25eth0]/"},
		{name: "AWS ipv6 metadata", raw: "https://[fd00:ec2::254]/"},
		{name: "Alibaba metadata", raw: "https://100.100.100.200/"},
		{name: "multicast", raw: "https://224.0.0.1/"},
		{name: "broadcast", raw: "https://255.255.255.255/"},
		{name: "no host", raw: "https:///index.yaml"},
		{name: "fragment hiding the host", raw: "https://127.0.0.1:" + port + "#@charts.example.com/"},
		{name: "query", raw: "https://charts.example.com/?url=http://127.0.0.1/", err: ErrInvalidURL},
		{name: "fragment", raw: "https://charts.example.com#@127.0.0.1/", err: ErrInvalidURL},
		{name: "oci loopback", raw: "oci://127.0.0.1:" + port + "/charts"},
		{name: "oci localhost", raw: "oci://localhost:" + port},
		{name: "oci ipv6 loopback", raw: "oci://[::1]:" + port + "/charts"},
		{name: "oci hex loopback", raw: "oci://0x7f000001:" + port + "/charts"},
		{name: "oci metadata", raw: "oci://169.254.169.254/charts"},
		{name: "oci userinfo", raw: "oci://user:pass@registry.example.com/charts"},
		{name: "oci query", raw: "oci://registry.example.com/charts?ns=x", err: ErrInvalidURL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			if f == nil {
				f = strict
			}
			want := tc.err
			if want == nil {
				want = outbound.ErrDenied
			}
			for call, err := range fetchAll(t, f, tc.raw, nil) {
				if !errors.Is(err, want) {
					t.Errorf("%s(%q) = %v, want %v", call, tc.raw, err, want)
				}
				if err != nil && strings.Contains(err.Error(), "pass@") {
					t.Errorf("%s: error %q repeats the userinfo", call, err)
				}
			}
		})
	}
	if n := len(c.requests()); n != 0 {
		t.Errorf("the canary got %d requests, want none", n)
	}
}

// TestSSRFNames checks that names resolving to denied addresses, which
// CheckURL cannot judge, are refused when dialed.
func TestSSRFNames(t *testing.T) {
	c, port := canary(t)
	dns := startDNS(t, map[string][]string{
		"metadata.google.internal.test": {"169.254.169.254"},
		"loopback.test":                 {"127.0.0.1"},
		"mapped.test":                   {"::ffff:127.0.0.1"},
		"mixed.test":                    {"93.184.216.34", "127.0.0.1"},
		"aws-ipv6-metadata.test":        {"fd00:ec2::254"},
		"zero.test":                     {"0.0.0.0"},
		"ipv6-loopback.test":            {"::1"},
	})
	f := newFetcher(t, Options{Policy: policy(t)}, dns)
	for _, host := range []string{"metadata.google.internal.test", "loopback.test", "mapped.test", "mixed.test", "aws-ipv6-metadata.test", "zero.test", "ipv6-loopback.test"} {
		for _, raw := range []string{"https://" + host + ":" + port + "/charts", "oci://" + host + ":" + port + "/charts"} {
			t.Run(raw, func(t *testing.T) {
				errs := fetchAll(t, f, raw, nil)
				if err := errs["CheckURL"]; err != nil {
					t.Errorf("CheckURL(%q) = %v; a name is judged when dialed", raw, err)
				}
				delete(errs, "CheckURL")
				for call, err := range errs {
					if !errors.Is(err, outbound.ErrDenied) || !strings.Contains(err.Error(), "(host "+host+")") {
						t.Errorf("%s(%q) = %v, want a refusal of the address of %s", call, raw, err, host)
					}
				}
			})
		}
	}
	if n := len(c.requests()); n != 0 {
		t.Errorf("the canary got %d requests, want none", n)
	}
}

// TestSSRFRedirects has an allowed server (127.0.0.1 is allowed here, and
// only it) redirect to hostile places: every redirect is refused before it
// is followed, by the policy's check of each request.
func TestSSRFRedirects(t *testing.T) {
	// The canary listens on 127.0.0.2, next to the allowed address.
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 to listen on: %v", err)
	}
	c := &server{}
	c.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.reqs = append(c.reqs, request{path: r.URL.Path})
		c.mu.Unlock()
	}))
	_ = c.Listener.Close()
	c.Listener = l
	c.StartTLS()
	t.Cleanup(c.Close)
	cport := c.port()

	// /to/<base64url of a URL>/... redirects there.
	first := newServer(t, true, func(w http.ResponseWriter, r *http.Request) {
		parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/to/"), "/", 2)
		to, err := base64.RawURLEncoding.DecodeString(parts[0])
		if err != nil {
			http.NotFound(w, r)
			return
		}
		if string(to) == "loop" {
			http.Redirect(w, r, r.URL.Path, http.StatusFound)
			return
		}
		http.Redirect(w, r, string(to), http.StatusFound)
	})
	dns := startDNS(t, map[string][]string{"metadata.test": {"169.254.169.254"}, "loopback2.test": {"127.0.0.2"}})
	f := newFetcher(t, Options{Policy: policy(t, loopback...)}, dns)
	auth := &Auth{CAPEM: caPEM(first)}
	fport := first.port()

	targets := []struct {
		name, to string
		says     string
	}{
		{"other loopback address", "https://127.0.0.2:" + cport + "/index.yaml", "127.0.0.2 is in denied range 127.0.0.0/8"},
		{"metadata", "https://169.254.169.254/latest/meta-data/", "169.254.169.254 is in denied range"},
		{"ipv6 loopback", "https://[::1]:" + cport + "/", "::1 is in denied range"},
		{"ipv4-mapped other loopback", "https://[::ffff:127.0.0.2]:" + cport + "/", "is in denied range 127.0.0.0/8"},
		{"hex other loopback", "https://0x7f000002:" + cport + "/", "host 0x7f000002 is the address 127.0.0.2"},
		{"decimal other loopback", "https://2130706434:" + cport + "/", "host 2130706434 is the address 127.0.0.2"},
		{"localhost", "https://localhost:" + cport + "/", "host localhost names this machine"},
		{"name resolving to metadata", "https://metadata.test/", "169.254.169.254 (host metadata.test) is in denied range"},
		{"downgrade to http", "http://127.0.0.1:" + fport + "/index.yaml", `scheme "http" is not allowed`},
		{"file", "file:///etc/passwd", `scheme "file" is not allowed`},
		{"gopher", "gopher://127.0.0.1:6379/_FLUSHALL", `scheme "gopher" is not allowed`},
		{"credentials", "https://user:pass@127.0.0.1:" + fport + "/", "carries credentials"},
		{"endless", "loop", "stopped after 10 redirects"},
	}
	for _, tc := range targets {
		t.Run(tc.name, func(t *testing.T) {
			path := "/to/" + base64.RawURLEncoding.EncodeToString([]byte(tc.to))
			_, ierr := f.Index(t.Context(), first.URL+path, auth, "", "", 1<<20)
			_, aerr := f.Archive(t.Context(), first.URL+"/repo", path+"/hello-0.1.0.tgz", auth, 1<<20)
			for call, err := range map[string]error{"Index": ierr, "Archive": aerr} {
				if !errors.Is(err, outbound.ErrDenied) || !strings.Contains(err.Error(), tc.says) {
					t.Errorf("%s = %v, want a refusal saying %q", call, err, tc.says)
				}
				if err != nil && strings.Contains(err.Error(), "pass@") {
					t.Errorf("%s: error %q repeats the userinfo", call, err)
				}
			}
		})
	}

	// A registry redirecting its API, or naming a token service at a
	// denied address, is refused the same way: by go-containerregistry's
	// own check when the target is an IP literal, by the policy when it is
	// a name.
	redirecting := func(to string) *server {
		return newServer(t, true, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v2/" {
				return
			}
			http.Redirect(w, r, to+r.URL.Path, http.StatusTemporaryRedirect)
		})
	}
	tokens := func(realm string) *server {
		return newServer(t, true, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`",service="registry"`)
			w.WriteHeader(http.StatusUnauthorized)
		})
	}
	for name, srv := range map[string]*server{
		"registry redirecting to an address":      redirecting("https://127.0.0.2:" + cport),
		"registry redirecting to a name":          redirecting("https://loopback2.test:" + cport),
		"token service at a denied address":       tokens("https://169.254.169.254/token"),
		"token service at a name of one":          tokens("https://metadata.test/token"),
		"token service over http":                 tokens("http://127.0.0.1:" + fport + "/token"),
		"token service at another loopback name":  tokens("https://loopback2.test:" + cport + "/token"),
		"token service at a hex loopback address": tokens("https://0x7f000002:" + cport + "/token"),
	} {
		t.Run(name, func(t *testing.T) {
			raw := "oci://" + srv.Listener.Addr().String() + "/charts"
			errs := fetchAll(t, f, raw, auth)
			delete(errs, "CheckURL")
			for call, err := range errs {
				if !errors.Is(err, outbound.ErrDenied) {
					t.Errorf("%s(%s) = %v, want a refusal", call, raw, err)
				}
			}
		})
	}
	if n := len(c.requests()); n != 0 {
		t.Errorf("the canary on 127.0.0.2 got %d requests, want none", n)
	}
}
