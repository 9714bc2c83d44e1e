package edge

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/gateway/internal/authn"
	"github.com/slipwayhq/slipway/pkg/identity"
)

const imagesPath = "/api/v1/orgs/acme/images"

// wantProblem fails t unless r is a problem with status and code.
func wantProblem(t *testing.T, what string, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d %s; body %s", what, r.status, status, code, r.body)
	}
	if p := r.problem(t); p.Code != code {
		t.Fatalf("%s: problem code %q, want %q; body %s", what, p.Code, code, r.body)
	}
}

// TestTokenLifecycle creates, uses, lists, expires and revokes API tokens
// through the REST API only.
func TestTokenLifecycle(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	var ownerID string
	for _, m := range listMembers(t, h, "acme", h.owner) {
		ownerID = m.ID
	}

	ci := createToken(t, h, "acme", h.owner, `{"name":"ci","role":"ROLE_DEPLOYER"}`)
	t.Run("create answers the secret and the metadata", func(t *testing.T) {
		if !strings.HasPrefix(ci.Secret, authn.TokenPrefix) {
			t.Errorf("secret %q does not start with %q", ci.Secret, authn.TokenPrefix)
		}
		tok := ci.Token
		if tok.Name != "ci" || tok.Role != "ROLE_DEPLOYER" || tok.Creator != ownerID || tok.CreateTime == "" ||
			tok.ExpireTime != "" || tok.LastUsedTime != "" || tok.RevokeTime != "" {
			t.Errorf("token = %+v, want ci, deployer, created by %s, never used, expiring or revoked", tok, ownerID)
		}
	})

	t.Run("the secret works", func(t *testing.T) {
		if r := h.do(http.MethodGet, imagesPath, ci.Secret, ""); r.status != http.StatusOK {
			t.Fatalf("GET images: status %d: %s", r.status, r.body)
		}
		if r := h.do(http.MethodPost, imagesPath, ci.Secret, `{"name":"api","version":"1.0.0","reference":"ghcr.io/acme/api:1.0.0"}`); r.status != http.StatusOK {
			t.Fatalf("POST images as deployer: status %d: %s", r.status, r.body)
		}
	})

	t.Run("the listing holds no secret and shows use", func(t *testing.T) {
		r := h.do(http.MethodGet, "/api/v1/orgs/acme/tokens", h.owner, "")
		if r.status != http.StatusOK {
			t.Fatalf("GET tokens: status %d: %s", r.status, r.body)
		}
		hash := authn.HashSecret(ci.Secret)
		for _, leak := range []string{ci.Secret, h.owner, hex.EncodeToString(hash), base64.StdEncoding.EncodeToString(hash),
			base64.RawURLEncoding.EncodeToString(hash), `"hash"`, `"secret"`} {
			if strings.Contains(string(r.body), leak) {
				t.Errorf("token listing holds %q: %s", leak, r.body)
			}
		}
		var found bool
		for _, tok := range listTokens(t, h, "acme", h.owner) {
			if tok.ID == ci.Token.ID {
				found = true
				if tok.LastUsedTime == "" || tok.Name != "ci" || tok.Role != "ROLE_DEPLOYER" {
					t.Errorf("listed token %+v, want ci with a last use", tok)
				}
			}
		}
		if !found {
			t.Errorf("token %s not listed", ci.Token.ID)
		}
	})

	t.Run("a deployer creates no token", func(t *testing.T) {
		// Tokens need admin: the edge refuses whatever role is asked for.
		for _, role := range []string{"ROLE_ADMIN", "ROLE_DEPLOYER", "ROLE_VIEWER"} {
			r := h.do(http.MethodPost, "/api/v1/orgs/acme/tokens", ci.Secret, fmt.Sprintf(`{"name":"x","role":%q}`, role))
			wantProblem(t, "deployer creates a "+role+" token", r, http.StatusForbidden, "permission_denied")
		}
	})

	t.Run("an admin mints no owner token", func(t *testing.T) {
		_, admin := h.member("acme", identity.RoleAdmin)
		r := h.do(http.MethodPost, "/api/v1/orgs/acme/tokens", admin, `{"name":"root","role":"ROLE_OWNER"}`)
		wantProblem(t, "admin creates an owner token", r, http.StatusForbidden, "permission_denied")
		createToken(t, h, "acme", admin, `{"name":"admin-made","role":"ROLE_ADMIN"}`)
	})

	t.Run("an expired token is 401", func(t *testing.T) {
		expires := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339Nano)
		short := createToken(t, h, "acme", h.owner, fmt.Sprintf(`{"name":"short","role":"ROLE_VIEWER","expire_time":%q}`, expires))
		if short.Token.ExpireTime == "" {
			t.Errorf("token %+v has no expire_time", short.Token)
		}
		if r := h.do(http.MethodGet, imagesPath, short.Secret, ""); r.status != http.StatusOK {
			t.Fatalf("before expiry: status %d: %s", r.status, r.body)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			r := h.do(http.MethodGet, imagesPath, short.Secret, "")
			if r.status == http.StatusUnauthorized {
				wantProblem(t, "after expiry", r, http.StatusUnauthorized, "unauthenticated")
				break
			}
			if r.status != http.StatusOK {
				t.Fatalf("while expiring: status %d: %s", r.status, r.body)
			}
			if time.Now().After(deadline) {
				t.Fatal("the token still works 10s after it was due to expire")
			}
			time.Sleep(50 * time.Millisecond)
		}
		r := h.do(http.MethodPost, "/api/v1/orgs/acme/tokens", h.owner, `{"name":"stale","role":"ROLE_VIEWER","expire_time":"2001-01-01T00:00:00Z"}`)
		wantProblem(t, "create an already expired token", r, http.StatusBadRequest, "invalid_argument")
	})

	t.Run("a revoked token is 401 at once", func(t *testing.T) {
		doomed := createToken(t, h, "acme", h.owner, `{"name":"doomed","role":"ROLE_VIEWER"}`)
		if r := h.do(http.MethodGet, imagesPath, doomed.Secret, ""); r.status != http.StatusOK {
			t.Fatalf("before revocation: status %d: %s", r.status, r.body)
		}
		for i := range 2 { // revoking twice is fine
			if r := h.do(http.MethodDelete, "/api/v1/orgs/acme/tokens/"+doomed.Token.ID, h.owner, ""); r.status != http.StatusOK {
				t.Fatalf("revoke #%d: status %d: %s", i+1, r.status, r.body)
			}
			wantProblem(t, "after revocation", h.do(http.MethodGet, imagesPath, doomed.Secret, ""), http.StatusUnauthorized, "unauthenticated")
		}
		for _, tok := range listTokens(t, h, "acme", h.owner) {
			if tok.ID == doomed.Token.ID && tok.RevokeTime == "" {
				t.Errorf("revoked token listed without revoke_time: %+v", tok)
			}
		}
		if r := h.do(http.MethodGet, imagesPath, ci.Secret, ""); r.status != http.StatusOK {
			t.Errorf("another token after a revocation: status %d", r.status)
		}
	})

	t.Run("another org's token is not found", func(t *testing.T) {
		_, globex := h.member("globex", identity.RoleOwner)
		theirs := createToken(t, h, "globex", globex, `{"name":"ci","role":"ROLE_DEPLOYER"}`)
		r := h.do(http.MethodDelete, "/api/v1/orgs/acme/tokens/"+theirs.Token.ID, h.owner, "")
		wantProblem(t, "revoke globex's token in acme", r, http.StatusNotFound, "not_found")
		wantProblem(t, "revoke a made-up token", h.do(http.MethodDelete, "/api/v1/orgs/acme/tokens/no-such-token", h.owner, ""),
			http.StatusNotFound, "not_found")
		if r := h.do(http.MethodGet, "/api/v1/orgs/globex/images", theirs.Secret, ""); r.status != http.StatusOK {
			t.Errorf("globex's token after acme tried to revoke it: status %d", r.status)
		}
	})
}

