package ops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
	"github.com/slipwayhq/slipway/pkg/validate"
)

// TestStoreConformance runs one suite on SQLite and PostgreSQL, each case
// on a database of its own.
func TestStoreConformance(t *testing.T) {
	sqltest.Backends(t, func(t *testing.T, dsn string) {
		fresh := freshDSN(dsn)
		for _, tc := range conformanceCases {
			t.Run(tc.name, func(t *testing.T) { tc.run(t, newEnv(t, fresh(t))) })
		}
	})
}

var conformanceCases = []struct {
	name string
	run  func(*testing.T, *env)
}{
	{"enqueue then get returns every field", testEnqueueGet},
	{"idempotency keys replay, refuse a mismatch and expire", testIdempotency},
	{"replay looks a key up without writing", testReplay},
	{"no queue answers busy while the release has work", testNoQueue},
	{"one writer per release in enqueue order, releases in parallel", testFIFO},
	{"stale fencing token is refused after takeover", testFencing},
	{"expired lease is claimed again, then abandoned", testCrashRecovery},
	{"cancel a queued operation", testCancelQueued},
	{"cancel a running operation", testCancelRunning},
	{"events keep the latest 200", testEventsCap},
	{"final states are final", testFinishFinal},
	{"list filters and pages newest first", testList},
	{"another org's operations answer not found", testCrossOrg},
	{"watch sees every state, in process", testWatchLocal},
	{"watch sees every state made by another replica", testWatchReplica},
	{"watch ends with the context and on a final operation", testWatchEnds},
	{"concurrent enqueues with one key make one operation", testConcurrentKey},
	{"concurrent claimers", testConcurrentClaimers},
	{"a lease carries the trace context of the enqueuing request", testTraceContext},
}

func testEnqueueGet(t *testing.T, e *env) {
	ctx := context.Background()
	req := EnqueueRequest{
		Org: "acme", Kind: KindDeployApplication,
		Target:  Target{Cluster: "cl_1", Namespace: "shop", Release: "web", Application: "web", ApplicationTarget: "prod"},
		DryRun:  true,
		Payload: []byte(`{"values":{"replicas":3}}`), Creator: "user:alice", IdempotencyKey: "k1",
	}
	op, replayed, err := e.s.Enqueue(ctx, req)
	if err != nil || replayed {
		t.Fatalf("Enqueue = %v, replayed %v", err, replayed)
	}
	want := Operation{
		ID: op.ID, Org: "acme", Kind: KindDeployApplication, Target: req.Target, DryRun: true,
		Payload: req.Payload, Creator: "user:alice", IdempotencyKey: "k1",
		State: StateQueued, Created: e.clock.Now(), Version: 1,
	}
	if diff := cmp.Diff(want, op); diff != "" {
		t.Errorf("Enqueue returned (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, mustGet(t, e.s, "acme", op.ID)); diff != "" {
		t.Errorf("Get (-want +got):\n%s", diff)
	}
	if len(op.ID) != len("op_")+26 || op.ID[:3] != "op_" {
		t.Errorf("id %q, want op_ + ULID", op.ID)
	}

	for _, tc := range []struct {
		name  string
		edit  func(*EnqueueRequest)
		field string
	}{
		{"no org", func(r *EnqueueRequest) { r.Org = "" }, "org"},
		{"no kind", func(r *EnqueueRequest) { r.Kind = "" }, "kind"},
		{"no cluster", func(r *EnqueueRequest) { r.Target.Cluster = "" }, "target.cluster"},
		{"no namespace", func(r *EnqueueRequest) { r.Target.Namespace = "" }, "target.namespace"},
		{"no release", func(r *EnqueueRequest) { r.Target.Release = "" }, "target.release"},
		{"no creator", func(r *EnqueueRequest) { r.Creator = "" }, "creator"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := request("acme", "invalid")
			tc.edit(&r)
			_, _, err := e.s.Enqueue(ctx, r)
			if fe, ok := validate.AsFieldError(err); !ok || fe.Field != tc.field {
				t.Errorf("Enqueue error = %v, want a field error on %s", err, tc.field)
			}
		})
	}
}

