package clusters

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
	"github.com/slipwayhq/slipway/services/clusters/internal/kube"
)

// TestStoreConformance runs one suite against every Store backend.
func TestStoreConformance(t *testing.T) {
	sqltest.Backends(t, func(t *testing.T, dsn string) {
		store, err := OpenStore(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Close() })
		runStoreSuite(t, store)
	})
}

var storeTime = time.Date(2026, 12, 1, 12, 0, 0, 123456000, time.UTC)

func testCluster(org, name string) (Cluster, *Credential) {
	id := newID("cl_")
	cred := &Credential{
		ID: newID("cred_"), Org: org, Name: "owned-" + name, Type: TypeKubeconfig, Endpoint: "https://" + name + ".example.com",
		Version: 1, OwnerClusterID: id, VaultPath: clusterPath(org, id), Creator: "user:alice", Created: storeTime, Updated: storeTime,
	}
	return Cluster{
		ID: id, Org: org, Name: name, Labels: map[string]string{"env": "prod"}, Server: cred.Endpoint, CredentialID: cred.ID,
		Health:  kube.Health{Reachability: kube.Reachable, Version: "v1.31.4", Nodes: 3, CheckedAt: storeTime},
		Creator: "user:alice", Created: storeTime, Updated: storeTime,
	}, cred
}

func testCredential(org, name string, typ CredentialType, endpoint string) Credential {
	id := newID("cred_")
	return Credential{ID: id, Org: org, Name: name, Type: typ, Endpoint: endpoint, Version: 1,
		VaultPath: credentialPath(org, id), Creator: "user:alice", Created: storeTime, Updated: storeTime}
}

