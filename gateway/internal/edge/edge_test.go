package edge

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/slipwayhq/slipway/pkg/client"
	"github.com/slipwayhq/slipway/pkg/grpcerr"
	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/validate"
	registryv1 "github.com/slipwayhq/slipway/proto/slipway/registry/v1"
)

// recordingRegistry answers CreateImage with a programmed error and records
// the metadata and identity each call arrived with.
type recordingRegistry struct {
	registryv1.UnimplementedRegistryServiceServer
	verifier *identity.Verifier
	err      error

	mu  sync.Mutex
	md  metadata.MD
	ids []identity.Identity
}

func (s *recordingRegistry) CreateImage(ctx context.Context, req *registryv1.CreateImageRequest) (*registryv1.CreateImageResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.md = md
	if v := md.Get(identity.MetadataKey); len(v) == 1 {
		if id, err := s.verifier.Verify(v[0]); err == nil {
			s.ids = append(s.ids, id)
		}
	}
	if s.err != nil {
		return nil, s.err
	}
	img := req.GetImage()
	return &registryv1.CreateImageResponse{Image: &registryv1.Image{Org: req.GetOrg(), Name: img.GetName(), Version: img.GetVersion(), Reference: img.GetReference()}}, nil
}

// staticAuthorizer knows one bearer token, a member of acme.
type staticAuthorizer struct{}

func (staticAuthorizer) Authorize(r *http.Request, org string) (identity.Identity, error) {
	if r.Header.Get("Authorization") != "Bearer slp_good" {
		return identity.Identity{}, ErrUnauthenticated
	}
	if org != "acme" {
		return identity.Identity{}, ErrNoSuchOrg
	}
	return identity.Identity{Subject: "user:alice", Org: "acme", Role: identity.RoleDeployer}, nil
}

func newEdge(t *testing.T, reg *recordingRegistry, authz Authorizer) *httptest.Server {
	t.Helper()
	key, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	reg.verifier, err = identity.NewVerifier(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	registryv1.RegisterRegistryServiceServer(srv, reg)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := client.Dial(lis.Addr().String(), client.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	h, err := NewHandler(context.Background(), Config{
		Log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		Signer:     identity.NewSigner(key, 0),
		Authorizer: authz,
		Conns:      Conns{Registry: conn},
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}

func do(t *testing.T, ts *httptest.Server, method, path, token, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("X-Request-Id", "req-123")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func decodeProblem(t *testing.T, resp *http.Response, body []byte) Problem {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json; body %s", ct, body)
	}
	var p Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem body %s: %v", body, err)
	}
	return p
}

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
		{name: "other org is 404", path: "/api/v1/orgs/globex/images", wantStatus: 404, wantCode: "not_found"},
		{name: "invalid org is 404", path: "/api/v1/orgs/Not_An_Org/images", wantStatus: 404, wantCode: "not_found"},
		{name: "unknown route is 404", path: "/api/v1/orgs/acme/nothing-here", wantStatus: 404, wantCode: "not_found"},
		{name: "outside the API is 404", path: "/etc/passwd", wantStatus: 404, wantCode: "not_found"},
		{name: "unknown body field is 400", body: `{"name":"api","nope":1}`, wantStatus: 400, wantCode: "invalid_argument"},
		{name: "malformed body is 400", body: `{"name":`, wantStatus: 400, wantCode: "invalid_argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newEdge(t, &recordingRegistry{err: tc.err}, staticAuthorizer{})
			token, path, body := "slp_good", "/api/v1/orgs/acme/images", imageBody
			if tc.token == "-" {
				token = ""
			}
			if tc.path != "" {
				path = tc.path
			}
			if tc.body != "" {
				body = tc.body
			}
			resp, b := do(t, ts, http.MethodPost, path, token, body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tc.wantStatus, b)
			}
			p := decodeProblem(t, resp, b)
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
	reg := &recordingRegistry{}
	ts := newEdge(t, reg, staticAuthorizer{})
	resp, b := do(t, ts, http.MethodPost, "/api/v1/orgs/acme/images", "slp_good", imageBody)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d: %s", resp.StatusCode, b)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if img, _ := got["image"].(map[string]any); img["reference"] != "ghcr.io/acme/api:1.0.0" || img["create_time"] != nil && img["create_time"] != "" {
		// create_time is unset by the fake; snake_case names prove UseProtoNames.
		t.Errorf("response = %s", b)
	}
	if resp.Header.Get("X-Request-Id") != "req-123" {
		t.Errorf("X-Request-Id = %q, want the caller's", resp.Header.Get("X-Request-Id"))
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if len(reg.ids) != 1 || reg.ids[0] != (identity.Identity{Subject: "user:alice", Org: "acme", Role: identity.RoleDeployer, RequestID: "req-123"}) {
		t.Errorf("service saw identities %+v", reg.ids)
	}
	for k, v := range reg.md {
		if strings.Contains(strings.ToLower(k), "authorization") || strings.Contains(strings.Join(v, ","), "slp_good") {
			t.Errorf("caller credentials reached the service in metadata %q", k)
		}
	}
	if v := reg.md.Get("x-request-id"); len(v) != 1 || v[0] != "req-123" {
		t.Errorf("x-request-id metadata = %v", v)
	}
}

func TestEdgeWithoutAuthorizerServesNoTenantData(t *testing.T) {
	reg := &recordingRegistry{}
	ts := newEdge(t, reg, nil)
	resp, b := do(t, ts, http.MethodPost, "/api/v1/orgs/acme/images", "slp_good", imageBody)
	if p := decodeProblem(t, resp, b); resp.StatusCode != http.StatusNotImplemented || p.Code != "unimplemented" {
		t.Fatalf("status %d problem %+v, want 501 unimplemented", resp.StatusCode, p)
	}
	if reg.md != nil {
		t.Error("the request reached the service")
	}
}

func TestEdgeServesOpenAPI(t *testing.T) {
	ts := newEdge(t, &recordingRegistry{}, nil)
	resp, b := do(t, ts, http.MethodGet, OpenAPIPath, "", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	var doc struct {
		Paths map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if _, ok := doc.Paths["/api/v1/orgs/{org}/images"]; !ok {
		t.Errorf("OpenAPI document lacks the images route; paths: %d", len(doc.Paths))
	}
}
