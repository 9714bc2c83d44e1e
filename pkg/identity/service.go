package identity

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ServiceCaller gives a service the identity it acts with on its own
// behalf, one per organization: for work no user request carries (a queued
// operation, a periodic sync) and for the internal RPCs that answer only
// services. Tokens are reused for half their life.
type ServiceCaller struct {
	signer *Signer
	now    func() time.Time

	mu     sync.Mutex
	tokens map[string]cachedToken
}

type cachedToken struct {
	id    Identity
	token string
	until time.Time
}

// NewServiceCaller returns a ServiceCaller minting with s, a service signer.
func NewServiceCaller(s *Signer) (*ServiceCaller, error) {
	if s == nil || s.Service() == "" {
		return nil, errors.New("service caller needs a service signer")
	}
	return &ServiceCaller{signer: s, now: time.Now, tokens: map[string]cachedToken{}}, nil
}

// Service is the service c acts as.
func (c *ServiceCaller) Service() string { return c.signer.Service() }

// Context returns ctx carrying the service's identity in org, which the
// client interceptors send on the next calls in place of any caller's.
// The identity has the viewer role: a service reads other services' public
// APIs on its own behalf, and anything more goes through internal RPCs that
// check Identity.Service.
func (c *ServiceCaller) Context(ctx context.Context, org string) (context.Context, error) {
	now := c.now()
	c.mu.Lock()
	t, ok := c.tokens[org]
	c.mu.Unlock()
	if !ok || !now.Before(t.until) {
		id := Identity{Org: org, Role: RoleViewer}
		tok, err := c.signer.Sign(id)
		if err != nil {
			return nil, err
		}
		id.Subject, id.Service = ServiceSubject(c.Service()), c.Service()
		t = cachedToken{id: id, token: tok, until: now.Add(c.signer.TTL() / 2)}
		c.mu.Lock()
		if len(c.tokens) >= maxVerified {
			clear(c.tokens)
		}
		c.tokens[org] = t
		c.mu.Unlock()
	}
	return NewContext(ctx, t.id, t.token), nil
}
