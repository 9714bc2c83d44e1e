// Package orgs implements the APIs the gateway itself owns: organizations,
// members, API tokens and the audit log. They run in the gateway process,
// behind the same edge (authentication, permission table, audit) as every
// other route; the caller arrives as an authn.Principal and, on org-scoped
// routes, a verified identity.
package orgs

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/google/uuid"

	"github.com/slipwayhq/slipway/gateway/internal/authn"
	"github.com/slipwayhq/slipway/gateway/internal/store"
	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/paging"
	"github.com/slipwayhq/slipway/pkg/validate"
)

// Errors of the gateway's APIs; errors.go maps them to codes.
var (
	ErrForbidden = errors.New("not allowed")
	ErrInUse     = errors.New("organization still has clusters or releases")
)

const maxDisplayName = 200

// Dependents tells whether an org still has clusters or releases, asking
// the owning services.
type Dependents interface {
	HasDependents(ctx context.Context, org string) (bool, error)
}

// ServiceAudit lists what services did on their own, newest first, with
// ids below before: events with no request behind them, which the audit
// log shows among the requests. A Dependents may implement it.
type ServiceAudit interface {
	ListServiceAudit(ctx context.Context, org string, f store.AuditFilter, before string, limit int) ([]store.AuditEvent, error)
}

// Service is the gateway's own API.
type Service struct {
	store      store.Store
	dependents Dependents
	now        func() time.Time
}

// New returns the service.
func New(s store.Store, d Dependents) *Service {
	return &Service{store: s, dependents: d, now: time.Now}
}

func newID() (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("new id: %w", err)
	}
	return id.String(), nil
}

func principal(ctx context.Context) (authn.Principal, error) {
	p, ok := authn.FromContext(ctx)
	if !ok {
		return authn.Principal{}, fmt.Errorf("%w: no authenticated caller", ErrForbidden)
	}
	return p, nil
}

// caller returns the org-scoped identity and the org it names.
func (s *Service) caller(ctx context.Context, id identity.Identity) (store.Org, error) {
	org, err := s.store.GetOrgByName(ctx, id.Org)
	if err != nil {
		return store.Org{}, fmt.Errorf("look up org: %w", err)
	}
	return org, nil
}

// CreateOrg creates an org owned by the caller. An API token may create
// one only if it is an owner token; its creator becomes the owner.
func (s *Service) CreateOrg(ctx context.Context, name, displayName string) (store.Org, error) {
	p, err := principal(ctx)
	if err != nil {
		return store.Org{}, err
	}
	if p.TokenID != "" && p.TokenRole != identity.RoleOwner {
		return store.Org{}, fmt.Errorf("%w: only owner tokens may create organizations", ErrForbidden)
	}
	if err := validate.First(
		validate.DNSLabel("organization.name", name),
		validate.MaxLen("organization.display_name", displayName, maxDisplayName),
	); err != nil {
		return store.Org{}, err
	}
	id, err := newID()
	if err != nil {
		return store.Org{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	org := store.Org{ID: id, Name: name, DisplayName: displayName, Created: now, Updated: now}
	if err := s.store.CreateOrg(ctx, org, p.UserID); err != nil {
		if errors.Is(err, store.ErrExists) {
			return store.Org{}, fmt.Errorf("%w: organization %q", store.ErrExists, name)
		}
		return store.Org{}, fmt.Errorf("create org: %w", err)
	}
	return org, nil
}

// ListOrgs lists the caller's orgs; a token sees only its own org.
func (s *Service) ListOrgs(ctx context.Context, size int32, token string) ([]store.Org, string, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, "", err
	}
	n, err := paging.Size(size)
	if err != nil {
		return nil, "", err
	}
	fp := paging.Fingerprint(p.Subject())
	after, err := paging.Decode(token, fp)
	if err != nil {
		return nil, "", err
	}
	if p.TokenID != "" {
		// A token sees its own org at most: one item, one page.
		return s.tokenOrg(ctx, p)
	}
	orgs, err := s.store.ListUserOrgs(ctx, p.UserID, after, n+1)
	if err != nil {
		return nil, "", fmt.Errorf("list orgs: %w", err)
	}
	return page(orgs, n, fp, func(o store.Org) string { return o.Name })
}

func (s *Service) tokenOrg(ctx context.Context, p authn.Principal) ([]store.Org, string, error) {
	org, err := s.store.GetOrg(ctx, p.TokenOrgID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("get org: %w", err)
	}
	if _, err := s.store.GetMember(ctx, org.ID, p.UserID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, "", nil // its creator left: the token sees nothing
		}
		return nil, "", fmt.Errorf("get member: %w", err)
	}
	return []store.Org{org}, "", nil
}

