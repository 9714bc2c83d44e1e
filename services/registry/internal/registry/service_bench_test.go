package registry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
)

// BenchmarkImages100k measures the images API (service and store; digest
// resolution stubbed, since the registry round trip is the registry's
// time, not ours) in an org holding 100,000 images, on both engines:
// creates, the first page of a list, a page deep into it (by its token),
// and a page of one name. Lists report p50/p99 per call.
func BenchmarkImages100k(b *testing.B) {
	backends := map[string]func(testing.TB) string{"sqlite": sqltest.SQLite, "postgres": sqltest.Postgres}
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			ctx := context.Background()
			store, err := OpenStore(ctx, backends[backend](b))
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			seed(b, store, 100_000)
			svc := NewService(store, tagResolver{}, &memDeployments{running: map[string][]Deployment{}}, Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
			caller := identity.NewContext(ctx, identity.Identity{Subject: "user:bench", Org: "bench", Role: identity.RoleDeployer}, "")

			b.Run("create", func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					if _, err := svc.CreateImage(caller, NewImage{Name: "new", Version: fmt.Sprintf("1.%d", i), Reference: fmt.Sprintf("registry.example.com/bench/new:1.%d", i)}); err != nil {
						b.Fatal(err)
					}
				}
			})
			first, err := svc.ListImages(caller, ImageFilter{}, PageRequest{})
			if err != nil {
				b.Fatal(err)
			}
			// A token 50,000 images in: the page after the image at that depth.
			deep := first.NextPageToken
			for range 1000 {
				p, err := svc.ListImages(caller, ImageFilter{}, PageRequest{Size: 50, Token: deep})
				if err != nil {
					b.Fatal(err)
				}
				deep = p.NextPageToken
			}
			for _, tc := range []struct {
				name   string
				filter ImageFilter
				token  string
			}{
				{"list-first-page", ImageFilter{}, ""},
				{"list-page-50000-deep", ImageFilter{}, deep},
				{"list-by-name", ImageFilter{Name: "app-7"}, ""},
			} {
				b.Run(tc.name, func(b *testing.B) {
					d := make([]time.Duration, 0, b.N)
					for b.Loop() {
						start := time.Now()
						p, err := svc.ListImages(caller, tc.filter, PageRequest{Token: tc.token})
						d = append(d, time.Since(start))
						if err != nil || len(p.Images) != 50 {
							b.Fatalf("list: %d images, %v", len(p.Images), err)
						}
					}
					slices.Sort(d)
					at := func(q float64) float64 {
						return float64(d[min(len(d)-1, int(q*float64(len(d))))].Microseconds()) / 1000
					}
					b.ReportMetric(at(0.50), "p50-ms")
					b.ReportMetric(at(0.99), "p99-ms")
				})
			}
		})
	}
}

// seed inserts n images of one org, over 100 names, from 8 writers.
func seed(b *testing.B, s Store, n int) {
	b.Helper()
	work := make(chan int, 1024)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for i := range work {
				if err := s.InsertImage(context.Background(), testImage(b, "bench", fmt.Sprintf("app-%d", i%100), fmt.Sprintf("0.%d", i))); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}
