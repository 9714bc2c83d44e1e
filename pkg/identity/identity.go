// Package identity carries the verified caller of a request inside Slipway.
//
// The gateway authenticates users and mints a short-lived internal identity
// token (an EdDSA-signed JWT naming subject, organization, role and request
// id). Services hold only the public key: they verify the token on every
// call, read the caller back with FromContext, and forward the same token on
// calls they make to other services. No service can mint an identity.
package identity

import (
	"context"
	"errors"
	"fmt"
)

// MetadataKey is the gRPC metadata key that carries the identity token.
const MetadataKey = "x-slipway-identity"

// Role is a member's role in an organization.
type Role string

// Roles, from least to most privileged.
const (
	RoleViewer   Role = "viewer"
	RoleDeployer Role = "deployer"
	RoleAdmin    Role = "admin"
	RoleOwner    Role = "owner"
)

var rank = map[Role]int{RoleViewer: 1, RoleDeployer: 2, RoleAdmin: 3, RoleOwner: 4}

// Valid reports whether r is one of the four roles.
func (r Role) Valid() bool { return rank[r] > 0 }

// AtLeast reports whether r grants everything min grants.
func (r Role) AtLeast(min Role) bool { return r.Valid() && min.Valid() && rank[r] >= rank[min] }

// ParseRole parses a role name.
func ParseRole(s string) (Role, error) {
	if r := Role(s); r.Valid() {
		return r, nil
	}
	return "", fmt.Errorf("role %q: want viewer, deployer, admin or owner", s)
}

// Identity is a verified caller acting in one organization.
type Identity struct {
	// Subject identifies the user or API token ("user:alice", "token:ci").
	Subject string
	// Org is the organization the caller acts in.
	Org string
	// Role is the caller's role in Org.
	Role Role
	// TokenID is the API token the caller authenticated with, if any.
	TokenID string
	// RequestID is the id of the request at the REST edge.
	RequestID string
	// Service is set when a Slipway service acts on its own behalf
	// ("releases" running a queued operation): the token was minted with
	// that service's own key, not by the gateway. Empty for every user.
	Service string
}

// ServiceSubject is the subject of the identities service mints for itself.
func ServiceSubject(service string) string { return "service:" + service }

func (id Identity) validate() error {
	switch {
	case id.Subject == "":
		return errors.New("identity has no subject")
	case id.Org == "":
		return errors.New("identity has no organization")
	case !id.Role.Valid():
		return fmt.Errorf("identity has unknown role %q", id.Role)
	}
	return nil
}

type ctxKey struct{}

type carried struct {
	id    Identity
	token string
}

// NewContext returns ctx carrying a verified identity and the token it was
// verified from (forwarded on outgoing calls).
func NewContext(ctx context.Context, id Identity, token string) context.Context {
	return context.WithValue(ctx, ctxKey{}, carried{id: id, token: token})
}

// FromContext returns the verified identity in ctx.
func FromContext(ctx context.Context) (Identity, bool) {
	c, ok := ctx.Value(ctxKey{}).(carried)
	return c.id, ok
}

// TokenFromContext returns the token the identity in ctx was verified from.
func TokenFromContext(ctx context.Context) (string, bool) {
	c, ok := ctx.Value(ctxKey{}).(carried)
	return c.token, ok && c.token != ""
}
