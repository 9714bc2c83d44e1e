// Package store persists what the gateway owns: organizations, users,
// memberships, API tokens and the audit log, on SQLite or PostgreSQL.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/slipwayhq/slipway/pkg/identity"
)

// Errors every Store returns; their text is shown to callers.
var (
	ErrNotFound  = errors.New("not found")
	ErrExists    = errors.New("already exists")
	ErrLastOwner = errors.New("an organization must keep at least one owner")
)

// Org is an organization. Name is immutable: it is the tenancy key every
// service stores.
type Org struct {
	ID          string
	Name        string
	DisplayName string
	Created     time.Time
	Updated     time.Time
}

// User is a person: known by OIDC subject once signed in, or only by email
// when invited before signing in.
type User struct {
	ID      string
	Subject string // "" until the person signs in
	Email   string // "" when unknown
	Created time.Time
}

// Member is a user's role in an org.
type Member struct {
	User    User
	Role    identity.Role
	Created time.Time
}

// Token is an API token. Only the hash of its secret is stored.
type Token struct {
	ID       string
	OrgID    string
	Name     string
	Role     identity.Role
	Hash     []byte // SHA-256 of the secret
	Creator  string // user id
	Created  time.Time
	Expires  time.Time // zero: never
	LastUsed time.Time // zero: never used
	Revoked  time.Time // zero: not revoked
}

// AuditEvent is one mutating call.
type AuditEvent struct {
	ID        string // UUIDv7: time-ordered, the list order and page key
	OrgID     string
	Time      time.Time
	Actor     string
	TokenID   string
	Action    string
	Target    string
	Result    int
	RequestID string
	// Detail says what a service did on its own (no request behind it);
	// such events live in that service and are merged into lists.
	Detail string
}

// AuditFilter narrows an audit list; zero fields match everything.
type AuditFilter struct {
	Actor  string
	Action string
	Since  time.Time
}

// Store is the gateway's persistence. Every method scoped to an org takes
// the org's id; lists are keyset-paginated: they return up to limit items
// after the key `after` ("" for the first page) in the documented order.
type Store interface {
	// CreateOrg creates org and makes owner its first owner, atomically.
	// ErrExists when the name is taken, or was taken by a deleted org:
	// names are never reused, since services key their data by them.
	CreateOrg(ctx context.Context, org Org, owner string) error
	GetOrgByName(ctx context.Context, name string) (Org, error)
	GetOrg(ctx context.Context, id string) (Org, error)
	// UpdateOrgDisplayName sets the display name and the update time.
	UpdateOrgDisplayName(ctx context.Context, orgID, displayName string, now time.Time) (Org, error)
	// DeleteOrg removes the org with its memberships, tokens and audit log.
	DeleteOrg(ctx context.Context, orgID string) error
	// ListUserOrgs lists the orgs userID belongs to, by name.
	ListUserOrgs(ctx context.Context, userID, after string, limit int) ([]Org, error)
	// CountOrgs is the number of orgs (0 on first start).
	CountOrgs(ctx context.Context) (int, error)

	// CreateUser creates a user; ErrExists when the subject or email is taken.
	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, id string) (User, error)
	GetUserBySubject(ctx context.Context, subject string) (User, error)
	GetUserByEmail(ctx context.Context, email string) (User, error)
	// SetUserSubject binds an invited (email-only) user to its OIDC subject.
	SetUserSubject(ctx context.Context, userID, subject string) error

	// AddMember adds a membership; ErrExists when the user is already a member.
	AddMember(ctx context.Context, orgID, userID string, role identity.Role, now time.Time) error
	GetMember(ctx context.Context, orgID, userID string) (Member, error)
	// ListMembers lists members by user id.
	ListMembers(ctx context.Context, orgID, after string, limit int) ([]Member, error)
	// UpdateMemberRole changes a role; ErrLastOwner when it would leave the
	// org without an owner (checked atomically with the change).
	UpdateMemberRole(ctx context.Context, orgID, userID string, role identity.Role) (Member, error)
	// RemoveMember removes a membership; ErrLastOwner as above.
	RemoveMember(ctx context.Context, orgID, userID string) error

	// CreateToken stores a token; ErrExists when the name is taken in the org.
	CreateToken(ctx context.Context, t Token) error
	// GetTokenByHash returns the token with this secret hash, in any org.
	GetTokenByHash(ctx context.Context, hash []byte) (Token, error)
	GetToken(ctx context.Context, orgID, id string) (Token, error)
	// ListTokens lists the org's tokens by id.
	ListTokens(ctx context.Context, orgID, after string, limit int) ([]Token, error)
	// RevokeToken sets the revoke time; revoking twice keeps the first time.
	RevokeToken(ctx context.Context, orgID, id string, now time.Time) error
	// TouchToken records a use; it may be coarse (at most once a minute).
	TouchToken(ctx context.Context, id string, now time.Time) error

	// AppendAudit appends an event.
	AppendAudit(ctx context.Context, e AuditEvent) error
	// ListAudit lists the org's events newest first.
	ListAudit(ctx context.Context, orgID string, f AuditFilter, after string, limit int) ([]AuditEvent, error)

	Ping(ctx context.Context) error
	Close() error
}
