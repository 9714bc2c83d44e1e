package outbound

import (
	"errors"
	"flag"
	"io"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// devConfig is what the local dev environment passes: everything there
// listens on loopback.
var devConfig = Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}

func mustNew(t testing.TB, cfg Config) *Policy {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

// wantDenied fails unless err is a refusal whose message contains want and
// none of secrets.
func wantDenied(t *testing.T, err error, want string, secrets ...string) {
	t.Helper()
	if !errors.Is(err, ErrDenied) {
		t.Fatalf("err = %v, want a refusal wrapping ErrDenied", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("err = %q, want it to contain %q", err, want)
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("err = %q gives away %q", err, s)
		}
	}
}

func TestCheckIP(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ip   string
		want string // substring of the refusal; "" means allowed
	}{
		{name: "loopback", ip: "127.0.0.1", want: "127.0.0.1 is in denied range 127.0.0.0/8; allow it with --outbound-allow-cidrs"},
		{name: "loopback elsewhere in 127/8", ip: "127.1.2.3", want: "127.0.0.0/8"},
		{name: "ipv6 loopback", ip: "::1", want: "denied range ::1/128"},
		{name: "cloud metadata", ip: "169.254.169.254", want: "denied range 169.254.0.0/16"},
		{name: "aws metadata over ipv6", ip: "fd00:ec2::254", want: "denied range fd00:ec2::254/128"},
		{name: "ipv4-mapped loopback", ip: "::ffff:127.0.0.1", want: "::ffff:127.0.0.1 is in denied range 127.0.0.0/8"},
		{name: "ipv4-mapped metadata", ip: "::ffff:169.254.169.254", want: "169.254.0.0/16"},
		{name: "unspecified", ip: "0.0.0.0", want: "denied range 0.0.0.0/8"},
		{name: "ipv6 unspecified", ip: "::", want: "denied range ::/128"},
		{name: "link-local with zone", ip: "fe80::1%eth0", want: "denied range fe80::/10"},
		{name: "multicast", ip: "224.0.0.251", want: "224.0.0.0/4"},
		{name: "ipv6 multicast", ip: "ff02::1", want: "ff00::/8"},
		{name: "broadcast", ip: "255.255.255.255", want: "255.255.255.255/32"},
		{name: "public", ip: "93.184.215.14"},
		{name: "private is not denied by default", ip: "10.1.2.3"},
		{name: "public ipv6", ip: "2606:4700::1111"},
		{name: "allow carve-out", cfg: devConfig, ip: "127.0.0.1"},
		{name: "allow carve-out, mapped", cfg: devConfig, ip: "::ffff:127.0.0.1"},
		{name: "allow carve-out, ipv6", cfg: devConfig, ip: "::1"},
		{name: "allow leaves the rest denied", cfg: devConfig, ip: "169.254.169.254", want: "169.254.0.0/16"},
		{
			name: "deny replaces the defaults",
			cfg:  Config{Deny: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
			ip:   "127.0.0.1",
		},
		{
			name: "custom deny",
			cfg:  Config{Deny: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
			ip:   "10.9.9.9", want: "10.9.9.9 is in denied range 10.0.0.0/8",
		},
		{
			name: "mapped deny range applies to ipv4",
			cfg:  Config{Deny: []netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")}},
			ip:   "10.9.9.9", want: "denied range 10.0.0.0/8",
		},
		{
			name: "narrower allow inside a deny",
			cfg:  Config{Deny: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Allow: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}},
			ip:   "10.1.2.3",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := mustNew(t, tc.cfg).CheckIP(netip.MustParseAddr(tc.ip))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckIP(%s) = %v, want nil", tc.ip, err)
				}
				return
			}
			wantDenied(t, err, tc.want)
		})
	}
	t.Run("invalid address", func(t *testing.T) {
		wantDenied(t, mustNew(t, Config{}).CheckIP(netip.Addr{}), "invalid address")
	})
}

