package clusters

import (
	"context"
	"net"
	"time"

	"github.com/slipwayhq/slipway/pkg/outbound"
	"github.com/slipwayhq/slipway/services/clusters/internal/kube"
)

// PolicyChecker contacts clusters through the outbound policy: their URLs
// are checked when registered, and every connection is dialed through the
// policy, so that a name resolving to a denied address is refused too.
type PolicyChecker struct {
	policy *outbound.Policy
	dial   func(ctx context.Context, network, addr string) (net.Conn, error)
}

var _ Checker = (*PolicyChecker)(nil)

// NewPolicyChecker returns a Checker under policy.
func NewPolicyChecker(policy *outbound.Policy) *PolicyChecker {
	return &PolicyChecker{
		policy: policy,
		dial:   policy.DialContext(&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}),
	}
}

// CheckServer refuses a server URL the policy forbids.
func (p *PolicyChecker) CheckServer(server string) error {
	_, err := p.policy.CheckURL(server, "https")
	return err
}

// Check contacts the API server of c.
func (p *PolicyChecker) Check(ctx context.Context, c kube.Connection) (kube.Health, kube.Permissions) {
	return kube.Check(ctx, c.RESTConfig(p.dial))
}
