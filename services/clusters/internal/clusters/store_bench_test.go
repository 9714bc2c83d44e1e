package clusters

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
)

// BenchmarkListClusters lists an org of 1,000 clusters (among 3,000 in
// three orgs) through the gRPC server, service and store, on each backend:
// one page of 50 (the default), one of 500 (the maximum), a label selector
// that matches a tenth of them (pages fill from several batches), and all
// 1,000 in pages of 500.
// It reports p50 and p99 per call.
func BenchmarkListClusters(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			dsn := sqltest.SQLite(b)
			if backend == "postgres" {
				dsn = sqltest.Postgres(b)
			}
			store, err := OpenStore(context.Background(), dsn)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = store.Close() })
			ctx := context.Background()
			for _, org := range []string{"acme", "globex", "initech"} {
				for i := range 1000 {
					c, cred := testCluster(org, fmt.Sprintf("cluster-%04d", i))
					c.Labels = map[string]string{"env": "dev", "shard": fmt.Sprint(i % 10)}
					if err := store.InsertCluster(ctx, c, cred); err != nil {
						b.Fatal(err)
					}
				}
			}
			f := &fixture{}
			srvFixture(b, f, store)
			caller := as("acme", identity.RoleViewer)
			for _, tc := range []struct {
				name     string
				req      *clustersv1.ListClustersRequest
				wantSize int
			}{
				{"page50", &clustersv1.ListClustersRequest{Org: "acme"}, 50},
				{"page500", &clustersv1.ListClustersRequest{Org: "acme", PageSize: 500}, 500},
				{"selector", &clustersv1.ListClustersRequest{Org: "acme", PageSize: 100, LabelSelector: "shard=3"}, 100},
			} {
				b.Run(tc.name, func(b *testing.B) {
					durations := make([]time.Duration, 0, b.N)
					b.ReportAllocs()
					for b.Loop() {
						start := time.Now()
						resp, err := f.srv.ListClusters(caller, tc.req)
						durations = append(durations, time.Since(start))
						if err != nil || len(resp.GetClusters()) != tc.wantSize {
							b.Fatalf("list: %d clusters, %v", len(resp.GetClusters()), err)
						}
					}
					reportPercentiles(b, durations)
				})
			}
			b.Run("all1000", func(b *testing.B) {
				durations := make([]time.Duration, 0, b.N)
				b.ReportAllocs()
				for b.Loop() {
					start := time.Now()
					n, token := 0, ""
					for {
						resp, err := f.srv.ListClusters(caller, &clustersv1.ListClustersRequest{Org: "acme", PageSize: 500, PageToken: token})
						if err != nil {
							b.Fatal(err)
						}
						n += len(resp.GetClusters())
						if token = resp.GetNextPageToken(); token == "" {
							break
						}
					}
					durations = append(durations, time.Since(start))
					if n != 1000 {
						b.Fatalf("listed %d clusters, want 1000", n)
					}
				}
				reportPercentiles(b, durations)
			})
		})
	}
}

func reportPercentiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	at := func(p float64) float64 {
		return float64(d[min(len(d)-1, int(p*float64(len(d))))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}
