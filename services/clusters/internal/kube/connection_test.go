package kube

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
)

func TestNewConnection(t *testing.T) {
	ca := newCA(t, "conn-ca")
	certPEM, keyPEM := ca.clientCert(t, "admin")
	_, otherKey := ca.clientCert(t, "other")
	bundle := append([]byte("# the cluster CA, then an older one\n"), ca.PEM...)
	bundle = append(bundle, newCA(t, "old-ca").PEM...)
	encryptedKey := bytes.Replace(keyPEM, []byte("-----\n"), []byte("-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00000000000000000000000000000000\n\n"), 1)
	token := marker(t, "token")
	const server = "https://kube.example.com:6443"

	tests := []struct {
		name          string
		server        string
		caPEM         []byte
		tlsServerName string
		token         string
		cert, key     []byte
		want          string // substring of the error; "" for valid
	}{
		// Valid.
		{name: "token", server: server, caPEM: ca.PEM, token: token},
		{name: "client certificate", server: server, caPEM: ca.PEM, cert: certPEM, key: keyPEM},
		{name: "system roots", server: server, token: token},
		{name: "CA bundle with text between blocks", server: server, caPEM: bundle, token: token},
		{name: "path prefix", server: "https://rancher.example.com/k8s/clusters/c-1", token: token},
		{name: "no port", server: "https://kube.example.com", token: token},
		{name: "IPv4", server: "https://10.0.0.1:6443", token: token},
		{name: "IPv6", server: "https://[2001:db8::1]:6443", token: token},
		{name: "highest port", server: "https://kube.example.com:65535", token: token},
		{name: "tls-server-name DNS", server: "https://10.0.0.1", tlsServerName: "kubernetes.default.svc", token: token},
		{name: "tls-server-name IP", server: "https://kube.example.com", tlsServerName: "10.0.0.1", token: token},
		{name: "token of printable ASCII", server: server, token: "a!#$%&'()*+,-./:;<=>?@[]^_`{|}~z"},

		// Server URL.
		{name: "empty server", server: "", token: token, want: "server: missing"},
		{name: "http", server: "http://kube.example.com", token: token, want: "server: must be an https:// URL"},
		{name: "ftp", server: "ftp://kube.example.com", token: token, want: "server: must be an https:// URL"},
		{name: "no scheme", server: "kube.example.com", token: token, want: "server: must be an https:// URL"},
		{name: "host:port without scheme", server: "kube.example.com:6443", token: token, want: "server: not a valid URL"},
		{name: "opaque", server: "https:kube.example.com", token: token, want: "server: not a valid URL"},
		{name: "space in host", server: "https://kube example.com", token: token, want: "server: not a valid URL"},
		{name: "user", server: "https://admin@kube.example.com", token: token, want: "server: must not carry a user or password"},
		{name: "user and password", server: "https://admin:" + token + "@kube.example.com", token: token, want: "server: must not carry a user or password"},
		{name: "query", server: "https://kube.example.com/?token=" + token, token: token, want: "server: must not have a query or fragment"},
		{name: "empty query", server: "https://kube.example.com/?", token: token, want: "server: must not have a query or fragment"},
		{name: "fragment", server: "https://kube.example.com/#" + token, token: token, want: "server: must not have a query or fragment"},
		{name: "empty fragment", server: "https://kube.example.com#", token: token, want: "server: must not have a query or fragment"},
		{name: "no host", server: "https:///api", token: token, want: "server: has no host"},
		{name: "port only", server: "https://:6443", token: token, want: "server: has no host"},
		{name: "port 0", server: "https://kube.example.com:0", token: token, want: "server: has an invalid port"},
		{name: "port too high", server: "https://kube.example.com:65536", token: token, want: "server: has an invalid port"},
		{name: "port overflows", server: "https://kube.example.com:99999999999999999999", token: token, want: "server: has an invalid port"},
		{name: "port not a number", server: "https://kube.example.com:https", token: token, want: "server: not a valid URL"},
		{name: "negative port", server: "https://kube.example.com:-1", token: token, want: "server: not a valid URL"},
		{name: "too long", server: "https://kube.example.com/" + strings.Repeat("a", 2048), token: token, want: "server: longer than 2048 characters"},

		// CA and server name.
		{name: "CA not PEM", server: server, caPEM: []byte("not a certificate"), token: token, want: "certificate-authority-data: no PEM certificate found"},
		{name: "key in the CA field", server: server, caPEM: keyPEM, token: token, want: "certificate-authority-data: PEM block 1 is not a CERTIFICATE"},
		{name: "key after the CA", server: server, caPEM: append(bytes.Clone(ca.PEM), keyPEM...), token: token, want: "certificate-authority-data: PEM block 2 is not a CERTIFICATE"},
		{name: "CA block that is not X.509", server: server, caPEM: pemBlock("CERTIFICATE", []byte("garbage")), token: token, want: "certificate-authority-data: PEM block 1 is not a valid X.509 certificate"},
		{name: "tls-server-name with a space", server: server, tlsServerName: "kube example", token: token, want: "tls-server-name: must be a DNS name or an IP address"},
		{name: "tls-server-name with a port", server: server, tlsServerName: "kube.example.com:6443", token: token, want: "tls-server-name: must be a DNS name or an IP address"},
		{name: "tls-server-name with an empty label", server: server, tlsServerName: "kube..example.com", token: token, want: "tls-server-name: must be a DNS name or an IP address"},
		{name: "tls-server-name label too long", server: server, tlsServerName: strings.Repeat("k", 64) + ".example.com", token: token, want: "tls-server-name: must be a DNS name or an IP address"},

		// Credential.
		{name: "anonymous", server: server, caPEM: ca.PEM, want: "no credential (token or client certificate): anonymous access is not allowed"},
		{name: "token with a trailing newline", server: server, token: token + "\n", want: "token: must be printable ASCII without spaces or line breaks"},
		{name: "token with a space", server: server, token: "Bearer " + token, want: "token: must be printable ASCII"},
		{name: "token with a tab", server: server, token: token + "\t", want: "token: must be printable ASCII"},
		{name: "token not ASCII", server: server, token: token + "é", want: "token: must be printable ASCII"},
		{name: "token and certificate", server: server, token: token, cert: certPEM, key: keyPEM, want: "has both a token and a client certificate"},
		{name: "token and key", server: server, token: token, key: keyPEM, want: "has both a token and a client certificate"},
		{name: "certificate without key", server: server, cert: certPEM, want: "client-certificate-data without client-key-data"},
		{name: "key without certificate", server: server, key: keyPEM, want: "client-key-data without client-certificate-data"},
		{name: "certificate not PEM", server: server, cert: []byte("not a certificate"), key: keyPEM, want: "client-certificate-data: no PEM certificate found"},
		{name: "key in the certificate field", server: server, cert: keyPEM, key: keyPEM, want: "client-certificate-data: PEM block 1 is not a CERTIFICATE"},
		{name: "key not PEM", server: server, cert: certPEM, key: []byte("not a key"), want: "client-key-data: not an unencrypted PEM private key"},
		{name: "certificate in the key field", server: server, cert: certPEM, key: certPEM, want: "client-key-data: not an unencrypted PEM private key"},
		{name: "encrypted key", server: server, cert: certPEM, key: encryptedKey, want: "client-key-data: not an unencrypted PEM private key"},
		{name: "key with a second block", server: server, cert: certPEM, key: append(bytes.Clone(keyPEM), otherKey...), want: "client-key-data: not an unencrypted PEM private key"},
		{name: "key block that is not a key", server: server, cert: certPEM, key: pemBlock("PRIVATE KEY", []byte("garbage")), want: "client-key-data: not an unencrypted PEM private key"},
		{name: "mismatched pair", server: server, cert: certPEM, key: otherKey, want: "client-key-data: does not match client-certificate-data"},

		// Problems add up.
		{name: "http and anonymous", server: "http://kube.example.com", want: "connection: server: must be an https:// URL; no credential"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewConnection(tc.server, tc.caPEM, tc.tlsServerName, tc.token, tc.cert, tc.key)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("NewConnection: %v", err)
				}
				want := Connection{Server: tc.server, CAPEM: tc.caPEM, TLSServerName: tc.tlsServerName, BearerToken: tc.token, ClientCertPEM: tc.cert, ClientKeyPEM: tc.key}
				if d := cmp.Diff(want, c); d != "" {
					t.Errorf("Connection (-want +got):\n%s", d)
				}
				return
			}
			if err == nil {
				t.Fatalf("NewConnection accepted it; want %q", tc.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %q; want %q", err, tc.want)
			}
			if !cmp.Equal(c, Connection{}) {
				t.Errorf("a refused connection still returned %v", c)
			}
			assertNoSecret(t, "error", err.Error(), []byte(token), keyPEM, otherKey)
		})
	}
}

