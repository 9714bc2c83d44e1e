package edge

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/gateway/internal/oidc"
	"github.com/slipwayhq/slipway/pkg/oidctest"
)

// oidcAudience is the client id the tests' gateway accepts ID tokens for.
const oidcAudience = "slipway"

// oidcVerifierFor returns the gateway's real verifier for iss.
func oidcVerifierFor(t *testing.T, iss *oidctest.Issuer) *oidc.Verifier {
	t.Helper()
	v, err := oidc.New(t.Context(), oidc.Config{IssuerURL: iss.URL(), Audience: oidcAudience})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestOIDCAuthentication signs people in with ID tokens from a real local
// issuer, end to end through the edge: membership by invitation, the
// permission table, rejected tokens, and creating an org.
func TestOIDCAuthentication(t *testing.T) {
	iss := oidctest.NewIssuer(t)
	h := newHarness(t, harnessOptions{oidc: oidcVerifierFor(t, iss)})
	alice := iss.Token(t, "alice-sub", "alice@example.com", oidcAudience, time.Hour)

	t.Run("a stranger does not see the org", func(t *testing.T) {
		r := h.do(http.MethodGet, "/api/v1/orgs/acme/images", alice, "")
		if r.status != http.StatusNotFound || r.problem(t).Code != "not_found" {
			t.Fatalf("status %d body %s, want 404 not_found", r.status, r.body)
		}
	})

	t.Run("an invited viewer reads but does not write", func(t *testing.T) {
		r := h.do(http.MethodPost, "/api/v1/orgs/acme/members", h.owner, `{"email":"alice@example.com","role":"ROLE_VIEWER"}`)
		if r.status != http.StatusOK {
			t.Fatalf("invite: status %d: %s", r.status, r.body)
		}
		if r := h.do(http.MethodGet, "/api/v1/orgs/acme/images", alice, ""); r.status != http.StatusOK {
			t.Fatalf("GET images: status %d: %s", r.status, r.body)
		}
		r = h.do(http.MethodPost, "/api/v1/orgs/acme/images", alice, `{"name":"api","version":"1.0.0","reference":"ghcr.io/acme/api:1.0.0"}`)
		if r.status != http.StatusForbidden || r.problem(t).Code != "permission_denied" {
			t.Fatalf("POST images: status %d body %s, want 403 permission_denied", r.status, r.body)
		}
		ids := h.up.identities()
		if len(ids) != 1 || ids[0].Org != "acme" || ids[0].Subject == "" || ids[0].TokenID != "" {
			t.Errorf("the service saw identities %+v, want alice's GET only, as a user", ids)
		}
	})

	t.Run("the subject is bound to the invited email", func(t *testing.T) {
		// Carol is invited before she ever signs in: her first sign-in with
		// a verified email binds her subject to the invitation.
		r := h.do(http.MethodPost, "/api/v1/orgs/acme/members", h.owner, `{"email":"carol@example.com","role":"ROLE_DEPLOYER"}`)
		if r.status != http.StatusOK {
			t.Fatalf("invite: status %d: %s", r.status, r.body)
		}
		carol := iss.Token(t, "carol-sub", "carol@example.com", oidcAudience, time.Hour)
		r = h.do(http.MethodPost, "/api/v1/orgs/acme/images", carol, `{"name":"api","version":"1.0.0","reference":"ghcr.io/acme/api:1.0.0"}`)
		if r.status != http.StatusOK {
			t.Fatalf("carol's POST images: status %d: %s", r.status, r.body)
		}
		subjects := map[string]string{}
		for _, m := range listMembers(t, h, "acme", h.owner) {
			subjects[m.Email] = m.Subject
		}
		if subjects["alice@example.com"] != "alice-sub" || subjects["carol@example.com"] != "carol-sub" {
			t.Errorf("members' subjects by email = %v, want alice-sub and carol-sub bound", subjects)
		}
	})

	t.Run("an unverified email claims no invitation", func(t *testing.T) {
		r := h.do(http.MethodPost, "/api/v1/orgs/acme/members", h.owner, `{"email":"dave@example.com","role":"ROLE_ADMIN"}`)
		if r.status != http.StatusOK {
			t.Fatalf("invite: status %d: %s", r.status, r.body)
		}
		now := time.Now()
		mallory := iss.Sign(t, map[string]any{
			"iss": iss.URL(), "sub": "mallory-sub", "aud": oidcAudience, "email": "dave@example.com", "email_verified": false,
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		})
		if r := h.do(http.MethodGet, "/api/v1/orgs/acme/members", mallory, ""); r.status != http.StatusNotFound {
			t.Fatalf("unverified email: status %d body %s, want 404", r.status, r.body)
		}
		dave := iss.Token(t, "dave-sub", "dave@example.com", oidcAudience, time.Hour)
		if r := h.do(http.MethodGet, "/api/v1/orgs/acme/members", dave, ""); r.status != http.StatusOK {
			t.Fatalf("verified email after an unverified attempt: status %d: %s", r.status, r.body)
		}
		// Once bound, an invitation stays with its subject: another account
		// showing the same verified email is a stranger.
		other := iss.Token(t, "dave-other-sub", "dave@example.com", oidcAudience, time.Hour)
		if r := h.do(http.MethodGet, "/api/v1/orgs/acme/members", other, ""); r.status != http.StatusNotFound {
			t.Fatalf("a second subject with a bound email: status %d body %s, want 404", r.status, r.body)
		}
	})

	t.Run("tokens that do not verify are 401", func(t *testing.T) {
		now := time.Now()
		tests := []struct{ name, bearer string }{
			{"expired", iss.Token(t, "alice-sub", "alice@example.com", oidcAudience, -time.Minute)},
			{"wrong audience", iss.Token(t, "alice-sub", "alice@example.com", "someone-else", time.Hour)},
			{"foreign key", oidctest.SignWithForeignKey(t, map[string]any{
				"iss": iss.URL(), "sub": "alice-sub", "aud": oidcAudience, "email": "alice@example.com", "email_verified": true,
				"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
			})},
			{"other issuer", oidctest.NewIssuer(t).Token(t, "alice-sub", "alice@example.com", oidcAudience, time.Hour)},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := h.do(http.MethodGet, "/api/v1/orgs/acme/images", tc.bearer, "")
				if r.status != http.StatusUnauthorized || r.problem(t).Code != "unauthenticated" {
					t.Fatalf("status %d body %s, want 401 unauthenticated", r.status, r.body)
				}
			})
		}
	})

	t.Run("a user creates an org and owns it", func(t *testing.T) {
		r := h.do(http.MethodPost, orgsPath, alice, `{"name":"alices","display_name":"Alice's"}`)
		if r.status != http.StatusOK {
			t.Fatalf("create org: status %d: %s", r.status, r.body)
		}
		var names []string
		for _, o := range listOrganizations(t, h, alice) {
			names = append(names, o.Name)
		}
		if !slices.Equal(names, []string{"acme", "alices"}) {
			t.Errorf("alice lists organizations %v, want acme and alices", names)
		}
		if r := h.do(http.MethodGet, "/api/v1/orgs/alices", alice, ""); r.status != http.StatusOK {
			t.Fatalf("GET the new org: status %d: %s", r.status, r.body)
		}
		var alicesID string
		for _, m := range listMembers(t, h, "alices", alice) {
			if m.Subject != "alice-sub" || m.Role != "ROLE_OWNER" {
				t.Errorf("alices has member %+v, want only alice as owner", m)
			}
			alicesID = m.ID
		}
		var audit struct {
			Events []struct {
				Actor, Action, Target string
				Result                int
			}
		}
		getJSON(t, h, "/api/v1/orgs/alices/audit", alice, &audit)
		want := fmt.Sprintf("user:%s", alicesID)
		created := 0
		for _, e := range audit.Events {
			if e.Action == "OrganizationsService/CreateOrganization" {
				created++
				if e.Actor != want || e.Result != http.StatusOK || e.Target != orgsPath {
					t.Errorf("creation event %+v, want actor %s, result 200, target %s", e, want, orgsPath)
				}
			}
		}
		if created != 1 {
			t.Errorf("the new org's audit log has %d creation events, want 1: %+v", created, audit.Events)
		}
		// Acme's log does not tell of alice's new org.
		var acmeAudit struct{ Events []struct{ Target string } }
		getJSON(t, h, "/api/v1/orgs/acme/audit?action=OrganizationsService/CreateOrganization", h.owner, &acmeAudit)
		if len(acmeAudit.Events) != 1 {
			t.Errorf("acme's audit log has %d creation events, want its own bootstrap only", len(acmeAudit.Events))
		}
	})
}
