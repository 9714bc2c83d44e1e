package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/slipwayhq/slipway/gateway/internal/authn"
	"github.com/slipwayhq/slipway/gateway/internal/store"
	"github.com/slipwayhq/slipway/pkg/grpcerr"
	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/validate"
)

const imageBody = `{"name":"api","version":"1.0.0","reference":"ghcr.io/acme/api:1.0.0"}`

func TestEdgeErrorsAreProblems(t *testing.T) {
	dup := status.Error(codes.AlreadyExists, "image already exists: api version 1.0.0 is immutable; record a new version instead")
	bad := grpcerr.FieldViolation(&validate.FieldError{Field: "reference", Reason: "required"})
	tests := []struct {
		name       string
		err        error
		token      string
		path       string
		body       string
		wantStatus int
		wantCode   string
		wantField  string
	}{
		{name: "duplicate is 409", err: dup, wantStatus: 409, wantCode: "already_exists"},
		{name: "field error is 400 naming the field", err: bad, wantStatus: 400, wantCode: "invalid_argument", wantField: "reference"},
		{name: "internal stays generic", err: status.Error(codes.Internal, "internal error"), wantStatus: 500, wantCode: "internal"},
		{name: "no token is 401", token: "-", wantStatus: 401, wantCode: "unauthenticated"},
		{name: "unknown token is 401", token: "slp_nope", wantStatus: 401, wantCode: "unauthenticated"},
		{name: "unknown org is 404", path: "/api/v1/orgs/globex/images", wantStatus: 404, wantCode: "not_found"},
		{name: "invalid org is 404", path: "/api/v1/orgs/Not_An_Org/images", wantStatus: 404, wantCode: "not_found"},
		{name: "unknown route is 404", path: "/api/v1/orgs/acme/nothing-here", wantStatus: 404, wantCode: "not_found"},
		{name: "outside the API is 404", path: "/etc/passwd", wantStatus: 404, wantCode: "not_found"},
		{name: "unknown body field is 400", body: `{"name":"api","nope":1}`, wantStatus: 400, wantCode: "invalid_argument"},
		{name: "malformed body is 400", body: `{"name":`, wantStatus: 400, wantCode: "invalid_argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{})
			h.up.err = tc.err
			token, path, body := h.owner, "/api/v1/orgs/acme/images", imageBody
			if tc.token == "-" {
				token = ""
			} else if tc.token != "" {
				token = tc.token
			}
			if tc.path != "" {
				path = tc.path
			}
			if tc.body != "" {
				body = tc.body
			}
			r := h.do(http.MethodPost, path, token, body)
			if r.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", r.status, tc.wantStatus, r.body)
			}
			p := r.problem(t)
			if p.Code != tc.wantCode || p.Status != tc.wantStatus || p.RequestID != "req-123" || p.Type != ProblemTypeBase+tc.wantCode {
				t.Errorf("problem = %+v, want code %q status %d request id req-123", p, tc.wantCode, tc.wantStatus)
			}
			if tc.wantField != "" && (len(p.Errors) != 1 || p.Errors[0].Field != tc.wantField) {
				t.Errorf("problem errors = %+v, want one naming %q", p.Errors, tc.wantField)
			}
		})
	}
}

func TestEdgeForwardsIdentityNotCredentials(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	r := h.do(http.MethodPost, "/api/v1/orgs/acme/images", h.owner, imageBody)
	if r.status != http.StatusOK {
		t.Fatalf("status = %d: %s", r.status, r.body)
	}
	img, _ := r.json(t)["image"].(map[string]any)
	if img["reference"] != "ghcr.io/acme/api:1.0.0" {
		t.Errorf("response = %s", r.body)
	}
	if _, ok := img["create_time"]; !ok {
		t.Errorf("response lacks snake_case create_time (UseProtoNames): %s", r.body)
	}
	if r.header.Get("X-Request-Id") != "req-123" {
		t.Errorf("X-Request-Id = %q, want the caller's", r.header.Get("X-Request-Id"))
	}
	ids := h.up.identities()
	if len(ids) != 1 || ids[0].Org != "acme" || ids[0].Role != identity.RoleOwner ||
		ids[0].TokenID == "" || ids[0].Subject != "token:"+ids[0].TokenID {
		t.Errorf("service saw identities %+v", ids)
	}
	md := h.up.lastMetadata()
	for k, v := range md {
		if strings.Contains(strings.ToLower(k), "authorization") || strings.Contains(strings.Join(v, ","), h.owner) {
			t.Errorf("caller credentials reached the service in metadata %q", k)
		}
	}
	if v := md.Get("x-request-id"); len(v) != 1 || v[0] != "req-123" {
		t.Errorf("x-request-id metadata = %v", v)
	}
}

