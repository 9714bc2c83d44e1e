package releases

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
	"github.com/slipwayhq/slipway/pkg/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(func() int { return sqltest.Run(m) })) }

func rev(name string, n int, s Status) Revision {
	at := time.Date(2026, 12, 1, 12, 0, n, 0, time.UTC)
	return Revision{Org: "acme", Cluster: "cl_1", Namespace: "web", Name: name, Revision: n, Status: s, Chart: "hello", ChartVersion: fmt.Sprintf("0.%d.0", n),
		ChartSource: "catalog:main/hello", Description: "Install complete", Operation: fmt.Sprintf("op_%d", n), Creator: "user:alice",
		Values: map[string]any{"replicaCount": float64(n)}, Computed: map[string]any{"replicaCount": float64(n), "image": "x"},
		Manifest: "kind: ConfigMap", Notes: "hi", Created: at, Updated: at}
}

func TestLedger(t *testing.T) {
	sqltest.Backends(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		l, err := OpenLedger(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
		if err := l.Record(ctx, []Revision{rev("shop", 1, StatusDeployed)}); err != nil {
			t.Fatal(err)
		}
		// An upgrade: Helm reports the old revision superseded, with no
		// operation of its own in that report; what the ledger knew stays.
		old := rev("shop", 1, StatusSuperseded)
		old.Operation, old.Creator = "", ""
		if err := l.Record(ctx, []Revision{old, rev("shop", 2, StatusDeployed)}); err != nil {
			t.Fatal(err)
		}
		if err := l.Record(ctx, []Revision{rev("gone", 1, StatusUninstalled)}); err != nil {
			t.Fatal(err)
		}
		k := ReleaseKey{"acme", "cl_1", "web", "shop"}
		got, err := l.Get(ctx, k, 0)
		if err != nil || got.Revision != 2 || got.Status != StatusDeployed || got.Values["replicaCount"] != 2.0 {
			t.Fatalf("latest = %+v, %v", got, err)
		}
		first, _ := l.Get(ctx, k, 1)
		if first.Status != StatusSuperseded || first.Operation != "op_1" || first.Creator != "user:alice" {
			t.Errorf("revision 1 = %+v; want superseded, keeping its operation and creator", first)
		}
		h, err := l.History(ctx, k, 0, 10)
		if err != nil || len(h) != 2 || h[0].Revision != 2 || h[1].Revision != 1 {
			t.Errorf("history = %v, %v", h, err)
		}
		if h, _ := l.History(ctx, k, 2, 10); len(h) != 1 || h[0].Revision != 1 {
			t.Errorf("history before 2 = %v", h)
		}
		list, err := l.List(ctx, "acme", ListFilter{}, ReleaseKey{}, 10)
		if err != nil || len(list) != 1 || list[0].Name != "shop" || list[0].Revision != 2 {
			t.Errorf("list = %+v, %v", list, err)
		}
		if list, _ := l.List(ctx, "acme", ListFilter{IncludeUninstalled: true}, ReleaseKey{}, 10); len(list) != 2 {
			t.Errorf("list with uninstalled = %d releases", len(list))
		}
		if list, _ := l.List(ctx, "acme", ListFilter{IncludeUninstalled: true}, ReleaseKey{Cluster: "cl_1", Namespace: "web", Name: "gone"}, 10); len(list) != 1 || list[0].Name != "shop" {
			t.Errorf("second page = %+v", list)
		}
		if list, _ := l.List(ctx, "other", ListFilter{IncludeUninstalled: true}, ReleaseKey{}, 10); len(list) != 0 {
			t.Errorf("another org lists %+v", list)
		}
		if _, err := l.Get(ctx, ReleaseKey{"other", "cl_1", "web", "shop"}, 0); !errors.Is(err, ErrReleaseNotFound) {
			t.Errorf("another org's get = %v", err)
		}

		// Where images run: the deployed heads only.
		d1, d2 := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
		r3 := rev("shop", 3, StatusDeployed)
		r3.Images = []Image{{Reference: "r/web:1", Digest: d1}}
		if err := l.Record(ctx, []Revision{rev("shop", 2, StatusSuperseded), r3}); err != nil {
			t.Fatal(err)
		}
		api := rev("api", 1, StatusDeployed)
		api.Images = []Image{{Reference: "r/web:1", Digest: d1}, {Reference: "r/side:2", Digest: d2}}
		if err := l.Record(ctx, []Revision{api}); err != nil {
			t.Fatal(err)
		}
		got1, err := l.DigestReleases(ctx, "acme", []string{d1}, DigestRelease{}, 10)
		if err != nil || len(got1) != 2 || got1[0].Name != "api" || got1[1].Name != "shop" || got1[1].Revision != 3 {
			t.Errorf("releases running d1 = %+v, %v", got1, err)
		}
		if page, _ := l.DigestReleases(ctx, "acme", []string{d1}, got1[0], 10); len(page) != 1 || page[0].Name != "shop" {
			t.Errorf("second page = %+v", page)
		}
		gone := rev("api", 1, StatusUninstalled)
		if err := l.Record(ctx, []Revision{gone}); err != nil {
			t.Fatal(err)
		}
		if got, _ := l.DigestReleases(ctx, "acme", []string{d1, d2}, DigestRelease{}, 10); len(got) != 1 || got[0].Name != "shop" {
			t.Errorf("after api's uninstall = %+v", got)
		}
		if got, _ := l.DigestReleases(ctx, "other", []string{d1}, DigestRelease{}, 10); len(got) != 0 {
			t.Errorf("another org sees %+v", got)
		}
	})
}

