package status

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/slipwayhq/slipway/pkg/testenv"
	"github.com/slipwayhq/slipway/services/releases/internal/helmexec"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// env is the devstack's first cluster, with an executor to install on it
// and a status cache reading it.
type env struct {
	access helmexec.Access
	cs     kubernetes.Interface
	exec   *helmexec.Executor
	cache  *Cache
}

func newEnv(t testing.TB, o Options) *env {
	t.Helper()
	path := testenv.Get(t, "kube")["KUBECONFIG_C1"]
	kc, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatalf("load kubeconfig %s: %v", path, err)
	}
	kctx := kc.Contexts[kc.CurrentContext]
	cl, user := kc.Clusters[kctx.Cluster], kc.AuthInfos[kctx.AuthInfo]
	a := helmexec.Access{ClusterID: "cluster-c1", Server: cl.Server, TLSServerName: cl.TLSServerName, CAPEM: cl.CertificateAuthorityData,
		ClientCertPEM: user.ClientCertificateData, ClientKeyPEM: user.ClientKeyData, BearerToken: user.Token, CredentialID: "cred-c1", CredentialVersion: 1}
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	rc.Proxy = func(*http.Request) (*url.URL, error) { return nil, nil }
	rc.QPS, rc.Burst = 200, 400
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{access: a, cs: cs, exec: helmexec.New(helmexec.Options{})}
	if o.Clients == nil {
		o.Clients = e.exec.Clientset
	}
	e.cache = New(o)
	t.Cleanup(e.cache.Close)
	return e
}

// namespace returns a fresh namespace, deleted when the test ends.
func (e *env) namespace(t testing.TB, prefix string) string {
	t.Helper()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	ns := prefix + "-" + hex.EncodeToString(b)
	if _, err := e.cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", ns, err)
	}
	t.Cleanup(func() {
		if err := e.cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", ns, err)
		}
	})
	return ns
}