func TestEdgeWithoutAuthnServesNoTenantData(t *testing.T) {
	h := newHarness(t, harnessOptions{noAuthn: true})
	r := h.do(http.MethodPost, "/api/v1/orgs/acme/images", h.owner, imageBody)
	if p := r.problem(t); r.status != http.StatusNotImplemented || p.Code != "unimplemented" {
		t.Fatalf("status %d problem %+v, want 501 unimplemented", r.status, p)
	}
	if len(h.up.identities()) != 0 {
		t.Error("the request reached the service")
	}
}

func TestEdgeServesOpenAPIAndDocs(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	r := h.do(http.MethodGet, OpenAPIPath, "", "")
	var doc struct {
		Paths map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil || r.status != http.StatusOK {
		t.Fatalf("OpenAPI: status %d, %v", r.status, err)
	}
	for _, p := range []string{"/api/v1/orgs/{org}/images", "/api/v1/orgs/{org}/tokens", "/api/v1/orgs"} {
		if _, ok := doc.Paths[p]; !ok {
			t.Errorf("OpenAPI document lacks %s", p)
		}
	}
	r = h.do(http.MethodGet, DocsPath, "", "")
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.body), "openapi.json") {
		t.Errorf("docs page: status %d type %q", r.status, r.header.Get("Content-Type"))
	}
}

func TestEdgeAcceptsYAML(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	body := "name: api\nversion: \"2.0\"\nreference: ghcr.io/acme/api:2.0\n"
	r := h.do(http.MethodPost, "/api/v1/orgs/acme/images", h.owner, body, "Content-Type: application/yaml", "Accept: application/json")
	if r.status != http.StatusOK {
		t.Fatalf("YAML create: status %d: %s", r.status, r.body)
	}
	if img, _ := r.json(t)["image"].(map[string]any); img["version"] != "2.0" {
		t.Errorf("YAML body decoded to %s", r.body)
	}
	r = h.do(http.MethodGet, "/api/v1/orgs/acme/images", h.owner, "", "Accept: application/yaml")
	if r.status != http.StatusOK || !strings.Contains(string(r.body), "reference: ghcr.io/acme/api:2.0") {
		t.Errorf("YAML answer: status %d body %s", r.status, r.body)
	}
}

func TestEdgeRateLimits(t *testing.T) {
	h := newHarness(t, harnessOptions{limits: Limits{PerCaller: 1, PerCallerBurst: 2}})
	for i := range 2 {
		if r := h.do(http.MethodGet, "/api/v1/orgs/acme/images", h.owner, ""); r.status != http.StatusOK {
			t.Fatalf("request %d: status %d", i+1, r.status)
		}
	}
	r := h.do(http.MethodGet, "/api/v1/orgs/acme/images", h.owner, "")
	if r.status != http.StatusTooManyRequests || r.problem(t).Code != "resource_exhausted" || r.header.Get("Retry-After") == "" {
		t.Fatalf("third request: status %d Retry-After %q, want 429 with Retry-After", r.status, r.header.Get("Retry-After"))
	}
	// Another caller has its own bucket.
	_, other := h.member("acme", identity.RoleViewer)
	if r := h.do(http.MethodGet, "/api/v1/orgs/acme/images", other, ""); r.status != http.StatusOK {
		t.Errorf("another caller: status %d", r.status)
	}

	ip := newHarness(t, harnessOptions{limits: Limits{PerIP: 1, PerIPBurst: 1}})
	ip.do(http.MethodGet, "/api/v1/orgs/acme/images", "", "")
	if r := ip.do(http.MethodGet, "/api/v1/orgs/acme/images", ip.owner, ""); r.status != http.StatusTooManyRequests {
		t.Errorf("per-IP limit: status %d, want 429 (limited before authentication)", r.status)
	}
}

func TestEdgeCORS(t *testing.T) {
	h := newHarness(t, harnessOptions{cors: []string{"https://console.example.com"}})
	r := h.do(http.MethodOptions, "/api/v1/orgs/acme/images", "", "",
		"Origin: https://console.example.com", "Access-Control-Request-Method: POST", "Access-Control-Request-Headers: authorization,content-type")
	if got := r.header.Get("Access-Control-Allow-Origin"); got != "https://console.example.com" {
		t.Errorf("allowed origin preflight: Access-Control-Allow-Origin = %q", got)
	}
	r = h.do(http.MethodOptions, "/api/v1/orgs/acme/images", "", "", "Origin: https://evil.example.com", "Access-Control-Request-Method: POST")
	if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("other origin preflight: Access-Control-Allow-Origin = %q, want none", got)
	}
}

