package kube_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	helmkube "helm.sh/helm/v3/pkg/kube"
	"helm.sh/helm/v3/pkg/release"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/slipwayhq/slipway/tools/internal/devenv"
	"github.com/slipwayhq/slipway/tools/internal/devenv/devenvtest"
	"github.com/slipwayhq/slipway/tools/internal/devenv/kube"
)

// TestTwoClusters starts two independent clusters of three simulated nodes
// and proves each part is real: workloads become available, Helm's Wait
// waits for them, and one cluster's objects are not in the other.
func TestTwoClusters(t *testing.T) {
	s := devenvtest.Start(t, &kube.Cluster{ID: "c1", Nodes: 3}, &kube.Cluster{ID: "c2", Nodes: 3})
	env := s.Env()
	c1, c2 := clientset(t, env[kube.EnvKubeconfig("c1")]), clientset(t, env[kube.EnvKubeconfig("c2")])
	if env[kube.EnvServer("c1")] == "" || env[kube.EnvServer("c1")] == env[kube.EnvServer("c2")] {
		t.Fatalf("servers c1=%q c2=%q, want two different URLs", env[kube.EnvServer("c1")], env[kube.EnvServer("c2")])
	}

	t.Run("nodes ready", func(t *testing.T) {
		for id, cs := range map[string]kubernetes.Interface{"c1": c1, "c2": c2} {
			nodes, err := cs.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{LabelSelector: kube.NodeLabel + "=kwok"})
			if err != nil {
				t.Fatal(err)
			}
			if len(nodes.Items) != 3 {
				t.Errorf("%s has %d nodes, want 3", id, len(nodes.Items))
			}
		}
	})

	t.Run("workloads become ready", func(t *testing.T) {
		for _, tc := range workloads() {
			t.Run(tc.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
				defer cancel()
				if err := tc.create(ctx, c1); err != nil {
					t.Fatal(err)
				}
				eventually(ctx, t, tc.want, func() error { return tc.ready(ctx, c1) })
				pods, err := c1.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=" + tc.name})
				if err != nil {
					t.Fatal(err)
				}
				if len(pods.Items) == 0 {
					t.Fatalf("no pods with app=%s", tc.name)
				}
				for _, p := range pods.Items {
					if p.Status.PodIP == "" || p.Spec.NodeName == "" {
						t.Errorf("pod %s: IP %q on node %q, want both set", p.Name, p.Status.PodIP, p.Spec.NodeName)
					}
				}
			})
		}
	})

	t.Run("helm install with wait", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		chrt, err := loader.Load("testdata/smoke")
		if err != nil {
			t.Fatal(err)
		}
		getter := helmkube.GetConfig(env[kube.EnvKubeconfig("c1")], "", "default")
		getter.WrapConfigFn = func(c *rest.Config) *rest.Config {
			c.QPS, c.Burst = 500, 1000
			return c
		}
		var cfg action.Configuration
		if err := cfg.Init(getter, "default", "secret", t.Logf); err != nil {
			t.Fatal(err)
		}
		install := action.NewInstall(&cfg)
		install.ReleaseName = "smoke"
		install.Namespace = "default"
		install.Wait = true
		install.Timeout = time.Minute
		start := time.Now()
		rel, err := install.RunWithContext(ctx, chrt, map[string]any{"replicas": 3})
		if err != nil {
			t.Fatalf("install: %v", err)
		}
		t.Logf("helm install --wait took %s", time.Since(start).Round(time.Millisecond))
		if rel.Info.Status != release.StatusDeployed {
			t.Fatalf("release status %s, want %s", rel.Info.Status, release.StatusDeployed)
		}
		d, err := c1.AppsV1().Deployments("default").Get(ctx, "smoke", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Status.ReadyReplicas != 3 {
			t.Errorf("after Wait, %d/3 replicas ready", d.Status.ReadyReplicas)
		}
	})

	t.Run("clusters are independent", func(t *testing.T) {
		ctx := t.Context()
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "only-in-c1"}, Data: map[string]string{"k": "v"}}
		if _, err := c1.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := c1.CoreV1().ConfigMaps("default").Get(ctx, cm.Name, metav1.GetOptions{}); err != nil {
			t.Fatalf("c1: %v", err)
		}
		_, err := c2.CoreV1().ConfigMaps("default").Get(ctx, cm.Name, metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("c2 get %s: %v, want NotFound", cm.Name, err)
		}
	})
}

// TestStopLeavesNothingRunning: after Stop, no process the cluster started
// (the pod route's holder, etcd, the control plane, kwok), nor any child of
// one, is left running, and the pod route is gone.
func TestStopLeavesNothingRunning(t *testing.T) {
	s := devenvtest.Start(t, &kube.Cluster{ID: "stop", Nodes: 1})
	procs, err := devenv.Status(s.State)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, proc := range []string{"podroute", "etcd", "apiserver", "controller-manager", "scheduler", "kwok"} {
		want["kube-stop-"+proc] = true
	}
	for _, p := range procs {
		if !p.Running {
			t.Errorf("%s (pid %d) not running before Stop", p.Name, p.PID)
		}
		delete(want, p.Name)
	}
	for name := range want {
		t.Errorf("no pid recorded for %s", name)
	}
	cidr := netip.MustParsePrefix(s.Env()[kube.EnvPodCIDR("stop")])
	if !routed(t, cidr) {
		t.Errorf("no local route for the pod CIDR %s", cidr)
	}
	s.Stop()
	if routed(t, cidr) {
		t.Errorf("route local %s left after Stop", cidr)
	}
	for _, p := range procs {
		// Each process leads its own group: ESRCH means it and every child are gone.
		if err := syscall.Kill(-p.PID, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (process group %d) still running after Stop (kill 0: %v)", p.Name, p.PID, err)
		}
	}
}

