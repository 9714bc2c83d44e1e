package helmexec

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/release"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestLifecycle installs, upgrades, rolls back, reads and uninstalls a
// release on each cluster, checking the cluster's objects and Helm's
// records along the way.
func TestLifecycle(t *testing.T) {
	for _, c := range clusters(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			testLifecycle(t, c)
		})
	}
}

func testLifecycle(t *testing.T, c testCluster) {
	ctx := t.Context()
	e := New(Options{})
	ns := namespaceName(t, c, "life")
	v1, v2 := loadChart(t, "hello-0.1.0"), loadChart(t, "hello-0.2.0")
	req := func() Request { return Request{Access: c.access, Namespace: ns, Release: "web", Wait: true} }
	image := func() string {
		t.Helper()
		d, err := c.cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get deployment: %v", err)
		}
		return d.Spec.Template.Spec.Containers[0].Image
	}

	// Install, into a namespace it creates.
	var p progress
	r := req()
	r.Chart, r.CreateNamespace, r.Progress, r.Description = v1, true, p.fn, "first"
	rel, err := e.Install(ctx, r)
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	wantRelease(t, rel, 1, release.StatusDeployed, "0.1.0")
	if rel.Info.Description != "first" {
		t.Errorf("description = %q; want first", rel.Info.Description)
	}
	for _, ph := range []string{PhaseRendering, PhaseApplying, PhaseWaiting} {
		if !slices.Contains(p.phases(), ph) {
			t.Errorf("install reported phases %v; want %s among them\n%s", p.phases(), ph, &p)
		}
	}
	d, err := c.cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil || d.Status.ReadyReplicas != 1 {
		t.Fatalf("after a waited install the deployment is %v (err %v); want 1 ready replica", d.Status, err)
	}
	if got := image(); got != "registry.example/hello:1.0" {
		t.Errorf("image = %s", got)
	}
	// Helm's record, where the helm CLI looks for it, of the size the
	// guard computes.
	sec, err := c.cs.CoreV1().Secrets(ns).Get(ctx, "sh.helm.release.v1.web.v1", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("release secret: %v", err)
	}
	if sec.Type != "helm.sh/release.v1" || sec.Labels["owner"] != "helm" || sec.Labels["status"] != "deployed" {
		t.Errorf("release secret type %s labels %v", sec.Type, sec.Labels)
	}
	if size, err := recordSize(rel); err != nil || size != len(sec.Data["release"]) {
		t.Errorf("recordSize = %d, %v; the stored record has %d bytes", size, err, len(sec.Data["release"]))
	}

	// The name is taken.
	r = req()
	r.Chart = v1
	_, err = e.Install(ctx, r)
	wantErr(t, err, ErrReleaseExists)

	// Upgrade to the next chart version.
	r = req()
	r.Chart, r.Values = v2, map[string]any{"message": "hi"}
	if rel, err = e.Upgrade(ctx, r); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	wantRelease(t, rel, 2, release.StatusDeployed, "0.2.0")
	if got := image(); got != "registry.example/hello:1.1" {
		t.Errorf("image after upgrade = %s", got)
	}

	// Reads.
	if rel, err = e.Get(ctx, c.access, ns, "web", 0); err != nil {
		t.Fatal(err)
	}
	wantRelease(t, rel, 2, release.StatusDeployed, "0.2.0")
	if rel, err = e.Get(ctx, c.access, ns, "web", 1); err != nil {
		t.Fatal(err)
	}
	wantRelease(t, rel, 1, release.StatusSuperseded, "0.1.0")
	_, err = e.Get(ctx, c.access, ns, "web", 7)
	wantErr(t, err, ErrReleaseNotFound)
	_, err = e.Get(ctx, c.access, ns, "nothing", 0)
	wantErr(t, err, ErrReleaseNotFound)

	// Roll back to the previous revision, then to a revision that never was.
	r = req()
	if rel, err = e.Rollback(ctx, r, 0); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	wantRelease(t, rel, 3, release.StatusDeployed, "0.1.0")
	if got := image(); got != "registry.example/hello:1.0" {
		t.Errorf("image after rollback = %s", got)
	}
	_, err = e.Rollback(ctx, r, 9)
	wantErr(t, err, ErrReleaseNotFound)
	r.Release = "nothing"
	_, err = e.Rollback(ctx, r, 0)
	wantErr(t, err, ErrReleaseNotFound)

	h, err := e.History(ctx, c.access, ns, "web", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := summary(h), "1 superseded 0.1.0, 2 superseded 0.2.0, 3 deployed 0.1.0"; got != want {
		t.Errorf("history = %s; want %s", got, want)
	}
	if h, err = e.History(ctx, c.access, ns, "web", 2); err != nil || summary(h) != "2 superseded 0.2.0, 3 deployed 0.1.0" {
		t.Errorf("history max 2 = %s, %v", summary(h), err)
	}

	// Uninstall keeping the history, then upgrade --install over it.
	r = req()
	if rel, err = e.Uninstall(ctx, r, true); err != nil {
		t.Fatalf("uninstall: %v", err)
	}
	if rel.Info.Status != release.StatusUninstalled {
		t.Errorf("uninstalled release status = %s", rel.Info.Status)
	}
	eventually(t, "deployment deleted", func() error {
		_, err := c.cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("deployment still there (err %v)", err)
	})
	r.Chart = v2
	if rel, err = e.Upgrade(ctx, r); err != nil {
		t.Fatalf("upgrade over an uninstalled release: %v", err)
	}
	wantRelease(t, rel, 4, release.StatusDeployed, "0.2.0")

	// Uninstall for good: no record is left.
	r = req()
	if _, err = e.Uninstall(ctx, r, false); err != nil {
		t.Fatalf("uninstall: %v", err)
	}
	_, err = e.Get(ctx, c.access, ns, "web", 0)
	wantErr(t, err, ErrReleaseNotFound)
	_, err = e.Uninstall(ctx, r, false)
	wantErr(t, err, ErrReleaseNotFound)
	secs, err := c.cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
	if err != nil || len(secs.Items) != 0 {
		t.Errorf("release secrets left: %d (err %v)", len(secs.Items), err)
	}
}

func summary(h []*release.Release) string {
	s := ""
	for i, r := range h {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%d %s %s", r.Version, r.Info.Status, r.Chart.Metadata.Version)
	}
	return s
}

// TestUpgradeInstallsMissing: upgrade of a release that does not exist
// installs it.
func TestUpgradeInstallsMissing(t *testing.T) {
	c := cluster1(t)
	e := New(Options{})
	ns := namespaceName(t, c, "upinst")
	var p progress
	rel, err := e.Upgrade(t.Context(), Request{Access: c.access, Namespace: ns, Release: "cm", Chart: loadChart(t, "configmap-only"), CreateNamespace: true, Progress: p.fn})
	if err != nil {
		t.Fatalf("upgrade --install: %v", err)
	}
	wantRelease(t, rel, 1, release.StatusDeployed, "1.0.0")
	// The upgrade that finds no release and installs renders once.
	p.mu.Lock()
	rendering := 0
	for _, ev := range p.events {
		if strings.HasPrefix(ev, PhaseRendering+": ") {
			rendering++
		}
	}
	p.mu.Unlock()
	if rendering != 1 {
		t.Errorf("upgrade --install reported rendering %d times; want once:\n%s", rendering, &p)
	}
	if _, err := c.cs.CoreV1().ConfigMaps(ns).Get(context.Background(), "cm", metav1.GetOptions{}); err != nil {
		t.Errorf("configmap: %v", err)
	}
}
