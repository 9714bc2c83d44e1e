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
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/slipwayhq/slipway/gateway/internal/authn"
	"github.com/slipwayhq/slipway/gateway/internal/orgs"
	"github.com/slipwayhq/slipway/gateway/internal/store"
	"github.com/slipwayhq/slipway/pkg/client"
	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
	catalogv1 "github.com/slipwayhq/slipway/proto/slipway/catalog/v1"
	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
	registryv1 "github.com/slipwayhq/slipway/proto/slipway/registry/v1"
	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

func TestMain(m *testing.M) { sqltest.Main(m) }

// upstream stands in for the four services: every RPC answers
// Unimplemented, except CreateImage and ListImages, which record the
// metadata and verified identity each call arrived with and answer from
// memory per org. The edge under test is real: real store, authenticator,
// permission table, the gateway's own services and the generated routes.
type upstream struct {
	registryv1.UnimplementedRegistryServiceServer
	verifier *identity.Verifier
	err      error

	mu     sync.Mutex
	md     metadata.MD
	ids    []identity.Identity
	images map[string][]*registryv1.Image
}

func (u *upstream) record(ctx context.Context) (identity.Identity, bool) {
	md, _ := metadata.FromIncomingContext(ctx)
	u.mu.Lock()
	defer u.mu.Unlock()
	u.md = md
	v := md.Get(identity.MetadataKey)
	if len(v) != 1 {
		return identity.Identity{}, false
	}
	id, err := u.verifier.Verify(v[0])
	if err != nil {
		return identity.Identity{}, false
	}
	u.ids = append(u.ids, id)
	return id, true
}

func (u *upstream) CreateImage(ctx context.Context, req *registryv1.CreateImageRequest) (*registryv1.CreateImageResponse, error) {
	id, _ := u.record(ctx)
	if u.err != nil {
		return nil, u.err
	}
	img := req.GetImage()
	out := &registryv1.Image{Org: id.Org, Name: img.GetName(), Version: img.GetVersion(), Reference: img.GetReference()}
	u.mu.Lock()
	u.images[id.Org] = append(u.images[id.Org], out)
	u.mu.Unlock()
	return &registryv1.CreateImageResponse{Image: out}, nil
}

func (u *upstream) ListImages(ctx context.Context, _ *registryv1.ListImagesRequest) (*registryv1.ListImagesResponse, error) {
	id, _ := u.record(ctx)
	u.mu.Lock()
	defer u.mu.Unlock()
	return &registryv1.ListImagesResponse{Images: u.images[id.Org]}, nil
}

func (u *upstream) lastMetadata() metadata.MD {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.md
}

func (u *upstream) identities() []identity.Identity {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]identity.Identity(nil), u.ids...)
}

type harness struct {
	t     *testing.T
	srv   *httptest.Server
	store store.Store
	up    *upstream
	// owner is the bootstrap owner token of org "acme".
	owner string
}

type harnessOptions struct {
	noAuthn bool
	// authn, when set, replaces the store's authenticator.
	authn   Authenticator
	limits  Limits
	cors    []string
	oidc    authn.OIDCVerifier
	metrics *prometheus.Registry
	// releases, when set, serves ReleasesService and OperationsService
	// instead of stand-ins that answer Unimplemented.
	releases *fakeReleases
	// keepAlive is the edge's StreamKeepAlive.
	keepAlive time.Duration
	// writeTimeout is the HTTP server's WriteTimeout.
	writeTimeout time.Duration
}

func newHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	ctx := context.Background()
	key, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := identity.NewVerifier(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	up := &upstream{verifier: verifier, images: map[string][]*registryv1.Image{}}
	gs := grpc.NewServer()
	registryv1.RegisterRegistryServiceServer(gs, up)
	clustersv1.RegisterClustersServiceServer(gs, clustersv1.UnimplementedClustersServiceServer{})
	clustersv1.RegisterCredentialsServiceServer(gs, clustersv1.UnimplementedCredentialsServiceServer{})
	catalogv1.RegisterCatalogServiceServer(gs, catalogv1.UnimplementedCatalogServiceServer{})
	if o.releases != nil {
		releasesv1.RegisterReleasesServiceServer(gs, o.releases)
		releasesv1.RegisterOperationsServiceServer(gs, o.releases)
	} else {
		releasesv1.RegisterReleasesServiceServer(gs, releasesv1.UnimplementedReleasesServiceServer{})
		releasesv1.RegisterOperationsServiceServer(gs, releasesv1.UnimplementedOperationsServiceServer{})
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := client.Dial(lis.Addr().String(), client.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })

	st, err := store.Open(ctx, sqltest.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := orgs.New(st, orgs.NewServiceDependents(conn, conn))
	owner, created, err := svc.Bootstrap(ctx, "acme", "")
	if err != nil || !created {
		t.Fatalf("bootstrap: %v (created %v)", err, created)
	}
	cfg := Config{
		Log:         log,
		Signer:      identity.NewSigner(key, 0),
		Authn:       authn.New(st, o.oidc, log),
		Audit:       st,
		Conns:       Conns{Clusters: conn, Registry: conn, Catalog: conn, Releases: conn},
		InProcess:   []Register{orgs.NewServer(svc, log).Register},
		Limits:      o.limits,
		CORSOrigins: o.cors,

		StreamKeepAlive: o.keepAlive,
	}
	if o.metrics != nil {
		cfg.Metrics = o.metrics
	}
	if o.authn != nil {
		cfg.Authn = o.authn
	}
	if o.noAuthn {
		cfg.Authn = nil
	}
	h, err := NewHandler(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.WriteTimeout = o.writeTimeout
	srv.Start()
	t.Cleanup(srv.Close)
	return &harness{t: t, srv: srv, store: st, up: up, owner: owner}
}

// member creates a new user who belongs to org with role, and an API token
// of that role for them; it creates the org (owned by the user) if needed.
func (h *harness) member(org string, role identity.Role) (userID, token string) {
	h.t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	userID = uuid.NewString()
	if err := h.store.CreateUser(ctx, store.User{ID: userID, Created: now}); err != nil {
		h.t.Fatal(err)
	}
	o, err := h.store.GetOrgByName(ctx, org)
	switch {
	case err == nil:
		if err := h.store.AddMember(ctx, o.ID, userID, role, now); err != nil {
			h.t.Fatal(err)
		}
	default:
		o = store.Org{ID: uuid.NewString(), Name: org, DisplayName: org, Created: now, Updated: now}
		if err := h.store.CreateOrg(ctx, o, userID); err != nil {
			h.t.Fatal(err)
		}
		if role != identity.RoleOwner {
			h.t.Fatalf("new org %s: its first member must be an owner", org)
		}
	}
	secret, hash, err := authn.NewSecret()
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.store.CreateToken(ctx, store.Token{
		ID: uuid.NewString(), OrgID: o.ID, Name: "t-" + userID[:8], Role: role, Hash: hash, Creator: userID, Created: now,
	}); err != nil {
		h.t.Fatal(err)
	}
	return userID, secret
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

func (r response) problem(t *testing.T) Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json; status %d body %s", ct, r.status, r.body)
	}
	var p Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem body %s: %v", r.body, err)
	}
	return p
}

// do sends a request with the given bearer token ("" for none) and headers
// as "Name: value" pairs.
func (h *harness) do(method, path, token, body string, headers ...string) response {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-Request-Id", "req-123")
	for _, hv := range headers {
		k, v, _ := strings.Cut(hv, ":")
		req.Header.Set(k, strings.TrimSpace(v))
	}
	return send(h.t, h, req)
}

// send sends req to the edge and reads the whole answer.
func send(t *testing.T, h *harness, req *http.Request) response {
	t.Helper()
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}