func TestCheckURL(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		schemes []string
		want    string   // substring of the refusal; "" means accepted
		secrets []string // must not appear in the refusal
	}{
		{name: "https by default", raw: "https://charts.example.com/index.yaml"},
		{name: "scheme case", raw: "HTTPS://charts.example.com/"},
		{name: "named schemes", raw: "http://charts.example.com/", schemes: []string{"http", "https"}},
		{name: "names are checked when dialed", raw: "https://localhost:6443/"},
		{name: "public literal ip", raw: "https://93.184.215.14/"},
		{name: "http not allowed by default", raw: "http://charts.example.com/", want: `scheme "http" is not allowed here (allowed: https)`},
		{name: "scheme not named", raw: "oci://registry.example.com/charts", schemes: []string{"https"}, want: `scheme "oci"`},
		{name: "file", raw: "file:///etc/passwd", schemes: []string{"https", "file"}, want: "no host"},
		{name: "javascript", raw: "javascript:alert(1)", want: `scheme "javascript"`},
		{name: "no scheme", raw: "charts.example.com/index.yaml", want: `scheme ""`},
		{name: "no host", raw: "https:///index.yaml", want: "no host"},
		{name: "opaque", raw: "https:charts.example.com", want: "no host"},
		{name: "empty", raw: "", want: `scheme ""`},
		{name: "user and password", raw: "https://admin:hunter22@charts.example.com/", want: "URL for host charts.example.com carries credentials", secrets: []string{"hunter22", "admin"}},
		{name: "user only", raw: "https://tok3n@charts.example.com/", want: "carries credentials", secrets: []string{"tok3n"}},
		{name: "loopback literal", raw: "https://127.0.0.1:6443/?token=s3cret", want: "127.0.0.1 is in denied range 127.0.0.0/8", secrets: []string{"s3cret"}},
		{name: "ipv6 loopback literal", raw: "https://[::1]/", want: "::1/128"},
		{name: "metadata literal", raw: "https://169.254.169.254/latest/meta-data/", want: "169.254.0.0/16", secrets: []string{"meta-data"}},
		{name: "mapped literal", raw: "https://[::ffff:127.0.0.1]/", want: "127.0.0.0/8"},
		{name: "unspecified literal", raw: "https://0.0.0.0:8080/", want: "0.0.0.0/8"},
		{name: "zoned link-local literal", raw: "https://[fe80::1%25eth0]/", want: "fe80::/10"},
		{name: "parse error", raw: "https://charts example.com/", want: "does not parse: invalid character"},
		{name: "parse error with credentials", raw: "https://admin:hunter 22@charts.example.com/", want: "details withheld", secrets: []string{"hunter"}},
	}
	p := mustNew(t, Config{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := p.CheckURL(tc.raw, tc.schemes...)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckURL(%q) = %v, want nil", tc.raw, err)
				}
				if u == nil || u.Hostname() == "" {
					t.Fatalf("CheckURL(%q) = %v, want the parsed URL", tc.raw, u)
				}
				return
			}
			wantDenied(t, err, tc.want, tc.secrets...)
		})
	}
}

func TestNewRefusesInvalidRanges(t *testing.T) {
	for _, cfg := range []Config{
		{Deny: []netip.Prefix{{}}},
		{Allow: []netip.Prefix{{}}},
	} {
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "is not valid") {
			t.Errorf("New(%v) = %v, want an invalid range error", cfg, err)
		}
	}
}

