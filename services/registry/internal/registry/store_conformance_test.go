package registry

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
)

// TestStoreConformance runs one suite against every Store backend.
func TestStoreConformance(t *testing.T) {
	sqltest.Backends(t, func(t *testing.T, dsn string) {
		store, err := OpenStore(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Close() })
		runStoreSuite(t, store)
	})
}

func testImage(t testing.TB, org, name, version string) Image {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return Image{
		ID: id.String(), Org: org, Name: name, Version: version,
		Reference: fmt.Sprintf("registry.example.com/%s/%s:%s", org, name, version),
		Digest:    "sha256:" + fmt.Sprintf("%064x", len(name)+len(version)),
		Creator:   "user:alice",
		Created:   time.Date(2026, 11, 21, 12, 0, 0, 123456000, time.UTC),
	}
}

func runStoreSuite(t *testing.T, s Store) {
	t.Run("push rules default, set and stay per org", func(t *testing.T) {
		ctx := context.Background()
		if r, err := s.GetPushRule(ctx, "rules"); err != nil || r != DefaultPushRule {
			t.Fatalf("unset rule = %+v, %v; want the default", r, err)
		}
		want := PushRule{RepositoryPrefix: "team/", Naming: NamingPath}
		for range 2 { // the second put updates
			if err := s.PutPushRule(ctx, "rules", want, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		if r, err := s.GetPushRule(ctx, "rules"); err != nil || r != want {
			t.Errorf("rule = %+v, %v; want %+v", r, err, want)
		}
		if r, _ := s.GetPushRule(ctx, "rules-other"); r != DefaultPushRule {
			t.Errorf("another org's rule = %+v", r)
		}
	})
	ctx := context.Background()

	t.Run("insert then get returns every field", func(t *testing.T) {
		want := testImage(t, "acme", "api", "1.0.0")
		if err := s.InsertImage(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetImage(ctx, "acme", "api", "1.0.0")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GetImage mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("duplicate insert is refused and changes nothing", func(t *testing.T) {
		first := testImage(t, "acme", "dup", "1.0.0")
		if err := s.InsertImage(ctx, first); err != nil {
			t.Fatal(err)
		}
		second := testImage(t, "acme", "dup", "1.0.0")
		second.Reference = "elsewhere.example.com/evil:1.0.0"
		if err := s.InsertImage(ctx, second); !errors.Is(err, ErrImageExists) {
			t.Fatalf("second InsertImage error = %v, want ErrImageExists", err)
		}
		got, err := s.GetImage(ctx, "acme", "dup", "1.0.0")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(first, got); diff != "" {
			t.Errorf("image changed by refused insert (-want +got):\n%s", diff)
		}
	})

	t.Run("same name and version in another org is independent", func(t *testing.T) {
		if err := s.InsertImage(ctx, testImage(t, "globex", "dup", "1.0.0")); err != nil {
			t.Fatalf("InsertImage in other org: %v", err)
		}
	})

	t.Run("another org's image is not found", func(t *testing.T) {
		if _, err := s.GetImage(ctx, "globex", "api", "1.0.0"); !errors.Is(err, ErrImageNotFound) {
			t.Errorf("GetImage other org error = %v, want ErrImageNotFound", err)
		}
		if err := s.DeleteImage(ctx, "globex", "api", "1.0.0"); !errors.Is(err, ErrImageNotFound) {
			t.Errorf("DeleteImage other org error = %v, want ErrImageNotFound", err)
		}
		if _, err := s.GetImage(ctx, "acme", "api", "1.0.0"); err != nil {
			t.Errorf("acme's image gone after other org's delete: %v", err)
		}
	})

	t.Run("list is newest first, filtered and keyset paginated", func(t *testing.T) {
		var want []string
		for i := range 7 {
			img := testImage(t, "paged", "web", fmt.Sprintf("1.0.%d", i))
			if err := s.InsertImage(ctx, img); err != nil {
				t.Fatal(err)
			}
			want = append([]string{img.Version}, want...)
		}
		if err := s.InsertImage(ctx, testImage(t, "paged", "worker", "1.0.0")); err != nil {
			t.Fatal(err)
		}
		var got []string
		after := ""
		for {
			page, err := s.ListImages(ctx, "paged", ImageFilter{Name: "web"}, after, 3)
			if err != nil {
				t.Fatal(err)
			}
			for _, img := range page {
				got = append(got, img.Version)
			}
			if len(page) < 3 {
				break
			}
			after = page[len(page)-1].ID
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("paged list (-want +got):\n%s", diff)
		}
		byVersion, err := s.ListImages(ctx, "paged", ImageFilter{Version: "1.0.0"}, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(byVersion) != 2 {
			t.Errorf("version filter returned %d images, want 2 (web and worker)", len(byVersion))
		}
		none, err := s.ListImages(ctx, "nobody", ImageFilter{}, "", 10)
		if err != nil || len(none) != 0 {
			t.Errorf("list of empty org = %v, %v; want nothing", none, err)
		}
	})

	t.Run("delete removes once", func(t *testing.T) {
		if err := s.InsertImage(ctx, testImage(t, "acme", "gone", "1")); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteImage(ctx, "acme", "gone", "1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetImage(ctx, "acme", "gone", "1"); !errors.Is(err, ErrImageNotFound) {
			t.Errorf("GetImage after delete error = %v, want ErrImageNotFound", err)
		}
		if err := s.DeleteImage(ctx, "acme", "gone", "1"); !errors.Is(err, ErrImageNotFound) {
			t.Errorf("second DeleteImage error = %v, want ErrImageNotFound", err)
		}
		// The version is free again: deletion is the only way to re-record it.
		if err := s.InsertImage(ctx, testImage(t, "acme", "gone", "1")); err != nil {
			t.Errorf("InsertImage after delete: %v", err)
		}
	})
}
