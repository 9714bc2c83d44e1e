package releases

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipwayhq/slipway/services/releases/internal/status"
)

// fakeAPIServer answers like the pod proxy of an API server: the pod
// "missing" with the server's own NotFound Status, "down" with its
// ServiceUnavailable, others with what handlers say (by pod name).
func fakeAPIServer(t *testing.T, pods map[string]http.HandlerFunc) (*http.Client, *url.URL) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// /api/v1/namespaces/NS/pods/POD:PORT/proxy/PATH
		parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/api/v1/namespaces/"), "/", 5)
		if len(parts) < 4 || parts[1] != "pods" || parts[3] != "proxy" {
			http.Error(w, "not a proxy path: "+r.URL.Path, http.StatusTeapot)
			return
		}
		pod, port, _ := strings.Cut(parts[2], ":")
		apiStatus := func(code int, reason metav1.StatusReason, msg string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
				Status: metav1.StatusFailure, Message: msg, Reason: reason, Code: int32(code)})
		}
		switch {
		case pod == "missing":
			apiStatus(http.StatusNotFound, metav1.StatusReasonNotFound, `pods "missing" not found`)
		case pod == "down":
			apiStatus(http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable, "error trying to reach service: dial tcp 10.0.0.9:"+port+": connect: connection refused")
		case pods[pod] != nil:
			pods[pod](w, r)
		default:
			http.Error(w, "no handler for "+pod, http.StatusTeapot)
		}
	}))
	t.Cleanup(srv.Close)
	base, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return srv.Client(), base
}

