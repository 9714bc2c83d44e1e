package clusters

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/outbound"
	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
	"github.com/slipwayhq/slipway/services/clusters/internal/kube"
	"github.com/slipwayhq/slipway/services/clusters/internal/secrets"
)

// These tests drive the service's logic (roles, tenancy, validation, what
// is written where) through its gRPC server, over an in-memory secret
// store and a checker that answers as told. The same flows run against the
// real Vault and Kubernetes in tools/e2e.

// memSecrets is KV v2 in memory: versions, check-and-set, destroy.
type memSecrets struct {
	mu       sync.Mutex
	data     map[string]map[string]string
	versions map[string]int64
	down     bool
}

func newMemSecrets() *memSecrets {
	return &memSecrets{data: map[string]map[string]string{}, versions: map[string]int64{}}
}

func (m *memSecrets) Put(_ context.Context, path string, data map[string]string, cas int64) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return 0, secrets.ErrUnavailable
	}
	if m.versions[path] != cas {
		return 0, secrets.ErrConflict
	}
	m.versions[path]++
	m.data[path] = data
	return m.versions[path], nil
}

func (m *memSecrets) Get(_ context.Context, path string) (map[string]string, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return nil, 0, secrets.ErrUnavailable
	}
	d, ok := m.data[path]
	if !ok {
		return nil, 0, secrets.ErrNotFound
	}
	return d, m.versions[path], nil
}

func (m *memSecrets) Destroy(_ context.Context, path string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return secrets.ErrUnavailable
	}
	delete(m.data, path)
	delete(m.versions, path)
	return nil
}

func (m *memSecrets) setDown(d bool) { m.mu.Lock(); m.down = d; m.mu.Unlock() }

func (m *memSecrets) paths() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for p := range m.data {
		out = append(out, p)
	}
	return out
}

// toldChecker answers every Check with health and perms.
type toldChecker struct {
	policy *outbound.Policy
	health kube.Health
	perms  kube.Permissions
}

func (c *toldChecker) CheckServer(server string) error {
	_, err := c.policy.CheckURL(server, "https")
	return err
}

func (c *toldChecker) Check(context.Context, kube.Connection) (kube.Health, kube.Permissions) {
	return c.health, c.perms
}

type mapDependents struct {
	releases map[string][]string // cluster id -> releases
	repos    map[string][]string // credential id -> repositories
	apps     map[string][]string // cluster id -> applications
}

func (d *mapDependents) ClusterApplications(_ context.Context, _, id string) ([]string, error) {
	return d.apps[id], nil
}

func (d *mapDependents) ClusterReleases(_ context.Context, _, id string) ([]string, error) {
	return d.releases[id], nil
}

func (d *mapDependents) CredentialRepositories(_ context.Context, _, id string) ([]string, error) {
	return d.repos[id], nil
}

type fixture struct {
	srv     *GRPCServer
	inner   Service
	secrets *memSecrets
	checker *toldChecker
	deps    *mapDependents
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	store, err := OpenStore(context.Background(), sqltest.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	f := &fixture{}
	srvFixture(t, f, store)
	return f
}

// srvFixture fills f with the service over store and in-memory parts.
func srvFixture(t testing.TB, f *fixture, store Store) {
	t.Helper()
	policy, err := outbound.New(outbound.Config{})
	if err != nil {
		t.Fatal(err)
	}
	f.secrets = newMemSecrets()
	f.checker = &toldChecker{policy: policy, health: kube.Health{Reachability: kube.Reachable, Version: "v1.31.4", Nodes: 3},
		perms: kube.Permissions{CreateNamespaces: true, CreateSecrets: true}}
	f.deps = &mapDependents{releases: map[string][]string{}, repos: map[string][]string{}, apps: map[string][]string{}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	changes := NewChanges(store, log)
	svc, inner := New(store, f.secrets, f.checker, f.deps, changes, log, prometheus.NewRegistry())
	f.inner = inner
	f.srv = NewGRPCServer(MakeEndpoints(svc), changes, log)
}

func as(org string, role identity.Role) context.Context {
	return identity.NewContext(context.Background(), identity.Identity{Subject: "user:" + string(role), Org: org, Role: role}, "")
}

func asService(org, svc string) context.Context {
	return identity.NewContext(context.Background(), identity.Identity{Subject: identity.ServiceSubject(svc), Org: org, Role: identity.RoleViewer, Service: svc}, "")
}

const marker = "CANARY-token-5b0c1e"

func direct(server, token string) *clustersv1.RegisterClusterRequest_ServerConnection {
	return &clustersv1.RegisterClusterRequest_ServerConnection{ServerConnection: &clustersv1.ServerConnectionSecret{
		Server: server, Auth: &clustersv1.ServerConnectionSecret_BearerToken{BearerToken: token}}}
}

func (f *fixture) register(t *testing.T, org, name string) *clustersv1.Cluster {
	t.Helper()
	resp, err := f.srv.RegisterCluster(as(org, identity.RoleAdmin), &clustersv1.RegisterClusterRequest{
		Org: org, Name: name, Labels: map[string]string{"env": "prod"}, Connection: direct("https://"+name+".k8s.example.com", marker)})
	if err != nil {
		t.Fatalf("register %s/%s: %v", org, name, err)
	}
	return resp.GetCluster()
}

func wantCode(t *testing.T, what string, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Errorf("%s: %v, want %s", what, err, code)
	}
	if err != nil && strings.Contains(err.Error(), marker) {
		t.Errorf("%s: the error holds a secret: %v", what, err)
	}
}

func noSecret(t *testing.T, what string, m proto.Message) {
	t.Helper()
	b, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), marker) || strings.Contains(string(b), "orgs/") {
		t.Errorf("%s carries a secret or a Vault path: %s", what, b)
	}
}

