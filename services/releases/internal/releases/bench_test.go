package releases

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
	"github.com/slipwayhq/slipway/services/releases/internal/ops"
)

// oneCluster answers for one cluster of every org: these benchmarks
// measure the releases service, not the clusters service's cache.
type oneCluster struct{}

func (oneCluster) ClusterAccess(_ context.Context, _, cluster string) (*clustersv1.ClusterAccess, error) {
	return &clustersv1.ClusterAccess{ClusterId: "cl_bench"}, nil
}

func benchService(b *testing.B, dsn string) (*service, *Ledger) {
	b.Helper()
	ctx := context.Background()
	store, err := ops.Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close() })
	ledger, err := OpenLedger(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ledger.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return NewService(store, ledger, oneCluster{}, nil, nil, nil, nil, log).(*service), ledger
}

func percentiles(b *testing.B, took []time.Duration) {
	slices.Sort(took)
	at := func(p float64) float64 { return float64(took[int(p*float64(len(took)-1))].Microseconds()) / 1000 }
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// BenchmarkListReleases lists a page of 100 of 10,000 releases of one org
// from the ledger (goal: p99 under 50 ms).
func BenchmarkListReleases(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			dsn := sqltest.SQLite(b)
			if backend == "postgres" {
				dsn = sqltest.Postgres(b)
			}
			svc, ledger := benchService(b, dsn)
			ctx := context.Background()
			for i := range 10_000 {
				r := rev(fmt.Sprintf("web-%05d", i), 1, StatusDeployed)
				r.Org, r.Cluster, r.Namespace = "bench", "cl_bench", fmt.Sprintf("ns-%02d", i%40)
				if err := ledger.Record(ctx, []Revision{r}); err != nil {
					b.Fatal(err)
				}
			}
			// As autovacuum would after such a load: planner statistics.
			if _, err := ledger.db.ExecContext(ctx, "ANALYZE"); err != nil {
				b.Fatal(err)
			}
			caller := identity.NewContext(ctx, identity.Identity{Subject: "user:bench", Org: "bench", Role: identity.RoleViewer}, "")
			var took []time.Duration
			tok := ""
			for b.Loop() {
				start := time.Now()
				p, err := svc.ListReleases(caller, ListFilter{Cluster: "c1"}, PageRequest{Size: 100, Token: tok})
				took = append(took, time.Since(start))
				if err != nil || len(p.Revisions) != 100 {
					b.Fatalf("page: %d releases, %v", len(p.Revisions), err)
				}
				if tok = p.NextPageToken; tok == "" || len(took)%50 == 0 {
					tok = ""
				}
			}
			percentiles(b, took)
		})
	}
}

// BenchmarkAccept is what a mutating call costs before its 202: validate,
// resolve the cluster, check the ledger, enqueue (goal: p99 under 50 ms).
func BenchmarkAccept(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			dsn := sqltest.SQLite(b)
			if backend == "postgres" {
				dsn = sqltest.Postgres(b)
			}
			svc, _ := benchService(b, dsn)
			caller := identity.NewContext(context.Background(), identity.Identity{Subject: "user:bench", Org: "bench", Role: identity.RoleDeployer}, "")
			var took []time.Duration
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				_, err := svc.Submit(caller, ops.KindInstall, Change{Cluster: "c1", Namespace: "bench", Name: fmt.Sprintf("web-%d", i),
					Chart: &ChartRef{Repository: "main", Chart: "hello", Version: "0.2.0"}, ValuesYAML: "replicaCount: 2\n", Queue: true})
				took = append(took, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
			}
			percentiles(b, took)
		})
	}
}
