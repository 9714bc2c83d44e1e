// Package authn decides who is calling: an API token (`slp_...`, stored
// only as a hash) or an OIDC bearer JWT from the configured issuer; and what
// role that caller has in the organization a request names.
package authn

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/slipwayhq/slipway/gateway/internal/oidc"
	"github.com/slipwayhq/slipway/gateway/internal/store"
	"github.com/slipwayhq/slipway/pkg/identity"
)

// Errors of authentication and org resolution.
var (
	// ErrUnauthenticated: no credentials, or credentials that do not verify.
	ErrUnauthenticated = errors.New("authentication required")
	// ErrNoSuchOrg: the org does not exist or the caller is not a member;
	// both answer 404 so organizations cannot be enumerated.
	ErrNoSuchOrg = errors.New("organization not found")
)

// TokenPrefix starts every API token secret.
const TokenPrefix = "slp_"

// maxBearerLen bounds what is hashed or parsed from a caller.
const maxBearerLen = 8 << 10

// Principal is an authenticated caller, before any organization is chosen.
type Principal struct {
	UserID string
	// For API tokens: the token, its org and role. A token acts for its
	// creator, never beyond its own org and role.
	TokenID    string
	TokenOrgID string
	TokenRole  identity.Role
}

// Subject names the principal in identities and the audit log.
func (p Principal) Subject() string {
	if p.TokenID != "" {
		return "token:" + p.TokenID
	}
	return "user:" + p.UserID
}

type principalKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal in ctx.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// NewSecret returns a new API token secret and the hash stored for it.
func NewSecret() (secret string, hash []byte, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, fmt.Errorf("new token secret: %w", err)
	}
	secret = TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, HashSecret(secret), nil
}

// HashSecret is the stored form of a secret. Secrets carry 256 random bits,
// so a fast hash is enough: nothing can be guessed offline.
func HashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// OIDCVerifier verifies OIDC bearer JWTs.
type OIDCVerifier interface {
	Verify(ctx context.Context, raw string) (oidc.Claims, error)
}

// Authenticator authenticates requests against the gateway's store.
type Authenticator struct {
	store store.Store
	oidc  OIDCVerifier // nil: OIDC is off
	log   *slog.Logger
	now   func() time.Time

	// touched remembers when this process last recorded each token's use,
	// so a busy token costs one write a minute, not one per request.
	mu      sync.Mutex
	touched map[string]time.Time
}

// touchEvery is how coarse a token's last-used time is.
const touchEvery = time.Minute

// New returns an Authenticator; oidcVerifier may be nil.
func New(s store.Store, oidcVerifier OIDCVerifier, log *slog.Logger) *Authenticator {
	return &Authenticator{store: s, oidc: oidcVerifier, log: log, now: time.Now, touched: map[string]time.Time{}}
}

// Authenticate returns the caller of r, or ErrUnauthenticated.
func (a *Authenticator) Authenticate(ctx context.Context, r *http.Request) (Principal, error) {
	scheme, bearer, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || bearer == "" || len(bearer) > maxBearerLen {
		return Principal{}, ErrUnauthenticated
	}
	if strings.HasPrefix(bearer, TokenPrefix) {
		return a.apiToken(ctx, bearer)
	}
	if a.oidc != nil && oidc.LooksLikeJWT(bearer) {
		return a.oidcUser(ctx, bearer)
	}
	return Principal{}, ErrUnauthenticated
}

func (a *Authenticator) apiToken(ctx context.Context, secret string) (Principal, error) {
	hash := HashSecret(secret)
	t, err := a.store.GetTokenByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, fmt.Errorf("look up token: %w", err)
	}
	now := a.now()
	switch {
	case subtle.ConstantTimeCompare(t.Hash, hash) != 1,
		!t.Revoked.IsZero(),
		!t.Expires.IsZero() && !now.Before(t.Expires):
		return Principal{}, ErrUnauthenticated
	}
	a.touch(ctx, t.ID, now)
	return Principal{UserID: t.Creator, TokenID: t.ID, TokenOrgID: t.OrgID, TokenRole: t.Role}, nil
}

