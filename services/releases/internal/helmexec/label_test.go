package helmexec

import (
	"testing"

	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
)

// TestOperationLabel: every revision an action records names the operation
// that made it (OperationLabel), never one whose labels Helm copied (an
// upgrade copies the last revision's, a rollback those of the revision it
// returns to); a recovery's revision names none, and the one it marked
// failed reads as Interrupted.
func TestOperationLabel(t *testing.T) {
	c := cluster1(t)
	ctx := t.Context()
	e := New(Options{})
	ns := namespace(t, c, "oplabel")
	r := Request{Access: c.access, Namespace: ns, Release: "cm", Chart: loadChart(t, "configmap-only")}
	with := func(op string) Request { q := r; q.Operation = op; return q }
	if _, err := e.Install(ctx, with("op_1")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Upgrade(ctx, with("op_2")); err != nil {
		t.Fatal(err)
	}
	rb, err := e.Rollback(ctx, with("op_3"), 1)
	if err != nil {
		t.Fatal(err)
	}
	// What a writer dying mid-upgrade leaves, under operation op_4.
	stuck := *rb
	info := *rb.Info
	info.Status, info.Description = release.StatusPendingUpgrade, "Preparing upgrade"
	stuck.Info, stuck.Version, stuck.Labels = &info, 4, map[string]string{OperationLabel: "op_4"}
	if err := driver.NewSecrets(c.cs.CoreV1().Secrets(ns)).Create("sh.helm.release.v1.cm.v4", &stuck); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Recover(ctx, c.access, ns, "cm"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Upgrade(ctx, r); err != nil {
		t.Fatal(err)
	}

	h, err := e.History(ctx, c.access, ns, "cm", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"op_1", "op_2", "op_3", "op_4", "", ""}
	if len(h) != len(want) {
		t.Fatalf("history has %d revisions, want %d", len(h), len(want))
	}
	for i, rel := range h {
		if got := rel.Labels[OperationLabel]; got != want[i] {
			t.Errorf("revision %d (%s, %q) is labelled %q, want %q", rel.Version, rel.Info.Status, rel.Info.Description, got, want[i])
		}
		if got := Interrupted(rel); got != (rel.Version == 4) {
			t.Errorf("Interrupted(revision %d) = %v", rel.Version, got)
		}
	}
	if m := MadeBy(h, "op_2"); len(m) != 1 || m[0].Version != 2 {
		t.Errorf("MadeBy(op_2) = %v, want revision 2", m)
	}
	if m := MadeBy(h, ""); len(m) != 0 {
		t.Errorf("MadeBy(\"\") = %d revisions, want none", len(m))
	}
}
