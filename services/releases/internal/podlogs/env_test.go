package podlogs_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/slipwayhq/slipway/pkg/testenv"
	"github.com/slipwayhq/slipway/services/releases/internal/helmexec"
	"github.com/slipwayhq/slipway/services/releases/internal/podlogs"
	"github.com/slipwayhq/slipway/services/releases/internal/status"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// appLines are the lines devstack's kwok serves for every container but
// "follow" (tools/internal/devenv/kube.LogLines).
func appLines() []string {
	out := make([]string, 10)
	for i := range out {
		out[i] = "slipway devstack log line " + strconv.Itoa(i+1)
	}
	return out
}

// followContainer's log is the devstack's follow.log, to which the test
// appends.
const followContainer = "follow"

// TestStreamDevstack reads the logs of a two-pod Deployment on the
// devstack, its pods found through the status cache: tails across pods,
// the MaxLines bound, a container the pod lacks, and a follow that
// delivers appended lines and ends when its context is cancelled.
func TestStreamDevstack(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	env, cs, ns, pods := setup(ctx, t)

	targets := func(container string) []podlogs.Target {
		var out []podlogs.Target
		for _, p := range pods {
			out = append(out, podlogs.Target{Namespace: p.Namespace, Pod: p.Name, Container: container})
		}
		return out
	}
	collect := func(t *testing.T, ts []podlogs.Target, o podlogs.Options, l podlogs.Limits) ([]podlogs.Line, error) {
		t.Helper()
		var got []podlogs.Line
		err := podlogs.Stream(ctx, podlogs.Kube(cs), ts, o, l, nil, func(b []podlogs.Line) error {
			if len(b) == 0 || len(b) > podlogs.MaxBatchLines {
				t.Errorf("batch of %d lines", len(b))
			}
			got = append(got, b...)
			return nil
		})
		return got, err
	}

	t.Run("tail across pods", func(t *testing.T) {
		got, err := collect(t, targets("app"), podlogs.Options{Tail: 3}, podlogs.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		byPod := map[string][]string{}
		for _, l := range got {
			if l.Container != "app" || l.Time.IsZero() || l.Truncated {
				t.Errorf("line %+v: want container app, a time, not truncated", l)
			}
			byPod[l.Pod] = append(byPod[l.Pod], l.Line)
		}
		want := fmt.Sprint(appLines()[7:])
		for _, p := range pods {
			if fmt.Sprint(byPod[p.Name]) != want {
				t.Errorf("pod %s: lines %q, want %s", p.Name, byPod[p.Name], want)
			}
		}
		if len(byPod) != len(pods) {
			t.Errorf("lines of pods %v, want only %d pods'", byPod, len(pods))
		}
	})

	t.Run("one container, whole log", func(t *testing.T) {
		got, err := collect(t, targets("app")[:1], podlogs.Options{}, podlogs.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, l := range got {
			if l.Pod != pods[0].Name {
				t.Errorf("line of pod %s, want only %s", l.Pod, pods[0].Name)
			}
			lines = append(lines, l.Line)
		}
		if fmt.Sprint(lines) != fmt.Sprint(appLines()) {
			t.Errorf("lines %q, want %q", lines, appLines())
		}
	})

	t.Run("max lines", func(t *testing.T) {
		got, err := collect(t, targets("app"), podlogs.Options{Tail: 10}, podlogs.Limits{MaxLines: 4})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 4 {
			t.Errorf("%d lines, want 4 (MaxLines)", len(got))
		}
	})

	t.Run("container the pod lacks", func(t *testing.T) {
		_, err := collect(t, []podlogs.Target{{Namespace: ns, Pod: pods[0].Name, Container: "nope"}}, podlogs.Options{}, podlogs.Limits{})
		if !errors.Is(err, podlogs.ErrUnavailable) {
			t.Errorf("error %v, want ErrUnavailable", err)
		}
		_, err = collect(t, []podlogs.Target{{Namespace: ns, Pod: "gone", Container: "app"}}, podlogs.Options{}, podlogs.Limits{})
		if !errors.Is(err, podlogs.ErrNotFound) {
			t.Errorf("error %v, want ErrNotFound", err)
		}
	})

	t.Run("follow", func(t *testing.T) {
		token := "followed " + ns
		fctx, fcancel := context.WithCancel(ctx)
		defer fcancel()
		var (
			mu   sync.Mutex
			seen = map[string]bool{}
		)
		done := make(chan error, 1)
		go func() {
			done <- podlogs.Stream(fctx, podlogs.Kube(cs), targets(followContainer), podlogs.Options{Tail: 1, Follow: true}, podlogs.Limits{}, nil, func(b []podlogs.Line) error {
				mu.Lock()
				defer mu.Unlock()
				for _, l := range b {
					if l.Line == token && l.Container == followContainer {
						seen[l.Pod] = true
					}
				}
				return nil
			})
		}()
		f, err := os.OpenFile(filepath.Join(env["KUBE_C1_LOGS"], "follow.log"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		// kwok may not watch the file yet: append until every pod has it.
		eventually(ctx, t, "every pod follows the appended line", func() error {
			if _, err := f.WriteString(time.Now().UTC().Format(time.RFC3339Nano) + " stdout F " + token + "\n"); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) < len(pods) {
				return fmt.Errorf("seen in %v", seen)
			}
			return nil
		})
		select {
		case err := <-done:
			t.Fatalf("follow ended before it was cancelled: %v", err)
		default:
		}
		fcancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("after cancel: %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("follow still running 10 s after its context was cancelled")
		}
	})
}

// setup deploys talker in a new namespace of the devstack's first cluster
// and returns its pods, found through the status cache.
func setup(ctx context.Context, t testing.TB) (testenv.Env, kubernetes.Interface, string, []status.Pod) {
	t.Helper()
	env := testenv.Get(t, "kube", "kubelogs")
	a := access(t, env["KUBECONFIG_C1"])
	exec := helmexec.New(helmexec.Options{})
	cs, err := exec.Clientset(a)
	if err != nil {
		t.Fatal(err)
	}
	ns := namespace(t, cs)
	manifest := deploy(ctx, t, cs, ns)
	cache := status.New(status.Options{Clients: exec.Clientset})
	t.Cleanup(cache.Close)
	rel := status.Release{Access: a, Namespace: ns, Revision: ns + "/talker/1", Manifest: manifest, Changed: time.Now()}
	return env, cs, ns, awaitPods(ctx, t, cs, cache, rel, 2)
}

func access(t testing.TB, path string) helmexec.Access {
	t.Helper()
	kc, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatalf("load kubeconfig %s: %v", path, err)
	}
	kctx := kc.Contexts[kc.CurrentContext]
	cl, user := kc.Clusters[kctx.Cluster], kc.AuthInfos[kctx.AuthInfo]
	return helmexec.Access{ClusterID: "cluster-c1", Server: cl.Server, TLSServerName: cl.TLSServerName, CAPEM: cl.CertificateAuthorityData,
		ClientCertPEM: user.ClientCertificateData, ClientKeyPEM: user.ClientKeyData, BearerToken: user.Token, CredentialID: "cred-c1", CredentialVersion: 1}
}

func namespace(t testing.TB, cs kubernetes.Interface) string {
	t.Helper()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	ns := "podlogs-" + hex.EncodeToString(b)
	if _, err := cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", ns, err)
		}
	})
	return ns
}