func TestEdgeAuditsMutations(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.do(http.MethodPost, "/api/v1/orgs/acme/images", h.owner, imageBody)
	h.do(http.MethodGet, "/api/v1/orgs/acme/images", h.owner, "")
	h.up.err = status.Error(codes.AlreadyExists, "exists")
	h.do(http.MethodPost, "/api/v1/orgs/acme/images", h.owner, `{"name":"api","version":"1.0.0","reference":"ghcr.io/acme/api:1.0.0"}`)

	r := h.do(http.MethodGet, "/api/v1/orgs/acme/audit?action=RegistryService/CreateImage", h.owner, "")
	if r.status != http.StatusOK {
		t.Fatalf("audit: status %d: %s", r.status, r.body)
	}
	var got struct {
		Events []struct {
			Actor, Action, Target string
			RequestID             string `json:"request_id"`
			TokenID               string `json:"token_id"`
			Result                int
		}
	}
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Events) != 2 {
		t.Fatalf("audit has %d CreateImage events, want 2 (the GET is not audited): %s", len(got.Events), r.body)
	}
	// Newest first: the refused create, then the accepted one.
	if got.Events[0].Result != http.StatusConflict || got.Events[1].Result != http.StatusOK {
		t.Errorf("results = %d, %d; want 409 then 200", got.Events[0].Result, got.Events[1].Result)
	}
	for _, e := range got.Events {
		if e.Target != "/api/v1/orgs/acme/images" || !strings.HasPrefix(e.Actor, "token:") || e.TokenID == "" {
			t.Errorf("event %+v", e)
		}
	}
	if strings.Contains(string(r.body), "ghcr.io") || strings.Contains(string(r.body), h.owner) {
		t.Error("the audit log holds a request body or a secret")
	}
}

func TestEdgeRequestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHarness(t, harnessOptions{metrics: reg})
	h.do(http.MethodGet, "/api/v1/orgs/acme/images", h.owner, "")
	h.do(http.MethodGet, "/api/v1/orgs/acme/images", h.owner, "")
	h.do(http.MethodGet, "/api/v1/orgs/acme/images", "", "")
	h.do(http.MethodGet, "/api/v1/orgs/acme/nothing", h.owner, "")
	count := func(op, code string) float64 { return requestCount(t, reg, op, code) }
	if got := count("RegistryService_ListImages", "200"); got != 2 {
		t.Errorf("ListImages 200 = %v, want 2", got)
	}
	if got := count("none", "401"); got != 1 {
		t.Errorf("unauthenticated = %v, want 1 (counted with no operation)", got)
	}
	if got := count("none", "404"); got != 1 {
		t.Errorf("unknown route = %v, want 1", got)
	}
	// No label carries a tenant or a raw path.
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), "acme") || strings.Contains(l.GetValue(), "/") {
					t.Errorf("metric %s label %s=%q names a tenant or path", mf.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
}

// requestCount reads slipway_gateway_requests_total{operation, code}.
func requestCount(t *testing.T, reg *prometheus.Registry, op, code string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != "slipway_gateway_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["operation"] == op && labels["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestClientIPTrustsOnlyTheProxy(t *testing.T) {
	e := &edge{cfg: Config{Limits: Limits{TrustForwardedFor: true}}}
	tests := []struct {
		name string
		xff  []string
		want string
	}{
		{name: "no header", want: "10.1.2.3"},
		{name: "one hop", xff: []string{"203.0.113.7"}, want: "203.0.113.7"},
		{name: "forged prefix", xff: []string{"1.1.1.1, 203.0.113.7"}, want: "203.0.113.7"},
		{name: "several headers", xff: []string{"1.1.1.1", "203.0.113.7"}, want: "203.0.113.7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = "10.1.2.3:5555"
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := e.clientIP(r); got != tc.want {
				t.Errorf("clientIP = %q, want %q", got, tc.want)
			}
		})
	}
	e.cfg.Limits.TrustForwardedFor = false
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.1.2.3:5555"
	r.Header.Set("X-Forwarded-For", "203.0.113.7")
	if got := e.clientIP(r); got != "10.1.2.3" {
		t.Errorf("untrusted header used: clientIP = %q", got)
	}
}

// TestEdgeAuditsKubeconfigDownloadsAndForce: a kubeconfig download is a
// read worth auditing, and a forced delete says so in its target, while
// the rest of the query stays out of the log.
func TestEdgeAuditsKubeconfigDownloadsAndForce(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.do(http.MethodGet, "/api/v1/orgs/acme/clusters/prod/config", h.owner, "")
	h.do(http.MethodGet, "/api/v1/orgs/acme/clusters/prod", h.owner, "")
	h.do(http.MethodDelete, "/api/v1/orgs/acme/clusters/prod?force=true&marker=secret-ish", h.owner, "")
	h.do(http.MethodDelete, "/api/v1/orgs/acme/clusters/dev", h.owner, "")

	r := h.do(http.MethodGet, "/api/v1/orgs/acme/audit", h.owner, "")
	if r.status != http.StatusOK {
		t.Fatalf("audit: status %d: %s", r.status, r.body)
	}
	var got struct {
		Events []struct{ Action, Target string }
	}
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{ // target -> action
		"/api/v1/orgs/acme/clusters/prod/config":     "ClustersService/GetClusterConfig",
		"/api/v1/orgs/acme/clusters/prod?force=true": "ClustersService/DeleteCluster",
		"/api/v1/orgs/acme/clusters/dev":             "ClustersService/DeleteCluster",
	}
	seen := map[string]string{}
	for _, e := range got.Events {
		if strings.HasPrefix(e.Action, "ClustersService/") {
			seen[e.Target] = e.Action
		}
	}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("audited cluster calls (-want +got):\n%s", diff)
	}
	if strings.Contains(string(r.body), "marker") {
		t.Error("the audit target kept a query parameter that is not an audited flag")
	}
}

