package ops

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
)

// fakeClock is a clock tests move by hand; the stores of one test share it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is one conformance case's database, clock and first store.
type env struct {
	dsn   string
	clock *fakeClock
	s     *Store
}

// freshDSN returns the constructor of new databases of dsn's engine, so
// that every case starts empty (Claim sees every org's operations).
func freshDSN(dsn string) func(testing.TB) string {
	if strings.HasPrefix(dsn, "sqlite") {
		return sqltest.SQLite
	}
	return sqltest.Postgres
}

func newEnv(t *testing.T, dsn string) *env {
	t.Helper()
	e := &env{dsn: dsn, clock: newFakeClock()}
	e.s = e.open(t)
	return e
}

// open opens another store on the env's database: another replica.
func (e *env) open(t testing.TB, opts ...Option) *Store {
	t.Helper()
	s, err := Open(context.Background(), e.dsn, append([]Option{Clock(e.clock.Now), PollInterval(20 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// replica returns the store the i-th of several concurrent workers uses:
// a store of its own on PostgreSQL, as replicas have; the env's store on
// SQLite, whose file belongs to one process (sqldb.Migrate). Separate
// pools on one SQLite file would also leave writers to SQLite's busy
// handler, which is not fair: under load one can wait past busy_timeout.
func (e *env) replica(t testing.TB, i int) *Store {
	t.Helper()
	if i == 0 || strings.HasPrefix(e.dsn, "sqlite") {
		return e.s
	}
	return e.open(t)
}

func target(release string) Target {
	return Target{Cluster: "cl_1", Namespace: "apps", Release: release}
}

func request(org, release string) EnqueueRequest {
	return EnqueueRequest{
		Org: org, Kind: KindUpgrade, Target: target(release),
		Payload: []byte(`{"chart":"web","version":"1.2.3"}`), Creator: "user:alice",
	}
}

func mustEnqueue(t testing.TB, s *Store, req EnqueueRequest) Operation {
	t.Helper()
	op, _, err := s.Enqueue(context.Background(), req)
	if err != nil {
		t.Fatalf("Enqueue %s/%s: %v", req.Org, req.Target.Release, err)
	}
	return op
}

func mustClaim(t testing.TB, s *Store, limit int, leaseFor time.Duration) []Lease {
	t.Helper()
	ls, err := s.Claim(context.Background(), "worker-1", limit, leaseFor)
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	return ls
}

func ids(ls []Lease) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.ID
	}
	return out
}

// leaseOf returns the lease of operation id among ls.
func leaseOf(t testing.TB, ls []Lease, id string) Lease {
	t.Helper()
	for _, l := range ls {
		if l.ID == id {
			return l
		}
	}
	t.Fatalf("claimed %v, want %s among them", ids(ls), id)
	return Lease{}
}

func mustGet(t testing.TB, s *Store, org, id string) Operation {
	t.Helper()
	op, err := s.Get(context.Background(), org, id)
	if err != nil {
		t.Fatalf("Get %s: %v", id, err)
	}
	return op
}

// wantErr fails the test unless err matches want (nil: no error).
func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		t.Errorf("%s: error = %v, want %v", what, err, want)
	}
}