// deploy creates Deployment talker (two pods, containers app and follow)
// and returns the manifest a release of it would have.
func deploy(ctx context.Context, t testing.TB, cs kubernetes.Interface, ns string) string {
	t.Helper()
	labels := map[string]string{"app": "talker"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "talker", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{
					{Name: "app", Image: "registry.example/talker:1"},
					{Name: followContainer, Image: "registry.example/talker:1"},
				}},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return "---\n# Source: talker/templates/deployment.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: talker\n  namespace: " + ns + "\n"
}

// awaitPods waits until the cache finds n pods of rel, all running.
func awaitPods(ctx context.Context, t testing.TB, cs kubernetes.Interface, cache *status.Cache, rel status.Release, n int) []status.Pod {
	t.Helper()
	var pods []status.Pod
	eventually(ctx, t, fmt.Sprintf("%d running pods", n), func() error {
		var err error
		if pods, err = cache.Pods(ctx, rel); err != nil {
			return err
		}
		if len(pods) != n {
			return fmt.Errorf("%d pods", len(pods))
		}
		for _, p := range pods {
			live, err := cs.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if live.Status.Phase != corev1.PodRunning {
				return fmt.Errorf("pod %s %s", p.Name, live.Status.Phase)
			}
			if fmt.Sprint(p.Containers) != "[app follow]" {
				t.Fatalf("pod %s containers %v, want [app follow]", p.Name, p.Containers)
			}
		}
		return nil
	})
	return pods
}

// eventually polls check until it passes or ctx ends.
func eventually(ctx context.Context, t testing.TB, what string, check func() error) {
	t.Helper()
	tick := time.NewTicker(200 * time.Millisecond)
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