// GetOrg returns the caller's org.
func (s *Service) GetOrg(ctx context.Context, id identity.Identity) (store.Org, error) {
	return s.caller(ctx, id)
}

// RenameOrg sets the display name; the name never changes.
func (s *Service) RenameOrg(ctx context.Context, id identity.Identity, displayName string) (store.Org, error) {
	if err := validate.MaxLen("display_name", displayName, maxDisplayName); err != nil {
		return store.Org{}, err
	}
	org, err := s.caller(ctx, id)
	if err != nil {
		return store.Org{}, err
	}
	return s.store.UpdateOrgDisplayName(ctx, org.ID, displayName, s.now().UTC())
}

// DeleteOrg deletes the org unless it still has clusters or releases.
func (s *Service) DeleteOrg(ctx context.Context, id identity.Identity) error {
	org, err := s.caller(ctx, id)
	if err != nil {
		return err
	}
	busy, err := s.dependents.HasDependents(ctx, org.Name)
	if err != nil {
		return fmt.Errorf("check organization dependents: %w", err)
	}
	if busy {
		return fmt.Errorf("%w: delete its releases and clusters first", ErrInUse)
	}
	return s.store.DeleteOrg(ctx, org.ID)
}

// AddMember adds a person by email or subject; the caller cannot grant a
// role above its own.
func (s *Service) AddMember(ctx context.Context, id identity.Identity, email, subject string, role identity.Role) (store.Member, error) {
	if err := validate.First(
		grantable(id, role),
		validate.MaxLen("email", email, 254),
		validate.MaxLen("subject", subject, 255),
	); err != nil {
		return store.Member{}, err
	}
	if (email == "") == (subject == "") {
		return store.Member{}, validate.Field("email", "exactly one of email and subject is required")
	}
	org, err := s.caller(ctx, id)
	if err != nil {
		return store.Member{}, err
	}
	u, err := s.findOrInviteUser(ctx, email, subject)
	if err != nil {
		return store.Member{}, err
	}
	if err := s.store.AddMember(ctx, org.ID, u.ID, role, s.now().UTC()); err != nil {
		if errors.Is(err, store.ErrExists) {
			return store.Member{}, fmt.Errorf("%w: already a member", store.ErrExists)
		}
		return store.Member{}, fmt.Errorf("add member: %w", err)
	}
	return s.store.GetMember(ctx, org.ID, u.ID)
}

func (s *Service) findOrInviteUser(ctx context.Context, email, subject string) (store.User, error) {
	var u store.User
	var err error
	if subject != "" {
		u, err = s.store.GetUserBySubject(ctx, subject)
	} else {
		u, err = s.store.GetUserByEmail(ctx, email)
	}
	if err == nil {
		return u, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return store.User{}, fmt.Errorf("look up user: %w", err)
	}
	uid, err := newID()
	if err != nil {
		return store.User{}, err
	}
	u = store.User{ID: uid, Email: email, Subject: subject, Created: s.now().UTC()}
	if err := s.store.CreateUser(ctx, u); err != nil {
		return store.User{}, fmt.Errorf("invite user: %w", err)
	}
	return u, nil
}

