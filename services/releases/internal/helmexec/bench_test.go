package helmexec

import (
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkUpgrade upgrades a small chart (a Deployment and a Service)
// without waiting, alternating its image tag so every upgrade patches: the
// Helm SDK's own cost through the Executor, the baseline for later
// comparisons.
func BenchmarkUpgrade(b *testing.B) { benchmarkUpgrade(b, New(Options{})) }

// BenchmarkUpgradeClientValidation is BenchmarkUpgrade with Helm's
// client-side OpenAPI validation kept (see serverValidatesFields): what the
// executor saves by skipping it.
func BenchmarkUpgradeClientValidation(b *testing.B) {
	e := New(Options{})
	e.clientValidation = true
	benchmarkUpgrade(b, e)
}

func benchmarkUpgrade(b *testing.B, e *Executor) {
	c := cluster1(b)
	var requests atomic.Int64
	countRequests(e, &requests)
	ns := namespace(b, c, "bench")
	r := Request{Access: c.access, Namespace: ns, Release: "web", Chart: loadChart(b, "hello-0.1.0")}
	if _, err := e.Install(b.Context(), r); err != nil {
		b.Fatal(err)
	}
	tags := []map[string]any{
		{"image": map[string]any{"tag": "a"}},
		{"image": map[string]any{"tag": "b"}},
	}
	requests.Store(0)
	i := 0
	cpu0 := cpuTime(b)
	start := time.Now()
	for b.Loop() {
		r.Values = tags[i%2]
		i++
		if _, err := e.Upgrade(b.Context(), r); err != nil {
			b.Fatal(err)
		}
	}
	took := time.Since(start)
	// The executor's own CPU (this process), steadier than wall time on a
	// machine whose API server shares the cores.
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/1000/float64(i), "cpu-ms/op")
	b.ReportMetric(float64(i)/took.Seconds(), "upgrades/s")
	b.ReportMetric(float64(requests.Load())/float64(i), "requests/op")
}

// cpuTime is the CPU this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
