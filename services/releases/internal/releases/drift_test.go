package releases

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
)

// TestDriftChecks: the last check of a release, and which check finds a
// drift newly (once, of concurrent ones; again for a new revision).
func TestDriftChecks(t *testing.T) {
	sqltest.Backends(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		l, err := OpenLedger(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
		k := ReleaseKey{"acme", "cl_1", "web", "shop"}
		at := func(s int) time.Time { return time.Date(2026, 12, 2, 10, 0, s, 0, time.UTC) }
		record := func(rev, drifted int, when time.Time) (time.Time, bool) {
			t.Helper()
			since, newly, err := l.RecordDriftCheck(ctx, k, rev, drifted, when)
			if err != nil {
				t.Fatal(err)
			}
			return since, newly
		}
		last := func() DriftCheck {
			t.Helper()
			c, err := l.DriftCheck(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		if _, err := l.DriftCheck(ctx, k); !errors.Is(err, errNoDriftCheck) {
			t.Fatalf("before any check: %v, want errNoDriftCheck", err)
		}
		if since, newly := record(1, 0, at(1)); newly || !since.IsZero() {
			t.Errorf("in sync: since %v, newly %v", since, newly)
		}
		if since, newly := record(1, 2, at(2)); !newly || !since.Equal(at(2)) {
			t.Errorf("first drifted check: since %v, newly %v; want newly since :02", since, newly)
		}
		if since, newly := record(1, 3, at(3)); newly || !since.Equal(at(2)) {
			t.Errorf("still drifted: since %v, newly %v; want since :02, not newly", since, newly)
		}
		if c := last(); c.Revision != 1 || c.Drifted != 3 || !c.Checked.Equal(at(3)) || !c.Since.Equal(at(2)) || c.Error != "" {
			t.Errorf("last check = %+v", c)
		}

		// A check that cannot compare keeps what the last one found.
		if err := l.RecordDriftError(ctx, k, 1, at(4), "cluster unreachable"); err != nil {
			t.Fatal(err)
		}
		if c := last(); c.Drifted != 3 || !c.Since.Equal(at(2)) || c.Error != "cluster unreachable" || !c.Checked.Equal(at(4)) {
			t.Errorf("after an error = %+v", c)
		}
		if since, newly := record(1, 0, at(5)); newly || !since.IsZero() {
			t.Errorf("put back: since %v, newly %v", since, newly)
		}
		if c := last(); c.Drifted != 0 || !c.Since.IsZero() || c.Error != "" {
			t.Errorf("in sync again = %+v", c)
		}

		// Replicas checking at once: one finds it newly.
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			found  int
			sinces = map[time.Time]bool{}
		)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				since, newly, err := l.RecordDriftCheck(ctx, k, 1, 1, at(6+i))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				sinces[since] = true
				if newly {
					found++
				}
			}()
		}
		wg.Wait()
		if found != 1 || len(sinces) != 1 {
			t.Errorf("8 concurrent checks: %d found it newly, %d starts (%v); want 1 and 1", found, len(sinces), sinces)
		}

		// An upgrade: still drifted at the new revision is a new drift; a
		// late check of the old revision changes nothing.
		if since, newly := record(2, 1, at(20)); !newly || !since.Equal(at(20)) {
			t.Errorf("drifted at revision 2: since %v, newly %v", since, newly)
		}
		if _, newly := record(1, 5, at(21)); newly {
			t.Error("a check of revision 1 after revision 2's found it newly")
		}
		if c := last(); c.Revision != 2 || c.Drifted != 1 || !c.Since.Equal(at(20)) {
			t.Errorf("after a late check of revision 1 = %+v", c)
		}
	})
}

// TestDeployedHeads: the drift check's releases are those whose latest
// revision is deployed, of every org.
func TestDeployedHeads(t *testing.T) {
	ctx := context.Background()
	l, err := OpenLedger(ctx, "sqlite:"+t.TempDir()+"/ledger.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	other := rev("api", 1, StatusDeployed)
	other.Org = "globex"
	for _, revs := range [][]Revision{
		{rev("shop", 1, StatusSuperseded), rev("shop", 2, StatusDeployed)},
		{rev("broken", 1, StatusFailed)},
		{rev("gone", 1, StatusUninstalled)},
		{other},
	} {
		if err := l.Record(ctx, revs); err != nil {
			t.Fatal(err)
		}
	}
	got, err := l.deployedHeads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []deployedHead{{ReleaseKey{"acme", "cl_1", "web", "shop"}, 2}, {ReleaseKey{"globex", "cl_1", "web", "api"}, 1}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("deployed heads = %+v, want %+v", got, want)
	}
}
