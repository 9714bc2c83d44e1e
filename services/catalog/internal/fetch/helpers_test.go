package fetch

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/pkg/outbound"
)

// policy is an outbound policy allowing the given ranges out of the
// default deny list; none gives the production defaults.
func policy(t testing.TB, allow ...string) *outbound.Policy {
	t.Helper()
	var cfg outbound.Config
	for _, a := range allow {
		p, err := outbound.ParsePrefix(a)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Allow = append(cfg.Allow, p)
	}
	p, err := outbound.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// loopback allows what httptest servers listen on.
var loopback = []string{"127.0.0.1/32"}

// newFetcher is New(o), resolving names with dns when it is not nil.
func newFetcher(t testing.TB, o Options, dns *dnsServer) *Fetcher {
	t.Helper()
	f, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if dns != nil {
		f.transports.dialer = dns.dialer()
	}
	t.Cleanup(func() {
		f.transports.mu.Lock()
		defer f.transports.mu.Unlock()
		for _, e := range f.transports.m {
			e.t.CloseIdleConnections()
		}
	})
	return f
}

// request is what a test server saw of one request.
type request struct {
	method, path, query string
	header              http.Header
	clientCert          bool // a TLS client certificate was presented
}

// server is a test server recording the requests it gets.
type server struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []request
}

// newServer starts a server answering with h; over TLS (with httptest's
// certificate, see caPEM) when useTLS, asking for (not requiring) client
// certificates.
func newServer(t testing.TB, useTLS bool, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, request{
			method: r.Method, path: r.URL.Path, query: r.URL.RawQuery, header: r.Header.Clone(),
			clientCert: r.TLS != nil && len(r.TLS.PeerCertificates) > 0,
		})
		s.mu.Unlock()
		h(w, r)
	}))
	// Handshakes the tests make fail on purpose are not news.
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	if useTLS {
		s.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

func (s *server) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

func (s *server) port() string { return mustParse(s.URL).Port() }

// caPEM is the PEM of the certificate httptest's TLS servers share.
func caPEM(s *server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
}

func mustParse(raw string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil {
		panic(err)
	}
	return u
}

// clientCert returns a fresh self-signed client certificate and its key.
func clientCert(t testing.TB) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "slipway-test-client"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// wantErr fails unless err wraps want; none of secrets may be in its message.
func wantErr(t testing.TB, err, want error, secrets ...string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want one wrapping %q", err, want)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error %q gives away %q", err, s)
		}
	}
}

// dnsServer answers A and AAAA queries for the names of its zone (and
// NXDOMAIN for others), on 127.0.0.1.
type dnsServer struct {
	pc   net.PacketConn
	zone map[string][]netip.Addr
}

func startDNS(t testing.TB, zone map[string][]string) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{pc: pc, zone: map[string][]netip.Addr{}}
	for name, addrs := range zone {
		for _, a := range addrs {
			s.zone[name] = append(s.zone[name], netip.MustParseAddr(a))
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := s.answer(buf[:n]); resp != nil {
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

// answer builds the reply to one query (RFC 1035 §4.1), nil when q is not one.
func (s *dnsServer) answer(q []byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil
	}
	var labels []string
	i := 12
	for i < len(q) && q[i] != 0 {
		n := int(q[i])
		if n&0xc0 != 0 || i+1+n > len(q) {
			return nil
		}
		labels = append(labels, strings.ToLower(string(q[i+1:i+1+n])))
		i += 1 + n
	}
	if i+5 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i+1:])
	question := q[12 : i+5]
	addrs, known := s.zone[strings.Join(labels, ".")]

	resp := binary.BigEndian.AppendUint16(nil, binary.BigEndian.Uint16(q)) // id
	flags := uint16(0x8180)                                                // response, recursion desired and available
	if !known {
		flags |= 3 // NXDOMAIN
	}
	var answers [][]byte
	for _, a := range addrs {
		if (qtype == 1 && a.Is4()) || (qtype == 28 && a.Is6()) {
			answers = append(answers, a.AsSlice())
		}
	}
	resp = binary.BigEndian.AppendUint16(resp, flags)
	resp = binary.BigEndian.AppendUint16(resp, 1) // questions
	resp = binary.BigEndian.AppendUint16(resp, uint16(len(answers)))
	resp = append(resp, 0, 0, 0, 0) // authority, additional
	resp = append(resp, question...)
	for _, a := range answers {
		resp = append(resp, 0xc0, 12) // the question's name
		resp = binary.BigEndian.AppendUint16(resp, qtype)
		resp = binary.BigEndian.AppendUint16(resp, 1)  // class IN
		resp = binary.BigEndian.AppendUint32(resp, 60) // TTL
		resp = binary.BigEndian.AppendUint16(resp, uint16(len(a)))
		resp = append(resp, a...)
	}
	return resp
}

// dialer resolves through s only.
func (s *dnsServer) dialer() *net.Dialer {
	return &net.Dialer{
		Timeout: 5 * time.Second,
		Resolver: &net.Resolver{
			PreferGo: true,
			Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "udp4", s.pc.LocalAddr().String())
			},
		},
	}
}