func TestProxyGet(t *testing.T) {
	var asked string
	hc, base := fakeAPIServer(t, map[string]http.HandlerFunc{
		"ok": func(w http.ResponseWriter, r *http.Request) {
			asked = r.URL.RequestURI()
			_, _ = w.Write([]byte("fine"))
		},
		"sick": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json") // the pod's own JSON, not a Status
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"db": "unreachable"}`))
		},
		"big": func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(strings.Repeat("x", 10_000)))
		},
	})
	ctx := context.Background()
	t.Run("the path and query go as written", func(t *testing.T) {
		a := proxyGet(ctx, hc, base, "shop", "ok", "8080", "/health/z?full=1&q=a%20b", 100)
		if a.Code != 200 || string(a.Body) != "fine" || a.Truncated || a.Message != "" {
			t.Errorf("answer %+v", a)
		}
		if want := "/api/v1/namespaces/shop/pods/ok:8080/proxy/health/z?full=1&q=a%20b"; asked != want {
			t.Errorf("asked %s, want %s", asked, want)
		}
	})
	t.Run("a path that could leave the proxy path is not asked", func(t *testing.T) {
		for _, path := range []string{"/../../secrets", "/a/./b", "/%2e%2e/secrets", "/a%2F..", "healthz", "//host/x", "/a b", "/a#b", "/a\\b"} {
			asked = ""
			a := proxyGet(ctx, hc, base, "shop", "ok", "8080", path, 100)
			if a.Code != 0 || !strings.Contains(a.Message, "not asked") || asked != "" {
				t.Errorf("%s: answer %+v, asked %q", path, a, asked)
			}
		}
	})
	t.Run("the pod's error is the pod's", func(t *testing.T) {
		a := proxyGet(ctx, hc, base, "shop", "sick", "8080", "/healthz", 100)
		if a.Code != 500 || string(a.Body) != `{"db": "unreachable"}` {
			t.Errorf("answer %+v", a)
		}
	})
	t.Run("the API server's error is no answer from the pod", func(t *testing.T) {
		a := proxyGet(ctx, hc, base, "shop", "down", "8080", "/healthz", 100)
		if a.Code != 0 || !strings.Contains(a.Message, "connection refused") || !strings.HasPrefix(a.Message, "API server: ") {
			t.Errorf("answer %+v", a)
		}
		a = proxyGet(ctx, hc, base, "shop", "missing", "8080", "/healthz", 100)
		if a.Code != 0 || !strings.Contains(a.Message, "not found") {
			t.Errorf("answer %+v", a)
		}
	})
	t.Run("the body is read bounded", func(t *testing.T) {
		a := proxyGet(ctx, hc, base, "shop", "big", "8080", "/metrics", 1000)
		if a.Code != 200 || len(a.Body) != 1000 || !a.Truncated {
			t.Errorf("answer of %d bytes, truncated %v, want 1000 and truncated", len(a.Body), a.Truncated)
		}
	})
	t.Run("no server", func(t *testing.T) {
		gone := *base
		gone.Host = "127.0.0.1:1"
		a := proxyGet(ctx, hc, &gone, "shop", "ok", "8080", "/healthz", 100)
		if a.Code != 0 || !strings.HasPrefix(a.Message, "no answer: ") || strings.Contains(a.Message, "127.0.0.1:1/api") {
			t.Errorf("answer %+v", a)
		}
	})
}

func readyPod(name string, ports ...corev1.ContainerPort) status.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Ports: ports}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
	return status.Pod{Namespace: "shop", Name: name, Containers: []string{"app"}, Object: p}
}

func TestReadyPods(t *testing.T) {
	starting := readyPod("c-starting")
	starting.Object.Status.Conditions[1].Status = corev1.ConditionFalse
	pending := readyPod("d-pending")
	pending.Object.Status = corev1.PodStatus{Phase: corev1.PodPending}
	leaving := readyPod("e-leaving")
	leaving.Object.DeletionTimestamp = &metav1.Time{}
	pods := []status.Pod{readyPod("b"), starting, pending, leaving, readyPod("a"), {Namespace: "shop", Name: "no-object"}}
	var got []string
	for _, p := range readyPods(pods) {
		got = append(got, p.Name)
	}
	if d := cmp.Diff([]string{"a", "b"}, got); d != "" {
		t.Errorf("ready pods (-want +got):\n%s", d)
	}
}

func TestProbeHealth(t *testing.T) {
	hc, base := fakeAPIServer(t, map[string]http.HandlerFunc{
		"web-a": func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasPrefix(r.URL.Path, "/api/v1/namespaces/shop/pods/web-a:8080/") {
				http.Error(w, "wrong port: "+r.URL.Path, http.StatusBadGateway)
				return
			}
			_, _ = w.Write([]byte("ok"))
		},
		"web-b": func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "database\nunreachable", http.StatusInternalServerError)
		},
		"web-c": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusFound) // 3xx is healthy, as for kubelet probes
		},
	})
	named := corev1.ContainerPort{Name: "http", ContainerPort: 8080}
	ready := []status.Pod{readyPod("web-a", named), readyPod("web-b", named), readyPod("web-c", named), readyPod("web-d"), readyPod("down", named)}
	hp := probeHealth(context.Background(), hc, base, ready, "/healthz", "http")
	for i := range hp.Pods {
		hp.Pods[i].Latency = 0
	}
	want := &HealthProbe{Path: "/healthz", Port: "http", Pods: []PodProbe{
		{Pod: "web-a", Healthy: true, Code: 200},
		{Pod: "web-b", Code: 500, Message: "answered 500 Internal Server Error: database unreachable"},
		{Pod: "web-c", Healthy: true, Code: 302},
		{Pod: "web-d", Message: `no container port named "http"`},
		{Pod: "down", Message: "API server: error trying to reach service: dial tcp 10.0.0.9:8080: connect: connection refused"},
	}}
	if d := cmp.Diff(want, hp); d != "" {
		t.Errorf("probe (-want +got):\n%s", d)
	}

	t.Run("at most proxyPods pods are asked", func(t *testing.T) {
		var many []status.Pod
		for range proxyPods + 3 {
			many = append(many, readyPod("web-a"))
		}
		hp := probeHealth(context.Background(), hc, base, many, "/healthz", "8080")
		if len(hp.Pods) != proxyPods || hp.Skipped != 3 {
			t.Errorf("asked %d, skipped %d; want %d and 3", len(hp.Pods), hp.Skipped, proxyPods)
		}
		for _, p := range hp.Pods {
			if !p.Healthy {
				t.Errorf("pod %+v unhealthy", p)
			}
		}
	})
}

func TestProbeVerdict(t *testing.T) {
	healthy := PodProbe{Pod: "a", Healthy: true, Code: 200}
	sick := PodProbe{Pod: "b", Code: 500, Message: "answered 500 Internal Server Error"}
	gone := PodProbe{Pod: "c", Message: "no answer within 3s"}
	for _, tc := range []struct {
		name        string
		verdict     status.Verdict
		msg         string
		pods        []PodProbe
		wantVerdict status.Verdict
		wantMsg     string
	}{
		{name: "all healthy", verdict: status.Ready, pods: []PodProbe{healthy, healthy}, wantVerdict: status.Ready},
		{name: "no pod asked", verdict: status.Progressing, msg: "deployment/web: 0 of 2", wantVerdict: status.Progressing, wantMsg: "deployment/web: 0 of 2"},
		{name: "one sick", verdict: status.Ready, pods: []PodProbe{healthy, sick}, wantVerdict: status.Degraded,
			wantMsg: "pod b: health probe GET /healthz on port 8080: answered 500 Internal Server Error"},
		{name: "two sick", verdict: status.Ready, pods: []PodProbe{gone, healthy, sick}, wantVerdict: status.Degraded,
			wantMsg: "pod c: health probe GET /healthz on port 8080: no answer within 3s (and 1 more unhealthy)"},
		{name: "progressing gets worse", verdict: status.Progressing, msg: "rolling", pods: []PodProbe{sick}, wantVerdict: status.Degraded,
			wantMsg: "pod b: health probe GET /healthz on port 8080: answered 500 Internal Server Error"},
		{name: "unassessed gets worse", verdict: status.Unassessed, msg: "cannot watch", pods: []PodProbe{sick}, wantVerdict: status.Degraded,
			wantMsg: "pod b: health probe GET /healthz on port 8080: answered 500 Internal Server Error"},
		{name: "failed stays failed", verdict: status.Failed, msg: "deployment/web: none available", pods: []PodProbe{sick},
			wantVerdict: status.Failed, wantMsg: "deployment/web: none available"},
		{name: "degraded keeps its reason", verdict: status.Degraded, msg: "deployment/web: 1 of 2", pods: []PodProbe{sick},
			wantVerdict: status.Degraded, wantMsg: "deployment/web: 1 of 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, msg := probeVerdict(tc.verdict, tc.msg, &HealthProbe{Path: "/healthz", Port: "8080", Pods: tc.pods})
			if v != tc.wantVerdict || msg != tc.wantMsg {
				t.Errorf("verdict %s %q, want %s %q", v, msg, tc.wantVerdict, tc.wantMsg)
			}
		})
	}
}

func TestReadyWorkloads(t *testing.T) {
	w := func(v status.Verdict) status.Workload { return status.Workload{Verdict: v} }
	for _, tc := range []struct {
		name string
		snap status.Snapshot
		want int
	}{
		{name: "none", snap: status.Snapshot{}, want: 0},
		{name: "some", snap: status.Snapshot{Workloads: []status.Workload{w(status.Failed), w(status.Ready), w(status.Ready)}, WorkloadCount: 3}, want: 2},
		{name: "cut after ready ones", snap: status.Snapshot{Workloads: []status.Workload{w(status.Degraded), w(status.Ready)}, WorkloadCount: 5}, want: 4},
		{name: "cut among unready ones", snap: status.Snapshot{Workloads: []status.Workload{w(status.Failed), w(status.Failed)}, WorkloadCount: 5}, want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := readyWorkloads(tc.snap); got != tc.want {
				t.Errorf("ready workloads %d, want %d", got, tc.want)
			}
		})
	}
}

func TestPodPort(t *testing.T) {
	p := readyPod("web", corev1.ContainerPort{Name: "metrics", ContainerPort: 9090}).Object
	p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "side", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}})
	for _, tc := range []struct{ port, want, err string }{
		{port: "7000", want: "7000"},
		{port: "metrics", want: "9090"},
		{port: "http", want: "8080"},
		{port: "admin", err: `no container port named "admin"`},
	} {
		got, err := podPort(p, tc.port)
		if got != tc.want || (err == nil) != (tc.err == "") || err != nil && err.Error() != tc.err {
			t.Errorf("podPort(%s) = %q, %v; want %q, %q", tc.port, got, err, tc.want, tc.err)
		}
	}
}

func TestSnippetAndExposition(t *testing.T) {
	if got := snippet([]byte("  a\n\tb  \xff " + strings.Repeat("z", 500))); len(got) > snippetBytes || !strings.HasPrefix(got, "a b \uFFFD z") {
		t.Errorf("snippet %q", got)
	}
	text := []byte("# HELP x\nx 1\ny 2")
	if got := exposition(text, true); got != "# HELP x\nx 1\n" {
		t.Errorf("truncated exposition %q, want it cut at the last line's end", got)
	}
	if got := exposition(text, false); got != string(text) {
		t.Errorf("exposition %q", got)
	}
	if got := exposition([]byte("a \xff\n"), false); got != "a \uFFFD\n" {
		t.Errorf("exposition of invalid UTF-8: %q", got)
	}
}
