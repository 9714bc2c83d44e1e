package clusteraccess

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
)

// fill caches every lookup in both organizations.
func fill(t *testing.T, e *env) {
	t.Helper()
	for _, org := range []string{"acme", "globex"} {
		for _, l := range lookups {
			mustCall(t, e, l, org)
		}
	}
	if want := 2 * len(lookups); e.client.cache.len() != want {
		t.Fatalf("cached %d answers, want %d", e.client.cache.len(), want)
	}
}

func (e *env) epoch() uint64 {
	e.client.cache.mu.RLock()
	defer e.client.cache.mu.RUnlock()
	return e.client.cache.epoch
}

// change sends ev and waits until the client has applied it.
func (e *env) change(t *testing.T, ev *clustersv1.WatchCredentialChangesResponse) {
	t.Helper()
	before := e.epoch()
	e.fake.send(t, ev)
	eventually(t, "the change applied", func() bool { return e.epoch() > before })
}

func TestChangeDropsTheAnswersItAffects(t *testing.T) {
	type cached struct {
		l   lookup
		org string
	}
	tests := []struct {
		name    string
		ev      *clustersv1.WatchCredentialChangesResponse
		dropped []cached
	}{{
		name: "cluster credential rotated",
		ev:   &clustersv1.WatchCredentialChangesResponse{Org: "acme", CredentialId: "k1", ClusterId: "acme-c1", Version: 2},
		// Both names of the cluster, and acme's "no login" answers, which
		// a new credential might now provide.
		dropped: []cached{{clusterProd, "acme"}, {clusterProdByID, "acme"}, {registryMissing, "acme"}},
	}, {
		name:    "cluster re-pointed to another credential",
		ev:      &clustersv1.WatchCredentialChangesResponse{Org: "acme", CredentialId: "k9", ClusterId: "acme-c2", Version: 1},
		dropped: []cached{{clusterStaging, "acme"}, {registryMissing, "acme"}},
	}, {
		name:    "registry credential deleted",
		ev:      &clustersv1.WatchCredentialChangesResponse{Org: "acme", CredentialId: "r1", Version: 0},
		dropped: []cached{{registryFound, "acme"}, {registryMissing, "acme"}},
	}, {
		name:    "repository credential rotated",
		ev:      &clustersv1.WatchCredentialChangesResponse{Org: "acme", CredentialId: "h1", Version: 3},
		dropped: []cached{{repository, "acme"}, {registryMissing, "acme"}},
	}, {
		name:    "same credential id in another organization",
		ev:      &clustersv1.WatchCredentialChangesResponse{Org: "globex", CredentialId: "k1", ClusterId: "globex-c1", Version: 2},
		dropped: []cached{{clusterProd, "globex"}, {clusterProdByID, "globex"}, {registryMissing, "globex"}},
	}, {
		name:    "credential nothing uses",
		ev:      &clustersv1.WatchCredentialChangesResponse{Org: "acme", CredentialId: "zz", Version: 1},
		dropped: []cached{{registryMissing, "acme"}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.watch(t)
			fill(t, e)
			e.change(t, tc.ev)
			checkIndex(t, e.client.cache)

			now := e.clock.Now()
			for _, org := range []string{"acme", "globex"} {
				for _, l := range lookups {
					want := !slices.ContainsFunc(tc.dropped, func(c cached) bool { return c.l.name == l.name && c.org == org })
					if _, ok := e.client.cache.get(l.key(org), now); ok != want {
						t.Errorf("%s in %s cached = %v, want %v", l.name, org, ok, want)
					}
				}
			}
			// And the dropped ones are asked again, the others not.
			before := len(e.fake.seenCalls())
			fill(t, e)
			if got := len(e.fake.seenCalls()) - before; got != len(tc.dropped) {
				t.Errorf("RPCs after the change = %d, want %d", got, len(tc.dropped))
			}
		})
	}
}