func TestKubeconfigRoundTrip(t *testing.T) {
	ca := newCA(t, "round-trip-ca")
	certPEM, keyPEM := ca.clientCert(t, "admin")
	bundle := append(append([]byte("# comment\n"), ca.PEM...), []byte("trailing text\n")...)
	type conn struct {
		server, tlsServerName, token string
		caPEM, cert, key             []byte
	}
	tests := []struct {
		name, kubeconfigName string
		c                    conn
	}{
		{"token", "prod", conn{server: "https://kube.example.com:6443", caPEM: ca.PEM, token: marker(t, "token")}},
		{"client certificate", "prod", conn{server: "https://kube.example.com:6443", caPEM: ca.PEM, cert: certPEM, key: keyPEM}},
		{"system roots", "prod", conn{server: "https://kube.example.com", token: "t"}},
		{"tls-server-name", "prod", conn{server: "https://10.0.0.1:6443", caPEM: ca.PEM, tlsServerName: "kubernetes.default.svc", token: "t"}},
		{"path and IPv6", "prod", conn{server: "https://[2001:db8::1]:6443/k8s/clusters/c-1", token: "t"}},
		{"bundle with text", "prod", conn{server: "https://kube.example.com", caPEM: bundle, token: "t"}},
		{"name with spaces and unicode", "prod cluster — ü", conn{server: "https://kube.example.com", token: "t"}},
	}
	// Tokens YAML would read as something else unless quoted.
	for _, tok := range []string{"null", "~", "true", "no", "0x1F", "1e3", "007", "-", "*alias", "&anchor", "!tag", "%x", "@x", "`x", "#x", "a:b", "{a}", "[a]", ">x", "|x", `"x"`, `'x'`, `\x`} {
		tests = append(tests, struct {
			name, kubeconfigName string
			c                    conn
		}{"token " + tok, "prod", conn{server: "https://kube.example.com", token: tok}})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewConnection(tc.c.server, tc.c.caPEM, tc.c.tlsServerName, tc.c.token, tc.c.cert, tc.c.key)
			if err != nil {
				t.Fatal(err)
			}
			out, err := c.Kubeconfig(tc.kubeconfigName)
			if err != nil {
				t.Fatalf("Kubeconfig: %v", err)
			}
			for _, context := range []string{"", tc.kubeconfigName} {
				back, err := ParseKubeconfig(out, context)
				if err != nil {
					t.Fatalf("ParseKubeconfig(context %q) of the rendered kubeconfig: %v\n%s", context, err, out)
				}
				if d := cmp.Diff(c, back); d != "" {
					t.Errorf("round trip (context %q) changed the Connection (-want +got):\n%s", context, d)
				}
			}
		})
	}
}

