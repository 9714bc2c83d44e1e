package kube_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/slipwayhq/slipway/tools/internal/devenv/devenvtest"
	"github.com/slipwayhq/slipway/tools/internal/devenv/kube"
)

// podMetrics is the part of metrics.k8s.io/v1beta1 PodMetrics read here.
type podMetrics struct {
	Window     metav1.Duration `json:"window"`
	Containers []struct {
		Name  string              `json:"name"`
		Usage corev1.ResourceList `json:"usage"`
	} `json:"containers"`
}

// TestMetrics reads a simulated pod's usage from metrics.k8s.io on a
// cluster with Metrics: what its annotation says for one container, the
// defaults for the other; a cluster without Metrics has no such group.
func TestMetrics(t *testing.T) {
	s := devenvtest.Start(t, &kube.Cluster{ID: "metrics", Nodes: 1, Metrics: true}, &kube.Cluster{ID: "plain", Nodes: 1})
	env := s.Env()
	if env[kube.EnvMetricsServer("metrics")] == "" || env[kube.EnvMetricsServer("plain")] != "" {
		t.Errorf("%s=%q, %s=%q: want only the first set", kube.EnvMetricsServer("metrics"), env[kube.EnvMetricsServer("metrics")],
			kube.EnvMetricsServer("plain"), env[kube.EnvMetricsServer("plain")])
	}
	cs := clientset(t, env[kube.EnvKubeconfig("metrics")])
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "busy", Annotations: map[string]string{
			kube.UsageCPUAnnotation:    "250m",
			kube.UsageMemoryAnnotation: "64Mi",
		}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "app", Image: "registry.example/app:1"},
			{Name: "sidecar", Image: "registry.example/sidecar:1"},
		}},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	path := "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/" + pod.Name
	// Two scrapes after the pod starts (10 s apart).
	m := readPodMetrics(ctx, t, cs, path, 2)
	for _, c := range m.Containers {
		// Every container of the pod uses what the pod's annotations say.
		cpu, mem := c.Usage[corev1.ResourceCPU], c.Usage[corev1.ResourceMemory]
		if got := cpu.MilliValue(); got < 240 || got > 260 {
			t.Errorf("container %s: cpu %s, want about 250m", c.Name, cpu.String())
		}
		if want := resource.MustParse("64Mi"); mem.Cmp(want) != 0 {
			t.Errorf("container %s: memory %s, want %s", c.Name, mem.String(), want.String())
		}
	}
	if m.Window.Duration <= 0 {
		t.Errorf("window %s, want the time between two scrapes", m.Window.Duration)
	}

	t.Run("defaults", func(t *testing.T) {
		plain := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "idle"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
		}
		if _, err := cs.CoreV1().Pods("default").Create(ctx, plain, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		m := readPodMetrics(ctx, t, cs, "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/"+plain.Name, 1)
		cpu, mem := m.Containers[0].Usage[corev1.ResourceCPU], m.Containers[0].Usage[corev1.ResourceMemory]
		wantCPU := resource.MustParse(kube.DefaultCPUUsage)
		if d := cpu.MilliValue() - wantCPU.MilliValue(); d < -1 || d > 1 {
			t.Errorf("cpu %s, want about %s", cpu.String(), kube.DefaultCPUUsage)
		}
		if want := resource.MustParse(kube.DefaultMemoryUsage); mem.Cmp(want) != 0 {
			t.Errorf("memory %s, want %s", mem.String(), want.String())
		}
	})

	t.Run("no metrics.k8s.io without Metrics", func(t *testing.T) {
		other := clientset(t, env[kube.EnvKubeconfig("plain")])
		err := other.CoreV1().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods").Do(ctx).Error()
		if !apierrors.IsNotFound(err) {
			t.Errorf("metrics.k8s.io on a cluster without Metrics: %v, want %d", err, http.StatusNotFound)
		}
		if groups, err := other.Discovery().ServerGroups(); err != nil {
			t.Fatal(err)
		} else {
			for _, g := range groups.Groups {
				if g.Name == "metrics.k8s.io" {
					t.Errorf("discovery lists %s", g.Name)
				}
			}
		}
	})
}

// readPodMetrics polls path until its PodMetrics has n containers: until
// metrics-server has two scrapes of a container, the pod may be listed
// with none.
func readPodMetrics(ctx context.Context, t *testing.T, cs kubernetes.Interface, path string, n int) podMetrics {
	t.Helper()
	var m podMetrics
	eventually(ctx, t, "pod metrics", func() error {
		b, err := cs.CoreV1().RESTClient().Get().AbsPath(path).DoRaw(ctx)
		if err != nil {
			return err
		}
		m = podMetrics{}
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		if len(m.Containers) != n {
			return fmt.Errorf("metrics of %d containers, want %d: %s", len(m.Containers), n, b)
		}
		return nil
	})
	return m
}
