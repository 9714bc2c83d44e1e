package localrun

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/jackc/pgx/v5"

	"github.com/slipwayhq/slipway/pkg/client"
	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/testenv"
	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
	registryv1 "github.com/slipwayhq/slipway/proto/slipway/registry/v1"
	"github.com/slipwayhq/slipway/tools/internal/devenv/devenvtest"
	"github.com/slipwayhq/slipway/tools/internal/devenv/postgres"
)

// TestStack is what `make run` promises: the five processes start on
// embedded defaults, the environment's cluster registers in the bootstrap
// org and is reachable, a gRPC client creates and lists an image, a
// duplicate create answers AlreadyExists.
func TestStack(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the five binaries")
	}
	env := testenv.Get(t, "vault", "kube", "registry", "chartrepo")
	ctx := context.Background()
	base, err := FreeBasePort()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s, err := Start(ctx, Options{State: t.TempDir(), BasePort: base, Output: &syncWriter{w: &logs}, Environment: env})
	if err != nil {
		t.Fatalf("start: %v\n%s", err, logs.String())
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			os.Stderr.WriteString(logs.String())
		}
	})

	key, err := identity.LoadPrivateKey(s.IdentityKey)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := identity.NewSigner(key, 0).Sign(identity.Identity{Subject: "user:dev", Org: BootstrapOrg, Role: identity.RoleOwner})
	if err != nil {
		t.Fatal(err)
	}
	callCtx := identity.OutgoingContext(ctx, tok)
	addr := map[string]string{}
	for _, c := range s.Components {
		addr[c.Name] = c.Addr
	}

	conn, err := client.Dial(addr["registry"], client.Config{TracerProvider: noop.NewTracerProvider()})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	reg := registryv1.NewRegistryServiceClient(conn)
	// Images resolve to a digest in their registry: the environment's.
	ref, err := s.SeedRegistry(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	img := &registryv1.Image{Name: "api", Version: "1.0.0", Reference: ref}
	if _, err := reg.CreateImage(callCtx, &registryv1.CreateImageRequest{Org: BootstrapOrg, Image: img}); err != nil {
		t.Fatalf("CreateImage: %v", err)
	}
	_, err = reg.CreateImage(callCtx, &registryv1.CreateImageRequest{Org: BootstrapOrg, Image: img})
	if status.Code(err) != codes.AlreadyExists {
		t.Fatalf("duplicate CreateImage = %v, want AlreadyExists", err)
	}
	list, err := reg.ListImages(callCtx, &registryv1.ListImagesRequest{Org: BootstrapOrg})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetImages()) != 1 || list.GetImages()[0].GetReference() != ref || !strings.HasPrefix(list.GetImages()[0].GetDigest(), "sha256:") {
		t.Errorf("ListImages = %v, want the one image", list.GetImages())
	}

	cconn, err := client.Dial(addr["clusters"], client.Config{TracerProvider: noop.NewTracerProvider()})
	if err != nil {
		t.Fatal(err)
	}
	defer cconn.Close()
	if err := s.RegisterCluster(ctx, "local", env["KUBECONFIG_C1"]); err != nil {
		t.Fatal(err)
	}
	// A second make run on the same state finds it registered.
	if err := s.RegisterCluster(ctx, "local", env["KUBECONFIG_C1"]); err != nil {
		t.Fatalf("register again: %v", err)
	}
	cl, err := clustersv1.NewClustersServiceClient(cconn).ListClusters(callCtx, &clustersv1.ListClustersRequest{Org: BootstrapOrg})
	if err != nil {
		t.Fatalf("ListClusters: %v", err)
	}
	if got := cl.GetClusters(); len(got) != 1 || got[0].GetName() != "local" || got[0].GetServer() != env["KUBE_C1_SERVER"] ||
		got[0].GetHealth().GetReachability() != clustersv1.ClusterReachability_CLUSTER_REACHABILITY_REACHABLE {
		t.Errorf("ListClusters = %v, want the reachable local cluster at %s", got, env["KUBE_C1_SERVER"])
	}
	hc, err := healthpb.NewHealthClient(cconn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("clusters health = %v, %v; want SERVING", hc, err)
	}

	// Through REST, as the README's curl does: the bootstrap owner token
	// creates a member token, which lists the image.
	owner, err := s.BootstrapToken()
	if err != nil {
		t.Fatal(err)
	}
	api := "http://" + addr["gateway"] + "/api/v1/orgs/" + BootstrapOrg
	var created struct{ Secret string }
	if code := rest(t, http.MethodPost, api+"/tokens", owner, `{"name":"ci","role":"ROLE_DEPLOYER"}`, &created); code != http.StatusOK || !strings.HasPrefix(created.Secret, "slp_") {
		t.Fatalf("create token: status %d, secret %q", code, created.Secret)
	}
	var listed struct {
		Images []struct{ Reference string }
	}
	if code := rest(t, http.MethodGet, api+"/images", created.Secret, "", &listed); code != http.StatusOK || len(listed.Images) != 1 || listed.Images[0].Reference != ref {
		t.Errorf("list images over REST: status %d, %+v", code, listed)
	}
	var problem struct{ Code string }
	if code := rest(t, http.MethodPost, api+"/images", created.Secret, `{"name":"api","version":"1.0.0","reference":"`+ref+`"}`, &problem); code != http.StatusConflict || problem.Code != "already_exists" {
		t.Errorf("duplicate over REST: status %d code %q, want 409 already_exists", code, problem.Code)
	}

	// The environment's chart repository is in the catalog, and seeding
	// again (a later make run) keeps it.
	for range 2 {
		if err := s.SeedCatalog(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var charts struct {
			Charts []struct{ Repository, Name string }
		}
		if code := rest(t, http.MethodGet, api+"/charts?q=hello", created.Secret, "", &charts); code == http.StatusOK && len(charts.Charts) == 1 &&
			charts.Charts[0].Repository == LocalRepository && charts.Charts[0].Name == "hello" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hello chart of the environment's repository is not searchable within a minute: %+v", charts)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func rest(t *testing.T, method, url, token, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("%s %s: decode: %v", method, url, err)
	}
	return resp.StatusCode
}