func loadChart(t testing.TB) *chart.Chart {
	t.Helper()
	c, err := loader.LoadDir(filepath.Join("testdata", "charts", "workloads"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// install installs (or, with upgrade, upgrades) the workloads chart as
// release name in ns, without waiting, and returns it as the cache sees it.
func (e *env) install(t testing.TB, ns, name string, values map[string]any, upgrade bool) Release {
	t.Helper()
	req := helmexec.Request{Access: e.access, Namespace: ns, Release: name, Chart: loadChart(t), Values: values}
	var (
		rel *release.Release
		err error
	)
	if upgrade {
		rel, err = e.exec.Upgrade(t.Context(), req)
	} else {
		rel, err = e.exec.Install(t.Context(), req)
	}
	if err != nil {
		t.Fatalf("install %s/%s: %v", ns, name, err)
	}
	return Release{Access: e.access, Namespace: ns, Revision: ns + "/" + name + "/" + strconv.Itoa(rel.Version), Manifest: rel.Manifest,
		Changed: rel.Info.LastDeployed.Time}
}

// web returns values of the chart's web part, merged over defaults.
func web(v map[string]any) map[string]any {
	w := map[string]any{"enabled": true}
	for k, val := range v {
		w[k] = val
	}
	return map[string]any{"web": w}
}

// await polls the release's status until ok holds, or fails after 60 s.
func (e *env) await(t testing.TB, r Release, what string, ok func(Snapshot) bool) Snapshot {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		s, err := e.cache.Status(t.Context(), r)
		if err != nil {
			t.Fatalf("status: %v", err)
		}
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: status never came: last %s %q %+v", what, s.Verdict, s.Message, s.Workloads)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func verdictIs(v Verdict) func(Snapshot) bool { return func(s Snapshot) bool { return s.Verdict == v } }

// TestStatusRollout: an install becomes ready; an upgrade's rollout is
// pushed through a Watch as progressing, then ready at the new generation.
func TestStatusRollout(t *testing.T) {
	e := newEnv(t, Options{})
	ns := e.namespace(t, "status")
	r := e.install(t, ns, "web", web(map[string]any{"replicas": 2}), false)
	s := e.await(t, r, "ready after install", verdictIs(Ready))
	if s.WorkloadCount != 1 || s.Workloads[0].Object != (Object{APIVersion: "apps/v1", Kind: "Deployment", Namespace: ns, Name: "web"}) ||
		s.Workloads[0].Desired != 2 || s.Workloads[0].Available != 2 || s.Message != "" {
		t.Fatalf("after install: %+v", s)
	}

	w, err := e.cache.Watch(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r = e.install(t, ns, "web", web(map[string]any{"replicas": 2, "image": "registry.example/web:2.0"}), true)
	var seen []string
	deadline := time.After(60 * time.Second)
	for {
		select {
		case <-w.C():
		case <-deadline:
			t.Fatalf("no ready status at generation 2; saw %v", seen)
		}
		s, err := e.cache.Status(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		wl := s.Workloads[0]
		if v := s.Verdict.String(); len(seen) == 0 || seen[len(seen)-1] != v {
			seen = append(seen, v)
		}
		if s.Verdict == Ready && wl.ObservedGeneration == 2 {
			break
		}
	}
	t.Logf("verdicts pushed through the rollout: %v", seen)
	if len(seen) < 2 || seen[0] != "progressing" {
		t.Errorf("verdicts %v; want progressing, then ready", seen)
	}
}

// TestStatusFailingRollout: pods that can never be scheduled make a
// Deployment progressing, then failed at its progress deadline, the pod's
// reason in the message; a Deployment scaled past what its nodes take,
// after it completed, is degraded.
func TestStatusFailingRollout(t *testing.T) {
	e := newEnv(t, Options{Grace: 500 * time.Millisecond})
	ns := e.namespace(t, "status")
	r := e.install(t, ns, "web", web(map[string]any{"progressDeadlineSeconds": 3, "nodeSelector": map[string]any{"slipway.test/no-such-node": "true"}}), false)
	s := e.await(t, r, "progressing", verdictIs(Progressing))
	t.Logf("before the deadline: %s", s.Message)
	s = e.await(t, r, "failed at the deadline", verdictIs(Failed))
	t.Logf("after the deadline: %s", s.Message)
	if want := "deployment/web: ProgressDeadlineExceeded: "; !strings.HasPrefix(s.Message, want) {
		t.Errorf("message %q; want it to start with %q", s.Message, want)
	}
	if !strings.Contains(s.Message, "(pod web-") || !strings.Contains(s.Message, "Unschedulable") {
		t.Errorf("message %q names no unschedulable pod", s.Message)
	}

	// The devstack has 3 nodes: a fourth pod of one per node never runs.
	r2 := e.install(t, ns, "spread", web(map[string]any{"replicas": 3, "onePerNode": true}), false)
	e.await(t, r2, "3 replicas ready", verdictIs(Ready))
	scale, err := e.cs.AppsV1().Deployments(ns).GetScale(t.Context(), "spread", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scale.Spec.Replicas = 4
	if _, err := e.cs.AppsV1().Deployments(ns).UpdateScale(t.Context(), "spread", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	s = e.await(t, r2, "degraded", verdictIs(Degraded))
	if wl := s.Workloads[0]; wl.Desired != 4 || wl.Available != 3 || !strings.Contains(s.Message, "3 of 4 replicas available") {
		t.Errorf("degraded: %q %+v", s.Message, wl)
	}
}

// TestStatusJob: a Job runs to Complete (ready); one that cannot run
// fails at its active deadline; a CronJob and a StatefulSet and DaemonSet
// beside them are assessed too.
func TestStatusJob(t *testing.T) {
	e := newEnv(t, Options{})
	ns := e.namespace(t, "status")
	r := e.install(t, ns, "batch", map[string]any{"web": map[string]any{"enabled": false}, "job": map[string]any{"enabled": true},
		"cronjob": map[string]any{"enabled": true}, "statefulset": map[string]any{"enabled": true}, "daemonset": map[string]any{"enabled": true}}, false)
	s := e.await(t, r, "job complete", verdictIs(Ready))
	kinds := map[string]Workload{}
	for _, wl := range s.Workloads {
		kinds[wl.Object.Kind] = wl
	}
	if len(kinds) != 4 || kinds["Job"].Ready != 1 || kinds["DaemonSet"].Desired != 3 || kinds["StatefulSet"].Available != 1 {
		t.Errorf("workloads %+v", s.Workloads)
	}

	r = e.install(t, ns, "stuck", map[string]any{"web": map[string]any{"enabled": false},
		"job": map[string]any{"enabled": true, "activeDeadlineSeconds": 2, "nodeSelector": map[string]any{"slipway.test/no-such-node": "true"}}}, false)
	e.await(t, r, "job running", verdictIs(Progressing))
	s = e.await(t, r, "job failed", verdictIs(Failed))
	if !strings.Contains(s.Message, "job/stuck-migrate: DeadlineExceeded") {
		t.Errorf("message %q", s.Message)
	}
}

// TestResourcesAndEvents: every object of the manifest is listed in order
// with its state, pods after their workload; an object deleted behind
// Helm's back is missing; events of the Deployment and its pods are
// listed newest first, and the Warning filter keeps the scheduler's.
func TestResourcesAndEvents(t *testing.T) {
	e := newEnv(t, Options{})
	ns := e.namespace(t, "status")
	r := e.install(t, ns, "web", web(map[string]any{"replicas": 2}), false)
	e.await(t, r, "ready", verdictIs(Ready))
	res, err := e.cache.Resources(t.Context(), r, true)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range res {
		owner := ""
		if x.Owner != nil {
			owner = " of " + x.Owner.Name
		}
		got = append(got, fmt.Sprintf("%s %s%s %s", x.Object.Kind, x.Object.Name[:min(len(x.Object.Name), 7)], owner, x.Verdict))
	}
	want := []string{"ConfigMap web-con unassessed", "Service web ready", "Deployment web ready", "Pod web-", "Pod web-"}
	if len(got) != 5 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != "Pod web-"+res[3].Object.Name[4:7]+" of web ready" {
		t.Errorf("resources:\n%v", got)
	}
	for _, x := range res {
		if x.Object.Namespace != ns || x.Object.Kind != "ConfigMap" && x.Created.IsZero() {
			t.Errorf("resource %+v", x)
		}
	}

	if err := e.cs.CoreV1().Services(ns).Delete(t.Context(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := e.cache.Resources(t.Context(), r, false)
		if err != nil {
			t.Fatal(err)
		}
		if res[1].Missing && res[1].Verdict == Failed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deleted Service: %+v", res[1])
		}
		time.Sleep(100 * time.Millisecond)
	}

	var evs []Event
	deadline = time.Now().Add(30 * time.Second)
	for {
		if evs, err = e.cache.Events(t.Context(), r, EventFilter{}); err != nil {
			t.Fatal(err)
		}
		kinds := map[string]bool{}
		for _, ev := range evs {
			kinds[ev.Involved.Kind] = true
		}
		if kinds["Deployment"] && kinds["Pod"] && kinds["ReplicaSet"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events: %+v", evs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i, ev := range evs {
		if i > 0 && ev.Last.After(evs[i-1].Last) || ev.Source == "" || ev.Count < 1 || ev.Reason == "" {
			t.Errorf("event %d: %+v", i, ev)
		}
	}

	r2 := e.install(t, ns, "stuck", web(map[string]any{"nodeSelector": map[string]any{"slipway.test/no-such-node": "true"}}), false)
	deadline = time.Now().Add(30 * time.Second)
	for {
		warn, err := e.cache.Events(t.Context(), r2, EventFilter{Type: "Warning"})
		if err != nil {
			t.Fatal(err)
		}
		if len(warn) > 0 {
			for _, ev := range warn {
				if ev.Type != "Warning" || ev.Involved.Kind != "Pod" {
					t.Errorf("warning %+v", ev)
				}
			}
			t.Logf("warning: %s %s: %s", ev0(warn).Reason, ev0(warn).Involved.Name, ev0(warn).Message)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no FailedScheduling warning")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if later, _ := e.cache.Events(t.Context(), r, EventFilter{Since: time.Now().Add(time.Hour)}); len(later) != 0 {
		t.Errorf("events since an hour from now: %+v", later)
	}
}

func ev0(evs []Event) Event { return evs[0] }

// TestScopeLifecycle: scopes start once per namespace, stop when idle,
// start anew (and make watches stale) when the credential rotates, and are
// bounded.
func TestScopeLifecycle(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	e := newEnv(t, Options{MaxScopes: 1, IdleAfter: time.Minute, Now: clock})
	ns := e.namespace(t, "status")
	r := e.install(t, ns, "web", web(nil), false)
	for range 3 {
		if _, err := e.cache.Status(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.cache.started.Load(); n != 1 {
		t.Errorf("%d scopes started for one namespace", n)
	}
	w, err := e.cache.Watch(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	// Full, and watched: another namespace waits its turn.
	other := e.namespace(t, "status")
	r2 := e.install(t, other, "web", web(nil), false)
	if _, err := e.cache.Status(t.Context(), r2); err != ErrBusy {
		t.Errorf("a second namespace past MaxScopes while the first is watched: %v; want ErrBusy", err)
	}
	// A rotated credential replaces the scope; the watch goes stale.
	rotated := r
	rotated.Access.CredentialVersion = 2
	if _, err := e.cache.Status(t.Context(), rotated); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.C():
	case <-time.After(10 * time.Second):
	}
	if !w.Stale() || e.cache.started.Load() != 2 {
		t.Errorf("after a rotation: watch stale %v, %d scopes started", w.Stale(), e.cache.started.Load())
	}
	w.Close()
	// Unwatched, the scope gives way to another namespace; idle, it stops.
	if _, err := e.cache.Status(t.Context(), r2); err != nil {
		t.Errorf("a second namespace once the first is unwatched: %v", err)
	}
	now = now.Add(2 * time.Minute)
	e.cache.sweep()
	if n := e.cache.Scopes(); n != 0 {
		t.Errorf("%d scopes after the idle sweep", n)
	}
}