type workload struct {
	name   string
	want   string
	create func(ctx context.Context, cs kubernetes.Interface) error
	ready  func(ctx context.Context, cs kubernetes.Interface) error
}

// workloads are one of each kind the simulated nodes must carry to
// Ready or Complete.
func workloads() []workload {
	pod := func(app string) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: app, Image: "registry.example/" + app + ":1"}}},
		}
	}
	selector := func(app string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
	}
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name} }
	return []workload{
		{
			name: "deployment", want: "2/2 replicas available",
			create: func(ctx context.Context, cs kubernetes.Interface) error {
				_, err := cs.AppsV1().Deployments("default").Create(ctx, &appsv1.Deployment{
					ObjectMeta: meta("deployment"),
					Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Selector: selector("deployment"), Template: pod("deployment")},
				}, metav1.CreateOptions{})
				return err
			},
			ready: func(ctx context.Context, cs kubernetes.Interface) error {
				d, err := cs.AppsV1().Deployments("default").Get(ctx, "deployment", metav1.GetOptions{})
				if err != nil {
					return err
				}
				if d.Status.AvailableReplicas != 2 {
					return fmt.Errorf("%d/2 available", d.Status.AvailableReplicas)
				}
				return nil
			},
		},
		{
			name: "statefulset", want: "2/2 replicas ready",
			create: func(ctx context.Context, cs kubernetes.Interface) error {
				_, err := cs.AppsV1().StatefulSets("default").Create(ctx, &appsv1.StatefulSet{
					ObjectMeta: meta("statefulset"),
					Spec: appsv1.StatefulSetSpec{
						Replicas: ptr.To[int32](2), ServiceName: "statefulset",
						Selector: selector("statefulset"), Template: pod("statefulset"),
					},
				}, metav1.CreateOptions{})
				return err
			},
			ready: func(ctx context.Context, cs kubernetes.Interface) error {
				s, err := cs.AppsV1().StatefulSets("default").Get(ctx, "statefulset", metav1.GetOptions{})
				if err != nil {
					return err
				}
				if s.Status.ReadyReplicas != 2 {
					return fmt.Errorf("%d/2 ready", s.Status.ReadyReplicas)
				}
				return nil
			},
		},
		{
			name: "daemonset", want: "a ready pod on each of the 3 nodes",
			create: func(ctx context.Context, cs kubernetes.Interface) error {
				_, err := cs.AppsV1().DaemonSets("default").Create(ctx, &appsv1.DaemonSet{
					ObjectMeta: meta("daemonset"),
					Spec:       appsv1.DaemonSetSpec{Selector: selector("daemonset"), Template: pod("daemonset")},
				}, metav1.CreateOptions{})
				return err
			},
			ready: func(ctx context.Context, cs kubernetes.Interface) error {
				d, err := cs.AppsV1().DaemonSets("default").Get(ctx, "daemonset", metav1.GetOptions{})
				if err != nil {
					return err
				}
				if d.Status.DesiredNumberScheduled != 3 || d.Status.NumberReady != 3 {
					return fmt.Errorf("%d/%d ready, want 3/3", d.Status.NumberReady, d.Status.DesiredNumberScheduled)
				}
				return nil
			},
		},
		{
			name: "job", want: "complete",
			create: func(ctx context.Context, cs kubernetes.Interface) error {
				tmpl := pod("job")
				tmpl.Spec.RestartPolicy = corev1.RestartPolicyNever
				_, err := cs.BatchV1().Jobs("default").Create(ctx, &batchv1.Job{
					ObjectMeta: meta("job"),
					Spec:       batchv1.JobSpec{Template: tmpl},
				}, metav1.CreateOptions{})
				return err
			},
			ready: func(ctx context.Context, cs kubernetes.Interface) error {
				j, err := cs.BatchV1().Jobs("default").Get(ctx, "job", metav1.GetOptions{})
				if err != nil {
					return err
				}
				for _, c := range j.Status.Conditions {
					if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
						return nil
					}
				}
				return fmt.Errorf("%d succeeded, conditions %v", j.Status.Succeeded, j.Status.Conditions)
			},
		},
	}
}

func clientset(t *testing.T, kubeconfig string) kubernetes.Interface {
	t.Helper()
	cfg, err := kube.RESTConfig(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// eventually polls check until it passes or ctx ends.
func eventually(ctx context.Context, t *testing.T, what string, check func() error) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v (last: %v)", what, ctx.Err(), err)
		case <-tick.C:
		}
	}
}
