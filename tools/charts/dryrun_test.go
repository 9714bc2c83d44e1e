package charts

import (
	"context"
	"fmt"
	"log"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/slipwayhq/slipway/pkg/testenv"
	"github.com/slipwayhq/slipway/tools/internal/devenv/kube"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// cluster is the real environment's first cluster, with a namespace of its
// own for this test (deleted at the end).
type cluster struct {
	kubeconfig string
	namespace  string
	dyn        dynamic.Interface
	mapper     meta.RESTMapper
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	env := testenv.Get(t, "kube")
	path := env[kube.EnvKubeconfig("c1")]
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{kubeconfig: path, dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)),
		namespace: fmt.Sprintf("chartcheck-%d", time.Now().UnixNano()%1e9)}
	ctx := context.Background()
	ns := schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	if _, err := dyn.Resource(ns).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": c.namespace}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dyn.Resource(ns).Delete(context.Background(), c.namespace, metav1.DeleteOptions{}) })
	return c
}

// errNoAPI marks an object whose kind the cluster does not serve.
type errNoAPI struct{ gvk schema.GroupVersionKind }

func (e errNoAPI) Error() string { return e.gvk.String() + " is not served" }

// dryRun applies o server-side with dryRun=All: the API server validates
// and defaults it (schema, field names, admission) and stores nothing.
func (c *cluster) dryRun(ctx context.Context, o Object) error {
	u := &unstructured.Unstructured{Object: o}
	gvk := u.GroupVersionKind()
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		return errNoAPI{gvk}
	}
	if err != nil {
		return err
	}
	var ri dynamic.ResourceInterface = c.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		u.SetNamespace(c.namespace)
		ri = c.dyn.Resource(m.Resource).Namespace(c.namespace)
	}
	_, err = ri.Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: "chartcheck", Force: true, DryRun: []string{metav1.DryRunAll}})
	return err
}

// TestServerDryRun renders every chart with every scenario and applies each
// object to the environment's API server as a server-side dry run, so the
// real API validates what the charts make. Kinds the cluster does not serve
// (the Prometheus Operator's ServiceMonitor) are counted and skipped.
func TestServerDryRun(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the real environment")
	}
	c := newCluster(t)
	dir := chartsDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var charts, renders, applied int
	skipped := map[string]int{}
	for _, name := range append(append([]string{}, Services...), Umbrella) {
		scenarios, err := Scenarios(dir, name)
		if err != nil {
			t.Fatal(err)
		}
		charts++
		for _, sc := range scenarios {
			r := render(t, name, sc.Values)
			renders++
			for _, o := range r.Objects {
				err := c.dryRun(ctx, o)
				var noAPI errNoAPI
				switch {
				case err == nil:
					applied++
				case asNoAPI(err, &noAPI):
					skipped[noAPI.gvk.Kind]++
				default:
					t.Errorf("%s/%s: %s %s: %v", name, sc.Name, o.Kind(), o.Name(), err)
				}
			}
		}
	}
	t.Logf("%d charts, %d renders, %d objects accepted by the API server (dry run), skipped (kind not served): %v", charts, renders, applied, skipped)
}

func asNoAPI(err error, target *errNoAPI) bool {
	e, ok := err.(errNoAPI)
	if ok {
		*target = e
	}
	return ok
}

// TestKeysKeptOnUpgrade renders the umbrella with lookup against the real
// API server (Helm's server-side dry run) in a namespace that already holds
// the identity Secret of an earlier install: the render reuses its keys,
// and generates the service keys that do not exist yet.
func TestKeysKeptOnUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the real environment")
	}
	c := newCluster(t)
	first := render(t, Umbrella, nil)
	old := first.Find("Secret", "slipway-identity")
	// As the earlier install left it: owned by the release, so Helm adopts it.
	old["metadata"] = map[string]any{"name": "slipway-identity", "namespace": c.namespace,
		"labels":      map[string]any{"app.kubernetes.io/managed-by": "Helm"},
		"annotations": map[string]any{"meta.helm.sh/release-name": "slipway", "meta.helm.sh/release-namespace": c.namespace}}
	u := &unstructured.Unstructured{Object: old}
	secrets := schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	if _, err := c.dyn.Resource(secrets).Namespace(c.namespace).Create(context.Background(), u, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &c.kubeconfig
	flags.Namespace = &c.namespace
	cfg := &action.Configuration{}
	if err := cfg.Init(flags, c.namespace, "memory", log.Printf); err != nil {
		t.Fatal(err)
	}
	ch, err := Load(chartsDir(t), Umbrella)
	if err != nil {
		t.Fatal(err)
	}
	install := action.NewInstall(cfg)
	install.DryRun = true
	install.DryRunOption = "server"
	install.ReleaseName = "slipway"
	install.Namespace = c.namespace
	rel, err := install.Run(ch, nil)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Objects(rel.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	again := Rendered{Objects: objs}
	kept := again.Find("Secret", "slipway-identity")
	if kept == nil {
		t.Fatal("no identity Secret rendered")
	}
	for _, k := range []string{"identity.key", "identity.pub"} {
		if fmt.Sprint(asMap(kept["data"])[k]) != fmt.Sprint(asMap(old["data"])[k]) {
			t.Errorf("%s changed on upgrade", k)
		}
	}
	keyPair(t, kept, "identity.key", "identity.pub")
	fresh := again.Find("Secret", "slipway-releases-service-key")
	if fresh == nil || strings.TrimSpace(fmt.Sprint(asMap(fresh["data"])["service.key"])) == "" {
		t.Fatal("no releases service key generated")
	}
	if fmt.Sprint(asMap(fresh["data"])["service.key"]) == fmt.Sprint(asMap(first.Find("Secret", "slipway-releases-service-key")["data"])["service.key"]) {
		t.Error("a service key that did not exist came out as the first render's")
	}
}
