package kube

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
)

// fakeAPI answers the three calls Check makes the way an API server does,
// and records what it was asked.
type fakeAPI struct {
	version       string // gitVersion
	versionStatus int    // non-zero: /version fails with this status
	versionBody   string // non-empty: /version answers this body as it is
	nodes         int
	nodesStatus   int             // non-zero: node lists fail with this status
	reviewStatus  int             // non-zero: access reviews fail with this status
	allowed       map[string]bool // resource -> allowed to create

	mu       sync.Mutex
	requests []seenRequest
	reviews  []authorizationv1.ResourceAttributes
}

type seenRequest struct {
	method, path      string
	query             url.Values
	auth, userAgent   string
	clientCertSubject string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	seen := seenRequest{method: r.Method, path: r.URL.Path, query: r.URL.Query(), auth: r.Header.Get("Authorization"), userAgent: r.UserAgent()}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		seen.clientCertSubject = r.TLS.PeerCertificates[0].Subject.CommonName
	}
	f.mu.Lock()
	f.requests = append(f.requests, seen)
	f.mu.Unlock()

	switch {
	case r.URL.Path == "/version":
		switch {
		case f.versionStatus != 0:
			writeStatus(w, f.versionStatus)
		case f.versionBody != "":
			w.Header().Set("Content-Type", "application/json")
			_, _ = fmt.Fprint(w, f.versionBody)
		default:
			writeJSON(w, http.StatusOK, map[string]string{"major": "1", "minor": "31", "gitVersion": f.version})
		}
	case r.URL.Path == "/api/v1/nodes" && r.Method == http.MethodGet:
		if f.nodesStatus != 0 {
			writeStatus(w, f.nodesStatus)
			return
		}
		f.listNodes(w, r)
	case r.URL.Path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" && r.Method == http.MethodPost:
		if f.reviewStatus != 0 {
			writeStatus(w, f.reviewStatus)
			return
		}
		// client-go sends built-in types as protobuf; the universal
		// deserializer reads either.
		body, _ := io.ReadAll(r.Body)
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(body, nil, nil)
		review, ok := obj.(*authorizationv1.SelfSubjectAccessReview)
		if err != nil || !ok || review.Spec.ResourceAttributes == nil {
			writeStatus(w, http.StatusBadRequest)
			return
		}
		attrs := *review.Spec.ResourceAttributes
		f.mu.Lock()
		f.reviews = append(f.reviews, attrs)
		f.mu.Unlock()
		review.TypeMeta = metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: "SelfSubjectAccessReview"}
		review.Status.Allowed = attrs.Verb == "create" && attrs.Group == "" && attrs.Namespace == "" && f.allowed[attrs.Resource]
		writeJSON(w, http.StatusCreated, review)
	default:
		writeStatus(w, http.StatusNotFound)
	}
}

// listNodes pages like the API server: at most limit items, then a
// continue token holding the offset.
func (f *fakeAPI) listNodes(w http.ResponseWriter, r *http.Request) {
	offset, _ := strconv.Atoi(r.URL.Query().Get("continue"))
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || limit <= 0 {
		limit = f.nodes
	}
	list := metav1.PartialObjectMetadataList{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadataList"}}
	for i := offset; i < f.nodes && i < offset+limit; i++ {
		list.Items = append(list.Items, metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node-%d", i)}})
	}
	if offset+limit < f.nodes {
		list.Continue = strconv.Itoa(offset + limit)
	}
	writeJSON(w, http.StatusOK, list)
}

func (f *fakeAPI) seen() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.requests...)
}

func (f *fakeAPI) seenReviews() []authorizationv1.ResourceAttributes {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]authorizationv1.ResourceAttributes(nil), f.reviews...)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeStatus(w http.ResponseWriter, code int) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Code: int32(code), Message: "fake API server says " + http.StatusText(code),
	})
}

// tlsServer serves h over TLS with cfg and counts the connections that
// carried a request. A bare TCP connect is not counted: tests of other
// packages running meanwhile probe ports for free ones, and may knock on
// this one.
type tlsServer struct {
	*httptest.Server
	conns atomic.Int64
}

func startTLS(t *testing.T, h http.Handler, cfg *tls.Config) *tlsServer {
	t.Helper()
	s := &tlsServer{Server: httptest.NewUnstartedServer(h)}
	s.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateActive {
			s.conns.Add(1)
		}
	}
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are what some tests cause
	s.TLS = cfg
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

var dialer = (&net.Dialer{}).DialContext

