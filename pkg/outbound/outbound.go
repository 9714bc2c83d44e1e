// Package outbound is the one policy for every connection a Slipway service
// opens on behalf of an organization: cluster API servers, container
// registries and chart repositories. Tenants choose those URLs, so without a
// policy a tenant could make Slipway call its own admin ports, another
// service on localhost or the cloud metadata endpoint (SSRF).
//
// The policy has four parts:
//
//   - Schemes: CheckURL accepts only the schemes the caller names (https when
//     none are named), requires a host and refuses URLs carrying credentials
//     (user:password@), which would otherwise be sent to whatever host the
//     URL names and end up in logs.
//   - Addresses: a deny-list of ranges ([DefaultDeny]: loopback, link-local
//     including 169.254.169.254, unspecified, multicast, broadcast and known
//     cloud metadata addresses), with exceptions carved out by an allow-list.
//     The local dev environment runs everything on 127.0.0.1 and needs
//     --outbound-allow-cidrs=127.0.0.0/8,::1/128. IPv4-mapped IPv6 addresses
//     (::ffff:127.0.0.1) are checked as the IPv4 address they are. Private
//     ranges (10/8, 172.16/12, 192.168/16, fc00::/7) are not denied by
//     default because registered clusters often live there; deny them with
//     --outbound-deny-cidrs=default,10.0.0.0/8,... where that is wrong.
//   - DNS rebinding: checking the URL is not enough, because a name can
//     resolve to a public address when checked and to 127.0.0.1 when dialed.
//     DialContext resolves the name once, refuses if any address is denied
//     and dials the checked address itself. Everything that connects must
//     dial through it: Transport does, and client-go takes it as rest.Config.Dial
//     (set rest.Config.Proxy to NoProxy too).
//   - Redirects and credentials: Client re-checks every request, including
//     each redirect, and strips Authorization, Cookie and Proxy-Authorization
//     as soon as a redirect leaves the origin (scheme, host and port; net/http
//     would keep them for subdomains and other ports). BindCredentials applies
//     credentials per request, only to the origin they belong to, so a
//     redirect can never carry them elsewhere; use it for credentials in
//     custom headers, which net/http would copy to any host.
//
// TLS client certificates are sent during the handshake to whatever host is
// dialed and cannot be stripped per request: a transport holding client
// certificates must only be used through OriginClient, which refuses every
// request, redirects included, that leaves the origin.
//
// Every refusal wraps ErrDenied and says what was refused and why. Messages
// name the scheme, host and address, never the userinfo, path or query of a
// URL. net/http wraps errors from Client in *url.Error, which carries the
// request URL with its query: pass them through RedactError before logging.
package outbound

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// ErrDenied is wrapped by every refusal of the policy.
var ErrDenied = errors.New("outbound policy: refused")

type deniedError struct{ msg string }

func (e *deniedError) Error() string { return "outbound policy: " + e.msg }
func (e *deniedError) Unwrap() error { return ErrDenied }

func denied(format string, args ...any) error {
	return &deniedError{msg: fmt.Sprintf(format, args...)}
}

// DefaultDeny returns the ranges denied when Config.Deny is empty.
func DefaultDeny() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"),    // loopback: our own services and admin ports
		netip.MustParsePrefix("::1/128"),        // loopback
		netip.MustParsePrefix("169.254.0.0/16"), // link-local: cloud metadata at 169.254.169.254
		netip.MustParsePrefix("fe80::/10"),      // link-local
		netip.MustParsePrefix("0.0.0.0/8"),      // "this host": dialing 0.0.0.0 reaches loopback
		netip.MustParsePrefix("::/128"),         // unspecified: same
		netip.MustParsePrefix("224.0.0.0/4"),    // multicast
		netip.MustParsePrefix("ff00::/8"),       // multicast
		netip.MustParsePrefix("255.255.255.255/32"),
		netip.MustParsePrefix("fd00:ec2::254/128"),  // AWS metadata over IPv6 (a ULA, not link-local)
		netip.MustParsePrefix("100.100.100.200/32"), // Alibaba Cloud metadata (in shared CGNAT space)
	}
}

// Config is the address policy. The zero value denies DefaultDeny().
type Config struct {
	// Deny lists ranges never dialed; DefaultDeny() when empty, so an empty
	// list never means "deny nothing" (allow 0.0.0.0/0 and ::/0 for that).
	Deny []netip.Prefix
	// Allow carves exceptions out of Deny: an address is refused when it is
	// in some Deny range and in no Allow range. Allowing an address that no
	// Deny range covers changes nothing.
	Allow []netip.Prefix
}

// RegisterFlags adds --outbound-deny-cidrs and --outbound-allow-cidrs to fs.
// Both take comma-separated CIDR ranges or single addresses and may be
// repeated. --outbound-deny-cidrs replaces the default list; the word
// "default" in it stands for DefaultDeny(), so adding a range keeps the
// defaults: --outbound-deny-cidrs=default,10.0.0.0/8.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	var defaults []string
	for _, p := range DefaultDeny() {
		defaults = append(defaults, p.String())
	}
	fs.Func("outbound-deny-cidrs", "comma-separated `ranges` Slipway never connects to for tenants' URLs; replaces the default list, in which \"default\" stands for "+strings.Join(defaults, ","), prefixFlag(&c.Deny))
	fs.Func("outbound-allow-cidrs", "comma-separated `ranges` exempt from --outbound-deny-cidrs, e.g. 127.0.0.0/8,::1/128 for the local dev environment", prefixFlag(&c.Allow))
}