func (a *Authenticator) touch(ctx context.Context, tokenID string, now time.Time) {
	a.mu.Lock()
	last, ok := a.touched[tokenID]
	due := !ok || now.Sub(last) >= touchEvery
	if due {
		if len(a.touched) > 100_000 {
			clear(a.touched) // bounded: forgetting only costs a write
		}
		a.touched[tokenID] = now
	}
	a.mu.Unlock()
	if !due {
		return
	}
	if err := a.store.TouchToken(ctx, tokenID, now); err != nil {
		a.log.WarnContext(ctx, "record token use failed", "token", tokenID, "error", err)
	}
}

// oidcUser maps a verified JWT to a user: by subject, else by a verified
// email an admin invited (binding the subject to it), else a new user.
func (a *Authenticator) oidcUser(ctx context.Context, raw string) (Principal, error) {
	c, err := a.oidc.Verify(ctx, raw)
	if err != nil {
		a.log.DebugContext(ctx, "oidc token rejected", "error", err)
		return Principal{}, ErrUnauthenticated
	}
	u, err := a.store.GetUserBySubject(ctx, c.Subject)
	if err == nil {
		return Principal{UserID: u.ID}, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return Principal{}, fmt.Errorf("look up user: %w", err)
	}
	if c.Email != "" && c.EmailVerified {
		u, err := a.store.GetUserByEmail(ctx, c.Email)
		if err == nil && u.Subject == "" {
			if err := a.store.SetUserSubject(ctx, u.ID, c.Subject); err != nil {
				return Principal{}, fmt.Errorf("bind user subject: %w", err)
			}
			return Principal{UserID: u.ID}, nil
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return Principal{}, fmt.Errorf("look up user: %w", err)
		}
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Principal{}, err
	}
	nu := store.User{ID: id.String(), Subject: c.Subject, Created: a.now().UTC()}
	if c.EmailVerified {
		nu.Email = c.Email
	}
	if err := a.store.CreateUser(ctx, nu); err != nil {
		if errors.Is(err, store.ErrExists) {
			// Raced with another first request of the same person, or the
			// email belongs to someone else: retry by subject once.
			if u, err := a.store.GetUserBySubject(ctx, c.Subject); err == nil {
				return Principal{UserID: u.ID}, nil
			}
			nu.Email = ""
			if err := a.store.CreateUser(ctx, nu); err != nil {
				return Principal{}, fmt.Errorf("create user: %w", err)
			}
			return Principal{UserID: nu.ID}, nil
		}
		return Principal{}, fmt.Errorf("create user: %w", err)
	}
	return Principal{UserID: nu.ID}, nil
}

// Resolve returns p's identity in the org named orgName: ErrNoSuchOrg when
// the org does not exist or p is not in it; ErrUnauthenticated when p is a
// token whose creator has left the org. A token's role is capped by its
// creator's current role.
func (a *Authenticator) Resolve(ctx context.Context, p Principal, orgName string) (identity.Identity, store.Org, error) {
	org, err := a.store.GetOrgByName(ctx, orgName)
	if errors.Is(err, store.ErrNotFound) {
		return identity.Identity{}, store.Org{}, ErrNoSuchOrg
	}
	if err != nil {
		return identity.Identity{}, store.Org{}, fmt.Errorf("look up org: %w", err)
	}
	if p.TokenID != "" && p.TokenOrgID != org.ID {
		return identity.Identity{}, store.Org{}, ErrNoSuchOrg
	}
	m, err := a.store.GetMember(ctx, org.ID, p.UserID)
	if errors.Is(err, store.ErrNotFound) {
		if p.TokenID != "" {
			return identity.Identity{}, store.Org{}, ErrUnauthenticated
		}
		return identity.Identity{}, store.Org{}, ErrNoSuchOrg
	}
	if err != nil {
		return identity.Identity{}, store.Org{}, fmt.Errorf("look up membership: %w", err)
	}
	role := m.Role
	if p.TokenID != "" && !p.TokenRole.AtLeast(role) {
		role = p.TokenRole
	}
	return identity.Identity{Subject: p.Subject(), Org: org.Name, Role: role, TokenID: p.TokenID}, org, nil
}
