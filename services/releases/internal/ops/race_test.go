package ops

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testConcurrentClaimers races 4 claimers over 200 operations on 20
// releases: every operation is claimed exactly once, each release's
// operations in enqueue order, never two at a time on a release, with
// growing fencing tokens. On PostgreSQL each claimer has a store of its own,
// as replicas do.
func testConcurrentClaimers(t *testing.T, e *env) {
	const total, releases, claimers = 200, 20, 4
	order := map[string][]string{} // release: ids in enqueue order
	for i := range total {
		r := fmt.Sprintf("r%02d", i%releases)
		order[r] = append(order[r], mustEnqueue(t, e.s, request("acme", r)).ID)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		mu        sync.Mutex
		claims    = map[string]int{}
		claimed   = map[string][]string{} // release: ids in claim order
		holder    = map[string]string{}   // release: the id being worked on, cleared just before Finish
		lastToken = map[string]int64{}
		problems  []string
		finished  int
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	// work runs one claimed operation the way a worker does.
	work := func(s *Store, l Lease) {
		r := l.Target.Release
		if err := s.Start(ctx, l.ID, l.Token); err != nil {
			fail("start %s: %v", l.ID, err)
			return
		}
		if err := s.Event(ctx, l.ID, l.Token, "applying", "working"); err != nil {
			fail("event %s: %v", l.ID, err)
			return
		}
		mu.Lock()
		if holder[r] == l.ID {
			holder[r] = ""
		}
		mu.Unlock()
		if err := s.Finish(ctx, l.ID, l.Token, StateSucceeded, nil, "", ""); err != nil {
			fail("finish %s: %v", l.ID, err)
			return
		}
		mu.Lock()
		finished++
		mu.Unlock()
	}

	var wg sync.WaitGroup
	for c := range claimers {
		s := e.replica(t, c)
		owner := fmt.Sprintf("claimer-%d", c)
		wg.Go(func() {
			var running sync.WaitGroup
			defer running.Wait()
			for {
				mu.Lock()
				done := finished == total || len(problems) > 0
				mu.Unlock()
				if done || ctx.Err() != nil {
					return
				}
				ls, err := s.Claim(ctx, owner, 5, time.Minute)
				if err != nil {
					fail("claim: %v", err)
					return
				}
				mu.Lock()
				for _, l := range ls {
					r := l.Target.Release
					claims[l.ID]++
					claimed[r] = append(claimed[r], l.ID)
					// The holder is cleared before its Finish is even
					// called, so a holder still set means two at once.
					if h := holder[r]; h != "" {
						problems = append(problems, fmt.Sprintf("%s claimed %s while %s was running", owner, l.ID, h))
					}
					holder[r] = l.ID
					if l.Token <= lastToken[r] {
						problems = append(problems, fmt.Sprintf("token %d of %s not above %d", l.Token, l.ID, lastToken[r]))
					}
					lastToken[r] = l.Token
				}
				mu.Unlock()
				for _, l := range ls {
					running.Go(func() { work(s, l) })
				}
				if len(ls) == 0 {
					// A worker's poll interval, not a wait for the test.
					select {
					case <-ctx.Done():
					case <-time.After(2 * time.Millisecond):
					}
				}
			}
		})
	}
	wg.Wait()

	for _, p := range problems {
		t.Error(p)
	}
	if finished != total {
		t.Fatalf("%d of %d operations finished (%v)", finished, total, ctx.Err())
	}
	for id, n := range claims {
		if n != 1 {
			t.Errorf("%s claimed %d times", id, n)
		}
	}
	if diff := cmp.Diff(order, claimed); diff != "" {
		t.Errorf("claim order per release (-enqueue order +claim order):\n%s", diff)
	}
}

// testConcurrentKey sends one request with one idempotency key 8 times at
// once (from 8 replicas on PostgreSQL): one operation results, the others
// replay it. And 8 NoQueue requests on an idle release: one is admitted.
func testConcurrentKey(t *testing.T, e *env) {
	const n = 8
	var stores []*Store
	for i := range n {
		stores = append(stores, e.replica(t, i))
	}
	race := func(req func(i int) EnqueueRequest) ([]Operation, []bool, []error) {
		ops, replays, errs := make([]Operation, n), make([]bool, n), make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, s := range stores {
			wg.Go(func() {
				<-start
				ops[i], replays[i], errs[i] = s.Enqueue(context.Background(), req(i))
			})
		}
		close(start)
		wg.Wait()
		return ops, replays, errs
	}

	t.Run("one key", func(t *testing.T) {
		ops, replays, errs := race(func(int) EnqueueRequest {
			r := request("acme", "web")
			r.IdempotencyKey = "deploy-42"
			return r
		})
		fresh := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("Enqueue %d: %v", i, errs[i])
			}
			if ops[i].ID != ops[0].ID {
				t.Errorf("Enqueue %d made %s, another made %s", i, ops[i].ID, ops[0].ID)
			}
			if !replays[i] {
				fresh++
			}
		}
		if fresh != 1 {
			t.Errorf("%d enqueues made a new operation, want 1", fresh)
		}
	})

	t.Run("no queue", func(t *testing.T) {
		_, _, errs := race(func(int) EnqueueRequest {
			r := request("acme", "idle")
			r.NoQueue = true
			return r
		})
		admitted := 0
		for i, err := range errs {
			switch {
			case err == nil:
				admitted++
			case !errors.Is(err, ErrBusy):
				t.Errorf("Enqueue %d: %v", i, err)
			}
		}
		if admitted != 1 {
			t.Errorf("%d NoQueue enqueues admitted, want 1", admitted)
		}
	})
}
