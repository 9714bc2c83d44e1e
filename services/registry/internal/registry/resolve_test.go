package registry

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slipwayhq/slipway/pkg/outbound"
	"github.com/slipwayhq/slipway/pkg/testenv"
)

// staticLogins answers one login for one host.
type staticLogins map[string]Login

func (s staticLogins) RegistryLogin(_ context.Context, _, host string) (Login, error) {
	return s[host], nil
}

func loopbackPolicy(t *testing.T) *outbound.Policy {
	t.Helper()
	p, err := outbound.New(outbound.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRemoteResolver resolves against the devstack's real OCI registry
// (distribution, behind htpasswd): an image pushed with
// go-containerregistry, by tag and by digest, with the org's login, with
// none, with a wrong one, and what the registry does not have.
func TestRemoteResolver(t *testing.T) {
	env := testenv.Get(t, "registry")
	host, user, pass := env["OCI_REGISTRY"], env["OCI_REGISTRY_USERNAME"], env["OCI_REGISTRY_PASSWORD"]
	ctx := context.Background()

	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.ParseReference(host+"/resolver-test/app:1.0.0", name.StrictValidation)
	if err != nil {
		t.Fatal(err)
	}
	basic := authn.FromConfig(authn.AuthConfig{Username: user, Password: pass})
	if err := remote.Write(tag, img, remote.WithAuth(basic), remote.WithContext(ctx)); err != nil {
		t.Fatalf("push: %v", err)
	}
	pushed, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}

	good := NewRemoteResolver(staticLogins{host: {Found: true, Username: user, Password: pass}}, loopbackPolicy(t))
	for _, ref := range []string{tag.String(), host + "/resolver-test/app@" + pushed.String()} {
		got, err := good.Resolve(ctx, "acme", ref)
		if err != nil || got != pushed.String() {
			t.Errorf("Resolve(%s) = %q, %v; want %s", ref, got, err, pushed)
		}
	}

	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}()
	denying, err := outbound.New(outbound.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		resolver *RemoteResolver
		ref      string
		want     error
		says     string
	}{
		{"missing tag", good, host + "/resolver-test/app:9.9.9", ErrUnresolvable, "tag 9.9.9 of resolver-test/app not found in " + host},
		{"missing repository", good, host + "/resolver-test/nothing:1.0.0", ErrUnresolvable, "not found"},
		{"missing digest", good, host + "/resolver-test/app@sha256:" + strings.Repeat("0", 64), ErrUnresolvable, "not found"},
		{"no login", NewRemoteResolver(staticLogins{}, loopbackPolicy(t)), tag.String(), ErrUnresolvable, "add a registry credential for " + host},
		{"wrong login", NewRemoteResolver(staticLogins{host: {Found: true, Username: user, Password: "wrong-" + pass}}, loopbackPolicy(t)), tag.String(), ErrUnresolvable, "refused the organization's registry credential"},
		{"denied address", NewRemoteResolver(staticLogins{}, denying), tag.String(), ErrUnresolvable, "may not be contacted"},
		{"nothing listening", good, closed + "/app:1.0.0", ErrRegistryUnavailable, closed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.resolver.Resolve(ctx, "acme", tc.ref)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("Resolve(%s) = %v; want %v saying %q", tc.ref, err, tc.want, tc.says)
			}
			if err != nil && strings.Contains(err.Error(), pass) {
				t.Errorf("the error holds the registry password: %v", err)
			}
		})
	}
}
