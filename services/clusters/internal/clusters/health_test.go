package clusters

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/pkg/identity"
	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
	"github.com/slipwayhq/slipway/services/clusters/internal/kube"
)

// TestMonitor: the periodic check records what it finds on every org's
// clusters, and retries the Vault destroys that could not be done at once.
func TestMonitor(t *testing.T) {
	f := newFixture(t)
	a := f.register(t, "acme", "prod")
	b := f.register(t, "globex", "prod")
	m := NewMonitor(f.inner, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Minute)
	// The told checker stamps no check time, so both are due at once.
	f.checker.health = kube.Health{Reachability: kube.Unreachable, Message: "connection refused", CheckedAt: time.Now()}
	m.checkDue(context.Background())
	for _, c := range []*clustersv1.Cluster{a, b} {
		got, err := f.srv.GetCluster(as(c.GetOrg(), identity.RoleViewer), &clustersv1.GetClusterRequest{Org: c.GetOrg(), Cluster: c.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		h := got.GetCluster().GetHealth()
		if h.GetReachability() != clustersv1.ClusterReachability_CLUSTER_REACHABILITY_UNREACHABLE || h.GetMessage() != "connection refused" || h.GetLastCheckTime() == nil {
			t.Errorf("%s/%s health after the periodic check = %v", c.GetOrg(), c.GetName(), h)
		}
	}

	// A delete while Vault is down forgets the cluster at once and
	// destroys its secret once Vault is back.
	f.secrets.setDown(true)
	if _, err := f.srv.DeleteCluster(as("acme", identity.RoleAdmin), &clustersv1.DeleteClusterRequest{Org: "acme", Cluster: "prod"}); err != nil {
		t.Fatalf("delete with Vault down: %v", err)
	}
	f.secrets.setDown(false)
	if !hasPath(f.secrets.paths(), "orgs/acme/clusters/"+a.GetId()) {
		t.Fatal("the secret is already gone; the test needs it queued")
	}
	m.destroyQueued(context.Background())
	if hasPath(f.secrets.paths(), "orgs/acme/clusters/"+a.GetId()) {
		t.Error("the queued destroy was not retried")
	}
	if q, _ := f.inner.(*service).store.QueuedDestroys(context.Background(), 10); len(q) != 0 {
		t.Errorf("still queued: %v", q)
	}
}

func hasPath(paths []string, p string) bool { return slices.Contains(paths, p) }