func runStoreSuite(t *testing.T, s Store) {
	ctx := context.Background()

	t.Run("cluster and its credential round-trip every field", func(t *testing.T) {
		c, cred := testCluster("acme", "prod")
		if err := s.InsertCluster(ctx, c, cred); err != nil {
			t.Fatal(err)
		}
		for _, ref := range []string{c.ID, c.Name} {
			got, err := s.GetCluster(ctx, "acme", ref)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c, got); diff != "" {
				t.Errorf("GetCluster(%s) (-want +got):\n%s", ref, diff)
			}
		}
		got, err := s.GetCredential(ctx, "acme", cred.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(*cred, got); diff != "" {
			t.Errorf("GetCredential (-want +got):\n%s", diff)
		}
	})

	t.Run("another org sees nothing", func(t *testing.T) {
		c, cred := testCluster("acme", "staging")
		if err := s.InsertCluster(ctx, c, cred); err != nil {
			t.Fatal(err)
		}
		for _, ref := range []string{c.ID, c.Name} {
			if _, err := s.GetCluster(ctx, "globex", ref); !errors.Is(err, ErrClusterNotFound) {
				t.Errorf("GetCluster(globex, %s) = %v, want ErrClusterNotFound", ref, err)
			}
		}
		if _, err := s.GetCredential(ctx, "globex", cred.ID); !errors.Is(err, ErrCredentialNotFound) {
			t.Errorf("GetCredential(globex) = %v, want ErrCredentialNotFound", err)
		}
		if list, err := s.ListClusters(ctx, "globex", "", 100); err != nil || len(list) != 0 {
			t.Errorf("ListClusters(globex) = %v, %v; want none", list, err)
		}
		if _, err := s.DeleteCluster(ctx, "globex", c.ID, storeTime); !errors.Is(err, ErrClusterNotFound) {
			t.Errorf("DeleteCluster(globex) = %v, want ErrClusterNotFound", err)
		}
	})

	t.Run("names are unique per org, and the same name is fine in another", func(t *testing.T) {
		c, cred := testCluster("uniq", "a")
		if err := s.InsertCluster(ctx, c, cred); err != nil {
			t.Fatal(err)
		}
		dup, dupCred := testCluster("uniq", "a")
		if err := s.InsertCluster(ctx, dup, dupCred); !errors.Is(err, ErrClusterExists) {
			t.Errorf("duplicate InsertCluster = %v, want ErrClusterExists", err)
		}
		// Nothing half-written: the duplicate's credential is not there.
		if _, err := s.GetCredential(ctx, "uniq", dupCred.ID); !errors.Is(err, ErrCredentialNotFound) {
			t.Errorf("credential of the refused cluster = %v, want not found", err)
		}
		other, otherCred := testCluster("uniq2", "a")
		if err := s.InsertCluster(ctx, other, otherCred); err != nil {
			t.Errorf("same name in another org: %v", err)
		}
		cr := testCredential("uniq", "reg", TypeRegistry, "ghcr.io")
		if err := s.InsertCredential(ctx, cr); err != nil {
			t.Fatal(err)
		}
		cr2 := testCredential("uniq", "reg", TypeRegistry, "quay.io")
		if err := s.InsertCredential(ctx, cr2); !errors.Is(err, ErrCredentialExists) {
			t.Errorf("duplicate credential name = %v, want ErrCredentialExists", err)
		}
	})

	t.Run("list pages by name", func(t *testing.T) {
		for i := range 7 {
			c, cred := testCluster("paged", fmt.Sprintf("c%02d", i))
			if err := s.InsertCluster(ctx, c, cred); err != nil {
				t.Fatal(err)
			}
		}
		var names []string
		after := ""
		for {
			page, err := s.ListClusters(ctx, "paged", after, 3)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range page {
				names = append(names, c.Name)
			}
			if len(page) < 3 {
				break
			}
			after = page[len(page)-1].Name
		}
		want := []string{"c00", "c01", "c02", "c03", "c04", "c05", "c06"}
		if diff := cmp.Diff(want, names); diff != "" {
			t.Errorf("pages (-want +got):\n%s", diff)
		}
	})

	t.Run("update, health and touch", func(t *testing.T) {
		c, cred := testCluster("upd", "one")
		if err := s.InsertCluster(ctx, c, cred); err != nil {
			t.Fatal(err)
		}
		c.Name, c.Labels, c.Updated = "renamed", map[string]string{"tier": "gold"}, storeTime.Add(time.Hour)
		if err := s.UpdateCluster(ctx, c); err != nil {
			t.Fatal(err)
		}
		h := kube.Health{Reachability: kube.Unreachable, Message: "connection refused", CheckedAt: storeTime.Add(2 * time.Hour)}
		if err := s.RecordHealth(ctx, "upd", c.ID, h); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetCluster(ctx, "upd", "renamed")
		if err != nil {
			t.Fatal(err)
		}
		c.Health = h
		if diff := cmp.Diff(c, got); diff != "" {
			t.Errorf("after update (-want +got):\n%s", diff)
		}
		if err := s.RecordHealth(ctx, "other", c.ID, h); !errors.Is(err, ErrClusterNotFound) {
			t.Errorf("RecordHealth in another org = %v, want ErrClusterNotFound", err)
		}
		two, twoCred := testCluster("upd", "two")
		if err := s.InsertCluster(ctx, two, twoCred); err != nil {
			t.Fatal(err)
		}
		two.Name = "renamed"
		if err := s.UpdateCluster(ctx, two); !errors.Is(err, ErrClusterExists) {
			t.Errorf("rename onto a taken name = %v, want ErrClusterExists", err)
		}
	})

	t.Run("credential versions are compare-and-set", func(t *testing.T) {
		cr := testCredential("cas", "repo", TypeHelmRepository, "https://charts.example.com/")
		if err := s.InsertCredential(ctx, cr); err != nil {
			t.Fatal(err)
		}
		cr.Version = 2
		if err := s.UpdateCredential(ctx, cr, 1); err != nil {
			t.Fatal(err)
		}
		cr.Version = 3
		if err := s.UpdateCredential(ctx, cr, 1); !errors.Is(err, ErrConflict) {
			t.Errorf("update from a stale version = %v, want ErrConflict", err)
		}
		got, err := s.GetCredential(ctx, "cas", "repo")
		if err != nil || got.Version != 2 {
			t.Errorf("version = %d, %v; want 2", got.Version, err)
		}
	})

	t.Run("a credential in use by a cluster is not deleted", func(t *testing.T) {
		shared := testCredential("inuse", "kc", TypeKubeconfig, "https://shared.example.com")
		if err := s.InsertCredential(ctx, shared); err != nil {
			t.Fatal(err)
		}
		c, _ := testCluster("inuse", "user")
		c.CredentialID = shared.ID
		if err := s.InsertCluster(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
		if names, err := s.ClustersUsing(ctx, "inuse", shared.ID, 5); err != nil || !cmp.Equal(names, []string{"user"}) {
			t.Errorf("ClustersUsing = %v, %v", names, err)
		}
		if err := s.DeleteCredential(ctx, shared, storeTime); !errors.Is(err, ErrInUse) {
			t.Errorf("DeleteCredential in use = %v, want ErrInUse", err)
		}
		owned, err := s.DeleteCluster(ctx, "inuse", c.ID, storeTime)
		if err != nil || owned != nil {
			t.Fatalf("DeleteCluster of a cluster on a shared credential = %v, %v; want no owned credential", owned, err)
		}
		if err := s.DeleteCredential(ctx, shared, storeTime); err != nil {
			t.Errorf("DeleteCredential once unused: %v", err)
		}
	})

	t.Run("deleting queues the secret's destruction in the same transaction", func(t *testing.T) {
		c, cred := testCluster("destroy", "gone")
		if err := s.InsertCluster(ctx, c, cred); err != nil {
			t.Fatal(err)
		}
		owned, err := s.DeleteCluster(ctx, "destroy", c.ID, storeTime)
		if err != nil || owned == nil || owned.ID != cred.ID {
			t.Fatalf("DeleteCluster = %v, %v; want its credential", owned, err)
		}
		if _, err := s.GetCredential(ctx, "destroy", cred.ID); !errors.Is(err, ErrCredentialNotFound) {
			t.Errorf("owned credential after delete = %v, want gone", err)
		}
		queued, err := s.QueuedDestroys(ctx, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(queued, cred.VaultPath) {
			t.Errorf("queued destroys %v lack %s", queued, cred.VaultPath)
		}
		if err := s.UnqueueDestroy(ctx, cred.VaultPath); err != nil {
			t.Fatal(err)
		}
		if queued, _ := s.QueuedDestroys(ctx, 1000); slices.Contains(queued, cred.VaultPath) {
			t.Errorf("%s still queued after unqueue", cred.VaultPath)
		}
		if err := s.QueueDestroy(ctx, "orgs/destroy/x", storeTime); err != nil {
			t.Fatal(err)
		}
		if err := s.QueueDestroy(ctx, "orgs/destroy/x", storeTime); err != nil {
			t.Errorf("queueing a path twice: %v", err)
		}
	})

	t.Run("registry credential by endpoint, per org and type", func(t *testing.T) {
		cr := testCredential("ep", "ghcr", TypeRegistry, "ghcr.io")
		if err := s.InsertCredential(ctx, cr); err != nil {
			t.Fatal(err)
		}
		got, err := s.CredentialForEndpoint(ctx, "ep", TypeRegistry, "ghcr.io")
		if err != nil || got.ID != cr.ID {
			t.Errorf("CredentialForEndpoint = %v, %v", got.ID, err)
		}
		for _, q := range []struct {
			org      string
			typ      CredentialType
			endpoint string
		}{{"ep2", TypeRegistry, "ghcr.io"}, {"ep", TypeHelmRepository, "ghcr.io"}, {"ep", TypeRegistry, "quay.io"}} {
			if _, err := s.CredentialForEndpoint(ctx, q.org, q.typ, q.endpoint); !errors.Is(err, ErrCredentialNotFound) {
				t.Errorf("CredentialForEndpoint(%v) = %v, want not found", q, err)
			}
		}
		list, err := s.ListCredentials(ctx, "ep", TypeHelmRepository, "", 10)
		if err != nil || len(list) != 0 {
			t.Errorf("ListCredentials(helm-repository) = %v, %v; want none", list, err)
		}
	})

	t.Run("health checks are due least recently checked first, across orgs", func(t *testing.T) {
		old, oldCred := testCluster("due1", "old")
		old.Health.CheckedAt = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
		never, neverCred := testCluster("due2", "never")
		never.Health = kube.Health{}
		for _, x := range []struct {
			c    Cluster
			cred *Credential
		}{{old, oldCred}, {never, neverCred}} {
			if err := s.InsertCluster(ctx, x.c, x.cred); err != nil {
				t.Fatal(err)
			}
		}
		due, err := s.ClustersToCheck(ctx, time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC), 10)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range due {
			ids = append(ids, c.ID)
		}
		if diff := cmp.Diff([]string{never.ID, old.ID}, ids); diff != "" {
			t.Errorf("due (-want +got):\n%s", diff)
		}
	})

	t.Run("change feed", func(t *testing.T) {
		at := time.Now().UTC().Truncate(time.Microsecond)
		c := Change{ID: newID("chg_"), Org: "feed", CredentialID: "cred_x", ClusterID: "cl_y", Version: 4, At: at}
		if err := s.InsertChange(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, err := s.ChangesSince(ctx, at.Add(-time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if !containsChange(got, c) {
			t.Errorf("ChangesSince = %v, want it to hold %v", got, c)
		}
		if err := s.PruneChanges(ctx, at.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.ChangesSince(ctx, at.Add(-time.Second)); containsChange(got, c) {
			t.Error("change still there after prune")
		}
	})
}

func containsChange(list []Change, c Change) bool {
	return slices.ContainsFunc(list, func(x Change) bool { return cmp.Equal(x, c) })
}
