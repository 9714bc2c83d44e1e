package clusters

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Change is a credential rotated, re-pointed (Version > 0) or deleted
// (Version 0). It carries ids, never secrets.
type Change struct {
	ID           string
	Org          string
	CredentialID string
	ClusterID    string
	Version      int64
	At           time.Time
}

// Changes is the credential change feed: changes made here are recorded in
// the database (for the other replicas) and sent to this replica's
// subscribers at once; changes of other replicas arrive by polling.
type Changes struct {
	store Store
	log   *slog.Logger

	mu   sync.Mutex
	subs map[chan Change]struct{}
	seen map[string]time.Time
}

// changeWindow is how far back each poll looks: a change committed late by
// another replica still falls in it; seen ids keep it from repeating.
const changeWindow = 30 * time.Second

// NewChanges returns the feed over store.
func NewChanges(store Store, log *slog.Logger) *Changes {
	return &Changes{store: store, log: log, subs: map[chan Change]struct{}{}, seen: map[string]time.Time{}}
}

// Publish records c and tells this replica's subscribers. A failed record
// is logged: the subscribers' caches expire on their own.
func (f *Changes) Publish(ctx context.Context, c Change) {
	id, err := uuid.NewV7()
	if err != nil {
		f.log.ErrorContext(ctx, "record credential change failed", "error", err)
		return
	}
	c.ID, c.At = id.String(), time.Now().UTC().Truncate(time.Microsecond)
	if err := f.store.InsertChange(context.WithoutCancel(ctx), c); err != nil {
		f.log.ErrorContext(ctx, "record credential change failed", "error", err)
	}
	f.deliver(c)
}

// Subscribe returns a channel of changes and a function that ends it. A
// subscriber too slow to keep up (64 pending) is dropped: its channel
// closes and it must start over.
func (f *Changes) Subscribe() (<-chan Change, func()) {
	ch := make(chan Change, 64)
	f.mu.Lock()
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.subs[ch]; ok {
			delete(f.subs, ch)
			close(ch)
		}
	}
}

func (f *Changes) deliver(c Change) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, dup := f.seen[c.ID]; dup {
		return
	}
	f.seen[c.ID] = c.At
	for ch := range f.subs {
		select {
		case ch <- c:
		default:
			delete(f.subs, ch)
			close(ch)
		}
	}
}

// Run polls for other replicas' changes every interval until ctx ends, and
// prunes changes older than an hour.
func (f *Changes) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		since := time.Now().Add(-changeWindow)
		changes, err := f.store.ChangesSince(ctx, since)
		if err != nil {
			if ctx.Err() == nil {
				f.log.WarnContext(ctx, "poll credential changes failed", "error", err)
			}
			continue
		}
		for _, c := range changes {
			f.deliver(c)
		}
		f.mu.Lock()
		for id, at := range f.seen {
			if at.Before(since.Add(-changeWindow)) {
				delete(f.seen, id)
			}
		}
		f.mu.Unlock()
		if err := f.store.PruneChanges(ctx, time.Now().Add(-time.Hour)); err != nil && ctx.Err() == nil {
			f.log.WarnContext(ctx, "prune credential changes failed", "error", err)
		}
	}
}
