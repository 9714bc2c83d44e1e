package releases

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	metricsfake "k8s.io/metrics/pkg/client/clientset/versioned/fake"

	"github.com/slipwayhq/slipway/services/releases/internal/status"
)

func resources(cpu, mem string) corev1.ResourceList {
	l := corev1.ResourceList{}
	if cpu != "" {
		l[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		l[corev1.ResourceMemory] = resource.MustParse(mem)
	}
	return l
}

func sample(ns, name string, window time.Duration, at time.Time, containers map[string][2]string) *metricsv1beta1.PodMetrics {
	m := &metricsv1beta1.PodMetrics{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Window: metav1.Duration{Duration: window}, Timestamp: metav1.NewTime(at)}
	for c, u := range containers {
		m.Containers = append(m.Containers, metricsv1beta1.ContainerMetrics{Name: c, Usage: resources(u[0], u[1])})
	}
	return m
}

func TestUsageOf(t *testing.T) {
	for _, tc := range []struct {
		cpu, mem string
		want     Usage
	}{
		{cpu: "250m", mem: "64Mi", want: Usage{CPUMillis: 250, MemoryBytes: 64 << 20}},
		{cpu: "2", mem: "1G", want: Usage{CPUMillis: 2000, MemoryBytes: 1_000_000_000}},
		{cpu: "1500u", mem: "1Ki", want: Usage{CPUMillis: 2, MemoryBytes: 1024}}, // rounded up to a millicore
		{cpu: "12345n", mem: "", want: Usage{CPUMillis: 1}},
		{want: Usage{}},
	} {
		if got := usageOf(resources(tc.cpu, tc.mem)); got != tc.want {
			t.Errorf("usageOf(%s, %s) = %+v, want %+v", tc.cpu, tc.mem, got, tc.want)
		}
	}
}

func TestAggregateMetrics(t *testing.T) {
	now := time.Date(2026, 12, 2, 21, 0, 0, 0, time.UTC)
	web := readyPod("web-a")
	web.Object.Spec.Containers = []corev1.Container{
		{Name: "app", Resources: corev1.ResourceRequirements{Requests: resources("100m", "64Mi"), Limits: resources("500m", "128Mi")}},
		{Name: "side", Resources: corev1.ResourceRequirements{Requests: resources("10m", "")}},
	}
	web.Object.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "side", RestartCount: 3}, {Name: "app", RestartCount: 1}}
	other := readyPod("web-b")
	fresh := readyPod("web-c") // started a moment ago: no sample yet
	samples := map[string]*metricsv1beta1.PodMetrics{
		"shop/web-a": sample("shop", "web-a", 10*time.Second, now.Add(-time.Second), map[string][2]string{"app": {"250m", "64Mi"}, "side": {"5m", "16Mi"}}),
		"shop/web-b": sample("shop", "web-b", 15*time.Second, now, map[string][2]string{"app": {"1", "1Gi"}}),
		"shop/web-c": sample("shop", "web-c", 10*time.Second, now, nil),
		"shop/other": sample("shop", "other", 20*time.Second, now.Add(time.Hour), map[string][2]string{"app": {"9", "9Gi"}}), // not the release's
	}
	got := aggregateMetrics([]status.Pod{web, other, fresh}, samples)
	want := MetricsPage{
		PodCount: 3,
		Total:    Usage{CPUMillis: 1255, MemoryBytes: 80<<20 + 1<<30},
		Window:   15 * time.Second,
		Observed: now,
		Pods: []PodMetrics{
			{Namespace: "shop", Name: "web-a", Usage: Usage{CPUMillis: 255, MemoryBytes: 80 << 20}, Containers: []ContainerMetrics{
				{Name: "app", Usage: Usage{250, 64 << 20}, Requests: Usage{100, 64 << 20}, Limits: Usage{500, 128 << 20}, Restarts: 1},
				{Name: "side", Usage: Usage{5, 16 << 20}, Requests: Usage{CPUMillis: 10}, Restarts: 3},
			}},
			{Namespace: "shop", Name: "web-b", Usage: Usage{1000, 1 << 30}, Containers: []ContainerMetrics{{Name: "app", Usage: Usage{1000, 1 << 30}}}},
			{Namespace: "shop", Name: "web-c", UsageMissing: true, Containers: []ContainerMetrics{{Name: "app"}}},
		},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("metrics (-want +got):\n%s", d)
	}
}

