package helmexec

import (
	"testing"

	"helm.sh/helm/v3/pkg/release"
)

func TestSmoke(t *testing.T) {
	c := cluster1(t)
	e := New(Options{})
	ns := namespaceName(t, c, "smoke")
	var p progress
	rel, err := e.Install(t.Context(), Request{Access: c.access, Namespace: ns, Release: "web", Chart: loadChart(t, "hello-0.1.0"), Wait: true, CreateNamespace: true, Progress: p.fn})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(p.String())
	wantRelease(t, rel, 1, release.StatusDeployed, "0.1.0")
}
