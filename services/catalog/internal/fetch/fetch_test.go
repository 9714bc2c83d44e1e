package fetch

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/slipwayhq/slipway/pkg/outbound"
)

func TestNew(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without a policy succeeded")
	}
	if _, err := New(Options{Policy: policy(t), Timeout: -1}); err == nil {
		t.Error("New with a negative timeout succeeded")
	}
	f, err := New(Options{Policy: policy(t)})
	if err != nil {
		t.Fatal(err)
	}
	if f.timeout != DefaultTimeout {
		t.Errorf("timeout = %s, want the default %s", f.timeout, DefaultTimeout)
	}
}

func TestCheckURL(t *testing.T) {
	strict := newFetcher(t, Options{Policy: policy(t)}, nil)
	dev := newFetcher(t, Options{Policy: policy(t, "127.0.0.0/8", "::1/128"), AllowHTTP: true}, nil)

	tests := []struct {
		name string
		f    *Fetcher
		raw  string
		want string // the normalised URL, when accepted
		err  error  // the refusal's sentinel
	}{
		{name: "plain", f: strict, raw: "https://charts.example.com", want: "https://charts.example.com"},
		{name: "case and trailing slash", f: strict, raw: "HTTPS://Charts.Example.COM:8443/Stable/", want: "https://charts.example.com:8443/Stable"},
		{name: "slashes only", f: strict, raw: "https://charts.example.com///", want: "https://charts.example.com"},
		{name: "empty port", f: strict, raw: "https://charts.example.com:/x", want: "https://charts.example.com/x"},
		{name: "default port", f: strict, raw: "https://charts.example.com:443/x", want: "https://charts.example.com/x"},
		{name: "default port of ipv6", f: strict, raw: "https://[2001:db8::1]:443/x", want: "https://[2001:db8::1]/x"},
		{name: "oci default port", f: strict, raw: "oci://ghcr.io:443/acme", want: "oci://ghcr.io/acme"},
		{name: "http default port", f: dev, raw: "http://127.0.0.1:80", want: "http://127.0.0.1"},
		{name: "escaped path kept", f: strict, raw: "https://charts.example.com/a%2Fb/", want: "https://charts.example.com/a%2Fb"},
		{name: "public address", f: strict, raw: "https://8.8.8.8/charts", want: "https://8.8.8.8/charts"},
		{name: "ipv6 address", f: strict, raw: "https://[2001:DB8::1]:8443/", want: "https://[2001:db8::1]:8443"},
		{name: "oci", f: strict, raw: "oci://ghcr.io/acme/charts/", want: "oci://ghcr.io/acme/charts"},
		{name: "oci registry root", f: strict, raw: "oci://registry.example.com:5000", want: "oci://registry.example.com:5000"},
		{name: "http in development", f: dev, raw: "http://127.0.0.1:8879/", want: "http://127.0.0.1:8879"},
		{name: "localhost allowed in development", f: dev, raw: "http://localhost:8879", want: "http://localhost:8879"},

		{name: "query", f: strict, raw: "https://charts.example.com/?token=x", err: ErrInvalidURL},
		{name: "empty query", f: strict, raw: "https://charts.example.com/?", err: ErrInvalidURL},
		{name: "fragment", f: strict, raw: "https://charts.example.com/#x", err: ErrInvalidURL},
		{name: "empty fragment", f: strict, raw: "https://charts.example.com/#", err: ErrInvalidURL},
		{name: "oci upper case", f: strict, raw: "oci://ghcr.io/Acme", err: ErrInvalidURL},
		{name: "oci escaped path", f: strict, raw: "oci://ghcr.io/a%2Fb", err: ErrInvalidURL},
		{name: "oci dot segment", f: strict, raw: "oci://ghcr.io/acme/../x", err: ErrInvalidURL},
		{name: "allowed address in hex", f: strict, raw: "https://0x08080808/", err: ErrInvalidURL},
		{name: "allowed address with a trailing dot", f: strict, raw: "https://8.8.8.8./", err: ErrInvalidURL},
		{name: "too many numbers", f: strict, raw: "https://1.2.3.4.5/", err: ErrInvalidURL},
		{name: "number out of range", f: strict, raw: "https://1.2.3.256/", err: ErrInvalidURL},
		{name: "http without AllowHTTP", f: strict, raw: "http://charts.example.com", err: outbound.ErrDenied},
		{name: "opaque", f: strict, raw: "https:charts.example.com", err: outbound.ErrDenied},
		{name: "no host", f: strict, raw: "https:///charts", err: outbound.ErrDenied},
		{name: "credentials", f: strict, raw: "https://user:hunter2@charts.example.com", err: outbound.ErrDenied},
		{name: "metadata allowed nowhere", f: dev, raw: "http://169.254.169.254/", err: outbound.ErrDenied},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.f.CheckURL(tc.raw)
			if tc.err != nil {
				wantErr(t, err, tc.err, "hunter2", "token=x")
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("CheckURL(%q) = %q, %v; want %q", tc.raw, got, err, tc.want)
			}
			if again, err := tc.f.CheckURL(got); err != nil || again != got {
				t.Errorf("CheckURL(%q) = %q, %v; want the normalised URL unchanged", got, again, err)
			}
		})
	}
}

