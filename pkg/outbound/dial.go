package outbound

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"
)

// DialContext returns a dial function that checks the addresses it connects
// to. It resolves the host once, refuses when any resolved address is denied
// (a name answering with both a public and a loopback address is up to
// something), and dials the checked addresses as literals, in the resolver's
// order, so no second lookup can answer differently. Only tcp, tcp4 and tcp6
// are dialed: a unix socket has no address to check.
//
// d supplies timeouts, keep-alive, local address and resolver; nil means
// a 30 s connect timeout and 30 s keep-alive. The result fits
// http.Transport.DialContext and client-go's rest.Config.Dial.
func (p *Policy) DialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if d == nil {
		d = &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		lookup := map[string]string{"tcp": "ip", "tcp4": "ip4", "tcp6": "ip6"}[network]
		if lookup == "" {
			return nil, denied("network %q is not allowed (only tcp)", network)
		}
		host, portStr, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("outbound dial %s: %w", addr, err)
		}
		if host == "" {
			// net.Dial would connect to the local system.
			return nil, denied("address %q has no host", addr)
		}
		resolver := d.Resolver
		if resolver == nil {
			resolver = net.DefaultResolver
		}
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil {
			p, perr := resolver.LookupPort(ctx, network, portStr)
			if perr != nil {
				return nil, fmt.Errorf("outbound dial %s: %w", addr, perr)
			}
			port = uint64(p)
		}
		var ips []netip.Addr
		if ip, err := netip.ParseAddr(host); err == nil {
			ips = []netip.Addr{ip}
		} else if ips, err = resolver.LookupNetIP(ctx, lookup, host); err != nil {
			return nil, fmt.Errorf("outbound dial %s: %w", addr, err)
		}
		for _, ip := range ips {
			if err := p.checkIP(host, ip); err != nil {
				return nil, err
			}
		}
		var errs []error
		for i, ip := range ips {
			conn, err := dialOne(ctx, d, network, netip.AddrPortFrom(ip.Unmap(), uint16(port)).String(), len(ips)-i)
			if err == nil {
				return conn, nil
			}
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
		if len(errs) == 0 {
			return nil, fmt.Errorf("outbound dial %s: no addresses", addr)
		}
		return nil, errors.Join(errs...)
	}
}

// dialOne dials one of the remaining addresses, giving it its share of the
// time left (at least 2 s), as net.Dialer does, so a blackholed first
// address does not use up the whole timeout.
func dialOne(ctx context.Context, d *net.Dialer, network, addr string, remaining int) (net.Conn, error) {
	deadline, ok := ctx.Deadline()
	if d.Timeout > 0 {
		if t := time.Now().Add(d.Timeout); !ok || t.Before(deadline) {
			deadline, ok = t, true
		}
	}
	if ok && remaining > 1 {
		share := time.Until(deadline) / time.Duration(remaining)
		share = max(share, 2*time.Second)
		if t := time.Now().Add(share); t.Before(deadline) {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, t)
			defer cancel()
		}
	}
	return d.DialContext(ctx, network, addr)
}

// Transport returns a clone of http.DefaultTransport that dials through the
// policy. Callers may change TLS settings and limits on it; they must not
// set Proxy or DialTLSContext, which would bypass the address check.
func (p *Policy) Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// An HTTP(S)_PROXY from the environment would make the transport dial
	// the proxy, which then connects to the tenant's address unchecked.
	t.Proxy = nil
	t.DialContext = p.DialContext(nil)
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	t.TLSHandshakeTimeout = 10 * time.Second
	// Tenants' servers choose how slowly to answer; a minute is generous for
	// headers (bodies, such as chart downloads, are not limited by it).
	t.ResponseHeaderTimeout = time.Minute
	t.MaxResponseHeaderBytes = 1 << 20
	return t
}

// NoProxy is a proxy function that never proxies, for client-go's
// rest.Config.Proxy: left nil, client-go honours HTTP(S)_PROXY and the
// proxy would connect to the tenant's address unchecked.
func NoProxy(*http.Request) (*url.URL, error) { return nil, nil }
