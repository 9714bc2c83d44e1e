package index

import (
	"os"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/repo"
)

// heapObjects is the heap's object bytes, live or not yet swept: what the
// process holds for the Go heap at that moment.
func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// peakDuring runs op once from a collected heap and returns the most heap
// it held above where it started, sampled every 100µs, and what the result
// it returns keeps alive once collected.
func peakDuring(op func() any) (peak, retained uint64) {
	runtime.GC()
	base := heapObjects()
	var (
		wg   sync.WaitGroup
		stop = make(chan struct{})
		max  uint64
	)
	wg.Go(func() {
		t := time.NewTicker(100 * time.Microsecond)
		defer t.Stop()
		for {
			if h := heapObjects(); h > max {
				max = h
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	result := op()
	close(stop)
	wg.Wait()
	if h := heapObjects(); h > max {
		max = h
	}
	runtime.GC()
	retained = heapObjects() - min(base, heapObjects())
	runtime.KeepAlive(result)
	return max - base, retained
}

// BenchmarkParseIndex reads and parses an index the size of Bitnami's (300
// charts × 50 versions, about 15 MB) with this package and with Helm's
// repo.LoadIndexFile, each op from the file on disk. It reports, the same way
// for both, the most the heap held above a collected start while one op ran
// (peak-MB, and peak-x-file in file sizes; the worst of three runs) and what
// the parsed index keeps alive (retained-MB).
func BenchmarkParseIndex(b *testing.B) {
	path, data := genIndex(b, 300, 50)
	benchBoth(b, path, len(data))
}

// BenchmarkParseIndexJSON is BenchmarkParseIndex on the same index written
// as JSON, which Helm reads with encoding/json.
func BenchmarkParseIndexJSON(b *testing.B) {
	path, data := genIndexJSON(b, 300, 50)
	benchBoth(b, path, len(data))
}

func benchBoth(b *testing.B, path string, size int) {
	b.Logf("index: %d bytes, %d charts × %d versions", size, 300, 50)
	run := func(b *testing.B, op func() (any, error)) {
		b.SetBytes(int64(size))
		for b.Loop() {
			if _, err := op(); err != nil {
				b.Fatal(err)
			}
		}
		// The heap is sampled in runs of their own, after the timed ones, so
		// the sampling does not slow what is timed.
		var peak, retained uint64
		for range 3 {
			var err error
			p, r := peakDuring(func() any {
				res, e := op()
				err = e
				return res
			})
			if err != nil {
				b.Fatal(err)
			}
			peak, retained = max(peak, p), max(retained, r)
		}
		b.ReportMetric(float64(peak)/(1<<20), "peak-MB")
		b.ReportMetric(float64(peak)/float64(size), "peak-x-file")
		b.ReportMetric(float64(retained)/(1<<20), "retained-MB")
	}
	b.Run("slipway", func(b *testing.B) {
		run(b, func() (any, error) {
			data, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			return Parse(data, Limits{})
		})
	})
	b.Run("helm", func(b *testing.B) {
		run(b, func() (any, error) { return repo.LoadIndexFile(path) })
	})
}