func TestParseLegacyIPv4(t *testing.T) {
	tests := []struct {
		host        string
		want        string // "" when not an address
		numeric, ok bool
	}{
		{"127.0.0.1", "127.0.0.1", true, true},
		{"2130706433", "127.0.0.1", true, true},
		{"0x7f000001", "127.0.0.1", true, true},
		{"0X7F000001", "127.0.0.1", true, true},
		{"017700000001", "127.0.0.1", true, true},
		{"127.1", "127.0.0.1", true, true},
		{"127.0.1", "127.0.0.1", true, true},
		{"0177.0.0.1", "127.0.0.1", true, true},
		{"0x7f.0.0.0x1", "127.0.0.1", true, true},
		{"0", "0.0.0.0", true, true},
		{"0x", "0.0.0.0", true, true},
		{"169.254.43518", "169.254.169.254", true, true},
		{"1.2.3.4.5", "", true, false},
		{"256.0.0.1", "", true, false},
		{"1.2.65536", "", true, false},
		{"4294967296", "", true, false},
		{"08", "", true, false},
		{"1.0x", "1.0.0.0", true, true},
		{"99999999999999999999999", "", true, false},
		{"charts.example.com", "", false, false},
		{"1.2.3.example", "", false, false},
		{"0x7f.example", "", false, false},
		{"example.0x", "", true, false},
		{"::1", "", false, false},
		{"", "", false, false},
	}
	for _, tc := range tests {
		ip, numeric, ok := parseLegacyIPv4(tc.host)
		got := ""
		if ok {
			got = ip.String()
		}
		if numeric != tc.numeric || ok != tc.ok || got != tc.want {
			t.Errorf("parseLegacyIPv4(%q) = %s, numeric %t, ok %t; want %q, %t, %t", tc.host, got, numeric, ok, tc.want, tc.numeric, tc.ok)
		}
	}
}

// FuzzCheckURL checks that whatever CheckURL accepts is a URL it would
// accept again unchanged, of an allowed scheme, with a host and nothing a
// repository URL may not have.
func FuzzCheckURL(f *testing.F) {
	seeds, err := os.Open("testdata/urls.txt")
	if err != nil {
		f.Fatal(err)
	}
	defer seeds.Close()
	sc := bufio.NewScanner(seeds)
	for sc.Scan() {
		if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#") {
			f.Add(line)
		}
	}
	fetcher := newFetcher(f, Options{Policy: policy(f)}, nil)
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := fetcher.CheckURL(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalidURL) && !errors.Is(err, outbound.ErrDenied) {
				t.Fatalf("CheckURL(%q) = %v, want ErrInvalidURL or outbound.ErrDenied", raw, err)
			}
			return
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("CheckURL(%q) = %q, which does not parse: %v", raw, got, err)
		}
		if u.Scheme != "https" && u.Scheme != "oci" || u.Hostname() == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(got, "/") {
			t.Fatalf("CheckURL(%q) = %q", raw, got)
		}
		if ip, err := netip.ParseAddr(u.Hostname()); err == nil && fetcher.policy.CheckIP(ip) != nil {
			t.Fatalf("CheckURL(%q) = %q, a denied address", raw, got)
		}
		if again, err := fetcher.CheckURL(got); err != nil || again != got {
			t.Fatalf("CheckURL(%q) = %q, but CheckURL(%q) = %q, %v", raw, got, got, again, err)
		}
	})
}

// TestTransportReuse checks that calls with the same CA share a
// transport, and so a connection, and that the cache is bounded.
func TestTransportReuse(t *testing.T) {
	var conns atomic.Int32
	srv := newServer(t, true, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "apiVersion: v1\n") })
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	f := newFetcher(t, Options{Policy: policy(t, loopback...)}, nil)
	auth := &Auth{CAPEM: caPEM(srv)}
	for range 3 {
		if _, err := f.Index(t.Context(), srv.URL, auth, "", "", 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("three index requests made %d connections, want 1", n)
	}
	if n := len(f.transports.m); n != 1 {
		t.Errorf("%d transports cached, want 1", n)
	}

	first, err := f.transports.get(auth.CAPEM, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range maxTransports + 5 {
		// pem.Decode skips text before a block: each is another CA file
		// trusting the same certificate.
		ca := append(fmt.Appendf(nil, "ca %d\n", i), auth.CAPEM...)
		if _, err := f.transports.get(ca, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.transports.m); n != maxTransports {
		t.Errorf("%d transports cached, want at most %d", n, maxTransports)
	}
	again, err := f.transports.get(auth.CAPEM, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again == first {
		t.Errorf("the least recently used transport was kept")
	}
}

func TestInvalidAuth(t *testing.T) {
	srv := newServer(t, true, func(w http.ResponseWriter, r *http.Request) {})
	f := newFetcher(t, Options{Policy: policy(t, loopback...)}, nil)
	cert, key := clientCert(t)
	other, _ := clientCert(t)
	for name, auth := range map[string]*Auth{
		"CA without PEM":             {CAPEM: []byte("not a certificate")},
		"certificate without key":    {ClientCertPEM: cert},
		"key without certificate":    {ClientKeyPEM: key},
		"certificate of another key": {ClientCertPEM: other, ClientKeyPEM: key},
		"basic and bearer":           {Username: "u", Password: "hunter2", BearerToken: "tok3n"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := f.Index(t.Context(), srv.URL, auth, "", "", 1<<20)
			wantErr(t, err, ErrInvalidAuth, "hunter2", "tok3n", string(key))
			_, err = f.OCITags(t.Context(), "oci://"+srv.Listener.Addr().String(), "hello", auth)
			wantErr(t, err, ErrInvalidAuth, "hunter2", "tok3n", string(key))
		})
	}
	if n := len(srv.requests()); n != 0 {
		t.Errorf("the server got %d requests, want none", n)
	}
}
