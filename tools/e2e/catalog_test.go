package e2e

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/registry"

	"github.com/slipwayhq/slipway/pkg/oidctest"
	"github.com/slipwayhq/slipway/pkg/testenv"
	"github.com/slipwayhq/slipway/tools/internal/devenv/chartrepo"
	"github.com/slipwayhq/slipway/tools/internal/devenv/kube"
	"github.com/slipwayhq/slipway/tools/internal/localrun"
)

type repositoryJSON struct {
	Name, URL    string
	CredentialID string `json:"credential_id"`
	Sync         struct {
		State      string
		ChartCount int    `json:"chart_count"`
		LastError  string `json:"last_error"`
	}
}

type chartJSON struct {
	Repository, Name string
	LatestVersion    string `json:"latest_version"`
}

// privateRepo serves the fixture charts over HTTPS, behind basic auth,
// with a certificate no system trusts: a credential must bring both the
// login and the CA.
func privateRepo(t *testing.T, user, password string) (*httptest.Server, []byte) {
	t.Helper()
	dir := t.TempDir()
	srv := httptest.NewUnstartedServer(nil)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		http.FileServer(http.Dir(dir)).ServeHTTP(w, r)
	})
	srv.StartTLS()
	t.Cleanup(srv.Close)
	if _, err := chartrepo.Package(chartrepo.FixtureCharts(), dir, srv.URL); err != nil {
		t.Fatal(err)
	}
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return srv, ca
}

// pushChart pushes a fixture chart to the environment's OCI registry as
// `helm push` does, with Helm's own registry client.
func pushChart(t *testing.T, host, user, pass, dir, repoPath string) {
	t.Helper()
	ch, err := loader.LoadDir(filepath.Join(chartrepo.FixtureCharts(), dir))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	file, err := chartutil.Save(ch, out)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	c, err := registry.NewClient(registry.ClientOptPlainHTTP(), registry.ClientOptBasicAuth(user, pass))
	if err != nil {
		t.Fatal(err)
	}
	ref := host + "/" + repoPath + "/" + ch.Name() + ":" + ch.Metadata.Version
	if _, err := c.Push(data, ref); err != nil {
		t.Fatalf("helm push %s: %v", ref, err)
	}
}