func TestCheck(t *testing.T) {
	ca := newCA(t, "check-ca")
	token := marker(t, "token")
	tests := []struct {
		name  string
		api   *fakeAPI
		want  Health
		perms Permissions
	}{
		{
			name:  "healthy, nodes over three pages",
			api:   &fakeAPI{version: "v1.31.4", nodes: 2*nodePage + 201, allowed: map[string]bool{"namespaces": true, "secrets": true}},
			want:  Health{Reachability: Reachable, Version: "v1.31.4", Nodes: 2*nodePage + 201},
			perms: Permissions{CreateNamespaces: true, CreateSecrets: true},
		},
		{
			name:  "no nodes, secrets only",
			api:   &fakeAPI{version: "v1.30.0-gke.1", allowed: map[string]bool{"secrets": true}},
			want:  Health{Reachability: Reachable, Version: "v1.30.0-gke.1"},
			perms: Permissions{CreateSecrets: true},
		},
		{
			name:  "nodes forbidden",
			api:   &fakeAPI{version: "v1.31.4", nodes: 3, nodesStatus: http.StatusForbidden, allowed: map[string]bool{"namespaces": true}},
			want:  Health{Reachability: Reachable, Version: "v1.31.4", Message: "not allowed to list nodes"},
			perms: Permissions{CreateNamespaces: true},
		},
		{
			name: "node list fails",
			api:  &fakeAPI{version: "v1.31.4", nodes: 3, nodesStatus: http.StatusInternalServerError},
			want: Health{Reachability: Reachable, Version: "v1.31.4", Message: "counting nodes failed: unexpected response (HTTP 500)"},
		},
		{
			name: "access reviews fail",
			api:  &fakeAPI{version: "v1.31.4", nodes: 2, reviewStatus: http.StatusNotFound, allowed: map[string]bool{"namespaces": true, "secrets": true}},
			want: Health{Reachability: Reachable, Version: "v1.31.4", Nodes: 2, Message: "checking permissions failed: unexpected response (HTTP 404)"},
		},
		{
			name: "token rejected",
			api:  &fakeAPI{versionStatus: http.StatusUnauthorized},
			want: Health{Reachability: Unauthorized, Message: "credentials rejected (401)"},
		},
		{
			name: "token forbidden",
			api:  &fakeAPI{versionStatus: http.StatusForbidden},
			want: Health{Reachability: Unauthorized, Message: "credentials rejected (403)"},
		},
		{
			name: "no version endpoint",
			api:  &fakeAPI{versionStatus: http.StatusNotFound},
			want: Health{Reachability: Unreachable, Message: "unexpected response (HTTP 404)"},
		},
		{
			name: "empty version",
			api:  &fakeAPI{versionBody: `{}`},
			want: Health{Reachability: Unreachable, Message: "not a Kubernetes API server (no version)"},
		},
		{
			name: "version is not JSON",
			api:  &fakeAPI{versionBody: `<html>` + token + `</html>`},
			want: Health{Reachability: Unreachable, Message: "not a Kubernetes API server (unreadable version)"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := tc.api
			srv := startTLS(t, api, ca.serverTLS(t, "127.0.0.1"))
			conn, err := NewConnection(srv.URL, ca.PEM, "", token, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			before := time.Now()
			h, p := Check(t.Context(), conn.RESTConfig(dialer))
			if h.CheckedAt.Before(before) || h.CheckedAt.After(time.Now()) {
				t.Errorf("CheckedAt = %v; want the time of the check", h.CheckedAt)
			}
			h.CheckedAt = time.Time{}
			if d := cmp.Diff(tc.want, h); d != "" {
				t.Errorf("Health (-want +got):\n%s", d)
			}
			if p != tc.perms {
				t.Errorf("Permissions = %+v; want %+v", p, tc.perms)
			}
			assertNoSecret(t, "Health.Message", h.Message, []byte(token))

			for _, r := range api.seen() {
				if r.auth != "Bearer "+token {
					t.Errorf("%s %s sent Authorization %q; want the bearer token", r.method, r.path, r.auth)
				}
				if !strings.HasPrefix(r.userAgent, userAgent) {
					t.Errorf("%s %s sent User-Agent %q", r.method, r.path, r.userAgent)
				}
			}
			if tc.want.Reachability != Reachable {
				return
			}
			// Nodes are counted page by page, metadata only.
			var pages int
			for _, r := range api.seen() {
				if r.path == "/api/v1/nodes" {
					pages++
					if r.query.Get("limit") != strconv.Itoa(nodePage) {
						t.Errorf("node list with limit %q; want %d", r.query.Get("limit"), nodePage)
					}
				}
			}
			if want := max(1, (tc.api.nodes+nodePage-1)/nodePage); tc.api.nodesStatus == 0 && pages != want {
				t.Errorf("listed nodes in %d pages; want %d", pages, want)
			}
			// Exactly the two reviews Helm needs: create namespaces
			// cluster-wide, create secrets in every namespace.
			if tc.api.reviewStatus == 0 {
				got := map[string]authorizationv1.ResourceAttributes{}
				reviews := api.seenReviews()
				for _, a := range reviews {
					got[a.Resource] = a
				}
				want := map[string]authorizationv1.ResourceAttributes{
					"namespaces": {Verb: "create", Resource: "namespaces"},
					"secrets":    {Verb: "create", Resource: "secrets"},
				}
				if d := cmp.Diff(want, got); d != "" || len(reviews) != 2 {
					t.Errorf("access reviews (-want +got):\n%s", d)
				}
			}
		})
	}
}

func TestCheckClientCertificate(t *testing.T) {
	ca := newCA(t, "check-ca")
	clientCA := newCA(t, "client-ca")
	certPEM, keyPEM := clientCA.clientCert(t, "cert-admin")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(clientCA.PEM)
	cfg := ca.serverTLS(t, "127.0.0.1")
	cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, pool
	api := &fakeAPI{version: "v1.31.4", nodes: 1}
	srv := startTLS(t, api, cfg)

	conn, err := NewConnection(srv.URL, ca.PEM, "", "", certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := Check(t.Context(), conn.RESTConfig(dialer))
	if h.Reachability != Reachable || h.Nodes != 1 {
		t.Errorf("Check = %+v; want reachable with 1 node", h)
	}
	for _, r := range api.seen() {
		if r.clientCertSubject != "cert-admin" || r.auth != "" {
			t.Errorf("%s %s: client certificate %q, Authorization %q; want the certificate only", r.method, r.path, r.clientCertSubject, r.auth)
		}
	}

	// A certificate the server does not trust: the handshake fails.
	otherCert, otherKey := newCA(t, "other-client-ca").clientCert(t, "intruder")
	conn, err = NewConnection(srv.URL, ca.PEM, "", "", otherCert, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	h, _ = Check(t.Context(), conn.RESTConfig(dialer))
	if want := "TLS handshake rejected by the server: tls: "; h.Reachability != Unreachable || !strings.HasPrefix(h.Message, want) {
		t.Errorf("Check with an untrusted client certificate = %v %q; want unreachable, %q...", h.Reachability, h.Message, want)
	}
	assertNoSecret(t, "Health.Message", h.Message, otherKey)
}

// TestCheckTLSServerName: the server's certificate names only an internal
// DNS name, reached by IP address.
func TestCheckTLSServerName(t *testing.T) {
	ca := newCA(t, "check-ca")
	srv := startTLS(t, &fakeAPI{version: "v1.31.4"}, ca.serverTLS(t, "kube.internal"))
	token := marker(t, "token")

	for server, want := range map[string]string{
		srv.URL: "x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs",
		strings.Replace(srv.URL, "127.0.0.1", "localhost", 1): "x509: certificate is valid for kube.internal, not localhost",
	} {
		conn, err := NewConnection(server, ca.PEM, "", token, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := Check(t.Context(), conn.RESTConfig(dialer))
		if h.Reachability != Unreachable || h.Message != want {
			t.Errorf("%s without tls-server-name: %v %q; want unreachable, %q", server, h.Reachability, h.Message, want)
		}
	}

	conn, err := NewConnection(srv.URL, ca.PEM, "kube.internal", token, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := Check(t.Context(), conn.RESTConfig(dialer)); h.Reachability != Reachable {
		t.Errorf("with tls-server-name kube.internal: %+v; want reachable", h)
	}
}

// TestCheckUnreachable covers the failures that happen before an API
// server answers; each gets a short message and Unreachable.
func TestCheckUnreachable(t *testing.T) {
	ca := newCA(t, "check-ca")
	token := marker(t, "token")
	api := &fakeAPI{version: "v1.31.4"}
	good := startTLS(t, api, ca.serverTLS(t, "127.0.0.1"))

	expired := ca.serverCert(t, &x509.Certificate{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)}, "127.0.0.1")
	expiredSrv := startTLS(t, api, &tls.Config{Certificates: []tls.Certificate{expired}})

	plain := httptest.NewServer(api)
	t.Cleanup(plain.Close)

	// A port that was just closed refuses connections.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	silent := silentServer(t)

	cancelled, cancel := context.WithCancel(t.Context())
	cancel()

	tests := []struct {
		name    string
		server  string
		caPEM   []byte
		dial    func(ctx context.Context, network, addr string) (net.Conn, error)
		timeout time.Duration
		ctx     context.Context
		want    string
	}{
		{name: "connection refused", server: "https://" + closedAddr, caPEM: ca.PEM, want: "connection refused"},
		{name: "never answers", server: "https://" + silent, caPEM: ca.PEM, timeout: 2 * time.Second, want: "timed out"},
		{name: "cancelled", server: good.URL, caPEM: ca.PEM, ctx: cancelled, want: "check cancelled"},
		{name: "CA does not sign the server", server: good.URL, caPEM: newCA(t, "other-ca").PEM, want: "x509: certificate signed by unknown authority"},
		{name: "system roots do not sign the server", server: good.URL, want: "x509: certificate signed by unknown authority"},
		{name: "expired certificate", server: expiredSrv.URL, caPEM: ca.PEM, want: "x509: certificate has expired or is not yet valid"},
		{name: "plain HTTP", server: strings.Replace(plain.URL, "http://", "https://", 1), caPEM: ca.PEM, want: "server does not speak TLS"},
		{
			name: "no such host", server: "https://kube.invalid:6443", caPEM: ca.PEM,
			dial: func(_ context.Context, network, addr string) (net.Conn, error) {
				return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: "kube.invalid", IsNotFound: true}}
			},
			want: "DNS: no such host",
		},
		{
			name: "outbound policy refuses", server: "https://169.254.169.254", caPEM: ca.PEM,
			dial: func(_ context.Context, network, addr string) (net.Conn, error) {
				return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("address 169.254.169.254 is link-local: not allowed")}
			},
			want: "connection failed: address 169.254.169.254 is link-local: not allowed",
		},
		{
			// Should a dial error ever quote the credential, Check
			// scrubs it from the message.
			name: "message quoting the token", server: good.URL, caPEM: ca.PEM,
			dial: func(context.Context, string, string) (net.Conn, error) {
				return nil, errors.New("policy: refused request with " + token)
			},
			want: "[redacted]",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := NewConnection(tc.server, tc.caPEM, "", token, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			dial := tc.dial
			if dial == nil {
				dial = dialer
			}
			ctx := tc.ctx
			if ctx == nil {
				ctx = t.Context()
			}
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			h, p := Check(ctx, conn.RESTConfig(dial))
			if h.Reachability != Unreachable || !strings.Contains(h.Message, tc.want) {
				t.Errorf("Check = %v %q; want unreachable, %q", h.Reachability, h.Message, tc.want)
			}
			if h.Version != "" || h.Nodes != 0 || p != (Permissions{}) {
				t.Errorf("Check of an unreachable server = %+v, %+v; want nothing found", h, p)
			}
			if len(h.Message) > 300 || strings.Contains(h.Message, "\n") {
				t.Errorf("message is not one short line: %q", h.Message)
			}
			assertNoSecret(t, "Health.Message", h.Message, []byte(token))
		})
	}
}

// silentServer accepts connections and never writes a byte.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().String()
}

func TestCheckUnusableConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  *rest.Config
		want string
	}{
		{"nil config", nil, "no client configuration"},
		{"CA data that is not PEM", &rest.Config{Host: "https://kube.example.com", TLSClientConfig: rest.TLSClientConfig{CAData: []byte("junk")}}, "client configuration not usable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, p := Check(t.Context(), tc.cfg)
			if h.Reachability != Unknown || h.Message != tc.want || p != (Permissions{}) {
				t.Errorf("Check = %+v, %+v; want unknown, %q", h, p, tc.want)
			}
			if h.CheckedAt.IsZero() {
				t.Error("CheckedAt not set")
			}
		})
	}
}

func TestReachabilityString(t *testing.T) {
	for r, want := range map[Reachability]string{Unknown: "unknown", Reachable: "reachable", Unreachable: "unreachable", Unauthorized: "unauthorized", Reachability(42): "unknown"} {
		if got := r.String(); got != want {
			t.Errorf("Reachability(%d).String() = %q; want %q", int(r), got, want)
		}
	}
}
