package e2e

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/pkg/oidctest"
	"github.com/slipwayhq/slipway/pkg/testenv"
	"github.com/slipwayhq/slipway/tools/internal/devenv/kube"
	"github.com/slipwayhq/slipway/tools/internal/localrun"
)

type operationJSON struct {
	ID     string
	State  string
	Kind   string
	Error  struct{ Code, Message string }
	Result struct {
		Release struct {
			Revision     int
			Status       string
			ChartVersion string `json:"chart_version"`
		}
	}
	Events []struct{ Phase, Message string }
}

// awaitOperation polls an operation until it ends and returns it.
func (s *stack) awaitOperation(t *testing.T, token, id string) operationJSON {
	t.Helper()
	var got struct{ Operation operationJSON }
	eventually(t, 2*time.Minute, "operation "+id+" ends", func() bool {
		s.expect(s.do(http.MethodGet, "/orgs/"+localrun.BootstrapOrg+"/operations/"+id, token, nil), http.StatusOK, "get operation").decode(t, &got)
		return strings.HasSuffix(got.Operation.State, "SUCCEEDED") || strings.HasSuffix(got.Operation.State, "FAILED") || strings.HasSuffix(got.Operation.State, "CANCELLED")
	})
	return got.Operation
}

// TestDeployments installs, upgrades, rolls back and uninstalls a chart of
// the catalog on a real cluster through REST: each call answers with an
// operation that runs on the releases service and ends as it should, the
// ledger serves the release and its history, and another org sees none
// of it.
func TestDeployments(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real stack")
	}
	env := testenv.Get(t, "vault", "kube", "registry", "chartrepo")
	iss := oidctest.NewIssuer(t)
	s := startStack(t, env, "SLIPWAY_GATEWAY_OIDC_ISSUER="+iss.URL(), "SLIPWAY_CATALOG_SYNC_POLL=500ms")
	owner := s.owner()
	deployer := s.token(localrun.BootstrapOrg, owner, "DEPLOYER")
	org := "/orgs/" + localrun.BootstrapOrg
	s.seedLocal(t, "c1", env[kube.EnvKubeconfig("c1")])
	deployments := org + "/clusters/c1/deployments"
	// The environment's cluster outlives the stack: a namespace of its own
	// keeps runs apart.
	ns := "e2e-" + strings.ToLower(strconv.FormatInt(time.Now().UnixNano()%1e9, 36))
	submit := func(method, path string, body map[string]any) operationJSON {
		t.Helper()
		return s.awaitOperation(t, deployer, s.submit(t, deployer, method, path, body).ID)
	}
	chart := helloChart

	op := submit(http.MethodPost, deployments, map[string]any{"name": "web", "namespace": ns, "chart": chart("0.1.0"),
		"values_yaml": "replicaCount: 2\n", "options": map[string]any{"wait": true, "create_namespace": true, "timeout": "120s"}})
	if !strings.HasSuffix(op.State, "SUCCEEDED") || op.Result.Release.Revision != 1 || op.Result.Release.ChartVersion != "0.1.0" {
		t.Fatalf("install: %+v", op)
	}
	if a := s.do(http.MethodPost, deployments, deployer, map[string]any{"name": "web", "namespace": ns, "chart": chart("0.1.0")}); a.status != http.StatusConflict {
		t.Errorf("install again: %d %s; want 409", a.status, a.body)
	}
	op = submit(http.MethodPut, deployments+"/web", map[string]any{"namespace": ns, "chart": chart("0.2.0"), "options": map[string]any{"wait": true}})
	if !strings.HasSuffix(op.State, "SUCCEEDED") || op.Result.Release.Revision != 2 || op.Result.Release.ChartVersion != "0.2.0" {
		t.Fatalf("upgrade: %+v", op)
	}
	var got struct {
		Release struct {
			Revision     int
			Status       string
			ChartVersion string `json:"chart_version"`
			Operation    string
		}
	}
	s.expect(s.do(http.MethodGet, deployments+"/web?namespace="+ns, deployer, nil), http.StatusOK, "get").decode(t, &got)
	if got.Release.Revision != 2 || got.Release.Status != "RELEASE_STATUS_DEPLOYED" || got.Release.Operation != op.ID {
		t.Errorf("release = %+v", got.Release)
	}
	var values struct {
		ValuesYaml string `json:"values_yaml"`
	}
	s.expect(s.do(http.MethodGet, deployments+"/web/values?namespace="+ns+"&revision=1", deployer, nil), http.StatusOK, "values").decode(t, &values)
	if !strings.Contains(values.ValuesYaml, "replicaCount: 2") {
		t.Errorf("revision 1 values = %q", values.ValuesYaml)
	}
	var manifest struct {
		Revision  int
		Documents []struct {
			Source string
			Object struct{ Kind, Name string }
		}
	}
	s.expect(s.do(http.MethodGet, deployments+"/web/manifest?namespace="+ns+"&revision=1", deployer, nil), http.StatusOK, "manifest").decode(t, &manifest)
	var kinds []string
	for _, d := range manifest.Documents {
		kinds = append(kinds, d.Object.Kind)
	}
	if manifest.Revision != 1 || !slices.Contains(kinds, "Deployment") || !slices.Contains(kinds, "Service") {
		t.Errorf("manifest of revision 1 = %+v", manifest)
	}
	op = submit(http.MethodPost, deployments+"/web/rollback", map[string]any{"namespace": ns})
	if !strings.HasSuffix(op.State, "SUCCEEDED") || op.Result.Release.Revision != 3 || op.Result.Release.ChartVersion != "0.1.0" {
		t.Fatalf("rollback: %+v", op)
	}
	var hist struct {
		Releases []struct {
			Revision int
			Status   string
		}
	}
	s.expect(s.do(http.MethodGet, deployments+"/web/history?namespace="+ns, deployer, nil), http.StatusOK, "history").decode(t, &hist)
	if len(hist.Releases) != 3 || hist.Releases[0].Revision != 3 || hist.Releases[0].Status != "RELEASE_STATUS_DEPLOYED" || hist.Releases[1].Status != "RELEASE_STATUS_SUPERSEDED" {
		t.Errorf("history = %+v", hist.Releases)
	}
	var list struct{ Releases []struct{ Name string } }
	s.expect(s.do(http.MethodGet, deployments, deployer, nil), http.StatusOK, "list").decode(t, &list)
	if len(list.Releases) != 1 || list.Releases[0].Name != "web" {
		t.Errorf("list = %+v", list.Releases)
	}

	checkChartSources(t, s, env, owner, deployer, deployments, ns, submit)

	// Another org sees none of it.
	bob := iss.Token(t, "bob-sub", "bob@example.com", "slipway", time.Hour)
	s.expect(s.do(http.MethodPost, "/orgs", bob, map[string]any{"name": "globex"}), http.StatusOK, "bob creates globex")
	for _, path := range []string{"/clusters/c1/deployments/web?namespace=" + ns, "/clusters/c1/deployments/web/history?namespace=" + ns, "/operations/" + op.ID} {
		if a := s.do(http.MethodGet, "/orgs/globex"+path, bob, nil); a.status != http.StatusNotFound {
			t.Errorf("globex GET %s: %d %s", path, a.status, a.body)
		}
	}

	// Recovering a release that is not pending changes nothing; it is for
	// admins (the deployer is refused).
	if a := s.do(http.MethodPost, deployments+"/web/recover", deployer, map[string]any{"namespace": ns}); a.status != http.StatusForbidden {
		t.Errorf("recover as a deployer: %d %s; want 403", a.status, a.body)
	}
	var rec struct{ Operation operationJSON }
	a := s.do(http.MethodPost, deployments+"/web/recover", owner, map[string]any{"namespace": ns})
	if a.status != http.StatusOK && a.status != http.StatusAccepted {
		t.Fatalf("recover: %d %s", a.status, a.body)
	}
	a.decode(t, &rec)
	op = s.awaitOperation(t, owner, rec.Operation.ID)
	if !strings.HasSuffix(op.State, "SUCCEEDED") || op.Result.Release.Revision != 3 || !strings.Contains(string(s.do(http.MethodGet, org+"/operations/"+op.ID, owner, nil).body), "nothing to do") {
		t.Errorf("recover of a deployed release: %+v", op)
	}

	op = submit(http.MethodDelete, deployments+"/web?namespace="+ns, nil)
	if !strings.HasSuffix(op.State, "SUCCEEDED") {
		t.Fatalf("uninstall: %+v", op)
	}
	s.expect(s.do(http.MethodGet, deployments, deployer, nil), http.StatusOK, "list after uninstall").decode(t, &list)
	if len(list.Releases) != 0 {
		t.Errorf("list after uninstall = %+v", list.Releases)
	}
}