func TestKubeconfigRoundTripFixtures(t *testing.T) {
	for name, cases := range fixtures {
		for _, tc := range cases {
			if tc.want != "" {
				continue
			}
			data, err := os.ReadFile("testdata/" + name)
			if err != nil {
				t.Fatal(err)
			}
			c, err := ParseKubeconfig(data, tc.context)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			out, err := c.Kubeconfig("downloaded")
			if err != nil {
				t.Fatalf("%s: Kubeconfig: %v", name, err)
			}
			back, err := ParseKubeconfig(out, "")
			if err != nil {
				t.Fatalf("%s: rendered kubeconfig refused: %v", name, err)
			}
			if d := cmp.Diff(c, back); d != "" {
				t.Errorf("%s: round trip (-want +got):\n%s", name, d)
			}
		}
	}
}

func TestKubeconfigRefusesInvalid(t *testing.T) {
	token := marker(t, "token")
	good := Connection{Server: "https://kube.example.com", BearerToken: token}
	if _, err := good.Kubeconfig(""); err == nil || !errors.Is(err, ErrInvalid) {
		t.Errorf("Kubeconfig(\"\") = %v; want ErrInvalid", err)
	}
	// A Connection built by hand skips NewConnection; Kubeconfig still
	// refuses to write what ParseKubeconfig would refuse to read.
	for _, c := range []Connection{
		{Server: "http://kube.example.com", BearerToken: token},
		{Server: "https://admin:" + token + "@kube.example.com", BearerToken: token},
		{Server: "https://kube.example.com"},
		{Server: "https://kube.example.com", BearerToken: token, ClientKeyPEM: []byte("key")},
	} {
		out, err := c.Kubeconfig("prod")
		if err == nil || !errors.Is(err, ErrInvalid) || out != nil {
			t.Errorf("Kubeconfig of %v = %d bytes, %v; want ErrInvalid", c, len(out), err)
			continue
		}
		assertNoSecret(t, "error", err.Error(), []byte(token))
	}
}

