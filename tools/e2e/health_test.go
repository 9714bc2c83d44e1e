package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/slipwayhq/slipway/pkg/oidctest"
	"github.com/slipwayhq/slipway/tools/internal/devenv/kube"
	"github.com/slipwayhq/slipway/tools/internal/localrun"
)

// healthJSON is GetDeploymentHealthResponse as REST shows it.
type healthJSON struct {
	Verdict            string
	Message            string
	ReleaseStatus      string `json:"release_status"`
	WorkloadCount      int    `json:"workload_count"`
	ReadyWorkloadCount int    `json:"ready_workload_count"`
	PodCount           int    `json:"pod_count"`
	ReadyPodCount      int    `json:"ready_pod_count"`
	Probe              *struct {
		Path, Port string
		Pods       []struct {
			Pod        string
			Healthy    bool
			StatusCode int `json:"status_code"`
			Message    string
			Latency    string
		}
	}
}

// usageJSON is a ResourceUsage; int64 fields are JSON strings.
type usageJSON struct {
	CPU    int64 `json:"cpu_millicores,string"`
	Memory int64 `json:"memory_bytes,string"`
}

// metricsJSON is GetDeploymentMetricsResponse as REST shows it.
type metricsJSON struct {
	Total    usageJSON
	PodCount int `json:"pod_count"`
	Window   string
	Pods     []struct {
		Pod          string
		Usage        usageJSON
		UsageMissing bool `json:"usage_missing"`
		Containers   []struct {
			Container    string
			Usage        usageJSON
			RestartCount int `json:"restart_count"`
		}
		Prometheus *struct {
			StatusCode int `json:"status_code"`
			Text       string
			Truncated  bool
			Message    string
		}
	}
	NextPageToken string `json:"next_page_token"`
}

// podApp plays the application of every simulated pod: the devstack makes
// pod IPs the host's own, so a server on 0.0.0.0 answers the API server's
// proxied requests to any pod at its port, and sees which pod was asked
// as the address it was called at.
type podApp struct {
	port int
	mu   sync.Mutex
	sick map[string]bool // pod IPs whose /healthz answers 500
}

func startPodApp(t *testing.T) *podApp {
	t.Helper()
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &podApp{port: l.Addr().(*net.TCPAddr).Port, sick: map[string]bool{}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, _, _ := net.SplitHostPort(r.Context().Value(http.LocalAddrContextKey).(net.Addr).String())
		switch r.URL.Path {
		case "/healthz":
			a.mu.Lock()
			sick := a.sick[ip]
			a.mu.Unlock()
			if sick {
				http.Error(w, "database unreachable", http.StatusInternalServerError)
				return
			}
			fmt.Fprintln(w, "ok")
		case "/metrics":
			fmt.Fprintf(w, "# TYPE demo_requests_total counter\ndemo_requests_total{ip=%q} 7\n", ip)
		default:
			http.NotFound(w, r)
		}
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return a
}

func (a *podApp) setSick(ip string, sick bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sick[ip] = sick
}

// podIPs maps the IPs of a namespace's pods in a cluster to their names.
func podIPs(t *testing.T, kubeconfig, ns string) map[string]string {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" && p.DeletionTimestamp == nil {
			out[p.Status.PodIP] = p.Name
		}
	}
	return out
}

