package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/registry"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/slipwayhq/slipway/pkg/testenv"
	"github.com/slipwayhq/slipway/tools/charts"
	"github.com/slipwayhq/slipway/tools/internal/devenv/kube"
	"github.com/slipwayhq/slipway/tools/internal/localrun"
)

// stopwatch logs how long each step of a test took, and the total.
type stopwatch struct {
	t           *testing.T
	start, last time.Time
}

func newStopwatch(t *testing.T) *stopwatch {
	now := time.Now()
	return &stopwatch{t: t, start: now, last: now}
}

func (w *stopwatch) lap(step string) {
	w.t.Helper()
	now := time.Now()
	w.t.Logf("timing: %-62s %6.2fs (total %6.2fs)", step, now.Sub(w.last).Seconds(), now.Sub(w.start).Seconds())
	w.last = now
}

// keySecrets are the Secrets the umbrella generates on install (release
// "slipway") and must keep across upgrades and rollbacks.
var keySecrets = []string{"slipway-identity", "slipway-registry-service-key", "slipway-catalog-service-key", "slipway-releases-service-key"}

// TestSelfHost is Slipway deploying itself through its own REST API: the
// checkout's charts (the umbrella with its service charts inside) are
// packaged and pushed to the environment's OCI registry, added as the
// org's catalog repository, and the umbrella is installed onto a second
// cluster registered through the API, waited for until every Deployment
// is Available; an upgrade that changes the gateway's log level reaches
// the new revision's values, manifest and pods and keeps the generated
// key Secrets; a rollback to revision 1 runs revision 1's values again.
func TestSelfHost(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real stack")
	}
	w := newStopwatch(t)
	env := testenv.Get(t, "vault", "kube2", "registry")
	w.lap("environment (testenv: vault, two clusters, registry)")
	s := startStack(t, env, "SLIPWAY_CATALOG_SYNC_POLL=500ms")
	owner := s.owner()
	deployer := s.token(localrun.BootstrapOrg, owner, "DEPLOYER")
	org := "/orgs/" + localrun.BootstrapOrg
	w.lap("slipway started (five processes)")

	// Package the checkout's charts as `helm package` does after `helm
	// dependency build` and push them, each under a path of this run's own.
	dir, err := charts.Dir()
	if err != nil {
		t.Fatal(err)
	}
	umbrella, err := charts.Load(dir, charts.Umbrella)
	if err != nil {
		t.Fatal(err)
	}
	version := umbrella.Metadata.Version
	host, user, pass := env["OCI_REGISTRY"], env["OCI_REGISTRY_USERNAME"], env["OCI_REGISTRY_PASSWORD"]
	repoPath := "selfhost-" + strings.ToLower(rand.Text()[:8])
	published := append(append([]string{}, charts.Services...), charts.Umbrella)
	var umbrellaDigest string
	for _, name := range published {
		data := packageChart(t, dir, name)
		pushArchive(t, host, user, pass, repoPath, name, version, data)
		if name == charts.Umbrella {
			sum := sha256.Sum256(data)
			umbrellaDigest = "sha256:" + hex.EncodeToString(sum[:])
			t.Logf("%s %s: %d bytes, %s", name, version, len(data), umbrellaDigest)
		}
	}
	w.lap(fmt.Sprintf("package and push %d charts", len(published)))

	s.expect(s.do(http.MethodPost, org+"/credentials", owner, map[string]any{"name": "slipway-charts", "endpoint": "oci://" + host + "/" + repoPath,
		"helm_repository": map[string]any{"basic_auth": map[string]string{"username": user, "password": pass}}}),
		http.StatusOK, "record the OCI registry's login")
	s.expect(s.do(http.MethodPost, org+"/repositories", owner, map[string]any{"name": "slipway", "url": "oci://" + host + "/" + repoPath,
		"credential_id": "slipway-charts", "oci_charts": published}), http.StatusOK, "add the charts as a repository")
	var repo struct{ Repository repositoryJSON }
	eventually(t, 2*time.Minute, "repository slipway synced", func() bool {
		s.expect(s.do(http.MethodGet, org+"/repositories/slipway", owner, nil), http.StatusOK, "get repository").decode(t, &repo)
		return repo.Repository.Sync.State == "REPOSITORY_SYNC_STATE_SYNCED" || repo.Repository.Sync.State == "REPOSITORY_SYNC_STATE_FAILED"
	})
	if repo.Repository.Sync.State != "REPOSITORY_SYNC_STATE_SYNCED" || repo.Repository.Sync.ChartCount != len(published) {
		t.Fatalf("repository slipway: %+v; want synced with %d charts", repo.Repository, len(published))
	}
	var detail struct {
		Chart    chartJSON
		Versions []struct{ Version, Digest string }
	}
	s.expect(s.do(http.MethodGet, org+"/charts/slipway/slipway", owner, nil), http.StatusOK, "the umbrella in the catalog").decode(t, &detail)
	if detail.Chart.LatestVersion != version || len(detail.Versions) != 1 || detail.Versions[0].Digest != umbrellaDigest {
		t.Fatalf("catalog chart slipway/slipway = %+v %+v; want version %s with digest %s", detail.Chart, detail.Versions, version, umbrellaDigest)
	}
	w.lap("add the repository and sync it")

	// The second cluster, registered through the API as an org brings one.
	kc, err := os.ReadFile(env[kube.EnvKubeconfig("c2")])
	if err != nil {
		t.Fatal(err)
	}
	var reg struct{ Cluster clusterJSON }
	s.expect(s.do(http.MethodPost, org+"/clusters", owner, map[string]any{"name": "selfhost", "kubeconfig": map[string]any{"kubeconfig": kc}}),
		http.StatusOK, "register the second cluster").decode(t, &reg)
	if reg.Cluster.Server != env[kube.EnvServer("c2")] || reg.Cluster.Health.Reachability != "CLUSTER_REACHABILITY_REACHABLE" {
		t.Fatalf("registered %+v; want cluster 2 (%s), reachable", reg.Cluster, env[kube.EnvServer("c2")])
	}
	w.lap("register the second cluster")

	// The cluster as deploy/values/dev.yaml expects it: the namespace, and
	// the Vault token Secret it names (its comment's "before the first run").
	cs := clusterClient(t, env, "c2")
	ns := "slipway-" + strings.ToLower(rand.Text()[:8])
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "slipway-vault-token"},
		StringData: map[string]string{"token": "root"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	devValues, err := os.ReadFile(filepath.Join(dir, "..", "deploy", "values", "dev.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rev1Values := parseValues(t, "deploy/values/dev.yaml", string(devValues))
	if got := logLevel(rev1Values); got != "debug" {
		t.Fatalf("deploy/values/dev.yaml sets gateway.logLevel %q; the test changes it from debug", got)
	}
	want, err := charts.Render(dir, charts.Umbrella, rev1Values)
	if err != nil {
		t.Fatal(err)
	}
	var wantDeployments []string
	for _, d := range want.OfKind("Deployment") {
		wantDeployments = append(wantDeployments, d.Name())
	}
	sort.Strings(wantDeployments)

	deployments := org + "/clusters/selfhost/deployments"
	chart := map[string]any{"catalog": map[string]any{"repository": "slipway", "chart": charts.Umbrella, "version": version}}
	options := map[string]any{"wait": true, "timeout": "300s"}
	submit := func(what, method, path string, body map[string]any) operationJSON {
		t.Helper()
		var resp struct{ Operation operationJSON }
		a := s.do(method, path, deployer, body)
		if a.status != http.StatusOK && a.status != http.StatusAccepted {
			t.Fatalf("%s: %s %s: %d %s", what, method, path, a.status, a.body)
		}
		a.decode(t, &resp)
		op := s.awaitOperation(t, deployer, resp.Operation.ID)
		if !strings.HasSuffix(op.State, "SUCCEEDED") {
			t.Fatalf("%s: operation %s ended %s: %+v", what, op.ID, op.State, op)
		}
		return op
	}

	// Install.
	op := submit("install", http.MethodPost, deployments, map[string]any{"name": "slipway", "namespace": ns, "chart": chart,
		"values_yaml": string(devValues), "options": options})
	if op.Result.Release.Revision != 1 || op.Result.Release.ChartVersion != version {
		t.Fatalf("install: %+v; want revision 1 of chart %s", op.Result.Release, version)
	}
	w.lap("install (operation with wait=true)")
	var rel struct {
		Release struct {
			Revision    int
			Status      string
			ChartSource string `json:"chart_source"`
			ChartDigest string `json:"chart_digest"`
		}
	}
	s.expect(s.do(http.MethodGet, deployments+"/slipway?namespace="+ns, deployer, nil), http.StatusOK, "get the release").decode(t, &rel)
	if rel.Release.Status != "RELEASE_STATUS_DEPLOYED" || rel.Release.ChartSource != "catalog:slipway/slipway@"+version || rel.Release.ChartDigest != umbrellaDigest {
		t.Errorf("release = %+v; want deployed from catalog:slipway/slipway@%s with digest %s (the pushed archive)", rel.Release, version, umbrellaDigest)
	}
	rev1 := manifestObjects(t, s, deployer, deployments, ns, 1)
	var released []string
	for _, o := range rev1 {
		if o.Kind() == "Deployment" {
			released = append(released, o.Name())
		}
	}
	sort.Strings(released)
	if !slices.Equal(released, wantDeployments) {
		t.Fatalf("revision 1 declares Deployments %v; the chart renders %v", released, wantDeployments)
	}
	if got := envValue(t, findObject(t, rev1, "Deployment", "slipway-gateway"), "SLIPWAY_GATEWAY_LOG_LEVEL"); got != "debug" {
		t.Errorf("revision 1 manifest: gateway log level %q, want debug", got)
	}
	live := awaitAvailable(t, cs, ns, released, 30*time.Second)
	w.lap("every Deployment Available (after the install returned)")
	checkReferences(t, cs, ns, live)
	if got := liveEnv(t, live["slipway-gateway"], "SLIPWAY_GATEWAY_LOG_LEVEL"); got != "debug" {
		t.Errorf("gateway Deployment on the cluster runs log level %q, want debug", got)
	}
	keys := readSecrets(t, cs, ns, keySecrets)

	// Upgrade: the gateway logs at warn.
	rev2Values := parseValues(t, "deploy/values/dev.yaml", string(devValues))
	rev2Values["gateway"].(map[string]any)["logLevel"] = "warn"
	upgraded, err := yaml.Marshal(rev2Values)
	if err != nil {
		t.Fatal(err)
	}
	op = submit("upgrade", http.MethodPut, deployments+"/slipway", map[string]any{"namespace": ns, "chart": chart,
		"values_yaml": string(upgraded), "options": options})
	if op.Result.Release.Revision != 2 || op.Result.Release.ChartVersion != version {
		t.Fatalf("upgrade: %+v; want revision 2 of chart %s", op.Result.Release, version)
	}
	w.lap("upgrade gateway.logLevel debug -> warn (operation with wait=true)")
	if got := logLevel(revisionValues(t, s, deployer, deployments, ns, 2)); got != "warn" {
		t.Errorf("revision 2 values: gateway.logLevel %q, want warn", got)
	}
	rev2 := manifestObjects(t, s, deployer, deployments, ns, 2)
	if got := envValue(t, findObject(t, rev2, "Deployment", "slipway-gateway"), "SLIPWAY_GATEWAY_LOG_LEVEL"); got != "warn" {
		t.Errorf("revision 2 manifest: gateway log level %q, want warn", got)
	}
	after := awaitAvailable(t, cs, ns, released, 30*time.Second)
	w.lap("every Deployment Available (after the upgrade returned)")
	if got := liveEnv(t, after["slipway-gateway"], "SLIPWAY_GATEWAY_LOG_LEVEL"); got != "warn" {
		t.Errorf("gateway Deployment on the cluster runs log level %q after the upgrade, want warn", got)
	}
	// Only the gateway's pods roll: the services' Deployments are as they were.
	for _, name := range released {
		if name != "slipway-gateway" && after[name].Generation != live[name].Generation {
			t.Errorf("Deployment %s went from generation %d to %d on an upgrade that changed only the gateway", name, live[name].Generation, after[name].Generation)
		}
	}
	compareSecrets(t, "upgrade", keys, readSecrets(t, cs, ns, keySecrets))

	// Roll back to revision 1: revision 3 runs revision 1's values.
	op = submit("rollback", http.MethodPost, deployments+"/slipway/rollback", map[string]any{"namespace": ns, "revision": 1, "options": options})
	if op.Result.Release.Revision != 3 || op.Result.Release.ChartVersion != version {
		t.Fatalf("rollback: %+v; want revision 3 of chart %s", op.Result.Release, version)
	}
	w.lap("rollback to revision 1 (operation with wait=true)")
	if got := revisionValues(t, s, deployer, deployments, ns, 3); !reflect.DeepEqual(got, rev1Values) {
		t.Errorf("revision 3 values = %v; want revision 1's %v", got, rev1Values)
	}
	rev3 := manifestObjects(t, s, deployer, deployments, ns, 3)
	if got := envValue(t, findObject(t, rev3, "Deployment", "slipway-gateway"), "SLIPWAY_GATEWAY_LOG_LEVEL"); got != "debug" {
		t.Errorf("revision 3 manifest: gateway log level %q, want revision 1's debug", got)
	}
	back := awaitAvailable(t, cs, ns, released, 30*time.Second)
	w.lap("every Deployment Available (after the rollback returned)")
	if got := liveEnv(t, back["slipway-gateway"], "SLIPWAY_GATEWAY_LOG_LEVEL"); got != "debug" {
		t.Errorf("gateway Deployment on the cluster runs log level %q after the rollback, want debug", got)
	}
	compareSecrets(t, "rollback", keys, readSecrets(t, cs, ns, keySecrets))
	var hist struct {
		Releases []struct {
			Revision int
			Status   string
		}
	}
	s.expect(s.do(http.MethodGet, deployments+"/slipway/history?namespace="+ns, deployer, nil), http.StatusOK, "history").decode(t, &hist)
	var got []string
	for _, r := range hist.Releases {
		got = append(got, fmt.Sprintf("%d:%s", r.Revision, strings.TrimPrefix(r.Status, "RELEASE_STATUS_")))
	}
	if h := strings.Join(got, " "); h != "3:DEPLOYED 2:SUPERSEDED 1:SUPERSEDED" {
		t.Errorf("history = %s; want 3:DEPLOYED 2:SUPERSEDED 1:SUPERSEDED", h)
	}

	// The keys went through Slipway's manifests and never came out of it.
	for name, data := range keys {
		for k, v := range data {
			if strings.HasSuffix(k, ".key") && strings.Contains(s.seen(), base64.StdEncoding.EncodeToString(v)) {
				t.Errorf("%s %s appears in Slipway's answers or logs", name, k)
			}
			if b, _ := pem.Decode(v); b != nil && strings.HasSuffix(k, ".key") && strings.Contains(s.seen(), base64.StdEncoding.EncodeToString(b.Bytes)) {
				t.Errorf("%s %s (PEM body) appears in Slipway's answers or logs", name, k)
			}
		}
	}

	submit("uninstall", http.MethodDelete, deployments+"/slipway?namespace="+ns, nil)
	eventually(t, time.Minute, "the release's Deployments gone from cluster 2", func() bool {
		l, err := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=slipway"})
		return err == nil && len(l.Items) == 0
	})
	w.lap("uninstall")
}

// packageChart is chart name of the checkout packaged with its
// dependencies inside (charts.Package).
func packageChart(t *testing.T, dir, name string) []byte {
	t.Helper()
	file, err := charts.Package(dir, name, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// pushArchive pushes a packaged chart to host/repoPath/name:version as
// `helm push` does, with Helm's own registry client.
func pushArchive(t *testing.T, host, user, pass, repoPath, name, version string, data []byte) {
	t.Helper()
	c, err := registry.NewClient(registry.ClientOptPlainHTTP(), registry.ClientOptBasicAuth(user, pass))
	if err != nil {
		t.Fatal(err)
	}
	ref := host + "/" + repoPath + "/" + name + ":" + version
	if _, err := c.Push(data, ref); err != nil {
		t.Fatalf("helm push %s: %v", ref, err)
	}
}

// clusterClient is a client of the environment's cluster id, as its admin.
func clusterClient(t *testing.T, env testenv.Env, id string) kubernetes.Interface {
	t.Helper()
	rc, err := kube.RESTConfig(env[kube.EnvKubeconfig(id)])
	if err != nil {
		t.Fatal(err)
	}
	rc.QPS, rc.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func parseValues(t *testing.T, what, doc string) map[string]any {
	t.Helper()
	v := map[string]any{}
	if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("parse values of %s: %v\n%s", what, err, doc)
	}
	return v
}

// logLevel is gateway.logLevel of values, "" when unset.
func logLevel(values map[string]any) string {
	gw, _ := values["gateway"].(map[string]any)
	l, _ := gw["logLevel"].(string)
	return l
}

// revisionValues are the values supplied to a revision, through the API.
func revisionValues(t *testing.T, s *stack, token, deployments, ns string, revision int) map[string]any {
	t.Helper()
	var v struct {
		ValuesYaml string `json:"values_yaml"`
		Revision   int
	}
	s.expect(s.do(http.MethodGet, fmt.Sprintf("%s/slipway/values?namespace=%s&revision=%d", deployments, ns, revision), token, nil),
		http.StatusOK, fmt.Sprintf("values of revision %d", revision)).decode(t, &v)
	if v.Revision != revision {
		t.Fatalf("values of revision %d answered for revision %d", revision, v.Revision)
	}
	return parseValues(t, fmt.Sprintf("revision %d", revision), v.ValuesYaml)
}

// manifestObjects are a revision's manifest documents through the API,
// every page, parsed.
func manifestObjects(t *testing.T, s *stack, token, deployments, ns string, revision int) []charts.Object {
	t.Helper()
	var out []charts.Object
	page := ""
	for {
		var m struct {
			Revision  int
			Documents []struct {
				Source string
				Object struct{ Kind, Name string }
				YAML   string `json:"yaml"`
			}
			NextPageToken string `json:"next_page_token"`
		}
		s.expect(s.do(http.MethodGet, fmt.Sprintf("%s/slipway/manifest?namespace=%s&revision=%d&page_token=%s", deployments, ns, revision, page), token, nil),
			http.StatusOK, fmt.Sprintf("manifest of revision %d", revision)).decode(t, &m)
		if m.Revision != revision {
			t.Fatalf("manifest of revision %d answered for revision %d", revision, m.Revision)
		}
		for _, d := range m.Documents {
			var o charts.Object
			if err := yaml.Unmarshal([]byte(d.YAML), &o); err != nil {
				t.Fatalf("revision %d: %s %s from %s: %v", revision, d.Object.Kind, d.Object.Name, d.Source, err)
			}
			if o.Kind() != d.Object.Kind || o.Name() != d.Object.Name {
				t.Errorf("revision %d: document says %s %s, its YAML %s %s", revision, d.Object.Kind, d.Object.Name, o.Kind(), o.Name())
			}
			out = append(out, o)
		}
		if page = m.NextPageToken; page == "" {
			return out
		}
	}
}

func findObject(t *testing.T, objs []charts.Object, kind, name string) charts.Object {
	t.Helper()
	for _, o := range objs {
		if o.Kind() == kind && o.Name() == name {
			return o
		}
	}
	t.Fatalf("no %s %s in the manifest", kind, name)
	return nil
}

// envValue is the value of variable name in the first container of a
// Deployment of a manifest.
func envValue(t *testing.T, dep charts.Object, name string) string {
	t.Helper()
	containers, _ := dep.Get("spec", "template", "spec", "containers").([]any)
	if len(containers) == 0 {
		t.Fatalf("Deployment %s has no containers", dep.Name())
	}
	env, _ := containers[0].(map[string]any)["env"].([]any)
	for _, e := range env {
		if m, _ := e.(map[string]any); m["name"] == name {
			v, _ := m["value"].(string)
			return v
		}
	}
	return ""
}

func liveEnv(t *testing.T, dep *appsv1.Deployment, name string) string {
	t.Helper()
	for _, e := range dep.Spec.Template.Spec.Containers[0].Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// awaitAvailable waits until every Deployment of names in ns has rolled
// out its latest generation and is Available with all its replicas, and
// returns them; after within it fails with the state of each.
func awaitAvailable(t *testing.T, cs kubernetes.Interface, ns string, names []string, within time.Duration) map[string]*appsv1.Deployment {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := map[string]*appsv1.Deployment{}
		var pending []string
		for _, name := range names {
			d, err := cs.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
			if err != nil {
				pending = append(pending, fmt.Sprintf("%s: %v", name, err))
				continue
			}
			got[name] = d
			if why := notAvailable(d); why != "" {
				pending = append(pending, name+": "+why)
			}
		}
		if len(pending) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("Deployments of the release not Available within %s:\n  %s", within, strings.Join(pending, "\n  "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// notAvailable says why d has not rolled out and become Available, or "".
func notAvailable(d *appsv1.Deployment) string {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	if st.ObservedGeneration < d.Generation {
		return fmt.Sprintf("generation %d not observed yet (%d)", d.Generation, st.ObservedGeneration)
	}
	if st.UpdatedReplicas != want || st.AvailableReplicas != want || st.Replicas != want {
		return fmt.Sprintf("replicas %d updated %d available %d total, want %d", st.UpdatedReplicas, st.AvailableReplicas, st.Replicas, want)
	}
	for _, c := range st.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			if c.Status == corev1.ConditionTrue {
				return ""
			}
			return fmt.Sprintf("Available=%s: %s", c.Status, c.Message)
		}
	}
	return "no Available condition"
}

// checkReferences fails for every Secret or ConfigMap (and key of one)
// that the Deployments' pods need and the namespace lacks: kwok runs pods
// without mounting anything, so this is what a real kubelet would refuse.
func checkReferences(t *testing.T, cs kubernetes.Interface, ns string, deps map[string]*appsv1.Deployment) {
	t.Helper()
	ctx := context.Background()
	need := func(dep, kind, name string, keys ...string) {
		var data map[string]bool
		switch kind {
		case "Secret":
			s, err := cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				t.Errorf("Deployment %s needs Secret %s, which the release does not make", dep, name)
				return
			} else if err != nil {
				t.Fatal(err)
			}
			data = map[string]bool{}
			for k := range s.Data {
				data[k] = true
			}
		case "ConfigMap":
			c, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				t.Errorf("Deployment %s needs ConfigMap %s, which the release does not make", dep, name)
				return
			} else if err != nil {
				t.Fatal(err)
			}
			data = map[string]bool{}
			for k := range c.Data {
				data[k] = true
			}
		}
		for _, k := range keys {
			if !data[k] {
				t.Errorf("Deployment %s needs key %s of %s %s, which has none", dep, k, kind, name)
			}
		}
	}
	optional := func(b *bool) bool { return b != nil && *b }
	for name, d := range deps {
		pod := d.Spec.Template.Spec
		for _, v := range pod.Volumes {
			var keys []string
			switch {
			case v.Secret != nil && !optional(v.Secret.Optional):
				for _, it := range v.Secret.Items {
					keys = append(keys, it.Key)
				}
				need(name, "Secret", v.Secret.SecretName, keys...)
			case v.ConfigMap != nil && !optional(v.ConfigMap.Optional):
				for _, it := range v.ConfigMap.Items {
					keys = append(keys, it.Key)
				}
				need(name, "ConfigMap", v.ConfigMap.Name, keys...)
			}
		}
		for _, c := range append(append([]corev1.Container{}, pod.InitContainers...), pod.Containers...) {
			for _, e := range c.Env {
				switch ref := e.ValueFrom; {
				case ref == nil:
				case ref.SecretKeyRef != nil && !optional(ref.SecretKeyRef.Optional):
					need(name, "Secret", ref.SecretKeyRef.Name, ref.SecretKeyRef.Key)
				case ref.ConfigMapKeyRef != nil && !optional(ref.ConfigMapKeyRef.Optional):
					need(name, "ConfigMap", ref.ConfigMapKeyRef.Name, ref.ConfigMapKeyRef.Key)
				}
			}
			for _, f := range c.EnvFrom {
				switch {
				case f.SecretRef != nil && !optional(f.SecretRef.Optional):
					need(name, "Secret", f.SecretRef.Name)
				case f.ConfigMapRef != nil && !optional(f.ConfigMapRef.Optional):
					need(name, "ConfigMap", f.ConfigMapRef.Name)
				}
			}
		}
	}
}

// readSecrets reads the data of Secrets names in ns.
func readSecrets(t *testing.T, cs kubernetes.Interface, ns string, names []string) map[string]map[string][]byte {
	t.Helper()
	out := map[string]map[string][]byte{}
	for _, name := range names {
		s, err := cs.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("read Secret %s: %v", name, err)
		}
		if len(s.Data) == 0 {
			t.Fatalf("Secret %s holds nothing", name)
		}
		out[name] = s.Data
	}
	return out
}

// compareSecrets fails for every key Secret whose data changed.
func compareSecrets(t *testing.T, after string, was, is map[string]map[string][]byte) {
	t.Helper()
	for name, data := range was {
		for k, v := range data {
			if !bytes.Equal(is[name][k], v) {
				t.Errorf("%s of Secret %s changed across the %s", k, name, after)
			}
		}
		if len(is[name]) != len(data) {
			t.Errorf("Secret %s holds %d keys after the %s, %d before", name, len(is[name]), after, len(data))
		}
	}
}