func TestConnectionRedaction(t *testing.T) {
	ca := newCA(t, "redact-ca")
	certPEM, keyPEM := ca.clientCert(t, "admin")
	token := marker(t, "token")
	password := marker(t, "password")
	withToken, err := NewConnection("https://kube.example.com:6443", ca.PEM, "", token, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	withCert, err := NewConnection("https://kube.example.com:6443", ca.PEM, "", "", certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	// Built by hand, so never validated: the userinfo and query must not
	// show either.
	byHand := Connection{Server: "https://admin:" + password + "@kube.example.com:6443/?token=" + token + "#" + token, BearerToken: token, ClientCertPEM: certPEM, ClientKeyPEM: keyPEM}

	for _, tc := range []struct {
		name, credential string
		c                Connection
	}{
		{"token", "token", withToken},
		{"client certificate", "client-certificate", withCert},
		{"by hand", "token+client-certificate", byHand},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			secrets := [][]byte{[]byte(token), []byte(password), keyPEM}
			outputs := map[string]string{}
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
				outputs["fmt "+verb] = fmt.Sprintf(verb, c)
				outputs["fmt "+verb+" pointer"] = fmt.Sprintf(verb, &c)
			}
			outputs["fmt slice"] = fmt.Sprintf("%+v", []Connection{c})
			outputs["fmt map"] = fmt.Sprintf("%#v", map[string]Connection{"c": c})
			outputs["fmt struct field"] = fmt.Sprintf("%+v", struct{ Conn Connection }{c})
			outputs["fmt struct pointer field"] = fmt.Sprintf("%+v", struct{ Conn *Connection }{&c})
			outputs["fmt error"] = fmt.Errorf("register %v: failed", c).Error()
			outputs["fmt Println"] = fmt.Sprintln(c, &c)

			for _, h := range []struct {
				name string
				new  func(io.Writer) slog.Handler
			}{
				{"json", func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) }},
				{"text", func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) }},
			} {
				var buf bytes.Buffer
				l := slog.New(h.new(&buf))
				l.Info("cluster registered", "conn", c, "ptr", &c, slog.Any("any", c), slog.Group("g", "conn", c))
				outputs["slog "+h.name] = buf.String()
			}

			for what, out := range outputs {
				assertNoSecret(t, what, out, secrets...)
				if !strings.Contains(out, "kube.example.com:6443") || !strings.Contains(out, tc.credential) {
					t.Errorf("%s names neither the server nor the credential kind: %s", what, out)
				}
			}

			// The JSON handler logs a group, not a string.
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "conn", c)
			var line struct {
				Conn struct{ Server, Credential string }
			}
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line.Conn.Server != c.safeServer() || line.Conn.Credential != tc.credential {
				t.Errorf("slog JSON = %s (%v); want conn.server and conn.credential", buf.String(), err)
			}

			for what, v := range map[string]any{"value": c, "pointer": &c, "field": struct{ C Connection }{c}, "slice": []Connection{c}} {
				out, err := json.Marshal(v)
				if err == nil {
					t.Errorf("json.Marshal(%s) succeeded: %s", what, out)
					continue
				}
				assertNoSecret(t, "json.Marshal error", err.Error(), secrets...)
				assertNoSecret(t, "json.Marshal output", string(out), secrets...)
			}
		})
	}
}

