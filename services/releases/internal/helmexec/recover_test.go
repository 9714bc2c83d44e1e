package helmexec

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestRecover: releases left pending by a writer that died are found by
// the actions (ErrPending) and fixed by Recover.
func TestRecover(t *testing.T) {
	c := cluster1(t)
	ctx := t.Context()
	e := New(Options{})
	ch := loadChart(t, "configmap-only")
	greeting := func(ns string) string {
		t.Helper()
		cm, err := c.cs.CoreV1().ConfigMaps(ns).Get(ctx, "cm", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return cm.Data["greeting"]
	}

	t.Run("pending upgrade", func(t *testing.T) {
		ns := namespace(t, c, "recover")
		r := Request{Access: c.access, Namespace: ns, Release: "cm", Chart: ch}
		rel, err := e.Install(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		// What a writer dying mid-upgrade leaves: revision 2 recorded
		// pending-upgrade and its ConfigMap applied.
		stuck := *rel
		info := *rel.Info
		info.Status, info.Description = release.StatusPendingUpgrade, "Preparing upgrade"
		stuck.Info, stuck.Version = &info, 2
		stuck.Manifest = strings.Replace(rel.Manifest, `"hello"`, `"stuck"`, 1)
		if err := driver.NewSecrets(c.cs.CoreV1().Secrets(ns)).Create("sh.helm.release.v1.cm.v2", &stuck); err != nil {
			t.Fatal(err)
		}
		if _, err := c.cs.CoreV1().ConfigMaps(ns).Patch(ctx, "cm", types.MergePatchType, []byte(`{"data":{"greeting":"stuck"}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}

		_, err = e.Upgrade(ctx, r)
		wantErr(t, err, ErrPending)
		_, err = e.Rollback(ctx, r, 1)
		wantErr(t, err, ErrPending)
		if got := pendingNames(t, e, c.access, ns); got != "cm@2 pending-upgrade" {
			t.Errorf("ListPending = %q, want cm@2 pending-upgrade", got)
		}

		did, err := e.Recover(ctx, c.access, ns, "cm")
		if err != nil || did.String() != "marked 2 failed (was pending-upgrade), rolled back to 1" {
			t.Fatalf("Recover = %q, %v; want rolled back to 1", did, err)
		}
		h, err := e.History(ctx, c.access, ns, "cm", 0)
		if err != nil || summary(h) != "1 superseded 1.0.0, 2 failed 1.0.0, 3 deployed 1.0.0" {
			t.Errorf("history = %s (err %v)", summary(h), err)
		}
		if g := greeting(ns); g != "hello" {
			t.Errorf("greeting after recovery = %q", g)
		}
		if got := pendingNames(t, e, c.access, ns); got != "" {
			t.Errorf("ListPending after recovery = %q, want none", got)
		}
		if did, err := e.Recover(ctx, c.access, ns, "cm"); did.String() != "" || err != nil {
			t.Errorf("second Recover = %q, %v; want nothing to do", did, err)
		}
		if _, err := e.Upgrade(ctx, r); err != nil {
			t.Errorf("upgrade after recovery: %v", err)
		}
	})

	t.Run("pending install", func(t *testing.T) {
		ns := namespace(t, c, "recover")
		r := Request{Access: c.access, Namespace: ns, Release: "cm", Chart: ch}
		rel, err := e.Install(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		rel.Info.Status = release.StatusPendingInstall
		if err := driver.NewSecrets(c.cs.CoreV1().Secrets(ns)).Update("sh.helm.release.v1.cm.v1", rel); err != nil {
			t.Fatal(err)
		}
		_, err = e.Install(ctx, r)
		wantErr(t, err, ErrPending)
		if got := pendingNames(t, e, c.access, ns, "default"); got != "cm@1 pending-install" {
			t.Errorf("ListPending = %q, want cm@1 pending-install", got)
		}

		did, err := e.Recover(ctx, c.access, ns, "cm")
		if err != nil || did.String() != "marked 1 failed (was pending-install)" {
			t.Fatalf("Recover = %q, %v; want marked 1 failed", did, err)
		}
		got, err := e.Get(ctx, c.access, ns, "cm", 0)
		if err != nil {
			t.Fatal(err)
		}
		wantRelease(t, got, 1, release.StatusFailed, "1.0.0")
		// Never uninstalled: the objects stay, and an upgrade takes over.
		if g := greeting(ns); g != "hello" {
			t.Errorf("greeting = %q", g)
		}
		if rel, err := e.Upgrade(ctx, r); err != nil || rel.Version != 2 {
			t.Errorf("upgrade after recovery = %v, %v", rel, err)
		}
	})

	t.Run("missing", func(t *testing.T) {
		_, err := e.Recover(context.Background(), c.access, "default", "no-such-release")
		wantErr(t, err, ErrReleaseNotFound)
	})
}

// pendingNames is ListPending's answer as "name@revision status" lines.
func pendingNames(t *testing.T, e *Executor, a Access, namespaces ...string) string {
	t.Helper()
	ps, err := e.ListPending(context.Background(), a, namespaces)
	if err != nil {
		t.Fatalf("ListPending: %v", err)
	}
	var out []string
	for _, p := range ps {
		if time.Since(p.Since) > time.Minute || p.Since.After(time.Now().Add(time.Second)) {
			t.Errorf("%s: Since %v is not when it was written", p.Name, p.Since)
		}
		out = append(out, fmt.Sprintf("%s@%d %s", p.Name, p.Revision, p.Status))
	}
	return strings.Join(out, "\n")
}
