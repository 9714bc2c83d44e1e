package podlogs_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/services/releases/internal/podlogs"
)

// BenchmarkFollowers: 200 streams follow the follow container of a
// two-pod release on the devstack at once, through one Shared (as the
// releases service does); each iteration appends one line and waits until
// every stream has it from both pods. It reports the heap in use, every
// stream still open, at the end.
//
// Each stream reading its own would need 400 kubelet streams, and kwok
// opens an inotify instance per followed container: Linux allows 128 a
// user by default (fs.inotify.max_user_instances). Shared, they need 2.
func BenchmarkFollowers(b *testing.B) {
	const followers = 200
	ctx, cancel := context.WithTimeout(b.Context(), 5*time.Minute)
	defer cancel()
	env, cs, ns, pods := setup(ctx, b)
	var targets []podlogs.Target
	for _, p := range pods {
		targets = append(targets, podlogs.Target{Namespace: ns, Pod: p.Name, Container: followContainer})
	}
	f, err := os.OpenFile(filepath.Join(env["KUBE_C1_LOGS"], "follow.log"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	prefix := "bench " + ns + " "
	// got[i] is the highest line number follower i has from every pod.
	var got [followers]atomic.Int64
	shared := podlogs.NewShared(podlogs.SharedOptions{})
	defer shared.Close()
	src := shared.Source("bench", podlogs.Kube(cs))
	fctx, fcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range followers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := map[string]int64{}
			_ = podlogs.Stream(fctx, src, targets, podlogs.Options{Tail: 1, Follow: true}, podlogs.Limits{}, nil, func(lines []podlogs.Line) error {
				for _, l := range lines {
					var n int64
					if _, err := fmt.Sscanf(l.Line, prefix+"%d", &n); err == nil {
						last[l.Pod] = n
					}
				}
				lo := int64(-1)
				for _, p := range pods {
					if lo < 0 || last[p.Name] < lo {
						lo = last[p.Name]
					}
				}
				got[i].Store(lo)
				return nil
			})
		}()
	}
	defer func() {
		fcancel()
		wg.Wait()
	}()
	write := func(n int) {
		if _, err := f.WriteString(time.Now().UTC().Format(time.RFC3339Nano) + " stdout F " + prefix + strconv.Itoa(n) + "\n"); err != nil {
			b.Fatal(err)
		}
	}
	all := func(n int) bool {
		for i := range got {
			if got[i].Load() < int64(n) {
				return false
			}
		}
		return true
	}
	// Line 0, repeated until every stream has it, opens them all.
	for !all(0) {
		write(0)
		select {
		case <-ctx.Done():
			b.Fatal("the followers did not all open")
		case <-time.After(200 * time.Millisecond):
		}
	}
	b.ResetTimer()
	for n := 1; n <= b.N; n++ {
		write(n)
		for !all(n) {
			if ctx.Err() != nil {
				b.Fatalf("line %d not delivered to every follower", n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	b.StopTimer()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "MiB-heap")
}