func TestRESTConfig(t *testing.T) {
	ca := newCA(t, "rest-ca")
	certPEM, keyPEM := ca.clientCert(t, "admin")
	c, err := NewConnection("https://kube.example.com:6443", ca.PEM, "kubernetes.default.svc", "", certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.RESTConfig(dialer)
	got := struct {
		Host, ServerName, Token string
		CA, Cert, Key           []byte
		Insecure                bool
	}{cfg.Host, cfg.ServerName, cfg.BearerToken, cfg.CAData, cfg.CertData, cfg.KeyData, cfg.Insecure}
	want := got
	want.Host, want.ServerName, want.Token, want.CA, want.Cert, want.Key, want.Insecure = c.Server, c.TLSServerName, "", ca.PEM, certPEM, keyPEM, false
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("rest.Config (-want +got):\n%s", d)
	}
	if cfg.CAFile != "" || cfg.CertFile != "" || cfg.KeyFile != "" || cfg.BearerTokenFile != "" || cfg.ExecProvider != nil || cfg.AuthProvider != nil || cfg.Impersonate.UserName != "" {
		t.Errorf("rest.Config refers to files, plugins or impersonation: %+v", cfg)
	}
	// A stalled server cannot hold a worker, and concurrent Helm work is
	// not throttled to client-go's defaults.
	if cfg.Timeout <= 0 || cfg.QPS <= rest.DefaultQPS || cfg.Burst <= rest.DefaultBurst {
		t.Errorf("Timeout %v, QPS %v, Burst %d; want a timeout and limits above client-go's defaults", cfg.Timeout, cfg.QPS, cfg.Burst)
	}
	if cfg.Dial == nil || cfg.Proxy == nil || cfg.WrapTransport == nil {
		t.Error("rest.Config lacks its dial, proxy or transport wrapper")
	}
}

