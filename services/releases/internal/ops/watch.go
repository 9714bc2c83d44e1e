package ops

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/slipwayhq/slipway/pkg/sqldb"
)

// Watch calls send with snapshots of an operation of org: the current one
// first, then one for every change, until the snapshot in which the
// operation is final, after which it returns nil. It returns ErrNotFound
// (at once) for a missing operation or another org's, ctx's error when ctx
// ends, and send's error when send fails.
//
// Changes made through this Store wake the watcher at once; changes made by
// other replicas are found by reading the database every PollInterval.
// Either way no state is missed: when several changes happened since the
// last snapshot, every change of state, attempt or cancellation among them
// is replayed from the transition log, in order, before the current
// snapshot. Versions only grow. Changes that only appended events are
// folded into the next snapshot, whose Events hold them.
func (s *Store) Watch(ctx context.Context, org, id string, send func(Operation) error) error {
	wake := s.subscribe(id)
	defer s.unsubscribe(id, wake)
	op, err := s.Get(ctx, org, id)
	if err != nil {
		return err
	}
	if err := send(op); err != nil {
		return err
	}
	if op.State.Terminal() {
		return nil
	}
	last := op.Version
	tick := time.NewTicker(s.poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-tick.C:
		}
		snaps, err := s.since(ctx, org, id, last)
		if err != nil {
			return err
		}
		for _, op := range snaps {
			if err := send(op); err != nil {
				return err
			}
			last = op.Version
			if op.State.Terminal() {
				return nil
			}
		}
	}
}

// since returns the snapshots of an operation after version last: one per
// logged transition in between, then the current one. Nothing when the
// version did not move.
func (s *Store) since(ctx context.Context, org, id string, last int64) ([]Operation, error) {
	// Most polls find nothing new: read the version alone first.
	var version int64
	err := s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT version FROM operations WHERE org = ? AND id = ?`), org, id).Scan(&version)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("watch operation %s: %w", id, err)
	}
	if version <= last {
		return nil, nil
	}
	cur, err := s.get(ctx, s.db, org, id)
	if err != nil {
		return nil, err
	}
	if cur.Version <= last {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT version, state, phase, attempt, cancel_requested, event_count, started_at
		FROM operation_transitions WHERE org = ? AND op_id = ? AND version > ? AND version < ? ORDER BY version`), org, id, last, cur.Version)
	if err != nil {
		return nil, fmt.Errorf("read transitions of %s: %w", id, err)
	}
	defer rows.Close()
	var out []Operation
	for rows.Next() {
		var (
			op                    = cur.Operation
			state, cancel         int
			eventCount, startedAt int64
		)
		if err := rows.Scan(&op.Version, &state, &op.Phase, &op.Attempt, &cancel, &eventCount, &startedAt); err != nil {
			return nil, fmt.Errorf("read transitions of %s: %w", id, err)
		}
		op.State, op.CancelRequested, op.Started = State(state), cancel != 0, sqldb.FromMicros(startedAt)
		if !op.State.Terminal() {
			op.Ended, op.Result, op.ErrorCode, op.ErrorMessage = time.Time{}, nil, "", ""
		}
		op.Events = nil
		for _, e := range cur.numbered {
			if e.n <= eventCount && e.n > eventCount-MaxEvents {
				op.Events = append(op.Events, e.Event)
			}
		}
		op.DroppedEventCount = int(eventCount) - len(op.Events)
		out = append(out, op)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read transitions of %s: %w", id, err)
	}
	return append(out, cur.Operation), nil
}

// subscribe registers a wake-up for changes of operation id made through
// s. The channel holds one pending wake-up; more coalesce into it.
func (s *Store) subscribe(id string) chan struct{} {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watchers[id] == nil {
		s.watchers[id] = map[chan struct{}]struct{}{}
	}
	s.watchers[id][ch] = struct{}{}
	return ch
}

func (s *Store) unsubscribe(id string, ch chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.watchers[id], ch)
	if len(s.watchers[id]) == 0 {
		delete(s.watchers, id)
	}
}

// notify wakes the watchers of operation id, after a commit.
func (s *Store) notify(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.watchers[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