// ListMembers pages the org's members.
func (s *Service) ListMembers(ctx context.Context, id identity.Identity, size int32, token string) ([]store.Member, string, error) {
	org, err := s.caller(ctx, id)
	if err != nil {
		return nil, "", err
	}
	n, fp, after, err := pageArgs(size, token, org.ID)
	if err != nil {
		return nil, "", err
	}
	ms, err := s.store.ListMembers(ctx, org.ID, after, n+1)
	if err != nil {
		return nil, "", fmt.Errorf("list members: %w", err)
	}
	return page(ms, n, fp, func(m store.Member) string { return m.User.ID })
}

// SetMemberRole changes a member's role: the caller cannot touch a member
// ranked above itself nor grant above its own role.
func (s *Service) SetMemberRole(ctx context.Context, id identity.Identity, userID string, role identity.Role) (store.Member, error) {
	if err := grantable(id, role); err != nil {
		return store.Member{}, err
	}
	org, m, err := s.member(ctx, id, userID)
	if err != nil {
		return store.Member{}, err
	}
	if !id.Role.AtLeast(m.Role) {
		return store.Member{}, fmt.Errorf("%w: the member's role %s is above yours", ErrForbidden, m.Role)
	}
	return s.store.UpdateMemberRole(ctx, org.ID, userID, role)
}

// RemoveMember removes a member ranked at most the caller.
func (s *Service) RemoveMember(ctx context.Context, id identity.Identity, userID string) error {
	org, m, err := s.member(ctx, id, userID)
	if err != nil {
		return err
	}
	if !id.Role.AtLeast(m.Role) {
		return fmt.Errorf("%w: the member's role %s is above yours", ErrForbidden, m.Role)
	}
	return s.store.RemoveMember(ctx, org.ID, userID)
}

func (s *Service) member(ctx context.Context, id identity.Identity, userID string) (store.Org, store.Member, error) {
	if userID == "" {
		return store.Org{}, store.Member{}, validate.Field("member", "required")
	}
	org, err := s.caller(ctx, id)
	if err != nil {
		return store.Org{}, store.Member{}, err
	}
	m, err := s.store.GetMember(ctx, org.ID, userID)
	if err != nil {
		return store.Org{}, store.Member{}, err
	}
	return org, m, nil
}