func TestRegisterAndRead(t *testing.T) {
	f := newFixture(t)
	c := f.register(t, "acme", "prod")
	noSecret(t, "RegisterCluster", c)
	if !strings.HasPrefix(c.GetId(), "cl_") || c.GetServer() != "https://prod.k8s.example.com" || c.GetCreator() != "user:admin" ||
		c.GetHealth().GetReachability() != clustersv1.ClusterReachability_CLUSTER_REACHABILITY_REACHABLE || c.GetHealth().GetNodeCount() != 3 {
		t.Errorf("registered %v", c)
	}
	// The secret is in the secret store, under the org, and nowhere else.
	if p := f.secrets.paths(); len(p) != 1 || p[0] != "orgs/acme/clusters/"+c.GetId() {
		t.Errorf("secret paths %v", p)
	}
	for _, ref := range []string{c.GetId(), "prod"} {
		got, err := f.srv.GetCluster(as("acme", identity.RoleViewer), &clustersv1.GetClusterRequest{Org: "acme", Cluster: ref})
		if err != nil || !proto.Equal(got.GetCluster(), c) {
			t.Errorf("GetCluster(%s) = %v, %v; want %v", ref, got, err, c)
		}
	}
	cfg, err := f.srv.GetClusterConfig(as("acme", identity.RoleAdmin), &clustersv1.GetClusterConfigRequest{Org: "acme", Cluster: "prod"})
	if err != nil || !strings.Contains(string(cfg.GetKubeconfig()), marker) {
		t.Errorf("GetClusterConfig as admin = %v; want the kubeconfig with its token", err)
	}
	_, err = f.srv.GetClusterConfig(as("acme", identity.RoleDeployer), &clustersv1.GetClusterConfigRequest{Org: "acme", Cluster: "prod"})
	wantCode(t, "GetClusterConfig as deployer", err, codes.PermissionDenied)

	cred, err := f.srv.GetCredential(as("acme", identity.RoleViewer), &clustersv1.GetCredentialRequest{Org: "acme", Credential: c.GetCredentialId()})
	if err != nil || cred.GetCredential().GetOwnerClusterId() != c.GetId() || cred.GetCredential().GetVersion() != 1 {
		t.Errorf("owned credential = %v, %v", cred, err)
	}
	noSecret(t, "GetCredential", cred)
}

