package edge

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/gateway/internal/authz"
	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/oidctest"
)

// orgLessOperations are the only operations not scoped to an organization,
// with why each is safe without one. Every other operation must name {org}
// as the first segment after /api/v1/orgs/, where the edge resolves it;
// TestCrossTenantMatrixCoversEveryRoute fails on a route that does neither,
// so a new route cannot ship without cross-tenant coverage.
var orgLessOperations = map[string]string{
	// Creates a new org owned by the caller; reads no other org's data.
	"OrganizationsService_CreateOrganization": "creates an org owned by the caller",
	// Lists the caller's own orgs; TestCrossTenantMatrix checks that globex
	// sees only globex.
	"OrganizationsService_ListOrganizations": "lists the caller's own orgs",
}

const (
	deleteOrganization = "OrganizationsService_DeleteOrganization"
	createOrganization = "OrganizationsService_CreateOrganization"
)

// sortedOperations returns the OpenAPI document's operations in a stable
// order, DeleteOrganization last: should a call wrongly succeed, it would
// take the org and its data with it and leave the calls after it vacuous.
func sortedOperations(t *testing.T) []authz.Operation {
	t.Helper()
	ops, err := authz.Operations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) == 0 {
		t.Fatal("the OpenAPI document has no operations")
	}
	slices.SortFunc(ops, func(a, b authz.Operation) int {
		if da, db := a.ID == deleteOrganization, b.ID == deleteOrganization; da != db {
			if da {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method)
	})
	if ops[len(ops)-1].ID != deleteOrganization {
		t.Fatalf("the OpenAPI document has no %s", deleteOrganization)
	}
	return ops
}

func orgScoped(op authz.Operation) bool { return strings.Contains(op.Path, "{org}") }

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// concretePath fills a route template's parameters from values; a parameter
// without a value is an error, so a new route's parameters get a deliberate
// value rather than a silent placeholder.
func concretePath(template string, values map[string]string) (string, error) {
	var missing []string
	path := pathParam.ReplaceAllStringFunc(template, func(m string) string {
		name := m[1 : len(m)-1]
		v, ok := values[name]
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("%s: no value for path parameters %v", template, missing)
	}
	return path, nil
}

// sendOperation calls op on path: "{}" as the body of the methods that take
// one.
func sendOperation(h *harness, op authz.Operation, path, bearer string) response {
	h.t.Helper()
	body := ""
	switch op.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		body = "{}"
	}
	return h.do(op.Method, path, bearer, body)
}

// acmeData is what org acme holds, created through the API, so that a leak
// of any of it to another org would show.
type acmeData struct {
	orgID            string
	ownerID          string // the bootstrap owner's member id
	memberID         string // an invited deployer
	tokenID          string // a token created through the API
	tokenSecret      string
	bootstrapTokenID string
	imageName        string
	imageVersion     string
	imageReference   string
}

// secrets are the strings no answer to another org may contain.
func (a acmeData) secrets(ownerSecret string) []string {
	return []string{ownerSecret, a.tokenSecret, a.orgID, a.ownerID, a.memberID, a.tokenID, a.bootstrapTokenID, a.imageReference}
}

// pathValues names acme's real resources where a parameter names a member,
// token or image, and plausible names elsewhere.
func (a acmeData) pathValues(org string) map[string]string {
	return map[string]string{
		"org":              org,
		"member":           a.memberID,
		"token":            a.tokenID,
		"name":             a.imageName, // an image's name, and a deployment's
		"version":          a.imageVersion,
		"application":      "web",
		"application.name": "web",
		"instance":         "pr-42",
		"target":           "staging",
		"cluster":          "prod",
		"credential":       "registry-creds",
		"repository":       "bitnami",
		"chart":            "nginx",
		"operation":        "0190a6c4-7d1e-7c3a-9b1f-2a4c5d6e7f80",
		"digest":           "sha256:" + strings.Repeat("ab", 32),
	}
}

