package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/slipwayhq/slipway/pkg/outbound"
)

// Errors of digest resolution; errors.go maps them to gRPC codes.
var (
	// ErrUnresolvable: the registry answered, and the reference names
	// nothing there (no such tag or digest), or the registry refuses the
	// org's login or wants one it does not have. HTTP 422.
	ErrUnresolvable = errors.New("image reference does not resolve")
	// ErrRegistryUnavailable: the registry could not be asked (timeout,
	// connection failure, 5xx). Retrying later may succeed.
	ErrRegistryUnavailable = errors.New("image registry unavailable; retry shortly")
)

// Login is an org's login for a registry host; Found is false when the org
// has none, and the registry is asked anonymously.
type Login struct {
	Found              bool
	Username, Password string
}

// Logins finds an org's registry login (pkg/clusteraccess over the clusters
// service's AccessService).
type Logins interface {
	RegistryLogin(ctx context.Context, org, host string) (Login, error)
}

// Resolver finds the manifest digest a reference names in its registry.
type Resolver interface {
	// Resolve returns the digest ("sha256:...") of ref, a reference as
	// parseReference returns it, for org.
	Resolve(ctx context.Context, org, ref string) (string, error)
}

// resolveTimeout bounds one resolution: a HEAD (and a token exchange).
const resolveTimeout = 10 * time.Second

// RemoteResolver asks the registry with go-containerregistry, through the
// outbound policy, with the org's login for that host.
type RemoteResolver struct {
	logins Logins
	rt     http.RoundTripper
}

var _ Resolver = (*RemoteResolver)(nil)

// NewRemoteResolver returns a resolver dialing through policy. Registries
// on loopback and private addresses are asked over plain http too, as
// go-containerregistry does (the policy decides which addresses may be
// reached at all).
func NewRemoteResolver(logins Logins, policy *outbound.Policy) *RemoteResolver {
	return &RemoteResolver{logins: logins, rt: policy.Client(policy.Transport(), "https", "http").Transport}
}

// Resolve implements Resolver.
func (r *RemoteResolver) Resolve(ctx context.Context, org, ref string) (string, error) {
	parsed, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		return "", fmt.Errorf("%w: %s is not a reference the registry client accepts", ErrUnresolvable, ref)
	}
	host := parsed.Context().RegistryStr()
	login, err := r.logins.RegistryLogin(ctx, org, host)
	if err != nil {
		return "", fmt.Errorf("%w: the login for %s could not be read: %v", ErrRegistryUnavailable, host, err)
	}
	auth := authn.Anonymous
	if login.Found {
		auth = authn.FromConfig(authn.AuthConfig{Username: login.Username, Password: login.Password})
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	desc, err := remote.Head(parsed, remote.WithAuth(auth), remote.WithTransport(r.rt), remote.WithContext(ctx))
	if err != nil {
		return "", classify(err, parsed, host, login.Found)
	}
	return desc.Digest.String(), nil
}

// classify turns a registry error into one a caller can act on, naming the
// host and the reference, never the login.
func classify(err error, ref name.Reference, host string, withLogin bool) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("%w: %s not found in %s", ErrUnresolvable, what(ref), host)
		case http.StatusUnauthorized, http.StatusForbidden:
			if withLogin {
				return fmt.Errorf("%w: %s refused the organization's registry credential for %s (HTTP %d): rotate it", ErrUnresolvable, host, host, te.StatusCode)
			}
			return fmt.Errorf("%w: %s needs a login (HTTP %d): add a registry credential for %s", ErrUnresolvable, host, te.StatusCode, host)
		case http.StatusTooManyRequests:
			return fmt.Errorf("%w: %s is rate limiting (HTTP 429)", ErrRegistryUnavailable, host)
		}
		if te.StatusCode >= 500 {
			return fmt.Errorf("%w: %s answered HTTP %d", ErrRegistryUnavailable, host, te.StatusCode)
		}
		return fmt.Errorf("%w: %s answered HTTP %d for %s", ErrUnresolvable, host, te.StatusCode, what(ref))
	}
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, outbound.ErrDenied):
		return fmt.Errorf("%w: %s may not be contacted: %v", ErrUnresolvable, host, outbound.RedactError(err))
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return fmt.Errorf("%w: registry host %s does not exist (DNS)", ErrUnresolvable, host)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %s did not answer within %s", ErrRegistryUnavailable, host, resolveTimeout)
	}
	return fmt.Errorf("%w: %s: %v", ErrRegistryUnavailable, host, outbound.RedactError(err))
}

func what(ref name.Reference) string {
	if d, ok := ref.(name.Digest); ok {
		return "digest " + d.DigestStr() + " of " + d.Context().RepositoryStr()
	}
	return "tag " + ref.Identifier() + " of " + ref.Context().RepositoryStr()
}