// TestTokenFollowsItsCreator: a token acts for its creator, so it stops
// working when the creator leaves the org and is capped by the creator's
// current role.
func TestTokenFollowsItsCreator(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	image := `{"name":"api","version":"%d.0.0","reference":"ghcr.io/acme/api:%d.0.0"}`

	t.Run("removed creator", func(t *testing.T) {
		userID, admin := h.member("acme", identity.RoleAdmin)
		tok := createToken(t, h, "acme", admin, `{"name":"leaver","role":"ROLE_DEPLOYER"}`)
		if r := h.do(http.MethodGet, imagesPath, tok.Secret, ""); r.status != http.StatusOK {
			t.Fatalf("before removal: status %d: %s", r.status, r.body)
		}
		if r := h.do(http.MethodDelete, "/api/v1/orgs/acme/members/"+userID, h.owner, ""); r.status != http.StatusOK {
			t.Fatalf("remove member: status %d: %s", r.status, r.body)
		}
		wantProblem(t, "the removed member's token", h.do(http.MethodGet, imagesPath, tok.Secret, ""), http.StatusUnauthorized, "unauthenticated")
		wantProblem(t, "the removed member's own token", h.do(http.MethodGet, imagesPath, admin, ""), http.StatusUnauthorized, "unauthenticated")
	})

	t.Run("demoted creator", func(t *testing.T) {
		userID, admin := h.member("acme", identity.RoleAdmin)
		tok := createToken(t, h, "acme", admin, `{"name":"demoted","role":"ROLE_DEPLOYER"}`)
		if r := h.do(http.MethodPost, imagesPath, tok.Secret, fmt.Sprintf(image, 1, 1)); r.status != http.StatusOK {
			t.Fatalf("POST images before demotion: status %d: %s", r.status, r.body)
		}
		if r := h.do(http.MethodPatch, "/api/v1/orgs/acme/members/"+userID, h.owner, `{"role":"ROLE_VIEWER"}`); r.status != http.StatusOK {
			t.Fatalf("demote: status %d: %s", r.status, r.body)
		}
		seen := len(h.up.identities())
		wantProblem(t, "POST images after demotion", h.do(http.MethodPost, imagesPath, tok.Secret, fmt.Sprintf(image, 2, 2)),
			http.StatusForbidden, "permission_denied")
		if r := h.do(http.MethodGet, imagesPath, tok.Secret, ""); r.status != http.StatusOK {
			t.Fatalf("GET images after demotion: status %d: %s", r.status, r.body)
		}
		if ids := h.up.identities()[seen:]; len(ids) != 1 || ids[0].Role != identity.RoleViewer {
			t.Errorf("after demotion the service saw %+v, want the GET only, as viewer", ids)
		}
	})
}