// seedAcme gives acme an image, an invited member and an API token, all
// through the REST API as acme's owner.
func seedAcme(t *testing.T, h *harness) acmeData {
	t.Helper()
	a := acmeData{imageName: "billing", imageVersion: "3.1.4", imageReference: "ghcr.io/acme/billing@sha256:5e1f0c"}
	org, err := h.store.GetOrgByName(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	a.orgID = org.ID

	r := h.do(http.MethodPost, "/api/v1/orgs/acme/images", h.owner,
		fmt.Sprintf(`{"name":%q,"version":%q,"reference":%q}`, a.imageName, a.imageVersion, a.imageReference))
	if r.status != http.StatusOK {
		t.Fatalf("create image: status %d: %s", r.status, r.body)
	}
	var m struct{ Member struct{ ID string } }
	r = h.do(http.MethodPost, "/api/v1/orgs/acme/members", h.owner, `{"email":"bob@acme.example","role":"ROLE_DEPLOYER"}`)
	if r.status != http.StatusOK || json.Unmarshal(r.body, &m) != nil || m.Member.ID == "" {
		t.Fatalf("add member: status %d: %s", r.status, r.body)
	}
	a.memberID = m.Member.ID
	tok := createToken(t, h, "acme", h.owner, `{"name":"ci","role":"ROLE_DEPLOYER"}`)
	a.tokenID, a.tokenSecret = tok.Token.ID, tok.Secret

	for _, tk := range listTokens(t, h, "acme", h.owner) {
		if tk.Name == "bootstrap" {
			a.bootstrapTokenID = tk.ID
		}
	}
	for _, mb := range listMembers(t, h, "acme", h.owner) {
		if mb.Role == "ROLE_OWNER" {
			a.ownerID = mb.ID
		}
	}
	if a.bootstrapTokenID == "" || a.ownerID == "" {
		t.Fatalf("acme's bootstrap token %q or owner %q not listed", a.bootstrapTokenID, a.ownerID)
	}
	return a
}

// checkIntact fails t unless acme still holds what seedAcme gave it, as its
// owner sees it.
func (a acmeData) checkIntact(t *testing.T, h *harness) {
	t.Helper()
	var org struct{ Organization orgJSON }
	getJSON(t, h, "/api/v1/orgs/acme", h.owner, &org)
	if org.Organization.DisplayName != "acme" {
		t.Errorf("acme's display name is now %q", org.Organization.DisplayName)
	}
	r := h.do(http.MethodGet, "/api/v1/orgs/acme/images", h.owner, "")
	if r.status != http.StatusOK || !strings.Contains(string(r.body), a.imageReference) {
		t.Errorf("acme's images: status %d: %s", r.status, r.body)
	}
	members := map[string]string{}
	for _, m := range listMembers(t, h, "acme", h.owner) {
		members[m.ID] = m.Role
	}
	if members[a.ownerID] != "ROLE_OWNER" || members[a.memberID] != "ROLE_DEPLOYER" {
		t.Errorf("acme's members are now %v", members)
	}
	for _, tok := range listTokens(t, h, "acme", h.owner) {
		if tok.ID == a.tokenID && tok.RevokeTime != "" {
			t.Errorf("acme's token %s was revoked", a.tokenID)
		}
	}
	if r := h.do(http.MethodGet, "/api/v1/orgs/acme/images", a.tokenSecret, ""); r.status != http.StatusOK {
		t.Errorf("acme's token: status %d", r.status)
	}
}

// TestCrossTenantMatrix calls every org-scoped operation of the OpenAPI
// document on org acme as the owner of another org, globex, and expects the
// answer of an org that does not exist: 404 not_found, with nothing of acme
// in it, nothing reaching a service and acme unchanged. The callers: a
// globex owner's API token, a globex owner signed in with OIDC (a user,
// resolved by membership), and a globex token of a person who also owns
// acme (a token is bound to its org).
func TestCrossTenantMatrix(t *testing.T) {
	iss := oidctest.NewIssuer(t)
	h := newHarness(t, harnessOptions{oidc: oidcVerifierFor(t, iss)})
	acme := seedAcme(t, h)

	_, globexToken := h.member("globex", identity.RoleOwner)
	r := h.do(http.MethodPost, "/api/v1/orgs/globex/members", globexToken, `{"email":"gina@globex.example","role":"ROLE_OWNER"}`)
	if r.status != http.StatusOK {
		t.Fatalf("invite globex's second owner: status %d: %s", r.status, r.body)
	}
	ginaJWT := iss.Token(t, "gina", "gina@globex.example", oidcAudience, time.Hour)
	if r := h.do(http.MethodGet, "/api/v1/orgs/globex", ginaJWT, ""); r.status != http.StatusOK {
		t.Fatalf("globex's OIDC owner on globex: status %d: %s", r.status, r.body)
	}
	// Hank is in both orgs; a token he made in globex is globex's alone.
	for _, in := range []struct{ org, owner string }{{"globex", globexToken}, {"acme", h.owner}} {
		r := h.do(http.MethodPost, "/api/v1/orgs/"+in.org+"/members", in.owner, `{"email":"hank@example.com","role":"ROLE_OWNER"}`)
		if r.status != http.StatusOK {
			t.Fatalf("invite hank to %s: status %d: %s", in.org, r.status, r.body)
		}
	}
	hankJWT := iss.Token(t, "hank", "hank@example.com", oidcAudience, time.Hour)
	hankToken := createToken(t, h, "globex", hankJWT, `{"name":"hank-ci","role":"ROLE_OWNER"}`).Secret

	callers := []struct{ name, bearer string }{
		{"globex owner token", globexToken},
		{"globex owner user", ginaJWT},
		{"globex token of an acme owner", hankToken},
	}
	values := acme.pathValues("acme")
	secrets := acme.secrets(h.owner)
	seen := len(h.up.identities())
	for _, op := range sortedOperations(t) {
		if !orgScoped(op) {
			continue
		}
		for _, c := range callers {
			t.Run(op.ID+"/"+c.name, func(t *testing.T) {
				path, err := concretePath(op.Path, values)
				if err != nil {
					t.Fatal(err)
				}
				r := sendOperation(h, op, path, c.bearer)
				if r.status != http.StatusNotFound {
					t.Fatalf("%s %s: status %d, want 404 as for a missing org; body %s", op.Method, path, r.status, r.body)
				}
				if op.Method != http.MethodHead {
					if p := r.problem(t); p.Code != "not_found" {
						t.Errorf("%s %s: problem code %q, want not_found", op.Method, path, p.Code)
					}
				}
				for _, s := range secrets {
					if strings.Contains(string(r.body), s) {
						t.Errorf("%s %s: answer holds acme's %q: %s", op.Method, path, s, r.body)
					}
				}
			})
		}
	}
	for _, id := range h.up.identities()[seen:] {
		t.Errorf("a service saw identity %+v from globex's calls on acme", id)
	}
	acme.checkIntact(t, h)

	// The org-less operations answer only about the caller's own orgs.
	for _, c := range callers {
		var got []string
		for _, o := range listOrganizations(t, h, c.bearer) {
			got = append(got, o.Name)
		}
		if !slices.Equal(got, []string{"globex"}) {
			t.Errorf("%s lists organizations %v, want only globex", c.name, got)
		}
	}
}

// TestCrossTenantMatrixCoversEveryRoute fails on a route that
// TestCrossTenantMatrix would not cover: one that is neither scoped to
// {org} where the edge resolves it nor in orgLessOperations.
func TestCrossTenantMatrixCoversEveryRoute(t *testing.T) {
	ops := sortedOperations(t)
	placeholders := acmeData{memberID: "m", tokenID: "t", imageName: "n", imageVersion: "v"}.pathValues("acme")
	served := map[string]bool{}
	for _, op := range ops {
		served[op.ID] = true
		if !strings.HasPrefix(op.Path, orgsPath) {
			t.Errorf("%s %s (%s) is outside %s, which the edge does not route", op.Method, op.Path, op.ID, orgsPath)
		}
		if !orgScoped(op) {
			if _, ok := orgLessOperations[op.ID]; !ok {
				t.Errorf("%s %s (%s) names no {org} and is not in orgLessOperations: scope it to an org or justify it there",
					op.Method, op.Path, op.ID)
			}
			continue
		}
		// The edge resolves the org from the first segment after
		// /api/v1/orgs/; an {org} anywhere else would not be checked.
		if op.Path != orgsPath+"/{org}" && !strings.HasPrefix(op.Path, orgsPath+"/{org}/") {
			t.Errorf("%s %s (%s) names {org} where the edge does not resolve it", op.Method, op.Path, op.ID)
		}
		if _, err := concretePath(op.Path, placeholders); err != nil {
			t.Errorf("%s (%s): give the parameter a value in acmeData.pathValues: %v", op.ID, op.Method, err)
		}
	}
	for id := range orgLessOperations {
		switch {
		case !served[id]:
			t.Errorf("orgLessOperations names %s, which no route serves", id)
		case authz.Table[id] != authz.Any:
			t.Errorf("orgLessOperations names %s, which the permission table gives role %q, not Any", id, authz.Table[id])
		}
	}
	for _, op := range ops {
		if orgScoped(op) {
			if _, ok := orgLessOperations[op.ID]; ok {
				t.Errorf("orgLessOperations names %s, which is scoped to {org}", op.ID)
			}
		}
	}
}

// allowedAnswers is what an allowed call answers in the harness, where the
// gateway's own services are real and the registry stand-in keeps images:
// "{}" bodies lack required fields (400); {member} and {token} name a fresh
// viewer and a fresh token. Every other operation reaches a stand-in RPC
// that answers Unimplemented (501).
var allowedAnswers = map[string]int{
	createOrganization:                        http.StatusBadRequest,
	"OrganizationsService_ListOrganizations":  http.StatusOK,
	"OrganizationsService_GetOrganization":    http.StatusOK,
	"OrganizationsService_UpdateOrganization": http.StatusOK,
	deleteOrganization:                        http.StatusOK,
	"MembersService_AddMember":                http.StatusBadRequest,
	"MembersService_ListMembers":              http.StatusOK,
	"MembersService_UpdateMember":             http.StatusBadRequest,
	"MembersService_RemoveMember":             http.StatusOK,
	"TokensService_CreateToken":               http.StatusBadRequest,
	"TokensService_ListTokens":                http.StatusOK,
	"TokensService_RevokeToken":               http.StatusOK,
	"AuditService_ListAuditEvents":            http.StatusOK,
	"RegistryService_CreateImage":             http.StatusOK,
	"RegistryService_ListImages":              http.StatusOK,
}

// upstreamRecorded are the stand-in RPCs that record the identity they get.
var upstreamRecorded = map[string]bool{"RegistryService_CreateImage": true, "RegistryService_ListImages": true}

// TestRoleMatrix calls every operation as every role of org acme, each with
// its own API token, and checks the answer against the permission table: a
// denied call is refused by the edge with 403 permission_denied before any
// service sees it; an allowed call reaches its service.
func TestRoleMatrix(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	roles := []identity.Role{identity.RoleViewer, identity.RoleDeployer, identity.RoleAdmin, identity.RoleOwner}
	tokens := map[identity.Role]string{}
	for _, role := range roles {
		_, tokens[role] = h.member("acme", role)
	}
	victims := 0
	values := func(t *testing.T, op authz.Operation) map[string]string {
		v := acmeData{imageName: "api", imageVersion: "1.0.0"}.pathValues("acme")
		// Fresh targets, so a call that reaches the service succeeds
		// instead of being refused for a reason of its own.
		if strings.Contains(op.Path, "{member}") {
			v["member"], _ = h.member("acme", identity.RoleViewer)
		}
		if strings.Contains(op.Path, "{token}") {
			victims++
			v["token"] = createToken(t, h, "acme", h.owner, fmt.Sprintf(`{"name":"victim-%d","role":"ROLE_VIEWER"}`, victims)).Token.ID
		}
		return v
	}
	check := func(t *testing.T, op authz.Operation, role identity.Role) {
		path, err := concretePath(op.Path, values(t, op))
		if err != nil {
			t.Fatal(err)
		}
		seen := len(h.up.identities())
		r := sendOperation(h, op, path, tokens[role])
		ids := h.up.identities()[seen:]
		// Only the registry stand-in records callers; elsewhere a refused
		// call that reached its service would show as the service's
		// answer (allowedAnswers), never 403.
		if !authz.Allowed(op.ID, role) {
			if r.status != http.StatusForbidden {
				t.Fatalf("%s %s as %s: status %d, want 403; body %s", op.Method, path, role, r.status, r.body)
			}
			if op.Method != http.MethodHead {
				if p := r.problem(t); p.Code != "permission_denied" {
					t.Errorf("%s %s as %s: problem code %q, want permission_denied", op.Method, path, role, p.Code)
				}
			}
			if len(ids) != 0 {
				t.Errorf("%s %s as %s was refused but reached the service as %+v", op.Method, path, role, ids)
			}
			return
		}
		// The permission table lets any caller create an org, but the orgs
		// service allows only owner tokens to: by design, an API token of
		// a lesser role must not mint an org its creator would own.
		if op.ID == createOrganization && role != identity.RoleOwner {
			if p := r.problem(t); r.status != http.StatusForbidden || p.Code != "permission_denied" {
				t.Errorf("create org with a %s token: status %d code %q, want 403 permission_denied from the service", role, r.status, p.Code)
			}
			return
		}
		want, ok := allowedAnswers[op.ID]
		if !ok {
			want = http.StatusNotImplemented
		}
		if r.status != want {
			t.Fatalf("%s %s as %s: status %d, want %d; body %s", op.Method, path, role, r.status, want, r.body)
		}
		if upstreamRecorded[op.ID] && (len(ids) != 1 || ids[0].Org != "acme" || ids[0].Role != role) {
			t.Errorf("%s %s as %s: the service saw identities %+v, want one in acme as %s", op.Method, path, role, ids, role)
		}
	}

	// Deleting the org succeeds for the owner only: it comes last, and
	// the owner, least privileged first, last of all.
	for _, op := range sortedOperations(t) {
		for _, role := range roles {
			t.Run(op.ID+"/"+string(role), func(t *testing.T) { check(t, op, role) })
		}
	}
	if _, err := h.store.GetOrgByName(t.Context(), "acme"); err == nil {
		t.Error("acme still exists after its owner deleted it")
	}
}

// Shapes of the gateway's JSON answers the tests read.
type (
	tokenJSON struct {
		ID           string `json:"id"`
		Name         string `json:"name"`
		Role         string `json:"role"`
		Creator      string `json:"creator"`
		CreateTime   string `json:"create_time"`
		ExpireTime   string `json:"expire_time"`
		LastUsedTime string `json:"last_used_time"`
		RevokeTime   string `json:"revoke_time"`
	}
	createdTokenJSON struct {
		Token  tokenJSON `json:"token"`
		Secret string    `json:"secret"`
	}
	memberJSON struct {
		ID      string `json:"id"`
		Email   string `json:"email"`
		Subject string `json:"subject"`
		Role    string `json:"role"`
	}
	orgJSON struct {
		Name        string `json:"name"`
		DisplayName string `json:"display_name"`
	}
)

// createToken creates a token in org as bearer, which must succeed.
func createToken(t *testing.T, h *harness, org, bearer, body string) createdTokenJSON {
	t.Helper()
	r := h.do(http.MethodPost, "/api/v1/orgs/"+org+"/tokens", bearer, body)
	var out createdTokenJSON
	if r.status != http.StatusOK || json.Unmarshal(r.body, &out) != nil || out.Token.ID == "" || out.Secret == "" {
		t.Fatalf("create token %s in %s: status %d: %s", body, org, r.status, r.body)
	}
	return out
}

func listTokens(t *testing.T, h *harness, org, bearer string) []tokenJSON {
	t.Helper()
	var out struct{ Tokens []tokenJSON }
	getJSON(t, h, "/api/v1/orgs/"+org+"/tokens", bearer, &out)
	return out.Tokens
}

func listMembers(t *testing.T, h *harness, org, bearer string) []memberJSON {
	t.Helper()
	var out struct{ Members []memberJSON }
	getJSON(t, h, "/api/v1/orgs/"+org+"/members", bearer, &out)
	return out.Members
}

func listOrganizations(t *testing.T, h *harness, bearer string) []orgJSON {
	t.Helper()
	var out struct{ Organizations []orgJSON }
	getJSON(t, h, orgsPath, bearer, &out)
	return out.Organizations
}

// getJSON GETs path, which must answer 200, into v.
func getJSON(t *testing.T, h *harness, path, bearer string, v any) {
	t.Helper()
	r := h.do(http.MethodGet, path, bearer, "")
	if r.status != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", path, r.status, r.body)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, r.body)
	}
}