// prefixFlag parses a flag's value into *dst; the first use replaces what
// *dst held, further uses add to it.
func prefixFlag(dst *[]netip.Prefix) func(string) error {
	set := false
	return func(v string) error {
		var got []netip.Prefix
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			switch {
			case s == "":
				continue
			case s == "default":
				got = append(got, DefaultDeny()...)
				continue
			}
			p, err := ParsePrefix(s)
			if err != nil {
				return err
			}
			got = append(got, p)
		}
		if len(got) == 0 {
			return errors.New("no ranges given (to dial every address use --outbound-allow-cidrs=0.0.0.0/0,::/0)")
		}
		if !set {
			*dst, set = nil, true
		}
		*dst = append(*dst, got...)
		return nil
	}
}

// ParsePrefix parses a CIDR range or a single address (a /32 or /128). It
// refuses a range with bits set past its length: 192.168.1.0/16 is more
// likely a typo than a wish for 192.168.0.0/16.
func ParsePrefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR range like 10.0.0.0/8 or fd00::/8", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has bits set past its length: write %s", s, p.Masked())
	}
	return p, nil
}

// Policy checks outbound URLs and addresses. It is safe for concurrent use.
type Policy struct {
	deny, allow []netip.Prefix
}

// New returns the policy of cfg.
func New(cfg Config) (*Policy, error) {
	deny := cfg.Deny
	if len(deny) == 0 {
		deny = DefaultDeny()
	}
	p := &Policy{}
	for _, set := range []struct {
		name string
		in   []netip.Prefix
		out  *[]netip.Prefix
	}{{"deny", deny, &p.deny}, {"allow", cfg.Allow, &p.allow}} {
		for _, r := range set.in {
			if !r.IsValid() {
				return nil, fmt.Errorf("outbound %s range %v is not valid", set.name, r)
			}
			*set.out = append(*set.out, normalize(r))
		}
	}
	return p, nil
}

// normalize turns ::ffff:a.b.c.d/n into a.b.c.d/(n-96), since addresses are
// unmapped before they are checked and a mapped range would match nothing.
func normalize(r netip.Prefix) netip.Prefix {
	if a := r.Addr(); a.Is4In6() && r.Bits() >= 96 {
		r = netip.PrefixFrom(a.Unmap(), r.Bits()-96)
	}
	return r.Masked()
}

// CheckIP returns an error wrapping ErrDenied when ip is in a denied range
// and in no allowed one.
func (p *Policy) CheckIP(ip netip.Addr) error { return p.checkIP("", ip) }

func (p *Policy) checkIP(host string, ip netip.Addr) error {
	what := ip.String()
	if host != "" && host != what {
		what += " (host " + host + ")"
	}
	if !ip.IsValid() {
		return denied("invalid address (host %s)", host)
	}
	// Zones would make Prefix.Contains false for every range, and a mapped
	// address is dialed as the IPv4 address it carries.
	a := ip.WithZone("").Unmap()
	i := slices.IndexFunc(p.deny, func(r netip.Prefix) bool { return r.Contains(a) })
	if i < 0 || slices.ContainsFunc(p.allow, func(r netip.Prefix) bool { return r.Contains(a) }) {
		return nil
	}
	return denied("%s is in denied range %s; allow it with --outbound-allow-cidrs", what, p.deny[i])
}

// CheckURL parses raw and checks it: the scheme is one of schemes (https
// when none are given), there is a host, there are no credentials in it,
// and a literal IP host is not denied. Names are checked when dialed, by
// DialContext: checking their addresses now would prove nothing.
func (p *Policy) CheckURL(raw string, schemes ...string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL; its cause quotes at most the
		// authority, which holds no secret unless there is userinfo.
		var ue *url.Error
		if strings.Contains(raw, "@") || !errors.As(err, &ue) {
			return nil, denied("URL does not parse (details withheld: it may hold credentials)")
		}
		return nil, denied("URL does not parse: %v", ue.Err)
	}
	if err := p.checkURL(u, schemes); err != nil {
		return nil, err
	}
	return u, nil
}

func (p *Policy) checkURL(u *url.URL, schemes []string) error {
	if len(schemes) == 0 {
		schemes = []string{"https"}
	}
	if !slices.ContainsFunc(schemes, func(s string) bool { return strings.EqualFold(s, u.Scheme) }) {
		return denied("scheme %q is not allowed here (allowed: %s)", u.Scheme, strings.Join(schemes, ", "))
	}
	host := u.Hostname()
	if host == "" {
		return denied("URL has no host")
	}
	if u.User != nil {
		return denied("URL for host %s carries credentials; configure them as a credential instead", host)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return p.checkIP(host, ip)
	}
	return nil
}