var tokenName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// CreateToken creates a token of at most the caller's role and returns its
// secret, which is never stored.
func (s *Service) CreateToken(ctx context.Context, id identity.Identity, name string, role identity.Role, expires time.Time) (store.Token, string, error) {
	p, err := principal(ctx)
	if err != nil {
		return store.Token{}, "", err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	if err := validate.First(
		func() error {
			if !tokenName.MatchString(name) {
				return validate.Field("name", "must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")
			}
			return nil
		}(),
		grantable(id, role),
		func() error {
			if !expires.IsZero() && !expires.After(now) {
				return validate.Field("expire_time", "must be in the future")
			}
			return nil
		}(),
	); err != nil {
		return store.Token{}, "", err
	}
	org, err := s.caller(ctx, id)
	if err != nil {
		return store.Token{}, "", err
	}
	tid, err := newID()
	if err != nil {
		return store.Token{}, "", err
	}
	secret, hash, err := authn.NewSecret()
	if err != nil {
		return store.Token{}, "", err
	}
	t := store.Token{ID: tid, OrgID: org.ID, Name: name, Role: role, Hash: hash, Creator: p.UserID, Created: now, Expires: expires.UTC().Truncate(time.Microsecond)}
	if err := s.store.CreateToken(ctx, t); err != nil {
		if errors.Is(err, store.ErrExists) {
			return store.Token{}, "", fmt.Errorf("%w: a token named %q", store.ErrExists, name)
		}
		return store.Token{}, "", fmt.Errorf("create token: %w", err)
	}
	return t, secret, nil
}

// ListTokens pages the org's tokens.
func (s *Service) ListTokens(ctx context.Context, id identity.Identity, size int32, token string) ([]store.Token, string, error) {
	org, err := s.caller(ctx, id)
	if err != nil {
		return nil, "", err
	}
	n, fp, after, err := pageArgs(size, token, org.ID)
	if err != nil {
		return nil, "", err
	}
	ts, err := s.store.ListTokens(ctx, org.ID, after, n+1)
	if err != nil {
		return nil, "", fmt.Errorf("list tokens: %w", err)
	}
	return page(ts, n, fp, func(t store.Token) string { return t.ID })
}

// RevokeToken revokes one of the org's tokens.
func (s *Service) RevokeToken(ctx context.Context, id identity.Identity, tokenID string) error {
	if tokenID == "" {
		return validate.Field("token", "required")
	}
	org, err := s.caller(ctx, id)
	if err != nil {
		return err
	}
	t, err := s.store.GetToken(ctx, org.ID, tokenID)
	if err != nil {
		return err
	}
	// Like members: nobody acts on a token ranked above them (an admin
	// revoking the owner's only token would lock the owner out).
	if !id.Role.AtLeast(t.Role) {
		return fmt.Errorf("%w: the token's role %s is above yours", ErrForbidden, t.Role)
	}
	return s.store.RevokeToken(ctx, org.ID, tokenID, s.now().UTC())
}

// ListAudit pages the org's audit log, newest first.
func (s *Service) ListAudit(ctx context.Context, id identity.Identity, f store.AuditFilter, size int32, token string) ([]store.AuditEvent, string, error) {
	org, err := s.caller(ctx, id)
	if err != nil {
		return nil, "", err
	}
	n, err := paging.Size(size)
	if err != nil {
		return nil, "", err
	}
	fp := paging.Fingerprint(org.ID, f.Actor, f.Action, f.Since.String())
	after, err := paging.Decode(token, fp)
	if err != nil {
		return nil, "", err
	}
	evs, err := s.store.ListAudit(ctx, org.ID, f, after, n+1)
	if err != nil {
		return nil, "", fmt.Errorf("list audit: %w", err)
	}
	if sa, ok := s.dependents.(ServiceAudit); ok {
		// Both lists are keyed by UUIDv7 ids, time-ordered: merged by id,
		// and paged by the last id shown, they read as one log.
		more, err := sa.ListServiceAudit(ctx, org.Name, f, after, n+1)
		if err != nil {
			return nil, "", fmt.Errorf("list audit: %w", err)
		}
		evs = mergeNewestFirst(evs, more, n+1)
	}
	return page(evs, n, fp, func(e store.AuditEvent) string { return e.ID })
}

// mergeNewestFirst merges two lists sorted by id, highest first, into at
// most limit events.
func mergeNewestFirst(a, b []store.AuditEvent, limit int) []store.AuditEvent {
	out := make([]store.AuditEvent, 0, min(len(a)+len(b), limit))
	for len(out) < limit && (len(a) > 0 || len(b) > 0) {
		if len(b) == 0 || (len(a) > 0 && a[0].ID > b[0].ID) {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return out
}

// RecordCreated appends the org's first audit event: its creation.
func (s *Service) RecordCreated(ctx context.Context, org store.Org, actor, tokenID, requestID string) error {
	id, err := newID()
	if err != nil {
		return err
	}
	return s.store.AppendAudit(ctx, store.AuditEvent{
		ID: id, OrgID: org.ID, Time: s.now().UTC(), Actor: actor, TokenID: tokenID,
		Action: "OrganizationsService/CreateOrganization", Target: "/api/v1/orgs", Result: 200, RequestID: requestID,
	})
}

func grantable(id identity.Identity, role identity.Role) error {
	switch {
	case !role.Valid():
		return validate.Field("role", "required: viewer, deployer, admin or owner")
	case !id.Role.AtLeast(role):
		return fmt.Errorf("%w: cannot grant %s, above your role %s", ErrForbidden, role, id.Role)
	}
	return nil
}

func pageArgs(size int32, token, scope string) (int, string, string, error) {
	n, err := paging.Size(size)
	if err != nil {
		return 0, "", "", err
	}
	fp := paging.Fingerprint(scope)
	after, err := paging.Decode(token, fp)
	return n, fp, after, err
}

// page trims a list fetched with one extra item and returns the next token.
func page[T any](items []T, n int, fp string, key func(T) string) ([]T, string, error) {
	if len(items) <= n {
		return items, "", nil
	}
	return items[:n], paging.Encode(key(items[n-1]), fp), nil
}