// TestApplicationDeploy deploys an application of the catalog to a target
// through REST: the release <application>-<target> runs the chart with the
// application's and the target's values and the image by digest, the
// catalog then reports it deployed (and refuses to delete the
// application), the target's releases are listed, and a rollback and an
// uninstall settle it.
func TestApplicationDeploy(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real stack")
	}
	env := testenv.Get(t, "vault", "kube", "registry", "chartrepo")
	s := startStack(t, env, "SLIPWAY_CATALOG_SYNC_POLL=500ms")
	owner := s.owner()
	org := "/orgs/" + localrun.BootstrapOrg
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.s.RegisterCluster(ctx, "c1", env[kube.EnvKubeconfig("c1")]); err != nil {
		t.Fatal(err)
	}
	ref, err := s.s.SeedRegistry(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.s.SeedCatalog(ctx, env); err != nil {
		t.Fatal(err)
	}
	var img struct{ Image imageJSON }
	s.expect(s.do(http.MethodPost, org+"/images", owner, map[string]any{"name": "hello", "version": "1.0.0", "reference": ref}), http.StatusOK, "record image").decode(t, &img)
	eventually(t, time.Minute, "the local repository synced", func() bool {
		var r struct{ Repository repositoryJSON }
		s.do(http.MethodGet, org+"/repositories/local", owner, nil).decode(t, &r)
		return r.Repository.Sync.ChartCount > 0
	})
	ns := "app-" + strings.ToLower(strconv.FormatInt(time.Now().UnixNano()%1e9, 36))
	s.expect(s.do(http.MethodPost, org+"/applications", owner, map[string]any{
		"name": "greeter", "chart": map[string]any{"repository": localrun.LocalRepository, "chart": "hello", "version": "~0.2"}, "image": "hello",
		"values":  map[string]any{"message": "from the application"},
		"targets": []map[string]any{{"name": "dev", "cluster": "c1", "namespace": ns, "values": map[string]any{"replicaCount": 2}}},
	}), http.StatusOK, "create application")

	deploy := func(path string, body map[string]any) operationJSON {
		t.Helper()
		var resp struct{ Operation operationJSON }
		a := s.do(http.MethodPost, org+"/applications/greeter/targets/dev"+path, owner, body)
		if a.status != http.StatusOK && a.status != http.StatusAccepted {
			t.Fatalf("%s: %d %s", path, a.status, a.body)
		}
		a.decode(t, &resp)
		return s.awaitOperation(t, owner, resp.Operation.ID)
	}
	op := deploy(":deploy", map[string]any{"values_yaml": "service:\n  port: 8080\n", "options": map[string]any{"wait": true, "create_namespace": true}})
	if !strings.HasSuffix(op.State, "SUCCEEDED") || op.Result.Release.ChartVersion != "0.2.0" {
		t.Fatalf("deploy: %+v", op)
	}
	// The values installed: application < target < request, and the image
	// by digest at the default key.
	var values struct {
		ValuesYaml string `json:"values_yaml"`
	}
	s.expect(s.do(http.MethodGet, org+"/clusters/c1/deployments/greeter-dev/values?namespace="+ns, owner, nil), http.StatusOK, "values").decode(t, &values)
	for _, want := range []string{"message: from the application", "replicaCount: 2", "port: 8080", "digest: " + img.Image.Digest, "tag: 1.0.0"} {
		if !strings.Contains(values.ValuesYaml, want) {
			t.Errorf("deployed values lack %q:\n%s", want, values.ValuesYaml)
		}
	}
	var rels struct {
		Releases []struct {
			Revision int
			Images   []struct{ Reference, Digest string }
		}
	}
	s.expect(s.do(http.MethodGet, org+"/applications/greeter/targets/dev/releases", owner, nil), http.StatusOK, "target releases").decode(t, &rels)
	if len(rels.Releases) != 1 || len(rels.Releases[0].Images) != 1 || rels.Releases[0].Images[0].Digest != img.Image.Digest {
		t.Errorf("target releases = %+v", rels.Releases)
	}
	var app struct {
		Application struct {
			Targets []struct {
				Status struct {
					Deployed string `json:"deployed_chart_version"`
				}
			}
		}
	}
	s.expect(s.do(http.MethodGet, org+"/applications/greeter", owner, nil), http.StatusOK, "get application").decode(t, &app)
	if app.Application.Targets[0].Status.Deployed != "0.2.0" {
		t.Errorf("the catalog does not see the deploy: %+v", app.Application.Targets)
	}
	if a := s.do(http.MethodDelete, org+"/applications/greeter", owner, nil); a.status != http.StatusConflict {
		t.Errorf("delete a deployed application: %d %s; want 409", a.status, a.body)
	}
	// The registry knows where the image runs, and keeps it.
	var where struct {
		Deployments []struct{ Release, Namespace, Digest string }
	}
	s.expect(s.do(http.MethodGet, org+"/images/hello/versions/1.0.0/deployments", owner, nil), http.StatusOK, "where the image runs").decode(t, &where)
	if len(where.Deployments) != 1 || where.Deployments[0].Release != "greeter-dev" || where.Deployments[0].Namespace != ns {
		t.Errorf("image deployments = %+v", where.Deployments)
	}
	if a := s.do(http.MethodDelete, org+"/images/hello/versions/1.0.0", owner, nil); a.status != http.StatusConflict {
		t.Errorf("delete a running image: %d %s; want 409", a.status, a.body)
	}

	op = deploy(":deploy", map[string]any{"values_yaml": "service:\n  port: 9090\n"})
	if !strings.HasSuffix(op.State, "SUCCEEDED") || op.Result.Release.Revision != 2 {
		t.Fatalf("second deploy: %+v", op)
	}
	op = deploy(":rollback", map[string]any{})
	if !strings.HasSuffix(op.State, "SUCCEEDED") || op.Result.Release.Revision != 3 {
		t.Fatalf("rollback: %+v", op)
	}
	s.expect(s.do(http.MethodGet, org+"/clusters/c1/deployments/greeter-dev/values?namespace="+ns, owner, nil), http.StatusOK, "values").decode(t, &values)
	if !strings.Contains(values.ValuesYaml, "port: 8080") {
		t.Errorf("values after rollback:\n%s", values.ValuesYaml)
	}
	// A rollback through the deployments routes stays the application's.
	var rb struct{ Operation operationJSON }
	s.expect(s.do(http.MethodPost, org+"/clusters/c1/deployments/greeter-dev/rollback", owner, map[string]any{"namespace": ns}), http.StatusAccepted, "rollback").decode(t, &rb)
	op = s.awaitOperation(t, owner, rb.Operation.ID)
	if !strings.HasSuffix(op.State, "SUCCEEDED") || op.Result.Release.Revision != 4 {
		t.Fatalf("rollback through the deployments route: %+v", op)
	}
	s.expect(s.do(http.MethodGet, org+"/applications/greeter/targets/dev/releases", owner, nil), http.StatusOK, "target releases").decode(t, &rels)
	if len(rels.Releases) != 4 || rels.Releases[0].Revision != 4 {
		t.Errorf("target releases after a deployments-route rollback = %+v; want 4 revisions, 4 first", rels.Releases)
	}
	var del struct{ Operation operationJSON }
	a := s.do(http.MethodDelete, org+"/clusters/c1/deployments/greeter-dev?namespace="+ns, owner, nil)
	if a.status != http.StatusOK && a.status != http.StatusAccepted {
		t.Fatalf("uninstall: %d %s", a.status, a.body)
	}
	a.decode(t, &del)
	if op := s.awaitOperation(t, owner, del.Operation.ID); !strings.HasSuffix(op.State, "SUCCEEDED") {
		t.Fatalf("uninstall: %+v", op)
	}
	s.expect(s.do(http.MethodDelete, org+"/applications/greeter", owner, nil), http.StatusOK, "delete the application once uninstalled")
}