func TestRegisterRefusals(t *testing.T) {
	f := newFixture(t)
	ctx := as("acme", identity.RoleAdmin)
	cases := []struct {
		name string
		req  *clustersv1.RegisterClusterRequest
		code codes.Code
	}{
		{"bad name", &clustersv1.RegisterClusterRequest{Org: "acme", Name: "Prod_1", Connection: direct("https://a.example.com", marker)}, codes.InvalidArgument},
		{"no connection", &clustersv1.RegisterClusterRequest{Org: "acme", Name: "a"}, codes.InvalidArgument},
		{"http server", &clustersv1.RegisterClusterRequest{Org: "acme", Name: "a", Connection: direct("http://a.example.com", marker)}, codes.InvalidArgument},
		{"loopback server", &clustersv1.RegisterClusterRequest{Org: "acme", Name: "a", Connection: direct("https://127.0.0.1:6443", marker)}, codes.InvalidArgument},
		{"metadata server", &clustersv1.RegisterClusterRequest{Org: "acme", Name: "a", Connection: direct("https://169.254.169.254", marker)}, codes.InvalidArgument},
		{"token with a newline", &clustersv1.RegisterClusterRequest{Org: "acme", Name: "a", Connection: direct("https://a.example.com", marker+"\n")}, codes.InvalidArgument},
		{"bad label", &clustersv1.RegisterClusterRequest{Org: "acme", Name: "a", Labels: map[string]string{"bad key!": "x"}, Connection: direct("https://a.example.com", marker)}, codes.InvalidArgument},
		{"not yaml", &clustersv1.RegisterClusterRequest{Org: "acme", Name: "a", Connection: &clustersv1.RegisterClusterRequest_Kubeconfig{Kubeconfig: &clustersv1.KubeconfigSecret{Kubeconfig: []byte("{" + marker)}}}, codes.InvalidArgument},
		{"unknown credential", &clustersv1.RegisterClusterRequest{Org: "acme", Name: "a", Connection: &clustersv1.RegisterClusterRequest_CredentialId{CredentialId: "cred_nope"}}, codes.InvalidArgument},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.srv.RegisterCluster(ctx, tc.req)
			wantCode(t, tc.name, err, tc.code)
		})
	}
	owned := f.register(t, "acme", "owner")
	_, err := f.srv.RegisterCluster(ctx, &clustersv1.RegisterClusterRequest{Org: "acme", Name: "b",
		Connection: &clustersv1.RegisterClusterRequest_CredentialId{CredentialId: owned.GetCredentialId()}})
	wantCode(t, "on another cluster's own credential", err, codes.InvalidArgument)
	if _, err := f.srv.DeleteCluster(ctx, &clustersv1.DeleteClusterRequest{Org: "acme", Cluster: "owner"}); err != nil {
		t.Fatal(err)
	}
	_, err = f.srv.RegisterCluster(as("acme", identity.RoleDeployer), &clustersv1.RegisterClusterRequest{Org: "acme", Name: "a", Connection: direct("https://a.example.com", marker)})
	wantCode(t, "deployer registers", err, codes.PermissionDenied)
	_, err = f.srv.RegisterCluster(asService("acme", "releases"), &clustersv1.RegisterClusterRequest{Org: "acme", Name: "a", Connection: direct("https://a.example.com", marker)})
	wantCode(t, "a service registers", err, codes.PermissionDenied)

	f.checker.health = kube.Health{Reachability: kube.Unreachable, Message: "connection refused"}
	_, err = f.srv.RegisterCluster(ctx, &clustersv1.RegisterClusterRequest{Org: "acme", Name: "down", Connection: direct("https://down.example.com", marker)})
	wantCode(t, "unreachable", err, codes.FailedPrecondition)
	if err != nil && !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("unreachable error %q does not say why", err)
	}
	f.checker.health = kube.Health{Reachability: kube.Reachable}
	f.checker.perms = kube.Permissions{CreateNamespaces: true}
	_, err = f.srv.RegisterCluster(ctx, &clustersv1.RegisterClusterRequest{Org: "acme", Name: "weak", Connection: direct("https://weak.example.com", marker)})
	wantCode(t, "may not create secrets", err, codes.FailedPrecondition)
	if err != nil && !strings.Contains(err.Error(), "create secrets") {
		t.Errorf("permission error %q does not name the missing permission", err)
	}
	// Nothing half-written: no cluster, no secret.
	list, err := f.srv.ListClusters(as("acme", identity.RoleViewer), &clustersv1.ListClustersRequest{Org: "acme"})
	if err != nil || len(list.GetClusters()) != 0 || len(f.secrets.paths()) != 0 {
		t.Errorf("after refusals: clusters %v, secrets %v, %v", list.GetClusters(), f.secrets.paths(), err)
	}

	f.checker.health = kube.Health{Reachability: kube.Unreachable, Message: "connection refused"}
	resp, err := f.srv.RegisterCluster(ctx, &clustersv1.RegisterClusterRequest{Org: "acme", Name: "later", AllowUnreachable: true, Connection: direct("https://later.example.com", marker)})
	if err != nil || resp.GetCluster().GetHealth().GetReachability() != clustersv1.ClusterReachability_CLUSTER_REACHABILITY_UNREACHABLE {
		t.Errorf("allow_unreachable: %v, %v", resp, err)
	}
	f.checker.health = kube.Health{Reachability: kube.Reachable}
	f.checker.perms = kube.Permissions{CreateNamespaces: true, CreateSecrets: true}
	_, err = f.srv.RegisterCluster(ctx, &clustersv1.RegisterClusterRequest{Org: "acme", Name: "later", Connection: direct("https://later.example.com", marker)})
	wantCode(t, "name taken", err, codes.AlreadyExists)
}

