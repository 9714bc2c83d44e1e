package status

import (
	"slices"
	"testing"
	"time"
)

// BenchmarkStatus50 is the status of a 50-object release (20 Deployments
// with their Services, 10 ConfigMaps) from the warm informer cache, with
// the release's pods running on kwok's nodes: what GetDeploymentStatus
// costs past the ledger read (goal: p99 under 20 ms).
func BenchmarkStatus50(b *testing.B) {
	e := newEnv(b, Options{})
	ns := e.namespace(b, "bench")
	r := e.install(b, ns, "web", map[string]any{"web": map[string]any{"enabled": true, "copies": 20}, "configmaps": 10}, false)
	if n := len(ParseManifest(r.Manifest, ns).Objects); n != 50 {
		b.Fatalf("%d objects; want 50", n)
	}
	e.await(b, r, "ready", verdictIs(Ready))
	durs := make([]time.Duration, 0, 1<<16)
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		s, err := e.cache.Status(b.Context(), r)
		durs = append(durs, time.Since(start))
		if err != nil || s.WorkloadCount != 20 {
			b.Fatalf("status: %v, %d workloads", err, s.WorkloadCount)
		}
	}
	b.StopTimer()
	slices.Sort(durs)
	at := func(p int) time.Duration { return durs[min(len(durs)*p/100, len(durs)-1)] }
	b.ReportMetric(float64(at(50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(at(99).Microseconds())/1000, "p99-ms")
}
