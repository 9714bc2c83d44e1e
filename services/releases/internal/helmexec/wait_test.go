package helmexec

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/release"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// neverReady are values of the hello charts whose pod is never scheduled:
// kwok (its default Stages) makes a pod ready only once it is bound to a
// node kwok manages, and no node carries this label, so the pod stays
// Pending whatever kwok's configuration.
var neverReady = map[string]any{"nodeSelector": map[string]any{"slipway.test/no-such-node": "true"}}

// TestWaitTimeout: a wait that cannot finish fails with ErrTimeout after
// the request's Timeout, and the revision is recorded failed.
func TestWaitTimeout(t *testing.T) {
	c := cluster1(t)
	ctx := t.Context()
	e := New(Options{})
	ns := namespace(t, c, "wait")
	var p progress
	start := time.Now()
	rel, err := e.Install(ctx, Request{Access: c.access, Namespace: ns, Release: "web", Chart: loadChart(t, "hello-0.1.0"),
		Values: neverReady, Wait: true, Timeout: 2 * time.Second, Progress: p.fn})
	took := time.Since(start)
	wantErr(t, err, ErrTimeout)
	t.Logf("after %s: %v", took.Round(time.Millisecond), err)
	if !strings.Contains(err.Error(), "Deployment is not ready: "+ns+"/web") {
		t.Errorf("error %q does not name what was not ready", err)
	}
	if took < 2*time.Second || took > 10*time.Second {
		t.Errorf("install took %s with a 2s timeout", took)
	}
	if rel == nil || rel.Info.Status != release.StatusFailed {
		t.Errorf("returned release %v; want the failed revision", rel)
	}
	got, err := e.Get(ctx, c.access, ns, "web", 0)
	if err != nil {
		t.Fatal(err)
	}
	wantRelease(t, got, 1, release.StatusFailed, "0.1.0")
	if !strings.Contains(p.String(), "waiting: ") {
		t.Errorf("progress:\n%s", &p)
	}
}

// TestAtomicUpgradeRollsBack: an Atomic upgrade whose wait times out is
// rolled back to the revision it started from.
func TestAtomicUpgradeRollsBack(t *testing.T) {
	c := cluster1(t)
	ctx := t.Context()
	e := New(Options{})
	ns := namespace(t, c, "atomic")
	r := Request{Access: c.access, Namespace: ns, Release: "web", Chart: loadChart(t, "hello-0.1.0"), Wait: true}
	if _, err := e.Install(ctx, r); err != nil {
		t.Fatal(err)
	}
	var p progress
	r.Chart, r.Values, r.Atomic, r.Timeout, r.Progress = loadChart(t, "hello-0.2.0"), neverReady, true, 2*time.Second, p.fn
	_, err := e.Upgrade(ctx, r)
	wantErr(t, err, ErrTimeout)
	t.Logf("error: %v", err)
	if !slices.Contains(p.phases(), PhaseRollingBack) {
		t.Errorf("phases %v; want rolling-back\n%s", p.phases(), &p)
	}
	h, err := e.History(ctx, c.access, ns, "web", 0)
	if err != nil || summary(h) != "1 superseded 0.1.0, 2 failed 0.2.0, 3 deployed 0.1.0" {
		t.Errorf("history = %s (err %v)", summary(h), err)
	}
	d, err := c.cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil || len(d.Spec.Template.Spec.NodeSelector) != 0 || d.Spec.Template.Spec.Containers[0].Image != "registry.example/hello:1.0" {
		t.Errorf("deployment after the rollback: %v (err %v)", d.Spec.Template.Spec, err)
	}
}

// TestAtomicInstallUninstalls: an Atomic install that fails leaves nothing.
func TestAtomicInstallUninstalls(t *testing.T) {
	c := cluster1(t)
	ctx := t.Context()
	e := New(Options{})
	ns := namespace(t, c, "atomic")
	var p progress
	_, err := e.Install(ctx, Request{Access: c.access, Namespace: ns, Release: "web", Chart: loadChart(t, "hello-0.1.0"),
		Values: neverReady, Atomic: true, Timeout: time.Second, Progress: p.fn})
	wantErr(t, err, ErrTimeout)
	if !slices.Contains(p.phases(), PhaseRollingBack) {
		t.Errorf("phases %v; want rolling-back\n%s", p.phases(), &p)
	}
	_, err = e.Get(ctx, c.access, ns, "web", 0)
	wantErr(t, err, ErrReleaseNotFound)
	eventually(t, "deployment deleted", func() error {
		_, err := c.cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return errors.New("still there")
	})
}

// TestCancelWait: cancelling the caller's context ends a wait at once, and
// Helm records the revision failed (not left pending).
func TestCancelWait(t *testing.T) {
	c := cluster1(t)
	e := New(Options{})
	ns := namespace(t, c, "cancel")
	r := Request{Access: c.access, Namespace: ns, Release: "web", Chart: loadChart(t, "hello-0.1.0"), Wait: true}
	if _, err := e.Install(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var p progress
	var cancelledAt time.Time
	p.on = func(phase, msg string) {
		if phase == PhaseWaiting && cancelledAt.IsZero() {
			cancelledAt = time.Now()
			cancel()
		}
	}
	r.Values, r.Timeout, r.Progress = neverReady, time.Minute, p.fn
	_, err := e.Upgrade(ctx, r)
	wantErr(t, err, context.Canceled)
	if since := time.Since(cancelledAt); since > 5*time.Second {
		t.Errorf("upgrade returned %s after the cancel", since)
	}
	got, err := e.Get(t.Context(), c.access, ns, "web", 0)
	if err != nil {
		t.Fatal(err)
	}
	wantRelease(t, got, 2, release.StatusFailed, "0.1.0")
}

// TestCancelBeforeRecord: an install cancelled before Helm records it
// leaves nothing, so the name stays free.
func TestCancelBeforeRecord(t *testing.T) {
	c := cluster1(t)
	e := New(Options{})
	ns := namespace(t, c, "cancel")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := Request{Access: c.access, Namespace: ns, Release: "cm", Chart: loadChart(t, "configmap-only"),
		Progress: func(phase, _ string) {
			if phase == PhaseRendering {
				cancel()
			}
		}}
	_, err := e.Install(ctx, r)
	wantErr(t, err, context.Canceled)
	_, err = e.Get(t.Context(), c.access, ns, "cm", 0)
	wantErr(t, err, ErrReleaseNotFound)
	r.Progress = nil
	if _, err := e.Install(t.Context(), r); err != nil {
		t.Errorf("install after a cancelled one: %v", err)
	}
}