// TestLedgerReinstall installs a name again after an uninstall without
// history: Helm counts from 1 again, and the new release's revisions must
// not overwrite the old ones, nor hide behind the old head.
func TestLedgerReinstall(t *testing.T) {
	sqltest.Backends(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		l, err := OpenLedger(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
		k := ReleaseKey{"acme", "cl_1", "web", "shop"}
		for _, revs := range [][]Revision{
			{rev("shop", 1, StatusDeployed)},
			{rev("shop", 1, StatusSuperseded), rev("shop", 2, StatusDeployed)},
			{rev("shop", 2, StatusUninstalled)}, // uninstalled, no history left in Helm
		} {
			if err := l.Record(ctx, revs); err != nil {
				t.Fatal(err)
			}
		}
		again := rev("shop", 1, StatusDeployed)
		again.ChartVersion, again.Operation = "9.0.0", "op_again"
		if err := l.Record(ctx, []Revision{again}); err != nil {
			t.Fatal(err)
		}
		got, err := l.Get(ctx, k, 0)
		if err != nil || got.Revision != 1 || got.ChartVersion != "9.0.0" || got.Status != StatusDeployed {
			t.Fatalf("latest after reinstall = %+v, %v", got, err)
		}
		if h, _ := l.History(ctx, k, 0, 10); len(h) != 1 || h[0].Operation != "op_again" {
			t.Errorf("history of the new release = %+v", h)
		}
		if list, _ := l.List(ctx, "acme", ListFilter{}, ReleaseKey{}, 10); len(list) != 1 || list[0].ChartVersion != "9.0.0" {
			t.Errorf("list = %+v", list)
		}
		var n int
		if err := l.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM revisions`).Scan(&n); err != nil || n != 3 {
			t.Errorf("%d revisions kept, %v; want the old two and the new one", n, err)
		}
		// An upgrade of the new release continues in its generation.
		if err := l.Record(ctx, []Revision{rev("shop", 1, StatusSuperseded), rev("shop", 2, StatusDeployed)}); err != nil {
			t.Fatal(err)
		}
		if got, _ := l.Get(ctx, k, 0); got.Revision != 2 || got.ChartVersion != "0.2.0" {
			t.Errorf("after upgrading the new release: %+v", got)
		}
		if h, _ := l.History(ctx, k, 0, 10); len(h) != 2 {
			t.Errorf("history = %d revisions, want 2", len(h))
		}
	})
}