// TestCatalog adds, through REST, the environment's HTTP chart
// repository (anonymous), a private HTTPS one (basic auth and its own CA)
// and charts pushed to the environment's OCI registry (basic auth), syncs
// them, searches and reads charts, and records an application with two
// targets on two clusters, checked against the clusters, the registry and
// the chart's values schema; another org sees none of it, and no password
// appears in any answer or log line.
func TestCatalog(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real stack")
	}
	env := testenv.Get(t, "vault", "kube", "kube2", "registry", "chartrepo")
	iss := oidctest.NewIssuer(t)
	s := startStack(t, env, "SLIPWAY_GATEWAY_OIDC_ISSUER="+iss.URL(), "SLIPWAY_CATALOG_SYNC_POLL=500ms")
	owner := s.owner()
	org := "/orgs/" + localrun.BootstrapOrg
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, c := range []string{"c1", "c2"} {
		if err := s.s.RegisterCluster(ctx, c, env[kube.EnvKubeconfig(c)]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.s.SeedRegistry(ctx, env); err != nil {
		t.Fatal(err)
	}
	s.expect(s.do(http.MethodPost, org+"/images", owner, map[string]any{"name": "hello", "version": "1.0.0", "reference": env["OCI_REGISTRY"] + "/" + localrun.DemoImage}), http.StatusOK, "record the demo image")

	// Three repositories: anonymous HTTP, private HTTPS, private OCI.
	repoPass := plant("private-repo-password")
	priv, ca := privateRepo(t, "reader", repoPass)
	host, user, pass := env["OCI_REGISTRY"], env["OCI_REGISTRY_USERNAME"], env["OCI_REGISTRY_PASSWORD"]
	pushChart(t, host, user, pass, "hello-0.1.0", "e2e-charts")
	pushChart(t, host, user, pass, "hello-0.2.0", "e2e-charts")
	s.expect(s.do(http.MethodPost, org+"/credentials", owner, map[string]any{"name": "private-charts", "endpoint": priv.URL + "/",
		"helm_repository": map[string]any{"basic_auth": map[string]string{"username": "reader", "password": repoPass}, "certificate_authority_pem": ca}}),
		http.StatusOK, "record the private repository's login")
	s.expect(s.do(http.MethodPost, org+"/credentials", owner, map[string]any{"name": "oci-charts", "endpoint": "oci://" + host + "/e2e-charts",
		"helm_repository": map[string]any{"basic_auth": map[string]string{"username": user, "password": pass}}}),
		http.StatusOK, "record the OCI registry's login")
	for _, r := range []map[string]any{
		{"name": "local", "url": env["CHART_REPO_URL"]},
		{"name": "private", "url": priv.URL, "credential_id": "private-charts"},
		{"name": "oci", "url": "oci://" + host + "/e2e-charts", "credential_id": "oci-charts", "oci_charts": []string{"hello"}},
	} {
		s.expect(s.do(http.MethodPost, org+"/repositories", owner, r), http.StatusOK, "add repository "+r["name"].(string))
	}
	// A credential that does not cover the URL is refused.
	if a := s.do(http.MethodPost, org+"/repositories", owner, map[string]any{"name": "wrong", "url": env["CHART_REPO_URL"], "credential_id": "oci-charts"}); a.status != http.StatusUnprocessableEntity {
		t.Errorf("repository with a credential for elsewhere: %d %s; want 422", a.status, a.body)
	}
	for _, name := range []string{"local", "private", "oci"} {
		var got struct{ Repository repositoryJSON }
		eventually(t, time.Minute, "repository "+name+" synced", func() bool {
			s.expect(s.do(http.MethodGet, org+"/repositories/"+name, owner, nil), http.StatusOK, "get repository").decode(t, &got)
			return got.Repository.Sync.State == "REPOSITORY_SYNC_STATE_SYNCED" || got.Repository.Sync.State == "REPOSITORY_SYNC_STATE_FAILED"
		})
		if got.Repository.Sync.State != "REPOSITORY_SYNC_STATE_SYNCED" || got.Repository.Sync.ChartCount == 0 {
			t.Fatalf("repository %s: %+v", name, got.Repository)
		}
	}

	var search struct{ Charts []chartJSON }
	s.expect(s.do(http.MethodGet, org+"/charts?q=hello", owner, nil), http.StatusOK, "search").decode(t, &search)
	var found []string
	for _, c := range search.Charts {
		found = append(found, c.Repository+"/"+c.Name+"@"+c.LatestVersion)
	}
	if got := strings.Join(found, " "); got != "local/hello@0.2.0 oci/hello@0.2.0 private/hello@0.2.0" {
		t.Errorf("search hello = %s", got)
	}
	var detail struct {
		Chart    chartJSON
		Versions []struct{ Version, Digest string }
	}
	s.expect(s.do(http.MethodGet, org+"/charts/oci/hello", owner, nil), http.StatusOK, "OCI chart").decode(t, &detail)
	if len(detail.Versions) != 2 || detail.Versions[0].Version != "0.2.0" || !strings.HasPrefix(detail.Versions[0].Digest, "sha256:") {
		t.Errorf("OCI chart versions = %+v", detail.Versions)
	}
	for _, repo := range []string{"local", "private", "oci"} {
		var files struct {
			ChartVersion struct{ Version string } `json:"chart_version"`
			Values       string                   `json:"values_yaml"`
			Schema       string                   `json:"values_schema_json"`
		}
		s.expect(s.do(http.MethodGet, org+"/charts/"+repo+"/hello/versions/0.2.0", owner, nil), http.StatusOK, repo+" chart version").decode(t, &files)
		if files.ChartVersion.Version != "0.2.0" || !strings.Contains(files.Values, "hello from 0.2.0") || !strings.Contains(files.Schema, "replicaCount") {
			t.Errorf("%s hello 0.2.0 files = %+v", repo, files)
		}
	}
	if a := s.do(http.MethodGet, org+"/charts/local/hello/versions/9.9.9", owner, nil); a.status != http.StatusNotFound {
		t.Errorf("missing version: %d %s", a.status, a.body)
	}

	// An application with two targets on two clusters.
	app := map[string]any{
		"name":   "greeter",
		"chart":  map[string]any{"repository": "private", "chart": "hello", "version": "~0.2"},
		"image":  "hello",
		"values": map[string]any{"message": "hi"},
		"targets": []map[string]any{
			{"name": "one", "cluster": "c1", "namespace": "greet"},
			{"name": "two", "cluster": "c2", "namespace": "greet", "values": map[string]any{"replicaCount": 2}},
		},
	}
	var created struct {
		Application struct {
			Etag    string
			Targets []struct {
				Name, Cluster string
				Status        struct {
					ChartVersion       string `json:"chart_version"`
					LatestChartVersion string `json:"latest_chart_version"`
				}
			}
		}
	}
	s.expect(s.do(http.MethodPost, org+"/applications", owner, app), http.StatusOK, "create application").decode(t, &created)
	if len(created.Application.Targets) != 2 || created.Application.Targets[0].Cluster == "c1" || created.Application.Targets[0].Cluster == "" {
		t.Errorf("created %+v; want the clusters recorded by id", created.Application)
	}
	s.expect(s.do(http.MethodGet, org+"/applications/greeter", owner, nil), http.StatusOK, "get application").decode(t, &created)
	for _, tg := range created.Application.Targets {
		if tg.Status.ChartVersion != "0.2.0" {
			t.Errorf("target %s status %+v; want chart version 0.2.0", tg.Name, tg.Status)
		}
	}
	// The values schema, the clusters and the image are checked.
	bad := map[string]any{
		"name":  "broken",
		"chart": map[string]any{"repository": "local", "chart": "hello", "version": "0.2.0"},
		"image": "nope",
		"targets": []map[string]any{
			{"name": "one", "cluster": "c1", "namespace": "x", "values": map[string]any{"replicaCount": -1, "service": map[string]any{"type": "Bogus"}}},
			{"name": "two", "cluster": "no-such-cluster", "namespace": "x"},
		},
	}
	a := s.do(http.MethodPost, org+"/applications", owner, bad)
	var problem struct {
		Code   string
		Errors []struct{ Field string }
	}
	a.decode(t, &problem)
	var fields []string
	for _, e := range problem.Errors {
		fields = append(fields, e.Field)
	}
	sort.Strings(fields)
	want := "image targets[0].values/replicaCount targets[0].values/service/type targets[1].cluster"
	if a.status != http.StatusUnprocessableEntity || problem.Code != "unprocessable" || strings.Join(fields, " ") != want {
		t.Errorf("invalid application: %d %s; want 422 listing %s", a.status, a.body, want)
	}
	s.expect(s.do(http.MethodGet, org+"/applications/broken", owner, nil), http.StatusNotFound, "nothing written")
	app["etag"] = "stale"
	if a := s.do(http.MethodPut, org+"/applications/greeter", owner, app); a.status != http.StatusConflict {
		t.Errorf("update with a stale etag: %d %s; want 409", a.status, a.body)
	}
	app["etag"] = created.Application.Etag
	app["targets"] = app["targets"].([]map[string]any)[:1]
	s.expect(s.do(http.MethodPut, org+"/applications/greeter", owner, app), http.StatusOK, "replace application")
	if a := s.do(http.MethodDelete, org+"/repositories/private", owner, nil); a.status != http.StatusConflict || !strings.Contains(string(a.body), "greeter") {
		t.Errorf("delete a repository in use: %d %s; want 409 naming the application", a.status, a.body)
	}

	// Another org sees none of it, on every catalog route.
	bob := iss.Token(t, "bob-sub", "bob@example.com", "slipway", time.Hour)
	s.expect(s.do(http.MethodPost, "/orgs", bob, map[string]any{"name": "globex"}), http.StatusOK, "bob creates globex")
	g := "/orgs/globex"
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/repositories/private"},
		{http.MethodPatch, "/repositories/private"},
		{http.MethodDelete, "/repositories/private"},
		{http.MethodPost, "/repositories/private:sync"},
		{http.MethodGet, "/repositories/private/charts"},
		{http.MethodGet, "/charts/private/hello"},
		{http.MethodGet, "/charts/private/hello/versions/0.2.0"},
		{http.MethodGet, "/charts/private/hello/0.2.0"},
		{http.MethodGet, "/applications/greeter"},
		{http.MethodPut, "/applications/greeter"},
		{http.MethodDelete, "/applications/greeter"},
	} {
		var body any
		switch r.method {
		case http.MethodPatch:
			body = map[string]any{"update_mask": "syncInterval", "sync_interval": "3600s"}
		case http.MethodPut:
			body = app
		case http.MethodPost:
			body = map[string]any{}
		}
		if a := s.do(r.method, g+r.path, bob, body); a.status != http.StatusNotFound {
			t.Errorf("globex %s %s: %d %s; want 404", r.method, r.path, a.status, a.body)
		}
	}
	for _, path := range []string{"/repositories", "/charts", "/charts?q=hello", "/applications"} {
		a := s.expect(s.do(http.MethodGet, g+path, bob, nil), http.StatusOK, "globex lists "+path)
		if strings.Contains(string(a.body), "hello") || strings.Contains(string(a.body), "greeter") || strings.Contains(string(a.body), "private") {
			t.Errorf("globex %s shows default's catalog: %s", path, a.body)
		}
	}
	// globex cannot use default's credential for the same URL either.
	if a := s.do(http.MethodPost, g+"/repositories", bob, map[string]any{"name": "private", "url": priv.URL, "credential_id": "private-charts"}); a.status != http.StatusUnprocessableEntity {
		t.Errorf("globex names default's credential: %d %s; want 422", a.status, a.body)
	}
	s.expect(s.do(http.MethodPost, g+"/repositories", bob, map[string]any{"name": "private", "url": priv.URL}), http.StatusOK, "globex adds the URL without a login")
	var gr struct{ Repository repositoryJSON }
	eventually(t, time.Minute, "globex's anonymous sync of the private repository ends", func() bool {
		s.expect(s.do(http.MethodGet, g+"/repositories/private", bob, nil), http.StatusOK, "get").decode(t, &gr)
		return gr.Repository.Sync.State == "REPOSITORY_SYNC_STATE_FAILED" || gr.Repository.Sync.State == "REPOSITORY_SYNC_STATE_SYNCED"
	})
	if gr.Repository.Sync.State != "REPOSITORY_SYNC_STATE_FAILED" || gr.Repository.Sync.ChartCount != 0 {
		t.Errorf("globex's anonymous sync of a private repository: %+v; want a failure, no charts", gr.Repository.Sync)
	}

	seen := s.seen()
	for _, secret := range []string{repoPass, pass} {
		if strings.Contains(seen, secret) {
			t.Error("a repository password appears in an answer or a log line")
		}
	}
}
