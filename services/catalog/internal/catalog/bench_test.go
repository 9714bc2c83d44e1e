package catalog

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
	"github.com/slipwayhq/slipway/services/catalog/internal/index/indextest"
)

// bitnamiSize is the generated index of the benchmarks: 300 charts of 50
// versions, about Bitnami's full index (15,000 entries, about 15 MB).
const bitnamiCharts, bitnamiVersions = 300, 50

// indexServer serves a generated index, with an ETag unless etag is off.
func indexServer(b *testing.B, data []byte, etag bool) *httptest.Server {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/index.yaml" {
			http.NotFound(w, r)
			return
		}
		if etag {
			w.Header().Set("ETag", `"gen-1"`)
			if r.Header.Get("If-None-Match") == `"gen-1"` {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		_, _ = w.Write(data)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// syncedCatalog is a catalog on SQLite whose one repository holds the
// generated index, synced once.
func syncedCatalog(b *testing.B, etag bool) (*env, string) {
	b.Helper()
	_, data := indextest.Write(b, bitnamiCharts, bitnamiVersions, false)
	srv := indexServer(b, data, etag)
	e := newBenchEnv(b)
	if _, err := e.svc.CreateRepository(as("bench", identity.RoleAdmin), NewRepository{Name: "bitnami", URL: srv.URL}); err != nil {
		b.Fatal(err)
	}
	e.syncBench(b)
	r, err := e.svc.GetRepository(as("bench", identity.RoleViewer), "bitnami")
	if err != nil || r.Sync.State != SyncSynced || r.Sync.ChartCount != bitnamiCharts {
		b.Fatalf("first sync: %+v, %v", r.Sync, err)
	}
	return e, r.SourceID
}

func newBenchEnv(b *testing.B) *env {
	b.Helper()
	store, err := OpenStore(context.Background(), sqltest.SQLite(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close() })
	f := loopbackFetcher(b)
	e := &env{store: store, logins: &fakeLogins{}, releases: &fakeReleases{}}
	e.syncer = NewSyncer(store, f, e.logins, SyncOptions{}, slogDiscard(), nil)
	e.svc = NewService(Deps{Store: store, Fetcher: f, Logins: e.logins, Clusters: fakeClusters{}, Images: fakeImages{}, Releases: e.releases}, Options{}, slogDiscard())
	return e
}

func (e *env) syncBench(b *testing.B) {
	b.Helper()
	if err := e.syncer.SyncNow(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkResync is a sync of a repository whose index has not changed:
// answered 304 by a server that sends an ETag, and with the same checksum
// by one that does not. Neither parses the index again (goal: under 100 ms).
func BenchmarkResync(b *testing.B) {
	for _, tc := range []struct {
		name string
		etag bool
	}{{"etag-304", true}, {"checksum", false}} {
		b.Run(tc.name, func(b *testing.B) {
			e, src := syncedCatalog(b, tc.etag)
			b.ResetTimer()
			for b.Loop() {
				if err := e.store.RequestSync(context.Background(), src, time.Now()); err != nil {
					b.Fatal(err)
				}
				e.syncBench(b)
			}
			b.StopTimer()
			if n := testutil.ToFloat64(e.syncer.metrics.syncs.WithLabelValues("changed")); n != 1 {
				b.Fatalf("%v syncs parsed and stored the index, want only the first", n)
			}
		})
	}
}

// BenchmarkSync is a first sync of the generated index: fetch, parse and
// store 15,000 versions.
func BenchmarkSync(b *testing.B) {
	_, data := indextest.Write(b, bitnamiCharts, bitnamiVersions, false)
	srv := indexServer(b, data, true)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		e := newBenchEnv(b)
		if _, err := e.svc.CreateRepository(as("bench", identity.RoleAdmin), NewRepository{Name: "bitnami", URL: srv.URL}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		e.syncBench(b)
	}
	// After the loop: ResetTimer (which b.Loop calls) drops user metrics.
	b.ReportMetric(float64(len(data))/(1<<20), "index-MiB")
}

// BenchmarkSearch searches the generated catalog as users do (a word of
// a name, of a description, a keyword, two words, nothing) and reports
// the 50th and 99th percentile latency (goal: p99 under 20 ms).
func BenchmarkSearch(b *testing.B) {
	e, _ := syncedCatalog(b, true)
	ctx := as("bench", identity.RoleViewer)
	queries := []ChartQuery{{Q: "redis"}, {Q: "broker"}, {Q: "cloud-native"}, {Q: "open source"}, {}, {Q: "grafana prometheus"}, {Q: "nothing-matches"}}
	var took []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		q := queries[i%len(queries)]
		start := time.Now()
		p, err := e.svc.SearchCharts(ctx, q, PageRequest{Size: 50})
		took = append(took, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		if q.Q == "redis" && len(p.Charts) == 0 {
			b.Fatal("redis not found")
		}
	}
	b.StopTimer()
	slices.Sort(took)
	pct := func(p float64) float64 { return float64(took[int(p*float64(len(took)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// BenchmarkGetChart reads a chart of the generated catalog with its first
// page of versions.
func BenchmarkGetChart(b *testing.B) {
	e, _ := syncedCatalog(b, true)
	ctx := as("bench", identity.RoleViewer)
	for i := 0; b.Loop(); i++ {
		name := []string{"redis", "kafka", "grafana"}[i%3]
		if _, err := e.svc.GetChart(ctx, "bitnami", name, PageRequest{}); err != nil {
			b.Fatal(fmt.Errorf("get %s: %w", name, err))
		}
	}
}
