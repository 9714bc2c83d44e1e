package helmexec

import (
	"crypto/rand"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/release"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// randomText is n bytes that gzip cannot shrink much.
func randomText(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n*3/4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// TestRecordTooLarge: a release whose record would not fit in its Secret
// fails before anything is applied: no namespace, no object, no record,
// and no revision pruned; one just under the limit installs.
func TestRecordTooLarge(t *testing.T) {
	c := cluster1(t)
	ctx := t.Context()
	e := New(Options{MaxHistory: 2})
	ch := loadChart(t, "configmap-only")
	big := map[string]any{"data": map[string]any{"big": randomText(t, 800<<10)}}

	t.Run("install", func(t *testing.T) {
		ns := namespaceName(t, c, "big")
		_, err := e.Install(ctx, Request{Access: c.access, Namespace: ns, Release: "big", Chart: ch, Values: big, CreateNamespace: true})
		wantErr(t, err, ErrRecordTooLarge)
		if !strings.Contains(err.Error(), "bytes") || !strings.Contains(err.Error(), strconv.Itoa(maxRecordBytes)) {
			t.Errorf("error %q names no size", err)
		}
		t.Logf("error: %v", err)
		if _, err := c.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("namespace %s was created (err %v)", ns, err)
		}
	})

	t.Run("upgrade", func(t *testing.T) {
		ns := namespace(t, c, "big")
		r := Request{Access: c.access, Namespace: ns, Release: "cm", Chart: ch}
		for range 2 {
			if _, err := e.Upgrade(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		r.Values = big
		_, err := e.Upgrade(ctx, r)
		wantErr(t, err, ErrRecordTooLarge)
		// Nothing changed: the two revisions (MaxHistory) are still there,
		// the ConfigMap is the old one, and no third record exists.
		h, err := e.History(ctx, c.access, ns, "cm", 0)
		if err != nil || summary(h) != "1 superseded 1.0.0, 2 deployed 1.0.0" {
			t.Errorf("history after a refused upgrade = %s (err %v)", summary(h), err)
		}
		cm, err := c.cs.CoreV1().ConfigMaps(ns).Get(ctx, "cm", metav1.GetOptions{})
		if err != nil || cm.Data["big"] != "" || cm.Data["greeting"] != "hello" {
			t.Errorf("configmap after a refused upgrade: %v (err %v)", cm.Data, err)
		}
		if secs, _ := c.cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"}); len(secs.Items) != 2 {
			t.Errorf("%d release secrets; want 2", len(secs.Items))
		}
		// A fitting upgrade still prunes as MaxHistory says.
		r.Values = nil
		if _, err := e.Upgrade(ctx, r); err != nil {
			t.Fatal(err)
		}
		if h, err = e.History(ctx, c.access, ns, "cm", 0); err != nil || summary(h) != "2 superseded 1.0.0, 3 deployed 1.0.0" {
			t.Errorf("history = %s (err %v)", summary(h), err)
		}
	})

	t.Run("just fits", func(t *testing.T) {
		// Large enough that the guard compresses it to know its size.
		ns := namespace(t, c, "big")
		v := map[string]any{"data": map[string]any{"big": randomText(t, 450<<10)}}
		rel, err := e.Install(ctx, Request{Access: c.access, Namespace: ns, Release: "fits", Chart: ch, Values: v})
		if err != nil {
			t.Fatalf("install: %v", err)
		}
		sec, err := c.cs.CoreV1().Secrets(ns).Get(ctx, "sh.helm.release.v1.fits.v1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		size, _ := recordSize(rel)
		t.Logf("record of %d bytes, stored %d", size, len(sec.Data["release"]))
		if size != len(sec.Data["release"]) {
			t.Errorf("recordSize = %d; stored %d", size, len(sec.Data["release"]))
		}
	})

	t.Run("dry run", func(t *testing.T) {
		ns := namespace(t, c, "big")
		_, err := e.Install(ctx, Request{Access: c.access, Namespace: ns, Release: "big", Chart: ch, Values: big, DryRun: true})
		wantErr(t, err, ErrRecordTooLarge)
	})
}

// TestDryRun: a dry run renders and checks, and changes nothing.
func TestDryRun(t *testing.T) {
	c := cluster1(t)
	ctx := t.Context()
	e := New(Options{})
	ch := loadChart(t, "configmap-only")

	ns := namespaceName(t, c, "dry")
	rel, err := e.Install(ctx, Request{Access: c.access, Namespace: ns, Release: "cm", Chart: ch, DryRun: true, CreateNamespace: true})
	if err != nil {
		t.Fatalf("dry-run install: %v", err)
	}
	if !strings.Contains(rel.Manifest, "kind: ConfigMap") || rel.Info.Description != "Dry run complete" {
		t.Errorf("dry run gave manifest %q, description %q", rel.Manifest, rel.Info.Description)
	}
	if _, err := c.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a dry run created namespace %s (err %v)", ns, err)
	}

	ns = namespace(t, c, "dry")
	r := Request{Access: c.access, Namespace: ns, Release: "cm", Chart: ch}
	if _, err := e.Install(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.DryRun = true
	r.Values = map[string]any{"data": map[string]any{"greeting": "changed"}}
	rel, err = e.Upgrade(ctx, r)
	if err != nil {
		t.Fatalf("dry-run upgrade: %v", err)
	}
	if rel.Version != 2 || !strings.Contains(rel.Manifest, "changed") {
		t.Errorf("dry-run upgrade = revision %d, manifest %q", rel.Version, rel.Manifest)
	}
	rel, err = e.Rollback(ctx, r, 1)
	if err != nil {
		t.Fatalf("dry-run rollback: %v", err)
	}
	if rel.Version != 2 || rel.Info.Status != release.StatusPendingRollback {
		t.Errorf("dry-run rollback = revision %d %s", rel.Version, rel.Info.Status)
	}
	if _, err := e.Uninstall(ctx, r, false); err != nil {
		t.Fatalf("dry-run uninstall: %v", err)
	}
	h, err := e.History(ctx, c.access, ns, "cm", 0)
	if err != nil || summary(h) != "1 deployed 1.0.0" {
		t.Errorf("history after dry runs = %s (err %v)", summary(h), err)
	}
	cm, err := c.cs.CoreV1().ConfigMaps(ns).Get(ctx, "cm", metav1.GetOptions{})
	if err != nil || cm.Data["greeting"] != "hello" {
		t.Errorf("configmap after dry runs: %v (err %v)", cm.Data, err)
	}
}
