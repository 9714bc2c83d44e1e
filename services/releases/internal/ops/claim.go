package ops

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/slipwayhq/slipway/pkg/sqldb"
)

// Claim leases up to limit runnable operations to owner for leaseFor,
// those of the releases that have been ready longest first. An operation is runnable when it is the first queued or
// running operation of its release and holds no live lease: a new one, or
// one whose worker stopped heartbeating (then Attempt is above 1 and State
// and Phase say how far the previous attempt got). An operation whose lease
// ran out on its last attempt is failed with AbandonedCode instead, and the
// next one of its release can be claimed in the same call.
//
// Claimers on several replicas may race: each operation goes to one of
// them. On PostgreSQL a claimer skips the releases another claimer holds
// locked (SKIP LOCKED) rather than wait for them; on SQLite the
// transaction's write lock serialises claimers. A claim reads a few rows
// per release it looks at, however many operations are queued.
func (s *Store) Claim(ctx context.Context, owner string, limit int, leaseFor time.Duration) ([]Lease, error) {
	if limit < 1 || leaseFor <= 0 {
		return nil, fmt.Errorf("claim operations: limit %d and lease %s must be positive", limit, leaseFor)
	}
	var leases []Lease
	var changed []string
	err := s.inTx(ctx, func(tx querier) error {
		leases, changed = leases[:0], changed[:0]
		now := s.now()
		// A release's hint can be early (its head heartbeat since): that
		// release is looked at, its hint corrected so no round sees it
		// again, and another round fetches more.
		for range maxClaimRounds {
			want := limit - len(leases)
			cands, err := s.claimCandidates(ctx, tx, now, want)
			if err != nil {
				return err
			}
			for _, c := range cands {
				l, ok, failed, err := s.claimTarget(ctx, tx, c.org, c.key, owner, now, leaseFor)
				if err != nil {
					return err
				}
				changed = append(changed, failed...)
				if ok {
					leases = append(leases, l)
					changed = append(changed, l.ID)
				}
			}
			if len(cands) < want || len(leases) == limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, id := range changed {
		s.notify(id)
	}
	return leases, nil
}

// maxClaimRounds bounds the candidate rounds of one Claim; a release with
// an early hint costs one round at most once.
const maxClaimRounds = 64

// idle is the claim_after of a release with an empty queue.
const idle = math.MaxInt64

type targetRef struct{ org, key string }

// claimCandidates returns up to n releases whose hint says their head may
// be claimable, the longest ready first. On PostgreSQL they come locked
// until commit, and releases other transactions hold locked (another
// claimer, an enqueue, a finish) are passed over instead of waited for;
// the statements that follow then read what the previous holder
// committed. SQLite's write lock, taken at BEGIN, serialises everything.
func (s *Store) claimCandidates(ctx context.Context, tx querier, now time.Time, n int) ([]targetRef, error) {
	q := `SELECT org, target FROM operation_targets WHERE claim_after <= ? ORDER BY claim_after LIMIT ?`
	if s.db.Dialect == sqldb.Postgres {
		q += ` FOR UPDATE SKIP LOCKED`
	}
	rows, err := tx.QueryContext(ctx, s.db.Rebind(q), now.UnixMicro(), n)
	if err != nil {
		return nil, fmt.Errorf("claim operations: find runnable releases: %w", err)
	}
	defer rows.Close()
	var out []targetRef
	for rows.Next() {
		var c targetRef
		if err := rows.Scan(&c.org, &c.key); err != nil {
			return nil, fmt.Errorf("claim operations: find runnable releases: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim operations: find runnable releases: %w", err)
	}
	return out, nil
}

// claimTarget leases the head of one locked release's queue when it is
// runnable, failing first the heads whose attempts are used up (their ids
// are in failed), and leaves the release's hint exact.
func (s *Store) claimTarget(ctx context.Context, tx querier, org, key, owner string, now time.Time, leaseFor time.Duration) (l Lease, ok bool, failed []string, err error) {
	hint := func(at int64) error {
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE operation_targets SET claim_after = ? WHERE org = ? AND target = ?`), at, org, key); err != nil {
			return fmt.Errorf("claim operations: update release hint: %w", err)
		}
		return nil
	}
	for {
		var id string
		var attempt int
		var leaseUntil, fence int64
		err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT id, attempt, lease_until, fence FROM operations
			WHERE org = ? AND target = ? AND state IN (1, 2) ORDER BY seq LIMIT 1`), org, key).Scan(&id, &attempt, &leaseUntil, &fence)
		if errors.Is(err, sql.ErrNoRows) {
			return Lease{}, false, failed, hint(idle)
		}
		if err != nil {
			return Lease{}, false, failed, fmt.Errorf("claim operations: read release queue: %w", err)
		}
		if leaseUntil > now.UnixMicro() {
			return Lease{}, false, failed, hint(leaseUntil) // a worker holds it
		}
		if attempt >= s.maxAttempts {
			if err := s.abandon(ctx, tx, id, fence, attempt, now); err != nil {
				return Lease{}, false, failed, err
			}
			failed = append(failed, id)
			continue
		}
		expires := now.Add(leaseFor)
		var token int64
		if err := tx.QueryRowContext(ctx, s.db.Rebind(`UPDATE operation_targets SET fence = fence + 1, claim_after = ?
			WHERE org = ? AND target = ? RETURNING fence`),
			expires.UnixMicro(), org, key).Scan(&token); err != nil {
			return Lease{}, false, failed, fmt.Errorf("claim operations: next fencing token: %w", err)
		}
		// The conditions repeat what was read: the previous holder's
		// heartbeat, which does not lock the release, may have committed
		// since.
		res, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE operations SET fence = ?, lease_owner = ?, lease_until = ?,
			attempt = attempt + 1, version = version + 1, updated_at = ?
			WHERE id = ? AND fence = ? AND state IN (1, 2) AND lease_until <= ?`),
			token, owner, expires.UnixMicro(), now.UnixMicro(), id, fence, now.UnixMicro())
		if err != nil {
			return Lease{}, false, failed, fmt.Errorf("claim operation %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err != nil {
				return Lease{}, false, failed, fmt.Errorf("claim operation %s: %w", id, err)
			}
			continue // it changed under us: look at the head again
		}
		if err := s.logTransition(ctx, tx, id); err != nil {
			return Lease{}, false, failed, err
		}
		op, err := s.get(ctx, tx, org, id)
		if err != nil {
			return Lease{}, false, failed, err
		}
		return Lease{Operation: op.Operation, Token: token, Expires: expires, LastAttempt: op.Attempt >= s.maxAttempts}, true, failed, nil
	}
}

// readyTarget marks a release as possibly claimable from now (unless it
// already was). Called before the operation's row is written, it takes the
// release's lock first, in the order Claim takes them, so the two cannot
// deadlock on PostgreSQL.
func (s *Store) readyTarget(ctx context.Context, tx querier, org, key string, now int64) error {
	_, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE operation_targets SET claim_after = CASE WHEN claim_after > ? THEN ? ELSE claim_after END
		WHERE org = ? AND target = ?`), now, now, org, key)
	if err != nil {
		return fmt.Errorf("mark release ready: %w", err)
	}
	return nil
}

// abandon fails an operation whose lease ran out on its last attempt.
func (s *Store) abandon(ctx context.Context, tx querier, id string, fence int64, attempts int, now time.Time) error {
	msg := fmt.Sprintf("abandoned after %d attempts: each time the worker running it stopped renewing its lease (crashed or cut off)", attempts)
	res, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE operations SET state = ?, error_code = ?, error_message = ?, ended_at = ?,
		lease_owner = '', lease_until = 0, version = version + 1, updated_at = ?
		WHERE id = ? AND fence = ? AND state IN (1, 2) AND lease_until <= ?`),
		int(StateFailed), AbandonedCode, msg, now.UnixMicro(), now.UnixMicro(), id, fence, now.UnixMicro())
	if err != nil {
		return fmt.Errorf("fail abandoned operation %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		// n == 0: the holder heartbeat or finished after all; the caller
		// reads the head again and sees it.
		if err != nil {
			return fmt.Errorf("fail abandoned operation %s: %w", id, err)
		}
		return nil
	}
	return s.logTransition(ctx, tx, id)
}

// Heartbeat extends the lease of token on an operation to leaseFor from
// now, and reports whether cancellation was requested (the worker should
// then stop at its next safe point and Finish with StateCancelled). It
// returns ErrLeaseLost when token is stale or the operation is finished.
// A lease that ran out but was not yet claimed again is extended.
func (s *Store) Heartbeat(ctx context.Context, id string, token int64, leaseFor time.Duration) (cancelRequested bool, err error) {
	if leaseFor <= 0 {
		return false, fmt.Errorf("heartbeat %s: lease %s must be positive", id, leaseFor)
	}
	now := s.now()
	var cancel int
	err = s.write(ctx, func() error {
		return s.db.QueryRowContext(ctx, s.db.Rebind(`UPDATE operations SET lease_until = ?, updated_at = ?
			WHERE id = ? AND fence = ? AND state IN (1, 2) RETURNING cancel_requested`),
			now.Add(leaseFor).UnixMicro(), now.UnixMicro(), id, token).Scan(&cancel)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return false, ErrLeaseLost
	}
	if err != nil {
		return false, fmt.Errorf("heartbeat %s: %w", id, err)
	}
	return cancel != 0, nil
}

// logTransition records the operation as it is now in the transition log
// Watch replays; call it in the transaction of every change of state,
// attempt or cancellation.
func (s *Store) logTransition(ctx context.Context, q querier, id string) error {
	_, err := q.ExecContext(ctx, s.db.Rebind(`INSERT INTO operation_transitions (org, op_id, version, state, phase, attempt, cancel_requested, event_count, started_at)
		SELECT org, id, version, state, phase, attempt, cancel_requested, event_count, started_at FROM operations WHERE id = ?`), id)
	if err != nil {
		return fmt.Errorf("log transition of %s: %w", id, err)
	}
	return nil
}