func TestPinHost(t *testing.T) {
	var sent []string
	next := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent = append(sent, r.URL.String())
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
	})
	p := pinHost{host: "kube.example.com:6443", next: next}
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://kube.example.com:6443/version", true},
		{"https://KUBE.Example.COM:6443/api", true},
		{"https://kube.example.com/version", false},
		{"https://kube.example.com:443/version", false},
		{"https://kube.example.com:6444/version", false},
		{"https://evil.example.com:6443/version", false},
		{"https://kube.example.com.evil.example:6443/version", false},
		{"http://kube.example.com:6443/version", false},
		{"https://user:pw@evil.example.com/", false},
	}
	for _, tc := range tests {
		sent = nil
		req, err := http.NewRequest(http.MethodGet, tc.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer secret-token")
		_, err = p.RoundTrip(req)
		if tc.ok {
			if err != nil || len(sent) != 1 {
				t.Errorf("%s: err %v, forwarded %d; want forwarded", tc.url, err, len(sent))
			}
			continue
		}
		if err == nil || len(sent) != 0 {
			t.Errorf("%s: err %v, forwarded %d; want refused before it is sent", tc.url, err, len(sent))
			continue
		}
		if strings.Contains(err.Error(), ":pw@") {
			t.Errorf("refusal quotes the URL's password: %v", err)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestRESTConfigRedirect: the API server redirects; the credential must
// never reach another server, not even as a TLS client certificate.
func TestRESTConfigRedirect(t *testing.T) {
	ca := newCA(t, "redirect-ca")
	certPEM, keyPEM := ca.clientCert(t, "admin")
	token := marker(t, "token")

	// other is where the redirects point: it records everything.
	var mu sync.Mutex
	var otherAuth []string
	otherCfg := ca.serverTLS(t, "127.0.0.1")
	otherCfg.ClientAuth = tls.RequestClientCert
	other := startTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		otherAuth = append(otherAuth, r.Header.Get("Authorization"))
		mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]string{"gitVersion": "v9.9.9-other"})
	}), otherCfg)

	api := &fakeAPI{version: "v1.31.4"}
	var target atomic.Pointer[string] // where /version redirects to
	srv := startTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/version" {
			api.ServeHTTP(httptest.NewRecorder(), r) // record the request
			http.Redirect(w, r, *target.Load(), http.StatusFound)
			return
		}
		if r.URL.Path == "/real-version" {
			r.URL.Path = "/version"
		}
		api.ServeHTTP(w, r)
	}), ca.serverTLS(t, "127.0.0.1"))

	for _, cred := range []struct {
		name       string
		token      string
		cert, key  []byte
		wantHeader string
	}{
		{"token", token, nil, nil, "Bearer " + token},
		{"client certificate", "", certPEM, keyPEM, ""},
	} {
		conn, err := NewConnection(srv.URL, ca.PEM, "", cred.token, cred.cert, cred.key)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name, target string
			ok           bool
		}{
			{"to another server", other.URL + "/version", false},
			{"to the API server under another name", strings.Replace(srv.URL, "https://127.0.0.1", "https://localhost", 1) + "/real-version", false},
			{"to plain http on the same host and port", strings.Replace(srv.URL, "https://", "http://", 1) + "/real-version", false},
			{"within the server", srv.URL + "/real-version", true},
		} {
			t.Run(cred.name+"/"+tc.name, func(t *testing.T) {
				target.Store(&tc.target)
				otherConns := other.conns.Load()
				before := len(api.seen())

				dc, err := discovery.NewDiscoveryClientForConfig(conn.RESTConfig(dialer))
				if err != nil {
					t.Fatal(err)
				}
				info, err := dc.ServerVersion()
				seen := api.seen()[before:]
				if len(seen) == 0 || seen[0].auth != cred.wantHeader {
					t.Fatalf("the API server saw %+v; want the request with its credential", seen)
				}
				if tc.ok {
					if err != nil || info.GitVersion != "v1.31.4" {
						t.Errorf("redirect within the server: %v, %v; want it followed", info, err)
					}
					return
				}
				if err == nil {
					t.Fatalf("redirect %s followed; got version %s", tc.name, info.GitVersion)
				}
				if !strings.Contains(err.Error(), "only the API server may be contacted") {
					t.Errorf("error = %v; want the pin's refusal", err)
				}
				if n := other.conns.Load() - otherConns; n != 0 {
					t.Errorf("the other server accepted %d connections", n)
				}
				if len(seen) != 1 {
					t.Errorf("the API server saw %d requests; want 1", len(seen))
				}
				mu.Lock()
				defer mu.Unlock()
				if len(otherAuth) != 0 {
					t.Errorf("the other server got requests, Authorization %q", otherAuth)
				}
			})
		}
	}

	// Check reports the refusal without the credential.
	to := other.URL + "/version"
	target.Store(&to)
	conn, err := NewConnection(srv.URL, ca.PEM, "", token, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := Check(t.Context(), conn.RESTConfig(dialer))
	if h.Reachability != Unreachable || !strings.Contains(h.Message, "only the API server may be contacted") {
		t.Errorf("Check of a redirecting server = %v %q; want unreachable, refused", h.Reachability, h.Message)
	}
	assertNoSecret(t, "Health.Message", h.Message, []byte(token))
}