func TestResetDropsEverything(t *testing.T) {
	e := newEnv(t)
	e.watch(t)
	fill(t, e)
	e.change(t, &clustersv1.WatchCredentialChangesResponse{Reset_: true})
	if n := e.client.cache.len(); n != 0 {
		t.Fatalf("%d answers survived a reset", n)
	}
	checkIndex(t, e.client.cache)
}

func TestBrokenStreamDropsEverythingAndReconnects(t *testing.T) {
	e := newEnv(t)
	e.watch(t)
	fill(t, e)
	// The next stream sends no reset, so only the break can empty the cache.
	e.fake.noReset.Store(true)
	e.fake.breakStream(t)
	eventually(t, "a second watch", func() bool { return e.fake.watches.Load() == 2 })
	if n := e.client.cache.len(); n != 0 {
		t.Fatalf("%d answers survived the broken stream", n)
	}
	// The new stream works: a change on it is applied.
	fill(t, e)
	e.change(t, &clustersv1.WatchCredentialChangesResponse{Org: "acme", CredentialId: "h1", Version: 4})
	if _, ok := e.client.cache.get(repository.key("acme"), e.clock.Now()); ok {
		t.Error("change on the new stream not applied")
	}
	// Broken again, with resets back: a third stream, established.
	e.fake.noReset.Store(false)
	e.fake.breakStream(t)
	eventually(t, "a third watch, established", func() bool {
		return e.fake.watches.Load() == 3 && e.client.resets.Load() == 2
	})
}

func TestChangeDuringRPC(t *testing.T) {
	rotated := &clustersv1.WatchCredentialChangesResponse{Org: "acme", CredentialId: "k1", ClusterId: "acme-c1", Version: 2}
	// start makes a call that the fake holds, and waits for it to arrive.
	start := func(t *testing.T, e *env) chan error {
		t.Helper()
		n := e.fake.count("GetClusterAccess")
		done := make(chan error, 1)
		go func() { _, err := e.client.ClusterAccess(context.Background(), "acme", "prod"); done <- err }()
		eventually(t, "the call at the server", func() bool { return e.fake.count("GetClusterAccess") == n+1 })
		return done
	}

	t.Run("the answer on its way is not cached", func(t *testing.T) {
		e := newEnv(t)
		e.watch(t)
		gate := e.fake.hold()
		first := start(t, e)
		// It may hold the secret just rotated.
		e.change(t, rotated)
		close(gate)
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		if n := e.client.cache.len(); n != 0 {
			t.Errorf("%d answers cached, want none", n)
		}
	})
	t.Run("a caller arriving after it does not wait for it", func(t *testing.T) {
		e := newEnv(t)
		e.watch(t)
		gate := e.fake.hold()
		first := start(t, e)
		e.change(t, rotated)
		second := start(t, e) // a second RPC: it would time out otherwise
		close(gate)
		for _, ch := range []chan error{first, second} {
			if err := <-ch; err != nil {
				t.Fatal(err)
			}
		}
		mustCall(t, e, clusterProd, "acme")
		if n := e.fake.count("GetClusterAccess"); n != 2 {
			t.Errorf("RPCs = %d, want 2 (the second answer cached)", n)
		}
	})
}

// syncBuffer is a bytes.Buffer safe for the watch goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestLogsCarryNoSecrets(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := newEnv(t, Logger(log))
	e.watch(t)
	fill(t, e)
	e.change(t, &clustersv1.WatchCredentialChangesResponse{Org: "acme", CredentialId: "k1", ClusterId: "acme-c1", Version: 2})
	e.fake.breakStream(t)
	eventually(t, "reconnected", func() bool { return e.client.resets.Load() == 2 })

	out := buf.String()
	for _, want := range []string{"credential watch established", "credential changed", "credential watch broken"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"token-", "pw-", "ca-acme", "ca-globex"} {
		if strings.Contains(out, secret) {
			t.Errorf("log carries a secret (%q):\n%s", secret, out)
		}
	}
}
