package registry

import (
	"context"
	"fmt"
	"testing"

	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
)

// BenchmarkStore measures the store's hot paths on both engines: recording
// an image, reading one, and listing a 50-image page of an org holding
// 1,000 images.
func BenchmarkStore(b *testing.B) {
	backends := map[string]func(testing.TB) string{"sqlite": sqltest.SQLite, "postgres": sqltest.Postgres}
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			s, err := OpenStore(ctx, backends[name](b))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			for i := range 1000 {
				if err := s.InsertImage(ctx, testImage(b, "bench", "app", fmt.Sprintf("0.%d", i))); err != nil {
					b.Fatal(err)
				}
			}
			b.Run("insert", func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					if err := s.InsertImage(ctx, testImage(b, "bench", "insert", fmt.Sprintf("1.%d", i))); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("get", func(b *testing.B) {
				for b.Loop() {
					if _, err := s.GetImage(ctx, "bench", "app", "0.500"); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("list-page-50", func(b *testing.B) {
				for b.Loop() {
					imgs, err := s.ListImages(ctx, "bench", ImageFilter{Name: "app"}, "", 51)
					if err != nil || len(imgs) != 51 {
						b.Fatalf("list = %d, %v", len(imgs), err)
					}
				}
			})
		})
	}
}