// TestNoClusterEnumeration: every RPC answers another org's cluster or
// credential exactly like a missing one.
func TestNoClusterEnumeration(t *testing.T) {
	f := newFixture(t)
	c := f.register(t, "acme", "prod")
	reg, err := f.srv.CreateCredential(as("acme", identity.RoleAdmin), &clustersv1.CreateCredentialRequest{Org: "acme", Name: "ghcr", Endpoint: "ghcr.io",
		Secret: &clustersv1.CreateCredentialRequest_Registry{Registry: &clustersv1.RegistrySecret{Username: "u", Password: marker}}})
	if err != nil {
		t.Fatal(err)
	}
	cred := reg.GetCredential()
	other := as("globex", identity.RoleOwner)
	for _, ref := range []string{c.GetId(), c.GetName(), "missing"} {
		calls := map[string]func() error{
			"GetCluster": func() error {
				_, err := f.srv.GetCluster(other, &clustersv1.GetClusterRequest{Org: "globex", Cluster: ref})
				return err
			},
			"UpdateCluster": func() error {
				_, err := f.srv.UpdateCluster(other, &clustersv1.UpdateClusterRequest{Org: "globex", Cluster: ref, Name: "x", UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name"}}})
				return err
			},
			"RotateClusterCredentials": func() error {
				_, err := f.srv.RotateClusterCredentials(other, &clustersv1.RotateClusterCredentialsRequest{Org: "globex", Cluster: ref,
					Connection: &clustersv1.RotateClusterCredentialsRequest_ServerConnection{ServerConnection: &clustersv1.ServerConnectionSecret{Server: c.GetServer(), Auth: &clustersv1.ServerConnectionSecret_BearerToken{BearerToken: "x"}}}})
				return err
			},
			"DeleteCluster": func() error {
				_, err := f.srv.DeleteCluster(other, &clustersv1.DeleteClusterRequest{Org: "globex", Cluster: ref, Force: true})
				return err
			},
			"GetClusterConfig": func() error {
				_, err := f.srv.GetClusterConfig(other, &clustersv1.GetClusterConfigRequest{Org: "globex", Cluster: ref})
				return err
			},
			"CheckCluster": func() error {
				_, err := f.srv.CheckCluster(other, &clustersv1.CheckClusterRequest{Org: "globex", Cluster: ref})
				return err
			},
			"GetClusterAccess": func() error {
				_, err := f.srv.GetClusterAccess(asService("globex", "releases"), &clustersv1.GetClusterAccessRequest{Org: "globex", Cluster: ref})
				return err
			},
		}
		for name, call := range calls {
			t.Run(name+"/"+ref, func(t *testing.T) { wantCode(t, name, call(), codes.NotFound) })
		}
	}
	for _, ref := range []string{cred.GetId(), cred.GetName(), c.GetCredentialId()} {
		_, err := f.srv.GetCredential(other, &clustersv1.GetCredentialRequest{Org: "globex", Credential: ref})
		wantCode(t, "GetCredential "+ref, err, codes.NotFound)
		_, err = f.srv.UpdateCredential(other, &clustersv1.UpdateCredentialRequest{Org: "globex", Credential: ref, Name: "x", UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name"}}})
		wantCode(t, "UpdateCredential "+ref, err, codes.NotFound)
		_, err = f.srv.DeleteCredential(other, &clustersv1.DeleteCredentialRequest{Org: "globex", Credential: ref})
		wantCode(t, "DeleteCredential "+ref, err, codes.NotFound)
		_, err = f.srv.GetRepositoryAuth(asService("globex", "catalog"), &clustersv1.GetRepositoryAuthRequest{Org: "globex", Credential: ref, Url: "https://charts.example.com/index.yaml"})
		wantCode(t, "GetRepositoryAuth "+ref, err, codes.NotFound)
	}
	ra, err := f.srv.GetRegistryAuth(asService("globex", "registry"), &clustersv1.GetRegistryAuthRequest{Org: "globex", Host: "ghcr.io"})
	if err != nil || ra.GetFound() || ra.GetPassword() != "" {
		t.Errorf("org B's registry auth for org A's host = %v, %v; want not found", ra, err)
	}
	list, err := f.srv.ListClusters(other, &clustersv1.ListClustersRequest{Org: "globex"})
	if err != nil || len(list.GetClusters()) != 0 {
		t.Errorf("ListClusters(globex) = %v, %v", list, err)
	}
	creds, err := f.srv.ListCredentials(other, &clustersv1.ListCredentialsRequest{Org: "globex"})
	if err != nil || len(creds.GetCredentials()) != 0 {
		t.Errorf("ListCredentials(globex) = %v, %v", creds, err)
	}
}

func TestAccessIsForServicesOnly(t *testing.T) {
	f := newFixture(t)
	c := f.register(t, "acme", "prod")
	req := &clustersv1.GetClusterAccessRequest{Org: "acme", Cluster: "prod"}
	for _, ctx := range []context.Context{as("acme", identity.RoleOwner), asService("acme", "registry"), asService("acme", "catalog")} {
		_, err := f.srv.GetClusterAccess(ctx, req)
		wantCode(t, "GetClusterAccess by a non-releases caller", err, codes.PermissionDenied)
	}
	a, err := f.srv.GetClusterAccess(asService("acme", "releases"), req)
	if err != nil || a.GetAccess().GetBearerToken() != marker || a.GetAccess().GetServer() != c.GetServer() || a.GetAccess().GetCredentialVersion() != 1 {
		t.Errorf("GetClusterAccess by releases = %v, %v", a, err)
	}
	_, err = f.srv.GetRegistryAuth(as("acme", identity.RoleOwner), &clustersv1.GetRegistryAuthRequest{Org: "acme", Host: "ghcr.io"})
	wantCode(t, "GetRegistryAuth by a user", err, codes.PermissionDenied)
	_, err = f.srv.GetRepositoryAuth(asService("acme", "registry"), &clustersv1.GetRepositoryAuthRequest{Org: "acme", Credential: "x", Url: "https://x.example.com/"})
	wantCode(t, "GetRepositoryAuth by registry", err, codes.PermissionDenied)
}

func TestRotateAndDelete(t *testing.T) {
	f := newFixture(t)
	c := f.register(t, "acme", "prod")
	admin := as("acme", identity.RoleAdmin)
	feed, stop := f.srv.changes.Subscribe()
	defer stop()

	rot := func(server, token string) error {
		_, err := f.srv.RotateClusterCredentials(admin, &clustersv1.RotateClusterCredentialsRequest{Org: "acme", Cluster: "prod",
			Connection: &clustersv1.RotateClusterCredentialsRequest_ServerConnection{ServerConnection: &clustersv1.ServerConnectionSecret{
				Server: server, Auth: &clustersv1.ServerConnectionSecret_BearerToken{BearerToken: token}}}})
		return err
	}
	wantCode(t, "rotate to another server", rot("https://elsewhere.example.com", "new-"+marker), codes.InvalidArgument)
	f.checker.health = kube.Health{Reachability: kube.Unauthorized, Message: "credentials rejected (401)"}
	wantCode(t, "rotate to rejected credentials", rot(c.GetServer(), "bad-"+marker), codes.FailedPrecondition)
	f.checker.health = kube.Health{Reachability: kube.Reachable}
	if err := rot(c.GetServer(), "new-"+marker); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	a, err := f.srv.GetClusterAccess(asService("acme", "releases"), &clustersv1.GetClusterAccessRequest{Org: "acme", Cluster: "prod"})
	if err != nil || a.GetAccess().GetBearerToken() != "new-"+marker || a.GetAccess().GetCredentialVersion() != 2 {
		t.Errorf("after rotation: %v, %v; want the new token at version 2", a, err)
	}
	select {
	case ch := <-feed:
		if ch.CredentialID != c.GetCredentialId() || ch.ClusterID != c.GetId() || ch.Version != 2 {
			t.Errorf("change %+v", ch)
		}
	default:
		t.Error("rotation published no change")
	}

	f.deps.apps[c.GetId()] = []string{"shop"}
	_, err = f.srv.DeleteCluster(admin, &clustersv1.DeleteClusterRequest{Org: "acme", Cluster: "prod"})
	wantCode(t, "delete with an application targeting it", err, codes.FailedPrecondition)
	if err != nil && !strings.Contains(err.Error(), "shop") {
		t.Errorf("refusal %q does not name the application", err)
	}
	f.deps.releases[c.GetId()] = []string{"web/frontend"}
	_, err = f.srv.DeleteCluster(admin, &clustersv1.DeleteClusterRequest{Org: "acme", Cluster: "prod"})
	wantCode(t, "delete with releases", err, codes.FailedPrecondition)
	if err != nil && !strings.Contains(err.Error(), "web/frontend") {
		t.Errorf("refusal %q does not name the release", err)
	}
	if _, err := f.srv.DeleteCluster(admin, &clustersv1.DeleteClusterRequest{Org: "acme", Cluster: "prod", Force: true}); err != nil {
		t.Fatalf("forced delete: %v", err)
	}
	if p := f.secrets.paths(); len(p) != 0 {
		t.Errorf("secrets left after delete: %v", p)
	}
	_, err = f.srv.GetCredential(as("acme", identity.RoleViewer), &clustersv1.GetCredentialRequest{Org: "acme", Credential: c.GetCredentialId()})
	wantCode(t, "owned credential after delete", err, codes.NotFound)
}

// TestVaultDown: what needs a secret answers UNAVAILABLE; what does not
// keeps working; nothing is half-written; all recovers.
func TestVaultDown(t *testing.T) {
	f := newFixture(t)
	f.register(t, "acme", "prod")
	f.secrets.setDown(true)
	admin := as("acme", identity.RoleAdmin)
	_, err := f.srv.GetClusterConfig(admin, &clustersv1.GetClusterConfigRequest{Org: "acme", Cluster: "prod"})
	wantCode(t, "GetClusterConfig", err, codes.Unavailable)
	_, err = f.srv.GetClusterAccess(asService("acme", "releases"), &clustersv1.GetClusterAccessRequest{Org: "acme", Cluster: "prod"})
	wantCode(t, "GetClusterAccess", err, codes.Unavailable)
	_, err = f.srv.RegisterCluster(admin, &clustersv1.RegisterClusterRequest{Org: "acme", Name: "new", Connection: direct("https://new.example.com", marker)})
	wantCode(t, "RegisterCluster", err, codes.Unavailable)
	if _, err := f.srv.GetCluster(admin, &clustersv1.GetClusterRequest{Org: "acme", Cluster: "prod"}); err != nil {
		t.Errorf("GetCluster needs no secret: %v", err)
	}
	if l, err := f.srv.ListClusters(admin, &clustersv1.ListClustersRequest{Org: "acme"}); err != nil || len(l.GetClusters()) != 1 {
		t.Errorf("ListClusters with Vault down = %v, %v; want the one cluster", l, err)
	}
	f.secrets.setDown(false)
	if _, err := f.srv.GetClusterConfig(admin, &clustersv1.GetClusterConfigRequest{Org: "acme", Cluster: "prod"}); err != nil {
		t.Errorf("GetClusterConfig after recovery: %v", err)
	}
	if _, err := f.srv.RegisterCluster(admin, &clustersv1.RegisterClusterRequest{Org: "acme", Name: "new", Connection: direct("https://new.example.com", marker)}); err != nil {
		t.Errorf("RegisterCluster after recovery (the refused one left nothing behind): %v", err)
	}
}

func TestCredentials(t *testing.T) {
	f := newFixture(t)
	admin := as("acme", identity.RoleAdmin)
	create := func(name, endpoint string, secret any) (*clustersv1.Credential, error) {
		req := &clustersv1.CreateCredentialRequest{Org: "acme", Name: name, Endpoint: endpoint}
		switch s := secret.(type) {
		case *clustersv1.RegistrySecret:
			req.Secret = &clustersv1.CreateCredentialRequest_Registry{Registry: s}
		case *clustersv1.HelmRepositorySecret:
			req.Secret = &clustersv1.CreateCredentialRequest_HelmRepository{HelmRepository: s}
		}
		resp, err := f.srv.CreateCredential(admin, req)
		return resp.GetCredential(), err
	}
	reg, err := create("ghcr", "GHCR.io", &clustersv1.RegistrySecret{Username: "bot", Password: marker})
	if err != nil || reg.GetEndpoint() != "ghcr.io" || reg.GetType() != clustersv1.CredentialType_CREDENTIAL_TYPE_REGISTRY {
		t.Fatalf("create registry credential = %v, %v", reg, err)
	}
	noSecret(t, "CreateCredential", reg)
	_, err = create("ghcr2", "ghcr.io", &clustersv1.RegistrySecret{Username: "bot", Password: "x"})
	wantCode(t, "second login for one registry host", err, codes.AlreadyExists)
	_, err = create("bad", "", &clustersv1.RegistrySecret{Username: "bot", Password: "x"})
	wantCode(t, "registry without host", err, codes.InvalidArgument)
	_, err = create("bad", "ghcr.io", &clustersv1.RegistrySecret{Username: "bot"})
	wantCode(t, "registry without password", err, codes.InvalidArgument)

	repo, err := create("charts", "https://charts.example.com/acme", &clustersv1.HelmRepositorySecret{Auth: &clustersv1.HelmRepositorySecret_BearerToken{BearerToken: marker}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = create("bad", "http://charts.example.com/", &clustersv1.HelmRepositorySecret{Auth: &clustersv1.HelmRepositorySecret_BearerToken{BearerToken: "x"}})
	wantCode(t, "http repository", err, codes.InvalidArgument)
	_, err = create("bad", "https://u:p@charts.example.com/", &clustersv1.HelmRepositorySecret{Auth: &clustersv1.HelmRepositorySecret_BearerToken{BearerToken: "x"}})
	wantCode(t, "repository URL with userinfo", err, codes.InvalidArgument)
	_, err = create("bad", "https://charts.example.com/", &clustersv1.HelmRepositorySecret{})
	wantCode(t, "repository secret without auth", err, codes.InvalidArgument)

	catalog := asService("acme", "catalog")
	for _, tc := range []struct {
		url  string
		code codes.Code
	}{
		{"https://charts.example.com/acme/index.yaml", codes.OK},
		{"https://charts.example.com:443/acme/charts/x-1.0.0.tgz", codes.OK},
		{"https://charts.example.com/acme-evil/index.yaml", codes.PermissionDenied},
		{"https://charts.example.com/acme/../other/index.yaml", codes.PermissionDenied},
		{"https://evil.example.com/acme/index.yaml", codes.PermissionDenied},
		{"http://charts.example.com/acme/index.yaml", codes.PermissionDenied},
		{"https://charts.example.com:8443/acme/index.yaml", codes.PermissionDenied},
	} {
		got, err := f.srv.GetRepositoryAuth(catalog, &clustersv1.GetRepositoryAuthRequest{Org: "acme", Credential: "charts", Url: tc.url})
		wantCode(t, "GetRepositoryAuth "+tc.url, err, tc.code)
		if tc.code == codes.OK && got.GetBearerToken() != marker {
			t.Errorf("GetRepositoryAuth %s = %v", tc.url, got)
		}
	}
	ra, err := f.srv.GetRegistryAuth(asService("acme", "registry"), &clustersv1.GetRegistryAuthRequest{Org: "acme", Host: "ghcr.io"})
	if err != nil || !ra.GetFound() || ra.GetPassword() != marker {
		t.Errorf("GetRegistryAuth = %v, %v", ra, err)
	}

	upd := func(req *clustersv1.UpdateCredentialRequest) (*clustersv1.Credential, error) {
		req.Org = "acme"
		resp, err := f.srv.UpdateCredential(admin, req)
		return resp.GetCredential(), err
	}
	_, err = upd(&clustersv1.UpdateCredentialRequest{Credential: "charts", Endpoint: "https://evil.example.com/", UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"endpoint"}}})
	wantCode(t, "re-point without a new secret", err, codes.InvalidArgument)
	_, err = upd(&clustersv1.UpdateCredentialRequest{Credential: "charts", Secret: &clustersv1.UpdateCredentialRequest_Registry{Registry: &clustersv1.RegistrySecret{Username: "a", Password: "b"}}})
	wantCode(t, "rotate to another type", err, codes.FailedPrecondition)
	rotated, err := upd(&clustersv1.UpdateCredentialRequest{Credential: "ghcr", Secret: &clustersv1.UpdateCredentialRequest_Registry{Registry: &clustersv1.RegistrySecret{Username: "bot", Password: "rotated-" + marker}}})
	if err != nil || rotated.GetVersion() != 2 {
		t.Errorf("rotate registry credential = %v, %v; want version 2", rotated, err)
	}

	f.deps.repos[repo.GetId()] = []string{"acme-charts"}
	_, err = f.srv.DeleteCredential(admin, &clustersv1.DeleteCredentialRequest{Org: "acme", Credential: "charts"})
	wantCode(t, "delete a credential a repository uses", err, codes.FailedPrecondition)
	delete(f.deps.repos, repo.GetId())
	if _, err := f.srv.DeleteCredential(admin, &clustersv1.DeleteCredentialRequest{Org: "acme", Credential: "charts"}); err != nil {
		t.Errorf("delete unused credential: %v", err)
	}
	for _, p := range f.secrets.paths() {
		if strings.HasSuffix(p, repo.GetId()) {
			t.Errorf("secret %s left after delete", p)
		}
	}

	// A kubeconfig credential shared by a cluster is not deleted under it.
	kc, err := f.srv.CreateCredential(admin, &clustersv1.CreateCredentialRequest{Org: "acme", Name: "shared",
		Secret: &clustersv1.CreateCredentialRequest_Kubeconfig{Kubeconfig: &clustersv1.KubeconfigSecret{Kubeconfig: kubeconfigYAML("https://shared.example.com", marker)}}})
	if err != nil {
		t.Fatalf("create kubeconfig credential: %v", err)
	}
	if _, err := f.srv.RegisterCluster(admin, &clustersv1.RegisterClusterRequest{Org: "acme", Name: "onshared",
		Connection: &clustersv1.RegisterClusterRequest_CredentialId{CredentialId: "shared"}}); err != nil {
		t.Fatalf("register on a shared credential: %v", err)
	}
	_, err = f.srv.DeleteCredential(admin, &clustersv1.DeleteCredentialRequest{Org: "acme", Credential: kc.GetCredential().GetId()})
	wantCode(t, "delete a credential a cluster uses", err, codes.FailedPrecondition)

	page, err := f.srv.ListCredentials(as("acme", identity.RoleViewer), &clustersv1.ListCredentialsRequest{Org: "acme", PageSize: 1})
	if err != nil || len(page.GetCredentials()) != 1 || page.GetNextPageToken() == "" {
		t.Errorf("first page = %v, %v", page, err)
	}
	noSecret(t, "ListCredentials", page)
}

func kubeconfigYAML(server, token string) []byte {
	return []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q}}]
users: [{name: u, user: {token: %q}}]
contexts: [{name: ctx, context: {cluster: c, user: u}}]
current-context: ctx
`, server, token))
}

func TestListClustersPagesAndFilters(t *testing.T) {
	f := newFixture(t)
	admin := as("acme", identity.RoleAdmin)
	for i := range 5 {
		env := "dev"
		if i%2 == 0 {
			env = "prod"
		}
		if _, err := f.srv.RegisterCluster(admin, &clustersv1.RegisterClusterRequest{Org: "acme", Name: fmt.Sprintf("c%d", i),
			Labels: map[string]string{"env": env}, Connection: direct(fmt.Sprintf("https://c%d.example.com", i), marker)}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	token := ""
	for {
		page, err := f.srv.ListClusters(admin, &clustersv1.ListClustersRequest{Org: "acme", LabelSelector: "env=prod", PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page.GetClusters() {
			names = append(names, c.GetName())
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	if strings.Join(names, ",") != "c0,c2,c4" {
		t.Errorf("env=prod pages = %v, want c0,c2,c4", names)
	}
	_, err := f.srv.ListClusters(admin, &clustersv1.ListClustersRequest{Org: "acme", LabelSelector: "env in (", PageSize: 2})
	wantCode(t, "bad selector", err, codes.InvalidArgument)
	_, err = f.srv.ListClusters(admin, &clustersv1.ListClustersRequest{Org: "acme", PageToken: "garbage"})
	wantCode(t, "bad page token", err, codes.InvalidArgument)
}