// syncWriter serialises writes from the five processes' output copiers.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// TestStackOnPostgres runs the processes that own a database on the real
// PostgreSQL of the devstack (what SLIPWAY_STORE=postgres does for make run).
func TestStackOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the five binaries")
	}
	// A PostgreSQL of its own, so that the row count below is this run's.
	env := devenvtest.Start(t, postgres.Postgres{Databases: []string{"gateway", "clusters", "registry"}}).Env()
	maps.Copy(env, maps.Collect(func(yield func(string, string) bool) {
		for k, v := range testenv.Get(t, "vault", "kube", "registry") {
			if !strings.HasPrefix(k, "POSTGRES") && !yield(k, v) {
				return
			}
		}
	}))
	base, err := FreeBasePort()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s, err := Start(context.Background(), Options{
		State: t.TempDir(), BasePort: base, Output: &syncWriter{w: &logs},
		Databases:   map[string]string{"gateway": env[postgres.DSNEnv("gateway")], "clusters": env[postgres.DSNEnv("clusters")], "registry": env[postgres.DSNEnv("registry")]},
		Environment: env,
	})
	if err != nil {
		t.Fatalf("start: %v\n%s", err, logs.String())
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			os.Stderr.WriteString(logs.String())
		}
	})
	owner, err := s.BootstrapToken()
	if err != nil {
		t.Fatal(err)
	}
	api := "http://" + s.Components[len(s.Components)-1].Addr + "/api/v1/orgs/" + BootstrapOrg
	ref, err := s.SeedRegistry(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	var img struct {
		Image  struct{ Reference string }
		Detail string
	}
	if code := rest(t, http.MethodPost, api+"/images", owner, `{"name":"api","version":"1","reference":"`+ref+`"}`, &img); code != http.StatusOK {
		t.Fatalf("create image on PostgreSQL: status %d: %s", code, img.Detail)
	}
	// The rows are in PostgreSQL, not in a SQLite file.
	conn, err := pgx.Connect(context.Background(), env[postgres.DSNEnv("registry")])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM images WHERE org = $1`, BootstrapOrg).Scan(&n); err != nil || n != 1 {
		t.Errorf("images in PostgreSQL = %d, %v; want 1", n, err)
	}
}

func TestReplicaComponents(t *testing.T) {
	comps, err := ReplicaComponents(8000, 2)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	seen := map[string]string{}
	for _, c := range comps {
		names = append(names, c.Name)
		for _, a := range []string{c.Addr, c.AdminAddr} {
			if other, dup := seen[a]; dup {
				t.Errorf("%s and %s both use %s", other, c.Name, a)
			}
			seen[a] = c.Name
		}
	}
	want := []string{"clusters", "clusters-2", "registry", "registry-2", "catalog", "catalog-2", "releases", "releases-2", "gateway"}
	if !slices.Equal(names, want) {
		t.Errorf("names = %q, want %q", names, want)
	}
	targets := Targets(comps)
	if got, want := targets["releases"], "127.0.0.1:9104,127.0.0.1:9154"; got != want {
		t.Errorf("releases target = %q, want %q", got, want)
	}
	if got, want := targets["gateway"], "127.0.0.1:8080"; got != want {
		t.Errorf("gateway target = %q, want %q", got, want)
	}
	one, err := ReplicaComponents(8000, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(one, Components(8000)) {
		t.Errorf("one replica = %v, want Components(8000)", one)
	}
	for _, n := range []int{0, 3} {
		if _, err := ReplicaComponents(8000, n); err == nil {
			t.Errorf("ReplicaComponents(8000, %d) accepted", n)
		}
	}
}