func testIdempotency(t *testing.T, e *env) {
	ctx := context.Background()
	withKey := func(org, key string, edit func(*EnqueueRequest)) EnqueueRequest {
		r := request(org, "web")
		r.IdempotencyKey = key
		if edit != nil {
			edit(&r)
		}
		return r
	}
	first := mustEnqueue(t, e.s, withKey("acme", "key-1", nil))

	for _, tc := range []struct {
		name     string
		req      EnqueueRequest
		want     error
		replayed bool
		sameOp   bool
	}{
		{"same key and request replays", withKey("acme", "key-1", nil), nil, true, true},
		{"another creator and NoQueue still replay", withKey("acme", "key-1", func(r *EnqueueRequest) { r.Creator = "user:bob"; r.NoQueue = true }), nil, true, true},
		{"other payload is a mismatch", withKey("acme", "key-1", func(r *EnqueueRequest) { r.Payload = []byte(`{"chart":"web","version":"9"}`) }), ErrIdempotencyMismatch, false, false},
		{"other kind is a mismatch", withKey("acme", "key-1", func(r *EnqueueRequest) { r.Kind = KindUninstall }), ErrIdempotencyMismatch, false, false},
		{"other release is a mismatch", withKey("acme", "key-1", func(r *EnqueueRequest) { r.Target.Release = "api" }), ErrIdempotencyMismatch, false, false},
		{"dry run is a mismatch", withKey("acme", "key-1", func(r *EnqueueRequest) { r.DryRun = true }), ErrIdempotencyMismatch, false, false},
		{"same key in another org is another operation", withKey("globex", "key-1", nil), nil, false, false},
		{"another key is another operation", withKey("acme", "key-2", nil), nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op, replayed, err := e.s.Enqueue(ctx, tc.req)
			wantErr(t, "Enqueue", err, tc.want)
			if err != nil {
				return
			}
			if replayed != tc.replayed || (op.ID == first.ID) != tc.sameOp {
				t.Errorf("Enqueue = %s replayed %v; want replayed %v, same operation as %s %v", op.ID, replayed, tc.replayed, first.ID, tc.sameOp)
			}
		})
	}

	t.Run("a replay answers with the operation as it is now", func(t *testing.T) {
		l := leaseOf(t, mustClaim(t, e.s, 10, time.Minute), first.ID)
		if err := e.s.Start(ctx, first.ID, l.Token); err != nil {
			t.Fatal(err)
		}
		op, replayed, err := e.s.Enqueue(ctx, withKey("acme", "key-1", nil))
		if err != nil || !replayed || op.State != StateRunning {
			t.Errorf("replay = %s %v, replayed %v; want the running operation", op.State, err, replayed)
		}
	})

	t.Run("keys expire after 24 hours", func(t *testing.T) {
		e.clock.Advance(24*time.Hour - time.Second)
		if op, replayed, err := e.s.Enqueue(ctx, withKey("acme", "key-1", nil)); err != nil || !replayed || op.ID != first.ID {
			t.Fatalf("just before expiry: %s replayed %v, %v", op.ID, replayed, err)
		}
		e.clock.Advance(time.Second)
		other := withKey("acme", "key-1", func(r *EnqueueRequest) { r.Payload = []byte(`{"other":true}`) })
		op, replayed, err := e.s.Enqueue(ctx, other)
		if err != nil || replayed || op.ID == first.ID {
			t.Fatalf("after expiry: %s replayed %v, %v; want a new operation", op.ID, replayed, err)
		}
		// The new request now owns the key.
		if again, replayed, err := e.s.Enqueue(ctx, other); err != nil || !replayed || again.ID != op.ID {
			t.Errorf("replay of the new owner: %s replayed %v, %v", again.ID, replayed, err)
		}
		if _, err := e.s.Get(ctx, "acme", first.ID); err != nil {
			t.Errorf("the first operation went with its key: %v", err)
		}
	})

	t.Run("cleanup deletes expired keys only", func(t *testing.T) {
		// Live now: acme/key-1 (just reused). Expired: globex/key-1, acme/key-2.
		n, err := e.s.DeleteExpiredKeys(ctx)
		if err != nil || n != 2 {
			t.Errorf("DeleteExpiredKeys = %d, %v; want 2", n, err)
		}
		if n, err := e.s.DeleteExpiredKeys(ctx); err != nil || n != 0 {
			t.Errorf("second DeleteExpiredKeys = %d, %v; want 0", n, err)
		}
		if _, replayed, err := e.s.Enqueue(ctx, withKey("acme", "key-2", nil)); err != nil || replayed {
			t.Errorf("deleted key: replayed %v, %v; want a new operation", replayed, err)
		}
	})
}