// TestDeploymentHealthAndMetrics: an application that declares a health
// endpoint and a Prometheus port, deployed with two replicas to c1 (which
// serves metrics.k8s.io) and c2 (which does not). Health is ready with
// both pods' probes answering 200 through the API server's pod proxy, and
// degraded, naming the pod, once one answers 500; metrics on c1 give each
// pod's CPU and memory, and with include_prometheus each pod's own
// exposition text; on c2 metrics answer 501 naming metrics.k8s.io. A
// viewer reads both; another org's member gets 404 as for a missing
// release.
func TestDeploymentHealthAndMetrics(t *testing.T) {
	iss := oidctest.NewIssuer(t)
	f := newOpsFixtureWith(t, []string{"kube2", "podnet", "kubemetrics"},
		"SLIPWAY_GATEWAY_OIDC_ISSUER="+iss.URL(), "SLIPWAY_GATEWAY_RATE_PER_IP=0", "SLIPWAY_GATEWAY_RATE_PER_CALLER=0")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := f.s.RegisterCluster(ctx, "c2", f.env[kube.EnvKubeconfig("c2")]); err != nil {
		t.Fatal(err)
	}
	app := startPodApp(t)
	port := strconv.Itoa(app.port)
	// The catalog may still be in its first connection's backoff to the
	// clusters service, which started after it: 503 until it is through.
	var created answer
	eventually(t, 30*time.Second, "the catalog creates the application", func() bool {
		created = f.do(http.MethodPost, f.org+"/applications", f.owner, map[string]any{
			"name": "greeter", "chart": map[string]any{"repository": localrun.LocalRepository, "chart": "hello", "version": "~0.2"},
			"values":  map[string]any{"replicaCount": 2},
			"probes":  map[string]any{"health_path": "/healthz", "health_port": port, "metrics_port": port},
			"targets": []map[string]any{{"name": "near", "cluster": "c1", "namespace": f.ns}, {"name": "far", "cluster": "c2", "namespace": f.ns}},
		})
		return created.status != http.StatusServiceUnavailable
	})
	f.expect(created, http.StatusOK, "create application")
	for _, target := range []string{"near", "far"} {
		op := f.submit(t, http.MethodPost, f.org+"/applications/greeter/targets/"+target+":deploy",
			map[string]any{"options": map[string]any{"wait": true, "create_namespace": true, "timeout": "120s"}}, nil)
		if got := f.await(t, op.ID, 2*time.Minute); got.State != stateSucceeded {
			t.Fatalf("deploy to %s: %+v", target, got)
		}
	}
	viewer := f.token(localrun.BootstrapOrg, f.owner, "VIEWER")
	q := "?namespace=" + f.ns
	near := f.org + "/clusters/c1/deployments/greeter-near"
	far := f.org + "/clusters/c2/deployments/greeter-far"

	health := func(path string) healthJSON {
		t.Helper()
		var h healthJSON
		f.expect(f.do(http.MethodGet, path+"/health"+q, viewer, nil), http.StatusOK, "health").decode(t, &h)
		return h
	}
	var h healthJSON
	eventually(t, time.Minute, "health ready with both pods probed", func() bool {
		h = health(near)
		return h.Verdict == "VERDICT_READY" && h.Probe != nil && len(h.Probe.Pods) == 2
	})
	if h.ReleaseStatus != "RELEASE_STATUS_DEPLOYED" || h.WorkloadCount != 1 || h.ReadyWorkloadCount != 1 || h.PodCount != 2 || h.ReadyPodCount != 2 ||
		h.Probe.Path != "/healthz" || h.Probe.Port != port {
		t.Errorf("health: %+v", h)
	}
	for _, p := range h.Probe.Pods {
		if !p.Healthy || p.StatusCode != 200 || p.Message != "" || p.Latency == "" {
			t.Errorf("probe of %s: %+v", p.Pod, p)
		}
	}
	start := time.Now()
	h = health(near)
	t.Logf("health through the gateway, both pods probed: %s; probe latencies %s and %s", time.Since(start).Round(time.Millisecond),
		h.Probe.Pods[0].Latency, h.Probe.Pods[1].Latency)

	// One pod's endpoint answers 500: the release is degraded, naming it.
	ips := podIPs(t, f.env[kube.EnvKubeconfig("c1")], f.ns)
	if len(ips) != 2 {
		t.Fatalf("pods of greeter-near by IP: %v", ips)
	}
	var sickIP, sickPod string
	for ip, name := range ips {
		sickIP, sickPod = ip, name
		break
	}
	app.setSick(sickIP, true)
	h = health(near)
	if h.Verdict != "VERDICT_DEGRADED" || !strings.Contains(h.Message, "pod "+sickPod+":") || !strings.Contains(h.Message, "answered 500") ||
		!strings.Contains(h.Message, "database unreachable") {
		t.Errorf("with %s (%s) answering 500: %s %q", sickPod, sickIP, h.Verdict, h.Message)
	}
	for _, p := range h.Probe.Pods {
		if want := p.Pod != sickPod; p.Healthy != want || p.Pod == sickPod && p.StatusCode != 500 {
			t.Errorf("probe of %s: %+v (the sick one is %s)", p.Pod, p, sickPod)
		}
	}
	app.setSick(sickIP, false)
	if h = health(near); h.Verdict != "VERDICT_READY" {
		t.Errorf("once healthy again: %s %q", h.Verdict, h.Message)
	}
	// c2 has no metrics.k8s.io, but its pods answer health all the same.
	eventually(t, time.Minute, "health of greeter-far ready", func() bool {
		h = health(far)
		return h.Verdict == "VERDICT_READY" && h.Probe != nil && len(h.Probe.Pods) == 2
	})

	// Metrics on c1: metrics-server has each pod's usage about 30 s after
	// it starts.
	var m metricsJSON
	eventually(t, 2*time.Minute, "metrics of both pods", func() bool {
		f.expect(f.do(http.MethodGet, near+"/metrics"+q, viewer, nil), http.StatusOK, "metrics").decode(t, &m)
		if len(m.Pods) != 2 {
			return false
		}
		for _, p := range m.Pods {
			if p.UsageMissing || p.Usage.CPU == 0 || p.Usage.Memory == 0 {
				return false
			}
		}
		return true
	})
	if m.PodCount != 2 || m.Total.CPU != m.Pods[0].Usage.CPU+m.Pods[1].Usage.CPU || m.Total.Memory != m.Pods[0].Usage.Memory+m.Pods[1].Usage.Memory ||
		m.Window == "" || m.NextPageToken != "" {
		t.Errorf("metrics: %+v", m)
	}
	for _, p := range m.Pods {
		// kwok's emulated kubelet: 16Mi a container unless annotated.
		if len(p.Containers) != 1 || p.Containers[0].Container != "hello" || p.Containers[0].Usage != p.Usage || p.Usage.Memory != 16<<20 ||
			p.Prometheus != nil {
			t.Errorf("metrics of %s: %+v", p.Pod, p)
		}
	}
	start = time.Now()
	f.expect(f.do(http.MethodGet, near+"/metrics"+q, viewer, nil), http.StatusOK, "metrics")
	t.Logf("metrics through the gateway: %s; %+v", time.Since(start).Round(time.Millisecond), m)
	var page metricsJSON
	f.expect(f.do(http.MethodGet, near+"/metrics"+q+"&page_size=1", viewer, nil), http.StatusOK, "a page of metrics").decode(t, &page)
	if len(page.Pods) != 1 || page.NextPageToken == "" || page.PodCount != 2 || page.Total.Memory != m.Total.Memory {
		t.Errorf("page of 1: %+v", page)
	}

	// Each pod's Prometheus endpoint, through the proxy: the text says at
	// which pod IP it was asked.
	f.expect(f.do(http.MethodGet, near+"/metrics"+q+"&include_prometheus=true", viewer, nil), http.StatusOK, "metrics with Prometheus").decode(t, &m)
	names := map[string]string{}
	for ip, name := range ips {
		names[name] = ip
	}
	for _, p := range m.Pods {
		want := fmt.Sprintf("demo_requests_total{ip=%q} 7\n", names[p.Pod])
		if p.Prometheus == nil || p.Prometheus.StatusCode != 200 || !strings.Contains(p.Prometheus.Text, want) || p.Prometheus.Truncated {
			t.Errorf("Prometheus of %s: %+v; want text with %q", p.Pod, p.Prometheus, want)
		}
	}

	// c2 does not serve metrics.k8s.io: 501, saying so.
	a := f.expect(f.do(http.MethodGet, far+"/metrics"+q, viewer, nil), http.StatusNotImplemented, "metrics on c2")
	var prob struct{ Code, Detail string }
	a.decode(t, &prob)
	if prob.Code != "unimplemented" || !strings.Contains(prob.Detail, "cluster c2 does not serve metrics.k8s.io") || !strings.Contains(prob.Detail, "metrics-server") {
		t.Errorf("metrics on c2: %s", a.body)
	}

	// A release that is no application's: readiness only, and no
	// Prometheus endpoint to read.
	f.install(t, "plain", "0.1.0", "")
	plain := f.deployments + "/plain"
	eventually(t, time.Minute, "health of a plain release", func() bool {
		h = health(plain)
		return h.Verdict == "VERDICT_READY" && h.PodCount == 1 && h.ReadyPodCount == 1
	})
	if h.Probe != nil {
		t.Errorf("a plain release probed: %+v", h.Probe)
	}
	f.expect(f.do(http.MethodGet, plain+"/metrics"+q+"&include_prometheus=true", viewer, nil), http.StatusBadRequest, "Prometheus of a plain release")

	// Another org's member: 404 on both routes, whether he names default
	// (not his) or globex, which has the same real cluster as c1 but no
	// such release.
	bob := iss.Token(t, "bob-sub", "bob@example.com", "slipway", time.Hour)
	f.expect(f.do(http.MethodPost, "/orgs", bob, map[string]any{"name": "globex"}), http.StatusOK, "bob creates globex")
	kc, err := os.ReadFile(f.env[kube.EnvKubeconfig("c1")])
	if err != nil {
		t.Fatal(err)
	}
	f.expect(f.do(http.MethodPost, "/orgs/globex/clusters", bob, map[string]any{"name": "c1", "kubeconfig": map[string]any{"kubeconfig": kc}}),
		http.StatusOK, "bob registers the same cluster as c1")
	for _, route := range []string{"/health", "/metrics", "/metrics?include_prometheus=true&namespace=" + f.ns} {
		path := "/clusters/c1/deployments/greeter-near" + route
		if !strings.Contains(route, "?") {
			path += q
		}
		missing := f.do(http.MethodGet, f.org+strings.Replace(path, "/greeter-near/", "/no-such-release/", 1), viewer, nil)
		for _, org := range []string{localrun.BootstrapOrg, "globex"} {
			a := f.do(http.MethodGet, "/orgs/"+org+path, bob, nil)
			if a.status != http.StatusNotFound || a.code(t) != "not_found" || missing.status != http.StatusNotFound {
				t.Errorf("bob in %s, %s: %d %s; a missing release answers %d %s", org, path, a.status, a.body, missing.status, missing.body)
			}
		}
	}

	// Uninstalled: nothing runs, so nothing to probe or measure (and no
	// cluster is asked: c2 answers too).
	if got := f.await(t, f.submit(t, http.MethodDelete, far+q+"&wait=true", nil, nil).ID, 2*time.Minute); got.State != stateSucceeded {
		t.Fatalf("uninstall greeter-far: %+v", got)
	}
	if h = health(far); h.ReleaseStatus != "RELEASE_STATUS_UNINSTALLED" || h.Verdict != "VERDICT_UNSPECIFIED" || h.PodCount != 0 || h.Probe != nil {
		t.Errorf("health of an uninstalled release: %+v", h)
	}
	f.expect(f.do(http.MethodGet, far+"/metrics"+q, viewer, nil), http.StatusOK, "metrics of an uninstalled release").decode(t, &m)
	if len(m.Pods) != 0 || m.PodCount != 0 {
		t.Errorf("metrics of an uninstalled release: %+v", m)
	}
}