// TestEdgeUnavailableSaysWhenToRetry: a service's UNAVAILABLE (Vault down)
// is a 503 with Retry-After.
func TestEdgeUnavailableSaysWhenToRetry(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.up.err = status.Error(codes.Unavailable, "secret store unavailable; retry shortly")
	r := h.do(http.MethodPost, "/api/v1/orgs/acme/images", h.owner, imageBody)
	if r.status != http.StatusServiceUnavailable || r.problem(t).Code != "unavailable" {
		t.Fatalf("status %d body %s; want 503 unavailable", r.status, r.body)
	}
	if got := r.header.Get("Retry-After"); got != strconv.Itoa(UnavailableRetryAfter) {
		t.Errorf("Retry-After = %q, want %d", got, UnavailableRetryAfter)
	}
}

// TestEdgeAuthnUnavailableSaysWhenToRetry: with the gateway's own
// database gone (PostgreSQL restarting) a caller cannot be authenticated:
// 503 unavailable with Retry-After, never a 500 or a 401.
func TestEdgeAuthnUnavailableSaysWhenToRetry(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	if err := h.store.Close(); err != nil {
		t.Fatal(err)
	}
	r := h.do(http.MethodPost, "/api/v1/orgs/acme/images", h.owner, imageBody)
	if r.status != http.StatusServiceUnavailable || r.problem(t).Code != "unavailable" {
		t.Fatalf("status %d body %s; want 503 unavailable", r.status, r.body)
	}
	if got := r.header.Get("Retry-After"); got != strconv.Itoa(UnavailableRetryAfter) {
		t.Errorf("Retry-After = %q, want %d", got, UnavailableRetryAfter)
	}
}

// hangingAuthn is an authenticator whose database hangs: it answers only
// when its context ends.
type hangingAuthn struct{}

func (hangingAuthn) Authenticate(ctx context.Context, _ *http.Request) (authn.Principal, error) {
	<-ctx.Done()
	return authn.Principal{}, fmt.Errorf("look up token: %w", ctx.Err())
}

func (hangingAuthn) Resolve(ctx context.Context, _ authn.Principal, _ string) (identity.Identity, store.Org, error) {
	<-ctx.Done()
	return identity.Identity{}, store.Org{}, ctx.Err()
}

// TestEdgeAuthnHangingDatabase: a gateway database that hangs holds a
// request no longer than authTimeout, then answers 503 with Retry-After.
func TestEdgeAuthnHangingDatabase(t *testing.T) {
	old := authTimeout
	authTimeout = 200 * time.Millisecond
	t.Cleanup(func() { authTimeout = old })
	h := newHarness(t, harnessOptions{authn: hangingAuthn{}})
	start := time.Now()
	r := h.do(http.MethodPost, "/api/v1/orgs/acme/images", h.owner, imageBody)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the request took %s with the database hanging", took)
	}
	if r.status != http.StatusServiceUnavailable || r.problem(t).Code != "unavailable" || r.header.Get("Retry-After") == "" {
		t.Fatalf("status %d (Retry-After %q) body %s; want 503 unavailable with Retry-After", r.status, r.header.Get("Retry-After"), r.body)
	}
}

// TestEdgeUnprocessable: a service's UNPROCESSABLE reason is a 422.
func TestEdgeUnprocessable(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	errUnresolvable := errors.New("reference does not resolve")
	h.up.err = grpcerr.Table{{Err: errUnresolvable, Code: codes.FailedPrecondition, Reason: grpcerr.ReasonUnprocessable}}.
		ToStatus(fmt.Errorf("%w: tag 9.9.9 not found", errUnresolvable))
	r := h.do(http.MethodPost, "/api/v1/orgs/acme/images", h.owner, imageBody)
	if p := r.problem(t); r.status != http.StatusUnprocessableEntity || p.Code != "unprocessable" || !strings.Contains(p.Detail, "tag 9.9.9 not found") {
		t.Errorf("status %d problem %+v; want 422 unprocessable with the service's message", r.status, p)
	}
}