func TestRESTConfigDial(t *testing.T) {
	ca := newCA(t, "dial-ca")
	api := &fakeAPI{version: "v1.31.4", nodes: 1}
	srv := startTLS(t, api, ca.serverTLS(t, "kube.example.com"))
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	server := fmt.Sprintf("https://kube.example.com:%d", port)
	conn, err := NewConnection(server, ca.PEM, "", marker(t, "token"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("every connection goes through dial", func(t *testing.T) {
		var mu sync.Mutex
		var dialed []string
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			mu.Lock()
			dialed = append(dialed, addr)
			mu.Unlock()
			// The name only resolves here, as an outbound policy would.
			if addr != fmt.Sprintf("kube.example.com:%d", port) {
				return nil, fmt.Errorf("unexpected address %s", addr)
			}
			return dialer(ctx, network, srv.Listener.Addr().String())
		}
		h, _ := Check(t.Context(), conn.RESTConfig(dial))
		if h.Reachability != Reachable || h.Nodes != 1 {
			t.Errorf("Check through dial = %+v; want reachable", h)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(dialed) == 0 {
			t.Error("dial never called")
		}
	})

	t.Run("nil dial refuses", func(t *testing.T) {
		before := srv.conns.Load()
		h, _ := Check(t.Context(), conn.RESTConfig(nil))
		if h.Reachability != Unreachable || !strings.Contains(h.Message, "no dialer configured") {
			t.Errorf("Check without dial = %v %q; want unreachable, no dialer", h.Reachability, h.Message)
		}
		// Not even a connection to the right address: a nil dial does
		// not fall back to an unchecked dialer.
		direct, err := NewConnection(srv.URL, ca.PEM, "kube.example.com", conn.BearerToken, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		hc, err := rest.HTTPClientFor(direct.RESTConfig(nil))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Get(srv.URL + "/version")
		if err == nil {
			_ = resp.Body.Close()
			t.Error("request without a dialer succeeded")
		}
		if n := srv.conns.Load() - before; n != 0 {
			t.Errorf("the server accepted %d connections without a dialer", n)
		}
	})
}

// TestRESTConfigIgnoresProxy: a proxy would be dialed instead of the
// server, escaping the caller's outbound policy.
func TestRESTConfigIgnoresProxy(t *testing.T) {
	ca := newCA(t, "proxy-ca")
	var proxied sync.Mutex
	proxyHits := 0
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Lock()
		proxyHits++
		proxied.Unlock()
		http.Error(w, "proxy", http.StatusBadGateway)
	}))
	t.Cleanup(proxy.Close)
	for _, k := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"} {
		t.Setenv(k, proxy.URL)
	}
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")

	api := &fakeAPI{version: "v1.31.4"}
	srv := startTLS(t, api, ca.serverTLS(t, "kube.example.com"))
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	conn, err := NewConnection(fmt.Sprintf("https://kube.example.com:%d", port), ca.PEM, "", "t", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := conn.RESTConfig(dialer)
	if cfg.Proxy == nil {
		t.Fatal("rest.Config has no Proxy func: client-go would take the environment's")
	}

	// The config's own answer, whatever the environment says.
	for _, u := range []string{conn.Server + "/version", "https://kube.example.com/", "http://kube.example.com/"} {
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p, err := cfg.Proxy(req); p != nil || err != nil {
			t.Errorf("Proxy(%s) = %v, %v; want no proxy", u, p, err)
		}
	}

	// End to end: only the server's address is dialed. (net/http reads
	// the proxy variables once per process, so this half alone could miss
	// a regression when another test ran first; the half above cannot.)
	var mu sync.Mutex
	var dialed []string
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, addr)
		mu.Unlock()
		if addr != fmt.Sprintf("kube.example.com:%d", port) {
			return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("%s is not the API server", addr)}
		}
		return dialer(ctx, network, srv.Listener.Addr().String())
	}
	if h, _ := Check(t.Context(), conn.RESTConfig(dial)); h.Reachability != Reachable {
		t.Errorf("Check with proxy variables set = %v %q; want reachable, directly", h.Reachability, h.Message)
	}
	mu.Lock()
	defer mu.Unlock()
	proxyHost := strings.TrimPrefix(proxy.URL, "http://")
	for _, a := range dialed {
		if a == proxyHost {
			t.Errorf("dialed the proxy %s", a)
		}
	}
	proxied.Lock()
	defer proxied.Unlock()
	if proxyHits != 0 {
		t.Errorf("the proxy got %d requests", proxyHits)
	}
}