func TestPodSamples(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	mc := metricsfake.NewSimpleClientset()
	// The fake's tracker would guess the resource "podmetricses" from the
	// kind; the client lists "pods".
	gvr := metricsv1beta1.SchemeGroupVersion.WithResource("pods")
	for _, m := range []*metricsv1beta1.PodMetrics{
		sample("shop", "web-a", 10*time.Second, now, map[string][2]string{"app": {"5m", "16Mi"}}),
		sample("jobs", "batch-x", 10*time.Second, now, map[string][2]string{"app": {"7m", "8Mi"}}),
		sample("else", "not-asked", 10*time.Second, now, map[string][2]string{"app": {"7m", "8Mi"}}),
	} {
		if err := mc.Tracker().Create(gvr, m, m.Namespace); err != nil {
			t.Fatal(err)
		}
	}
	got, err := podSamples(context.Background(), mc, "c1", []string{"shop", "jobs"})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	if len(keys) != 2 || got["shop/web-a"] == nil || got["jobs/batch-x"] == nil {
		t.Errorf("samples of %v, want shop/web-a and jobs/batch-x", keys)
	}

	gr := schema.GroupResource{Group: "metrics.k8s.io", Resource: "pods"}
	for _, tc := range []struct {
		name string
		err  error
		want error
		code codes.Code
		msg  string
	}{
		{name: "group not served", err: apierrors.NewNotFound(gr, ""), want: ErrMetricsUnsupported, code: codes.Unimplemented,
			msg: "cluster c2 does not serve metrics.k8s.io: install metrics-server"},
		{name: "APIService unavailable", err: apierrors.NewServiceUnavailable("the server is currently unable to handle the request"), want: ErrMetricsUnavailable,
			code: codes.Unavailable, msg: "cluster c2 registers metrics.k8s.io but it does not answer (the server is currently unable to handle the request)"},
		{name: "forbidden", err: apierrors.NewForbidden(gr, "", errors.New("no")), want: ErrMetricsForbidden, code: codes.FailedPrecondition,
			msg: "may not list pods.metrics.k8s.io in namespace shop"},
		{name: "other", err: apierrors.NewInternalError(errors.New("boom")), want: ErrMetricsUnavailable, code: codes.Unavailable, msg: "boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mc := metricsfake.NewSimpleClientset()
			mc.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, tc.err })
			_, err := podSamples(context.Background(), mc, "c2", []string{"shop"})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v, want %v saying %q", err, tc.want, tc.msg)
			}
			if c := grpcstatus.Code(healthErrors.ToStatus(err)); c != tc.code {
				t.Errorf("code %s, want %s", c, tc.code)
			}
		})
	}
}

func TestScrapePrometheus(t *testing.T) {
	big := strings.Repeat("metric_total 1\n", scrapeBytes/15+10)
	hc, base := fakeAPIServer(t, map[string]http.HandlerFunc{
		"web-a": func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/api/v1/namespaces/shop/pods/web-a:9090/proxy/metrics" {
				http.Error(w, "wrong path "+r.URL.Path, http.StatusNotFound)
				return
			}
			_, _ = w.Write([]byte("# TYPE up gauge\nup 1\n"))
		},
		"web-b": func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(big)) },
		"web-c": func(w http.ResponseWriter, r *http.Request) { http.Error(w, "nope", http.StatusForbidden) },
	})
	port := corev1.ContainerPort{Name: "metrics", ContainerPort: 9090}
	objs := map[string]*corev1.Pod{}
	var pods []PodMetrics
	for _, name := range []string{"web-a", "web-b", "web-c", "web-pending"} {
		p := readyPod(name, port)
		if name == "web-pending" {
			p.Object.Status.Phase = corev1.PodPending
		}
		objs["shop/"+name] = p.Object
		pods = append(pods, PodMetrics{Namespace: "shop", Name: name})
	}
	scrapePrometheus(context.Background(), hc, base, pods, objs, Probes{MetricsPort: "metrics", MetricsPath: "/metrics"})
	if sc := pods[0].Prometheus; sc == nil || sc.Code != 200 || sc.Text != "# TYPE up gauge\nup 1\n" || sc.Truncated || sc.Port != "metrics" || sc.Path != "/metrics" {
		t.Errorf("web-a scraped %+v", sc)
	}
	if sc := pods[1].Prometheus; sc == nil || !sc.Truncated || len(sc.Text) > scrapeBytes || !strings.HasSuffix(sc.Text, "metric_total 1\n") {
		t.Errorf("web-b: %d bytes, truncated %v; want at most %d, cut at a line's end", len(sc.Text), sc.Truncated, scrapeBytes)
	}
	if sc := pods[2].Prometheus; sc == nil || sc.Code != 403 || sc.Text != "" || sc.Message != "answered 403 Forbidden: nope" {
		t.Errorf("web-c scraped %+v", sc)
	}
	if pods[3].Prometheus != nil {
		t.Errorf("a pending pod was scraped: %+v", pods[3].Prometheus)
	}
}
