package ops

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
)

// BenchmarkEnqueueClaimFinish measures an operation's whole trip through
// the queue (enqueue, claim, start, one event, finish) on both engines:
// one at a time, and with one producer feeding 4 concurrent workers.
func BenchmarkEnqueueClaimFinish(b *testing.B) {
	backends := map[string]func(testing.TB) string{"sqlite": sqltest.SQLite, "postgres": sqltest.Postgres}
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			ctx := context.Background()
			s, err := Open(ctx, backends[engine](b))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			// run is a worker's part of the trip.
			run := func(b *testing.B, l Lease) error {
				if err := s.Start(ctx, l.ID, l.Token); err != nil {
					return err
				}
				if err := s.Event(ctx, l.ID, l.Token, "applying", "helm upgrade"); err != nil {
					return err
				}
				return s.Finish(ctx, l.ID, l.Token, StateSucceeded, []byte(`{"revision":1}`), "", "")
			}

			b.Run("serial", func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					if _, _, err := s.Enqueue(ctx, request("serial", fmt.Sprintf("r%d", i%20))); err != nil {
						b.Fatal(err)
					}
					ls, err := s.Claim(ctx, "w", 1, time.Minute)
					if err != nil || len(ls) != 1 {
						b.Fatalf("Claim = %d, %v", len(ls), err)
					}
					if err := run(b, ls[0]); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			})

			b.Run("4-workers", func(b *testing.B) {
				// One producer enqueues on 20 releases while 4 workers claim
				// whatever is runnable, up to 4 at a time.
				ctx, cancel := context.WithCancel(ctx)
				defer cancel()
				var done atomic.Int64
				var wg sync.WaitGroup
				fail := func(err error) {
					b.Error(err)
					cancel()
				}
				wg.Go(func() {
					for i := range b.N {
						if _, _, err := s.Enqueue(ctx, request("workers", fmt.Sprintf("r%d", i%20))); err != nil {
							fail(err)
							return
						}
					}
				})
				for w := range 4 {
					wg.Go(func() {
						for done.Load() < int64(b.N) && ctx.Err() == nil {
							ls, err := s.Claim(ctx, fmt.Sprintf("w%d", w), 4, time.Minute)
							if err != nil {
								fail(err)
								return
							}
							for _, l := range ls {
								if err := run(b, l); err != nil {
									fail(err)
									return
								}
								done.Add(1)
							}
							if len(ls) == 0 { // a worker's poll interval
								select {
								case <-ctx.Done():
								case <-time.After(time.Millisecond):
								}
							}
						}
					})
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			})
		})
	}
}

// BenchmarkClaimBacklog measures a claim when one release has 5,000
// operations queued behind a running one and another release has one
// ready: the claim must not look at every queued operation.
func BenchmarkClaimBacklog(b *testing.B) {
	backends := map[string]func(testing.TB) string{"sqlite": sqltest.SQLite, "postgres": sqltest.Postgres}
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			ctx := context.Background()
			s, err := Open(ctx, backends[engine](b))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			for range 5000 {
				if _, _, err := s.Enqueue(ctx, request("backlog", "busy")); err != nil {
					b.Fatal(err)
				}
			}
			if ls, err := s.Claim(ctx, "w", 1, time.Hour); err != nil || len(ls) != 1 {
				b.Fatalf("Claim = %d, %v", len(ls), err)
			}
			for i := 0; b.Loop(); i++ {
				if _, _, err := s.Enqueue(ctx, request("backlog", fmt.Sprintf("r%d", i))); err != nil {
					b.Fatal(err)
				}
				ls, err := s.Claim(ctx, "w", 4, time.Hour)
				if err != nil || len(ls) != 1 {
					b.Fatalf("Claim = %d, %v", len(ls), err)
				}
			}
		})
	}
}