func testNoQueue(t *testing.T, e *env) {
	ctx := context.Background()
	noQueue := func(release string) EnqueueRequest {
		r := request("acme", release)
		r.NoQueue = true
		return r
	}
	first := mustEnqueue(t, e.s, request("acme", "web"))
	var token int64

	for _, tc := range []struct {
		name   string
		before func(t *testing.T)
		req    EnqueueRequest
		want   error
	}{
		{"queued operation makes the release busy", nil, noQueue("web"), ErrBusy},
		{"another release is free", nil, noQueue("api"), nil},
		{"same release in another namespace is free", nil, func() EnqueueRequest {
			r := noQueue("web")
			r.Target.Namespace = "other"
			return r
		}(), nil},
		{"running operation makes the release busy", func(t *testing.T) {
			token = leaseOf(t, mustClaim(t, e.s, 10, time.Minute), first.ID).Token
			if err := e.s.Start(ctx, first.ID, token); err != nil {
				t.Fatal(err)
			}
		}, noQueue("web"), ErrBusy},
		{"without NoQueue it queues behind", nil, request("acme", "web"), nil},
		{"finished operation frees the release only when nothing queues behind", func(t *testing.T) {
			if err := e.s.Finish(ctx, first.ID, token, StateSucceeded, nil, "", ""); err != nil {
				t.Fatal(err)
			}
		}, noQueue("web"), ErrBusy},
		{"free once the queue is empty", func(t *testing.T) {
			for _, l := range mustClaim(t, e.s, 10, time.Minute) {
				if err := e.s.Finish(ctx, l.ID, l.Token, StateSucceeded, nil, "", ""); err != nil {
					t.Fatal(err)
				}
			}
		}, noQueue("web"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before(t)
			}
			_, _, err := e.s.Enqueue(ctx, tc.req)
			wantErr(t, "Enqueue", err, tc.want)
		})
	}
}

