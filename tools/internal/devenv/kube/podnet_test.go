package kube_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/slipwayhq/slipway/tools/internal/devenv/devenvtest"
	"github.com/slipwayhq/slipway/tools/internal/devenv/kube"
)

// TestPodProxy plays a pod's application in the test: a simulated pod gets
// an IP of its cluster's host-local block, a server on 0.0.0.0:PORT answers
// there, and the apiserver's pod and service proxies reach it — the server
// sees the pod IP as the address it was called at. Once the cluster stops,
// its route is gone.
func TestPodProxy(t *testing.T) {
	s := devenvtest.Start(t, &kube.Cluster{ID: "proxy", Nodes: 1})
	env := s.Env()
	cidr, err := netip.ParsePrefix(env[kube.EnvPodCIDR("proxy")])
	if err != nil {
		t.Fatalf("%s=%q: %v", kube.EnvPodCIDR("proxy"), env[kube.EnvPodCIDR("proxy")], err)
	}
	if pool := netip.MustParsePrefix(kube.PodPool); !pool.Contains(cidr.Addr()) {
		t.Fatalf("pod CIDR %s not in %s", cidr, pool)
	}
	cs := clientset(t, env[kube.EnvKubeconfig("proxy")])
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	called := make(chan string, 10) // the local address of each request
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called <- r.Context().Value(http.LocalAddrContextKey).(net.Addr).String()
		fmt.Fprintf(w, "hello from %s", r.URL.Path)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "web", Image: "registry.example/web:1",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}},
		}}},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var podIP string
	eventually(ctx, t, "pod running with an IP", func() error {
		p, err := cs.CoreV1().Pods("default").Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
			return fmt.Errorf("phase %s, IP %q", p.Status.Phase, p.Status.PodIP)
		}
		podIP = p.Status.PodIP
		return nil
	})
	if a, err := netip.ParseAddr(podIP); err != nil || !cidr.Contains(a) {
		t.Fatalf("pod IP %s not in the cluster's pod CIDR %s (%v)", podIP, cidr, err)
	}
	want := net.JoinHostPort(podIP, strconv.Itoa(port))

	check := func(t *testing.T, body []byte, err error, path string) {
		t.Helper()
		if err != nil {
			t.Fatalf("proxy: %v", err)
		}
		if got, wantBody := string(body), "hello from "+path; got != wantBody {
			t.Errorf("body %q, want %q", got, wantBody)
		}
		select {
		case local := <-called:
			if local != want {
				t.Errorf("server called at %s, want the pod's %s", local, want)
			}
		default:
			t.Error("the server saw no request")
		}
	}
	t.Run("pod proxy", func(t *testing.T) {
		body, err := cs.CoreV1().Pods("default").ProxyGet("http", pod.Name, strconv.Itoa(port), "/healthz", nil).DoRaw(ctx)
		check(t, body, err, "/healthz")
	})
	t.Run("service proxy", func(t *testing.T) {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{"app": "web"},
				Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
			},
		}
		if _, err := cs.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// The endpoints controller lists the pod once it is ready.
		var body []byte
		eventually(ctx, t, "service proxy answers", func() error {
			body, err = cs.CoreV1().Services("default").ProxyGet("http", svc.Name, "http", "/ready", nil).DoRaw(ctx)
			return err
		})
		check(t, body, nil, "/ready")
	})

	s.Stop()
	if routed(t, cidr) {
		t.Errorf("route local %s left after the cluster stopped", cidr)
	}
}

// routed reports whether the local routing table holds exactly cidr.
func routed(t *testing.T, cidr netip.Prefix) bool {
	t.Helper()
	out, err := exec.Command("ip", "route", "show", "table", "local", cidr.String()).CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("ip route show: %v", err)
		}
		t.Fatalf("ip route show: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out)) != ""
}
