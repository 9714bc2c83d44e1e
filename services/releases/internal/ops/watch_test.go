package ops

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// watcher runs Watch in the background and hands its snapshots over.
type watcher struct {
	snaps chan Operation
	done  chan error
}

func startWatch(t *testing.T, s *Store, org, id string) *watcher {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	w := &watcher{snaps: make(chan Operation, 100), done: make(chan error, 1)}
	go func() {
		w.done <- s.Watch(ctx, org, id, func(op Operation) error {
			w.snaps <- op
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-w.done
	})
	return w
}

// next waits for the next snapshot.
func (w *watcher) next(t *testing.T) Operation {
	t.Helper()
	select {
	case op := <-w.snaps:
		return op
	case err := <-w.done:
		t.Fatalf("watch ended early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no snapshot within 10s")
	}
	return Operation{}
}

// rest collects the snapshots until Watch returns, and its error.
func (w *watcher) rest(t *testing.T) ([]Operation, error) {
	t.Helper()
	var out []Operation
	for {
		select {
		case op := <-w.snaps:
			out = append(out, op)
		case err := <-w.done:
			for {
				select {
				case op := <-w.snaps:
					out = append(out, op)
				default:
					w.done <- err // for the cleanup
					return out, err
				}
			}
		case <-time.After(10 * time.Second):
			t.Fatal("watch did not end within 10s")
		}
	}
}

// runToSuccess claims, starts, reports on and finishes op through s, as fast
// as it can.
func runToSuccess(t *testing.T, s *Store, id string) {
	t.Helper()
	ctx := context.Background()
	ls, err := s.Claim(ctx, "worker-2", 1, time.Minute)
	if err != nil || len(ls) != 1 || ls[0].ID != id {
		t.Fatalf("Claim = %v, %v; want %s", ids(ls), err, id)
	}
	tok := ls[0].Token
	if err := s.Start(ctx, id, tok); err != nil {
		t.Fatal(err)
	}
	if err := s.Event(ctx, id, tok, "applying", "helm upgrade"); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx, id, tok, StateSucceeded, []byte(`{"revision":1}`), "", ""); err != nil {
		t.Fatal(err)
	}
}

// checkSnapshots checks a watch's snapshots: versions grow, the states are
// queued, running, succeeded in that order, and each snapshot is
// consistent with its state.
func checkSnapshots(t *testing.T, snaps []Operation) {
	t.Helper()
	var states []State
	for i, op := range snaps {
		if i > 0 && op.Version <= snaps[i-1].Version {
			t.Errorf("snapshot %d: version %d after %d", i, op.Version, snaps[i-1].Version)
		}
		if len(states) == 0 || states[len(states)-1] != op.State {
			states = append(states, op.State)
		}
		final := op.State.Terminal()
		if final != !op.Ended.IsZero() || final != (op.Result != nil) || (op.State == StateQueued) != op.Started.IsZero() {
			t.Errorf("snapshot %d (%s): started %v, ended %v, result %q", i, op.State, op.Started, op.Ended, op.Result)
		}
		if len(op.Events)+op.DroppedEventCount > 0 && op.State == StateQueued {
			t.Errorf("snapshot %d (%s) carries %d events from later", i, op.State, len(op.Events))
		}
	}
	if diff := cmp.Diff([]State{StateQueued, StateRunning, StateSucceeded}, states); diff != "" {
		t.Errorf("states seen (-want +got):\n%s", diff)
	}
	if last := snaps[len(snaps)-1]; len(last.Events) != 1 || last.Events[0].Phase != "applying" || string(last.Result) != `{"revision":1}` {
		t.Errorf("final snapshot: events %+v, result %q", last.Events, last.Result)
	}
}

func testWatchLocal(t *testing.T, e *env) {
	// No polling to speak of: only this store's wake-ups can deliver.
	s := e.open(t, PollInterval(time.Hour))
	op := mustEnqueue(t, s, request("acme", "web"))
	w := startWatch(t, s, "acme", op.ID)
	first := w.next(t)
	runToSuccess(t, s, op.ID)
	rest, err := w.rest(t)
	if err != nil {
		t.Fatalf("Watch = %v, want nil after the final snapshot", err)
	}
	checkSnapshots(t, append([]Operation{first}, rest...))
}

func testWatchReplica(t *testing.T, e *env) {
	// The watcher's store polls; the changes are made through another store
	// on the same database, faster than it polls, so several land between
	// two reads.
	watching := e.open(t, PollInterval(300*time.Millisecond))
	writing := e.open(t)
	op := mustEnqueue(t, writing, request("acme", "web"))
	w := startWatch(t, watching, "acme", op.ID)
	first := w.next(t)
	runToSuccess(t, writing, op.ID)
	rest, err := w.rest(t)
	if err != nil {
		t.Fatalf("Watch = %v, want nil after the final snapshot", err)
	}
	snaps := append([]Operation{first}, rest...)
	checkSnapshots(t, snaps)
	// Claim, Start and Finish each changed the state or attempt: each is
	// a snapshot of its own, however the polls fell.
	if len(snaps) < 4 {
		t.Errorf("%d snapshots, want at least 4 (enqueue, claim, start, finish)", len(snaps))
	}
}

func testWatchEnds(t *testing.T, e *env) {
	ctx := context.Background()
	op := mustEnqueue(t, e.s, request("acme", "web"))

	t.Run("context ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		n := 0
		err := e.s.Watch(ctx, "acme", op.ID, func(Operation) error {
			n++
			cancel()
			return nil
		})
		if !errors.Is(err, context.Canceled) || n != 1 {
			t.Errorf("Watch = %v after %d snapshots, want context.Canceled after 1", err, n)
		}
	})
	t.Run("send fails", func(t *testing.T) {
		boom := errors.New("client went away")
		if err := e.s.Watch(ctx, "acme", op.ID, func(Operation) error { return boom }); !errors.Is(err, boom) {
			t.Errorf("Watch = %v, want send's error", err)
		}
	})
	t.Run("final operation: one snapshot", func(t *testing.T) {
		if _, err := e.s.RequestCancel(ctx, "acme", op.ID); err != nil {
			t.Fatal(err)
		}
		var got []State
		err := e.s.Watch(ctx, "acme", op.ID, func(op Operation) error {
			got = append(got, op.State)
			return nil
		})
		if err != nil || !cmp.Equal(got, []State{StateCancelled}) {
			t.Errorf("Watch = %v, states %v; want nil after one cancelled snapshot", err, got)
		}
	})
}