func TestRegisterFlags(t *testing.T) {
	pfx := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	tests := []struct {
		name      string
		args      []string
		deny      []netip.Prefix // nil: the defaults apply
		allow     []netip.Prefix
		wantError string
	}{
		{name: "none"},
		{
			name:  "dev environment",
			args:  []string{"--outbound-allow-cidrs=127.0.0.0/8, ::1/128"},
			allow: pfx("127.0.0.0/8", "::1/128"),
		},
		{
			name: "deny replaces the defaults",
			args: []string{"--outbound-deny-cidrs=10.0.0.0/8,fc00::/7"},
			deny: pfx("10.0.0.0/8", "fc00::/7"),
		},
		{
			name: "default keeps them",
			args: []string{"--outbound-deny-cidrs=default,10.0.0.0/8"},
			deny: append(DefaultDeny(), pfx("10.0.0.0/8")...),
		},
		{
			name:  "repeated flags add up; single addresses",
			args:  []string{"--outbound-allow-cidrs=127.0.0.1", "--outbound-allow-cidrs=::1"},
			allow: pfx("127.0.0.1/32", "::1/128"),
		},
		{name: "not a range", args: []string{"--outbound-allow-cidrs=10.0.0/8"}, wantError: `invalid value "10.0.0/8" for flag -outbound-allow-cidrs: "10.0.0/8" is not a CIDR range like 10.0.0.0/8`},
		{name: "host bits set", args: []string{"--outbound-deny-cidrs=192.168.1.0/16"}, wantError: `"192.168.1.0/16" has bits set past its length: write 192.168.0.0/16`},
		{name: "zone", args: []string{"--outbound-allow-cidrs=fe80::1%eth0"}, wantError: "is not a CIDR range"},
		{name: "empty", args: []string{"--outbound-deny-cidrs="}, wantError: "no ranges given"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cfg Config
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			cfg.RegisterFlags(fs)
			err := fs.Parse(tc.args)
			if tc.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantError) {
					t.Fatalf("Parse(%q) = %v, want an error containing %q", tc.args, err, tc.wantError)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q) = %v", tc.args, err)
			}
			if !slices.Equal(cfg.Deny, tc.deny) || !slices.Equal(cfg.Allow, tc.allow) {
				t.Errorf("Config = %v, want Deny %v Allow %v", cfg, tc.deny, tc.allow)
			}
			if _, err := New(cfg); err != nil {
				t.Errorf("New: %v", err)
			}
		})
	}
}

func TestOrigin(t *testing.T) {
	tests := []struct{ a, b string }{
		{"https://a.example", "https://A.example:443/x?y"},
		{"http://a.example", "http://a.example:80"},
		{"https://[::1]", "https://[::1]:443"},
	}
	for _, tc := range tests {
		if origin(mustParse(t, tc.a)) != origin(mustParse(t, tc.b)) {
			t.Errorf("origin(%s) != origin(%s)", tc.a, tc.b)
		}
	}
	for _, tc := range []struct{ a, b string }{
		{"https://a.example", "http://a.example"},
		{"https://a.example", "https://a.example:8443"},
		{"https://a.example", "https://sub.a.example"},
		{"https://a.example", "https://a.example."},
	} {
		if origin(mustParse(t, tc.a)) == origin(mustParse(t, tc.b)) {
			t.Errorf("origin(%s) == origin(%s), want them distinct", tc.a, tc.b)
		}
	}
}

func mustParse(t testing.TB, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// FuzzCheckURL checks that CheckURL never panics, that what it accepts has
// an allowed scheme, a host, no credentials and no denied literal address,
// and that its refusals never repeat a password or query. Seeds live in
// testdata/fuzz.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://charts.example.com/index.yaml",
		"https://u:p4ssw0rd@example.com/",
		"https://[::ffff:127.0.0.1]:6443/?token=abc123",
		"oci://registry.example.com/charts/app",
		"https://[fe80::1%25eth0]/",
		"http://0x7f.1/",
		"https:%2f%2fexample.com",
		"https://example.com:99999/",
	} {
		f.Add(s)
	}
	p := mustNew(f, Config{})
	schemes := []string{"https", "oci"}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := p.CheckURL(raw, schemes...)
		if err == nil {
			if !slices.Contains(schemes, strings.ToLower(u.Scheme)) || u.Hostname() == "" || u.User != nil {
				t.Fatalf("CheckURL(%q) accepted scheme %q host %q user %v", raw, u.Scheme, u.Hostname(), u.User)
			}
			if ip, perr := netip.ParseAddr(u.Hostname()); perr == nil && p.CheckIP(ip) != nil {
				t.Fatalf("CheckURL(%q) accepted denied address %s", raw, ip)
			}
			return
		}
		if !errors.Is(err, ErrDenied) {
			t.Fatalf("CheckURL(%q) = %v, not wrapping ErrDenied", raw, err)
		}
		parsed, perr := url.Parse(raw)
		if perr != nil {
			return
		}
		if pw, ok := parsed.User.Password(); ok && pw != "" && strings.Contains(err.Error(), ":"+pw+"@") {
			t.Fatalf("CheckURL(%q) = %q repeats the password", raw, err)
		}
		if q := parsed.RawQuery; q != "" && strings.Contains(err.Error(), "?"+q) {
			t.Fatalf("CheckURL(%q) = %q repeats the query", raw, err)
		}
	})
}