// TestMembersKeepAnOwner: an org always keeps an owner, and an admin cannot
// act on one.
func TestMembersKeepAnOwner(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	var ownerID string
	for _, m := range listMembers(t, h, "acme", h.owner) {
		if m.Role == "ROLE_OWNER" {
			ownerID = m.ID
		}
	}
	member := "/api/v1/orgs/acme/members/" + ownerID

	wantProblem(t, "remove the last owner", h.do(http.MethodDelete, member, h.owner, ""), http.StatusConflict, "failed_precondition")
	wantProblem(t, "demote the last owner", h.do(http.MethodPatch, member, h.owner, `{"role":"ROLE_ADMIN"}`), http.StatusConflict, "failed_precondition")

	_, admin := h.member("acme", identity.RoleAdmin)
	wantProblem(t, "admin removes an owner", h.do(http.MethodDelete, member, admin, ""), http.StatusForbidden, "permission_denied")
	wantProblem(t, "admin demotes an owner", h.do(http.MethodPatch, member, admin, `{"role":"ROLE_VIEWER"}`), http.StatusForbidden, "permission_denied")
	wantProblem(t, "admin promotes to owner", h.do(http.MethodPost, "/api/v1/orgs/acme/members", admin, `{"email":"eve@example.com","role":"ROLE_OWNER"}`),
		http.StatusForbidden, "permission_denied")

	// With a second owner, the first may step down.
	secondID, second := h.member("acme", identity.RoleOwner)
	if r := h.do(http.MethodPatch, member, second, `{"role":"ROLE_ADMIN"}`); r.status != http.StatusOK {
		t.Fatalf("demote an owner with another left: status %d: %s", r.status, r.body)
	}
	wantProblem(t, "remove the new last owner", h.do(http.MethodDelete, "/api/v1/orgs/acme/members/"+secondID, second, ""),
		http.StatusConflict, "failed_precondition")
	for _, m := range listMembers(t, h, "acme", second) {
		if m.ID == secondID && m.Role != "ROLE_OWNER" {
			t.Errorf("the last owner is now %s", m.Role)
		}
	}
}

// TestNobodyRevokesAboveTheirRole: an admin must not revoke an owner's
// token (the bootstrap owner's is their only way in).
func TestNobodyRevokesAboveTheirRole(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	_, admin := h.member("acme", identity.RoleAdmin)
	var tokens struct {
		Tokens []struct {
			ID, Name string
		}
	}
	getJSON(t, h, "/api/v1/orgs/acme/tokens", h.owner, &tokens)
	var bootstrap string
	for _, tk := range tokens.Tokens {
		if tk.Name == "bootstrap" {
			bootstrap = tk.ID
		}
	}
	if bootstrap == "" {
		t.Fatalf("no bootstrap token in %+v", tokens)
	}
	wantProblem(t, "admin revokes the owner's token", h.do(http.MethodDelete, "/api/v1/orgs/acme/tokens/"+bootstrap, admin, ""),
		http.StatusForbidden, "permission_denied")
	if r := h.do(http.MethodGet, imagesPath, h.owner, ""); r.status != http.StatusOK {
		t.Fatalf("owner locked out: status %d", r.status)
	}
	own := createToken(t, h, "acme", admin, `{"name":"mine","role":"ROLE_ADMIN"}`)
	if r := h.do(http.MethodDelete, "/api/v1/orgs/acme/tokens/"+own.Token.ID, admin, ""); r.status != http.StatusOK {
		t.Errorf("admin revokes an admin token: status %d: %s", r.status, r.body)
	}
}

// TestTokenListsItsOwnOrgWhateverThePage: a token sees its org even when
// its creator belongs to more orgs than fit a page, sorted before it.
func TestTokenListsItsOwnOrgWhateverThePage(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	for _, name := range []string{"aaa", "aab"} {
		if r := h.do(http.MethodPost, orgsPath, h.owner, `{"name":"`+name+`"}`); r.status != http.StatusOK {
			t.Fatalf("create %s: status %d: %s", name, r.status, r.body)
		}
	}
	var out struct {
		Organizations []struct{ Name string }
		NextPageToken string `json:"next_page_token"`
	}
	getJSON(t, h, orgsPath+"?page_size=1", h.owner, &out)
	if len(out.Organizations) != 1 || out.Organizations[0].Name != "acme" || out.NextPageToken != "" {
		t.Errorf("token's orgs = %+v, want just acme on one page", out)
	}
}
