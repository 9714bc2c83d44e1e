package fetch

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/slipwayhq/slipway/pkg/outbound"
)

// maxTransports bounds the transports kept; the least recently used one is
// dropped (its idle connections closed) beyond it. Every org with its own CA
// or client certificate has one.
const maxTransports = 64

// transportCache keeps one policy transport per (CA, client certificate).
type transportCache struct {
	policy *outbound.Policy
	// dialer, when set, is given to the policy's DialContext; tests set it
	// to resolve names with their own DNS server.
	dialer *net.Dialer

	mu   sync.Mutex
	m    map[[sha256.Size]byte]*cachedTransport
	tick uint64
}

type cachedTransport struct {
	t    *http.Transport
	used uint64
}

func newTransportCache(p *outbound.Policy, d *net.Dialer) *transportCache {
	return &transportCache{policy: p, dialer: d, m: map[[sha256.Size]byte]*cachedTransport{}}
}

// get returns the transport trusting the system's roots and ca, and
// presenting cert and key when both are set.
func (c *transportCache) get(ca, cert, key []byte) (*http.Transport, error) {
	h := sha256.New()
	for _, b := range [][]byte{ca, cert, key} {
		_ = binary.Write(h, binary.BigEndian, uint64(len(b)))
		h.Write(b)
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])

	c.mu.Lock()
	defer c.mu.Unlock()
	c.tick++
	if e, ok := c.m[k]; ok {
		e.used = c.tick
		return e.t, nil
	}
	t, err := c.build(ca, cert, key)
	if err != nil {
		return nil, err
	}
	if len(c.m) >= maxTransports {
		var oldest [sha256.Size]byte
		var min uint64 = ^uint64(0)
		for k, e := range c.m {
			if e.used < min {
				oldest, min = k, e.used
			}
		}
		c.m[oldest].t.CloseIdleConnections()
		delete(c.m, oldest)
	}
	c.m[k] = &cachedTransport{t: t, used: c.tick}
	return t, nil
}

func (c *transportCache) build(ca, cert, key []byte) (*http.Transport, error) {
	t := c.policy.Transport()
	if c.dialer != nil {
		t.DialContext = c.policy.DialContext(c.dialer)
	}
	if len(ca) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(ca) {
			return nil, fmt.Errorf("%w: the repository's CA holds no PEM certificate", ErrInvalidAuth)
		}
		t.TLSClientConfig.RootCAs = pool
	}
	if len(cert) > 0 || len(key) > 0 {
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			// tls's messages describe the PEM blocks, never their contents.
			return nil, fmt.Errorf("%w: the client certificate and key do not load: %v", ErrInvalidAuth, err)
		}
		t.TLSClientConfig.Certificates = []tls.Certificate{pair}
	}
	return t, nil
}

// roundTripper is the transport for a repository at origin with auth's CA
// and client certificate, bounding each request by the timeout. The client
// certificate is presented only on connections to origin: requests (and
// redirects) elsewhere go through a transport that has none, so a
// redirect can neither carry it away nor be refused for lack of it.
func (f *Fetcher) roundTripper(at *url.URL, auth *Auth) (http.RoundTripper, error) {
	var ca, cert, key []byte
	if auth != nil {
		ca, cert, key = auth.CAPEM, auth.ClientCertPEM, auth.ClientKeyPEM
	}
	plain, err := f.transports.get(ca, nil, nil)
	if err != nil {
		return nil, err
	}
	var rt http.RoundTripper = plain
	if len(cert) > 0 || len(key) > 0 {
		own, err := f.transports.get(ca, cert, key)
		if err != nil {
			return nil, err
		}
		rt = &originRouter{origin: origin(at), own: own, others: plain}
	}
	return &hostCheckRT{f: f, rt: &timeoutRT{rt: rt, d: f.timeout}}, nil
}

// hostCheckRT applies CheckURL's host rules (numeric IPv4 forms,
// localhost) to every request, redirects and OCI token realms included,
// which the policy's own check does not.
type hostCheckRT struct {
	f  *Fetcher
	rt http.RoundTripper
}

func (h *hostCheckRT) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := h.f.checkHost(req.URL.Hostname()); err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	return h.rt.RoundTrip(req)
}

// originRouter sends requests for origin through own, others through others.
type originRouter struct {
	origin      string
	own, others http.RoundTripper
}

func (r *originRouter) RoundTrip(req *http.Request) (*http.Response, error) {
	if origin(req.URL) == r.origin {
		return r.own.RoundTrip(req)
	}
	return r.others.RoundTrip(req)
}

// timeoutRT bounds each request, its body included, by d.
type timeoutRT struct {
	rt http.RoundTripper
	d  time.Duration
}

func (t *timeoutRT) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), t.d)
	resp, err := t.rt.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// limitKey is the context key of a request's body limit.
type limitKey struct{}

// withLimit makes requests sent with ctx through a cappedRT refuse bodies
// over n bytes.
func withLimit(ctx context.Context, n int64) context.Context {
	return context.WithValue(ctx, limitKey{}, n)
}

// cappedRT refuses response bodies over the request context's limit
// (withLimit; def without one): by Content-Length before reading, and by
// count while reading, never reading past the limit plus one byte. It is
// for clients that read bodies themselves (go-containerregistry).
type cappedRT struct {
	rt  http.RoundTripper
	def int64
}

func (c *cappedRT) RoundTrip(req *http.Request) (*http.Response, error) {
	limit, ok := req.Context().Value(limitKey{}).(int64)
	if !ok {
		limit = c.def
	}
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > limit {
		_ = resp.Body.Close()
		return nil, tooLarge("an answer", req.URL.Host, limit)
	}
	resp.Body = &cappedBody{ReadCloser: resp.Body, r: capped(resp.Body, "an answer", req.URL.Host, limit)}
	return resp, nil
}

type cappedBody struct {
	io.ReadCloser
	r io.Reader
}

func (b *cappedBody) Read(p []byte) (int, error) { return b.r.Read(p) }

// capped reads r and fails with ErrTooLarge once it has more than limit
// bytes, reading at most limit+1.
func capped(r io.Reader, what, host string, limit int64) io.Reader {
	return &cappedReader{r: io.LimitReader(r, limit+1), what: what, host: host, limit: limit}
}

type cappedReader struct {
	r          io.Reader
	n, limit   int64
	what, host string
}

func (c *cappedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.limit {
		return 0, tooLarge(c.what, c.host, c.limit)
	}
	return n, err
}

// tooLargeError is ErrTooLarge, saying what was too large.
type tooLargeError struct {
	what, host string
	limit      int64
}

func tooLarge(what, host string, limit int64) error {
	return &tooLargeError{what: what, host: host, limit: limit}
}

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("%v: %s from %s is over %d bytes", ErrTooLarge, e.what, e.host, e.limit)
}

func (e *tooLargeError) Unwrap() error { return ErrTooLarge }