func testFIFO(t *testing.T, e *env) {
	ctx := context.Background()
	var web []string
	for range 3 {
		web = append(web, mustEnqueue(t, e.s, request("acme", "web")).ID)
	}
	e.clock.Advance(time.Millisecond)
	api := mustEnqueue(t, e.s, request("acme", "api")).ID
	e.clock.Advance(time.Millisecond)
	other := mustEnqueue(t, e.s, request("globex", "web")).ID // same release name, another org

	ls := mustClaim(t, e.s, 10, time.Minute)
	if diff := cmp.Diff([]string{web[0], api, other}, ids(ls)); diff != "" {
		t.Fatalf("first claim: heads of every release, ready longest first (-want +got):\n%s", diff)
	}
	if got := mustClaim(t, e.s, 10, time.Minute); len(got) != 0 {
		t.Fatalf("claimed %v while every release has a live lease", ids(got))
	}
	tokens := map[string]int64{}
	for _, l := range ls {
		tokens[l.ID] = l.Token
		if l.Attempt != 1 || l.LastAttempt {
			t.Errorf("%s: attempt %d, last %v; want 1, false", l.ID, l.Attempt, l.LastAttempt)
		}
	}
	for i, id := range web {
		if err := e.s.Start(ctx, id, tokens[id]); err != nil {
			t.Fatal(err)
		}
		if err := e.s.Finish(ctx, id, tokens[id], StateSucceeded, nil, "", ""); err != nil {
			t.Fatal(err)
		}
		got := mustClaim(t, e.s, 10, time.Minute)
		var want []string
		if i+1 < len(web) {
			want = []string{web[i+1]}
		}
		if diff := cmp.Diff(want, ids(got), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("after finishing web #%d (-want +got):\n%s", i, diff)
		}
		for _, l := range got {
			tokens[l.ID] = l.Token
			if l.Token <= tokens[id] {
				t.Errorf("token %d of %s not above %d of the release's previous claim", l.Token, l.ID, tokens[id])
			}
		}
	}

	for _, id := range []string{api, other} {
		if err := e.s.Finish(ctx, id, tokens[id], StateSucceeded, nil, "", ""); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("renewed leases do not hide a ready release", func(t *testing.T) {
		// Five releases run and renew their leases, so their hints (the
		// first lease ends) are early; a sixth becomes ready after them.
		var held []Lease
		for i := range 5 {
			mustEnqueue(t, e.s, request("renewing", fmt.Sprintf("r%d", i)))
			e.clock.Advance(time.Millisecond)
		}
		held = mustClaim(t, e.s, 10, time.Minute)
		if len(held) != 5 {
			t.Fatalf("claimed %d, want 5", len(held))
		}
		e.clock.Advance(50 * time.Second)
		for _, l := range held {
			if _, err := e.s.Heartbeat(ctx, l.ID, l.Token, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		e.clock.Advance(15 * time.Second) // past the first leases' end
		ready := mustEnqueue(t, e.s, request("renewing", "ready"))
		e.clock.Advance(5 * time.Second)
		if got := mustClaim(t, e.s, 1, time.Minute); !cmp.Equal(ids(got), []string{ready.ID}) {
			t.Errorf("claim = %v, want %s past the renewed releases", ids(got), ready.ID)
		}
	})

	t.Run("limit", func(t *testing.T) {
		for i := range 5 {
			mustEnqueue(t, e.s, request("limits", fmt.Sprintf("r%d", i)))
		}
		if got := mustClaim(t, e.s, 2, time.Minute); len(got) != 2 {
			t.Errorf("claimed %d, want the limit 2", len(got))
		}
		if _, err := e.s.Claim(ctx, "w", 0, time.Minute); err == nil {
			t.Error("Claim with limit 0 succeeded")
		}
	})
}

func testFencing(t *testing.T, e *env) {
	ctx := context.Background()
	op := mustEnqueue(t, e.s, request("acme", "web"))
	replica := e.open(t) // the worker that takes over runs elsewhere
	old := mustClaim(t, e.s, 1, time.Minute)[0]
	if err := e.s.Start(ctx, op.ID, old.Token); err != nil {
		t.Fatal(err)
	}

	// A heartbeat before expiry keeps the lease.
	e.clock.Advance(50 * time.Second)
	if cancel, err := e.s.Heartbeat(ctx, op.ID, old.Token, time.Minute); err != nil || cancel {
		t.Fatalf("Heartbeat = %v, %v", cancel, err)
	}
	e.clock.Advance(50 * time.Second)
	if got, err := replica.Claim(ctx, "worker-2", 1, time.Minute); err != nil || len(got) != 0 {
		t.Fatalf("claimed %v, %v while the lease was renewed", ids(got), err)
	}

	// The old worker pauses past its lease; another takes over.
	e.clock.Advance(11 * time.Second)
	got, err := replica.Claim(ctx, "worker-2", 1, time.Minute)
	if err != nil || len(got) != 1 {
		t.Fatalf("takeover claim = %v, %v", ids(got), err)
	}
	cur := got[0]
	if cur.Token <= old.Token || cur.Attempt != 2 {
		t.Fatalf("takeover: token %d attempt %d; want above %d, attempt 2", cur.Token, cur.Attempt, old.Token)
	}

	for _, tc := range []struct {
		name  string
		write func(token int64) error
	}{
		{"heartbeat", func(tok int64) error { _, err := e.s.Heartbeat(ctx, op.ID, tok, time.Minute); return err }},
		{"start", func(tok int64) error { return e.s.Start(ctx, op.ID, tok) }},
		{"event", func(tok int64) error { return e.s.Event(ctx, op.ID, tok, "applying", "stale") }},
		{"finish", func(tok int64) error { return e.s.Finish(ctx, op.ID, tok, StateFailed, nil, "INTERNAL", "stale") }},
	} {
		t.Run("stale "+tc.name+" is refused", func(t *testing.T) {
			wantErr(t, "stale "+tc.name, tc.write(old.Token), ErrLeaseLost)
		})
	}
	if err := replica.Event(ctx, op.ID, cur.Token, "applying", "current"); err != nil {
		t.Fatalf("current holder's Event: %v", err)
	}
	if err := replica.Finish(ctx, op.ID, cur.Token, StateSucceeded, []byte(`{"revision":2}`), "", ""); err != nil {
		t.Fatalf("current holder's Finish: %v", err)
	}
	final := mustGet(t, e.s, "acme", op.ID)
	if final.State != StateSucceeded || len(final.Events) != 1 || final.Events[0].Message != "current" || string(final.Result) != `{"revision":2}` {
		t.Errorf("final operation %+v: want succeeded with only the current holder's event and result", final)
	}
	wantErr(t, "unknown operation heartbeat", func() error { _, err := e.s.Heartbeat(ctx, "op_missing", 1, time.Minute); return err }(), ErrLeaseLost)
}

func testCrashRecovery(t *testing.T, e *env) {
	ctx := context.Background()
	op := mustEnqueue(t, e.s, request("acme", "web"))
	next := mustEnqueue(t, e.s, request("acme", "web"))

	l := mustClaim(t, e.s, 1, time.Minute)[0]
	if err := e.s.Start(ctx, op.ID, l.Token); err != nil {
		t.Fatal(err)
	}
	if err := e.s.Event(ctx, op.ID, l.Token, "applying", "helm upgrade web"); err != nil {
		t.Fatal(err)
	}
	started := e.clock.Now()
	// The worker dies. Its lease runs out and another worker recovers.
	for attempt := 2; attempt <= DefaultMaxAttempts; attempt++ {
		e.clock.Advance(61 * time.Second)
		ls := mustClaim(t, e.s, 10, time.Minute)
		if len(ls) != 1 || ls[0].ID != op.ID {
			t.Fatalf("attempt %d: claimed %v, want %s (the next operation waits behind it)", attempt, ids(ls), op.ID)
		}
		got := ls[0]
		if got.Attempt != attempt || got.State != StateRunning || got.Phase != "applying" || !got.Started.Equal(started) ||
			got.LastAttempt != (attempt == DefaultMaxAttempts) {
			t.Fatalf("attempt %d: lease %+v; want that attempt, running, phase applying, first start time kept", attempt, got)
		}
		if err := e.s.Start(ctx, op.ID, got.Token); err != nil {
			t.Fatalf("Start of a recovered operation: %v", err)
		}
	}
	// The last attempt dies too: the operation fails and the release moves on.
	e.clock.Advance(61 * time.Second)
	ls := mustClaim(t, e.s, 10, time.Minute)
	if len(ls) != 1 || ls[0].ID != next.ID {
		t.Fatalf("after the last attempt: claimed %v, want the next operation %s", ids(ls), next.ID)
	}
	failed := mustGet(t, e.s, "acme", op.ID)
	if failed.State != StateFailed || failed.ErrorCode != AbandonedCode || failed.ErrorMessage == "" || failed.Ended.IsZero() {
		t.Errorf("abandoned operation: state %s code %q message %q ended %v", failed.State, failed.ErrorCode, failed.ErrorMessage, failed.Ended)
	}

	t.Run("claimed but never started", func(t *testing.T) {
		op := mustEnqueue(t, e.s, request("acme", "api"))
		first := leaseOf(t, mustClaim(t, e.s, 10, time.Minute), op.ID)
		e.clock.Advance(61 * time.Second)
		again := leaseOf(t, mustClaim(t, e.s, 10, time.Minute), op.ID)
		if again.Attempt != 2 || again.State != StateQueued || again.Token <= first.Token {
			t.Fatalf("reclaimed %+v; want attempt 2, still queued, a newer token", again)
		}
	})

	t.Run("max attempts option", func(t *testing.T) {
		s := e.open(t, MaxAttempts(1))
		op := mustEnqueue(t, s, request("acme", "once"))
		if l := mustClaim(t, s, 1, time.Minute)[0]; l.ID != op.ID || !l.LastAttempt {
			t.Fatalf("claim %+v, want %s on its last attempt", l, op.ID)
		}
		e.clock.Advance(61 * time.Second)
		mustClaim(t, s, 10, time.Minute)
		if got := mustGet(t, s, "acme", op.ID); got.State != StateFailed {
			t.Errorf("state %s after one expired attempt of one, want failed", got.State)
		}
	})
}

func testCancelQueued(t *testing.T, e *env) {
	ctx := context.Background()
	running := mustEnqueue(t, e.s, request("acme", "web"))
	l := mustClaim(t, e.s, 1, time.Minute)[0]
	queued := mustEnqueue(t, e.s, request("acme", "web"))
	after := mustEnqueue(t, e.s, request("acme", "web"))

	e.clock.Advance(time.Second)
	op, err := e.s.RequestCancel(ctx, "acme", queued.ID)
	if err != nil {
		t.Fatal(err)
	}
	if op.State != StateCancelled || !op.CancelRequested || !op.Ended.Equal(e.clock.Now()) {
		t.Errorf("cancelled queued operation: %s, requested %v, ended %v", op.State, op.CancelRequested, op.Ended)
	}
	if _, err := e.s.RequestCancel(ctx, "acme", queued.ID); !errors.Is(err, ErrFinished) {
		t.Errorf("second cancel = %v, want ErrFinished", err)
	}
	// The cancelled one is skipped: after the running one comes the next.
	if err := e.s.Finish(ctx, running.ID, l.Token, StateSucceeded, nil, "", ""); err != nil {
		t.Fatal(err)
	}
	ls := mustClaim(t, e.s, 10, time.Minute)
	if diff := cmp.Diff([]string{after.ID}, ids(ls)); diff != "" {
		t.Fatalf("claim after cancel (-want +got):\n%s", diff)
	}

	t.Run("claimed but not started is cancelled at once", func(t *testing.T) {
		behind := mustEnqueue(t, e.s, request("acme", "web"))
		op, err := e.s.RequestCancel(ctx, "acme", after.ID)
		if err != nil || op.State != StateCancelled {
			t.Fatalf("cancel = %s, %v; want cancelled", op.State, err)
		}
		wantErr(t, "Start after cancel", e.s.Start(ctx, after.ID, ls[0].Token), ErrLeaseLost)
		wantErr(t, "Heartbeat after cancel", func() error { _, err := e.s.Heartbeat(ctx, after.ID, ls[0].Token, time.Minute); return err }(), ErrLeaseLost)
		// Its lease does not hold the release up.
		if got := mustClaim(t, e.s, 10, time.Minute); !cmp.Equal(ids(got), []string{behind.ID}) {
			t.Errorf("claim after cancelling the head = %v, want %s at once", ids(got), behind.ID)
		}
	})
}

func testCancelRunning(t *testing.T, e *env) {
	ctx := context.Background()
	op := mustEnqueue(t, e.s, request("acme", "web"))
	l := mustClaim(t, e.s, 1, time.Minute)[0]
	if err := e.s.Start(ctx, op.ID, l.Token); err != nil {
		t.Fatal(err)
	}
	if cancel, err := e.s.Heartbeat(ctx, op.ID, l.Token, time.Minute); err != nil || cancel {
		t.Fatalf("Heartbeat before cancel = %v, %v", cancel, err)
	}
	for i := range 2 { // the second request changes nothing
		got, err := e.s.RequestCancel(ctx, "acme", op.ID)
		if err != nil || got.State != StateRunning || !got.CancelRequested {
			t.Fatalf("cancel #%d = %s requested %v, %v; want still running with cancel requested", i, got.State, got.CancelRequested, err)
		}
	}
	cancel, err := e.s.Heartbeat(ctx, op.ID, l.Token, time.Minute)
	if err != nil || !cancel {
		t.Fatalf("Heartbeat after cancel = %v, %v; want cancel requested", cancel, err)
	}
	if err := e.s.Finish(ctx, op.ID, l.Token, StateCancelled, nil, "", ""); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, e.s, "acme", op.ID); got.State != StateCancelled {
		t.Errorf("state %s, want cancelled", got.State)
	}
	if _, err := e.s.RequestCancel(ctx, "acme", op.ID); !errors.Is(err, ErrFinished) {
		t.Errorf("cancel of a finished operation = %v, want ErrFinished", err)
	}
}

func testEventsCap(t *testing.T, e *env) {
	ctx := context.Background()
	op := mustEnqueue(t, e.s, request("acme", "web"))
	l := mustClaim(t, e.s, 1, time.Minute)[0]
	const total = MaxEvents + 5
	for i := range total {
		e.clock.Advance(time.Millisecond)
		if err := e.s.Event(ctx, op.ID, l.Token, "waiting", fmt.Sprintf("event %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	got := mustGet(t, e.s, "acme", op.ID)
	if len(got.Events) != MaxEvents || got.DroppedEventCount != total-MaxEvents {
		t.Fatalf("%d events, %d dropped; want %d, %d", len(got.Events), got.DroppedEventCount, MaxEvents, total-MaxEvents)
	}
	if first, last := got.Events[0].Message, got.Events[MaxEvents-1].Message; first != "event 5" || last != fmt.Sprintf("event %d", total-1) {
		t.Errorf("kept events %q .. %q, want the latest", first, last)
	}
	if !got.Events[MaxEvents-1].Time.Equal(e.clock.Now()) {
		t.Errorf("latest event time %v, want %v", got.Events[MaxEvents-1].Time, e.clock.Now())
	}

	t.Run("long and invalid text is made storable", func(t *testing.T) {
		msg := "é" + strings.Repeat("ü", MaxEventMessage) + "\x00\xff"
		phase := strings.Repeat("p", 2*MaxEventPhase)
		if err := e.s.Event(ctx, op.ID, l.Token, phase, msg); err != nil {
			t.Fatal(err)
		}
		got := mustGet(t, e.s, "acme", op.ID)
		ev := got.Events[len(got.Events)-1]
		if len(ev.Message) > MaxEventMessage || len(ev.Message) < MaxEventMessage-1 || !utf8.ValidString(ev.Message) ||
			!strings.HasPrefix(ev.Message, "éü") || len(ev.Phase) != MaxEventPhase || got.Phase != ev.Phase {
			t.Errorf("stored event: phase %d bytes, message %d bytes (valid %v) starting %q",
				len(ev.Phase), len(ev.Message), utf8.ValidString(ev.Message), ev.Message[:4])
		}
	})
}

func testFinishFinal(t *testing.T, e *env) {
	ctx := context.Background()
	op := mustEnqueue(t, e.s, request("acme", "web"))
	l := mustClaim(t, e.s, 1, time.Minute)[0]
	if err := e.s.Finish(ctx, op.ID, l.Token, StateRunning, nil, "", ""); err == nil || errors.Is(err, ErrLeaseLost) {
		t.Errorf("Finish in a non-final state = %v, want a usage error", err)
	}
	e.clock.Advance(time.Second)
	if err := e.s.Finish(ctx, op.ID, l.Token, StateFailed, nil, "DEADLINE_EXCEEDED", "timed out waiting for deployment/web"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		write func() error
	}{
		{"second finish", func() error { return e.s.Finish(ctx, op.ID, l.Token, StateSucceeded, nil, "", "") }},
		{"event", func() error { return e.s.Event(ctx, op.ID, l.Token, "done", "late") }},
		{"start", func() error { return e.s.Start(ctx, op.ID, l.Token) }},
		{"heartbeat", func() error { _, err := e.s.Heartbeat(ctx, op.ID, l.Token, time.Minute); return err }},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) { wantErr(t, tc.name, tc.write(), ErrLeaseLost) })
	}
	got := mustGet(t, e.s, "acme", op.ID)
	if got.State != StateFailed || got.ErrorCode != "DEADLINE_EXCEEDED" || got.ErrorMessage != "timed out waiting for deployment/web" ||
		!got.Ended.Equal(e.clock.Now()) || got.Result != nil {
		t.Errorf("finished operation %+v", got)
	}
	if ls := mustClaim(t, e.s, 10, time.Minute); len(ls) != 0 {
		t.Errorf("claimed %v: a finished operation runs again", ids(ls))
	}
}

func testList(t *testing.T, e *env) {
	ctx := context.Background()
	var web []string // newest first
	for range 7 {
		e.clock.Advance(time.Millisecond)
		web = append([]string{mustEnqueue(t, e.s, request("acme", "web")).ID}, web...)
	}
	e.clock.Advance(time.Millisecond)
	api := request("acme", "api")
	api.Kind, api.Target.Application = KindInstall, "shop"
	apiOp := mustEnqueue(t, e.s, api)
	mustEnqueue(t, e.s, request("globex", "web"))

	// The oldest web operation runs and reports 12 events; api waits, but
	// on its own release it is claimed too.
	ls := mustClaim(t, e.s, 10, time.Minute)
	for _, l := range ls {
		if l.ID != web[len(web)-1] {
			continue
		}
		if err := e.s.Start(ctx, l.ID, l.Token); err != nil {
			t.Fatal(err)
		}
		for i := range 12 {
			if err := e.s.Event(ctx, l.ID, l.Token, "waiting", fmt.Sprintf("event %d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}

	all := func(f ListFilter, size int) []string {
		t.Helper()
		var got []string
		tok := ""
		for {
			page, next, err := e.s.List(ctx, "acme", f, Page{Size: size, Token: tok})
			if err != nil {
				t.Fatal(err)
			}
			for _, op := range page {
				got = append(got, op.ID)
			}
			if next == "" {
				return got
			}
			tok = next
		}
	}
	for _, tc := range []struct {
		name string
		f    ListFilter
		want []string
	}{
		{"everything", ListFilter{}, append([]string{apiOp.ID}, web...)},
		{"by release", ListFilter{Release: "web"}, web},
		{"by cluster and namespace", ListFilter{Cluster: "cl_1", Namespace: "apps"}, append([]string{apiOp.ID}, web...)},
		{"by other namespace", ListFilter{Namespace: "other"}, nil},
		{"by application", ListFilter{Application: "shop"}, []string{apiOp.ID}},
		{"by kind", ListFilter{Kind: KindInstall}, []string{apiOp.ID}},
		{"by state running", ListFilter{State: StateRunning}, []string{web[len(web)-1]}},
		{"by state queued", ListFilter{State: StateQueued}, append([]string{apiOp.ID}, web[:len(web)-1]...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, size := range []int{0, 3} {
				if diff := cmp.Diff(tc.want, all(tc.f, size), cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("page size %d (-want +got):\n%s", size, diff)
				}
			}
		})
	}

	t.Run("listed operations carry their latest events and no payload", func(t *testing.T) {
		page, _, err := e.s.List(ctx, "acme", ListFilter{State: StateRunning}, Page{})
		if err != nil || len(page) != 1 {
			t.Fatalf("List = %d, %v", len(page), err)
		}
		op := page[0]
		if len(op.Events) != ListedEvents || op.Events[0].Message != "event 2" || op.DroppedEventCount != 2 || op.Payload != nil {
			t.Errorf("listed: %d events from %q, %d dropped, payload %q; want the latest %d, 2 not listed, no payload",
				len(op.Events), op.Events[0].Message, op.DroppedEventCount, op.Payload, ListedEvents)
		}
	})

	t.Run("a token works only for its query", func(t *testing.T) {
		_, next, err := e.s.List(ctx, "acme", ListFilter{Release: "web"}, Page{Size: 2})
		if err != nil || next == "" {
			t.Fatalf("List = %q, %v", next, err)
		}
		for _, tc := range []struct {
			name string
			org  string
			f    ListFilter
			tok  string
		}{
			{"other filter", "acme", ListFilter{}, next},
			{"other org", "globex", ListFilter{Release: "web"}, next},
			{"garbage", "acme", ListFilter{Release: "web"}, "not-a-token"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, _, err := e.s.List(ctx, tc.org, tc.f, Page{Token: tc.tok})
				if fe, ok := validate.AsFieldError(err); !ok || fe.Field != "page_token" {
					t.Errorf("List error = %v, want a field error on page_token", err)
				}
			})
		}
	})
}

func testCrossOrg(t *testing.T, e *env) {
	ctx := context.Background()
	op := mustEnqueue(t, e.s, request("acme", "web"))
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"get", func() error { _, err := e.s.Get(ctx, "globex", op.ID); return err }},
		{"cancel", func() error { _, err := e.s.RequestCancel(ctx, "globex", op.ID); return err }},
		{"watch", func() error {
			return e.s.Watch(ctx, "globex", op.ID, func(Operation) error { return errors.New("delivered another org's operation") })
		}},
		{"get missing", func() error { _, err := e.s.Get(ctx, "acme", "op_01JAAAAAAAAAAAAAAAAAAAAAAA"); return err }},
		{"cancel missing", func() error { _, err := e.s.RequestCancel(ctx, "acme", "op_01JAAAAAAAAAAAAAAAAAAAAAAA"); return err }},
		{"watch missing", func() error {
			return e.s.Watch(ctx, "acme", "op_01JAAAAAAAAAAAAAAAAAAAAAAA", func(Operation) error { return nil })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.name, tc.call(), ErrNotFound) })
	}
	t.Run("list", func(t *testing.T) {
		page, next, err := e.s.List(ctx, "globex", ListFilter{}, Page{})
		if err != nil || len(page) != 0 || next != "" {
			t.Errorf("another org's list = %d operations, %q, %v; want none", len(page), next, err)
		}
	})
	if got := mustGet(t, e.s, "acme", op.ID); got.State != StateQueued || got.CancelRequested {
		t.Errorf("acme's operation changed by another org's calls: %s, cancel %v", got.State, got.CancelRequested)
	}
}

func testReplay(t *testing.T, e *env) {
	s := e.open(t)
	ctx := context.Background()
	req := request("acme", "web")
	req.IdempotencyKey = "k1"
	if _, found, err := s.Replay(ctx, req); err != nil || found {
		t.Fatalf("replay of an unused key = %v, %v", found, err)
	}
	if _, found, _ := s.Replay(ctx, req); found {
		t.Fatal("replay recorded the key")
	}
	op := mustEnqueue(t, s, req)
	got, found, err := s.Replay(ctx, req)
	if err != nil || !found || got.ID != op.ID {
		t.Fatalf("replay = %v %v, %v; want %s", got.ID, found, err, op.ID)
	}
	other := req
	other.Payload = []byte(`{"chart":"web","version":"9.9.9"}`)
	wantErr(t, "replay with another request", func() error { _, _, err := s.Replay(ctx, other); return err }(), ErrIdempotencyMismatch)
	elsewhere := req
	elsewhere.Org = "globex"
	if _, found, err := s.Replay(ctx, elsewhere); err != nil || found {
		t.Errorf("another org's replay = %v, %v", found, err)
	}
	noKey := request("acme", "web")
	if _, found, err := s.Replay(ctx, noKey); err != nil || found {
		t.Errorf("replay without a key = %v, %v", found, err)
	}
}

func testTraceContext(t *testing.T, e *env) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ts, err := trace.ParseTraceState("slipway=t61rcWkgMzE")
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, TraceState: ts})
	traced := trace.ContextWithSpanContext(context.Background(), sc)
	op, _, err := e.s.Enqueue(traced, request("acme", "web"))
	if err != nil {
		t.Fatal(err)
	}
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if op.TraceParent != parent || op.TraceState != "slipway=t61rcWkgMzE" {
		t.Errorf("Enqueue returned trace context %q, %q; want %q, %q", op.TraceParent, op.TraceState, parent, "slipway=t61rcWkgMzE")
	}
	untraced := mustEnqueue(t, e.s, request("acme", "api"))
	if untraced.TraceParent != "" || untraced.TraceState != "" {
		t.Errorf("an operation enqueued without a span has trace context %q, %q", untraced.TraceParent, untraced.TraceState)
	}

	// Another replica claims it: the context comes from the database.
	ls := mustClaim(t, e.replica(t, 1), 10, time.Minute)
	l := leaseOf(t, ls, op.ID)
	if l.TraceParent != parent || l.TraceState != "slipway=t61rcWkgMzE" {
		t.Errorf("lease trace context %q, %q; want %q, %q", l.TraceParent, l.TraceState, parent, "slipway=t61rcWkgMzE")
	}
	got := trace.SpanContextFromContext(l.TraceContext(context.Background()))
	if !got.IsRemote() || got.TraceID() != tid || got.SpanID() != sid || !got.IsSampled() || got.TraceState().String() != ts.String() {
		t.Errorf("the lease's context has span %+v, want the remote parent %+v", got, sc)
	}
	if got := trace.SpanContextFromContext(leaseOf(t, ls, untraced.ID).TraceContext(context.Background())); got.IsValid() {
		t.Errorf("the untraced lease's context has span %+v, want none", got)
	}
	if got := mustGet(t, e.s, "acme", op.ID); got.TraceParent != parent {
		t.Errorf("Get trace parent %q, want %q", got.TraceParent, parent)
	}
}
