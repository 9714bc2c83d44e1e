package ops

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Start marks a claimed operation running and records when it first
// started. Call it before changing anything: a queued operation can still
// be cancelled at once, which makes every later write of its worker fail
// with ErrLeaseLost. Starting an operation a previous attempt already
// started changes nothing.
func (s *Store) Start(ctx context.Context, id string, token int64) error {
	now := s.now().UnixMicro()
	err := s.inTx(ctx, func(tx querier) error {
		res, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE operations SET state = ?,
			started_at = CASE WHEN started_at = 0 THEN ? ELSE started_at END, version = version + 1, updated_at = ?
			WHERE id = ? AND fence = ? AND state = ?`),
			int(StateRunning), now, now, id, token, int(StateQueued))
		if err != nil {
			return fmt.Errorf("start operation %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("start operation %s: %w", id, err)
		} else if n == 1 {
			return s.logTransition(ctx, tx, id)
		}
		var state int
		err = tx.QueryRowContext(ctx, s.db.Rebind(`SELECT state FROM operations WHERE id = ? AND fence = ?`), id, token).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrLeaseLost
		}
		if err != nil {
			return fmt.Errorf("start operation %s: %w", id, err)
		}
		if State(state) != StateRunning {
			return ErrLeaseLost // finished
		}
		return errNoChange
	})
	switch {
	case errors.Is(err, errNoChange):
		return nil
	case err != nil:
		return err
	}
	s.notify(id)
	return nil
}

// errNoChange ends a transaction that found nothing to write.
var errNoChange = errors.New("no change")

// Event appends a progress event to an operation and makes phase its
// current phase. Only the latest MaxEvents events are kept; phase and
// message are cut to MaxEventPhase and MaxEventMessage bytes.
func (s *Store) Event(ctx context.Context, id string, token int64, phase, message string) error {
	phase, message = clean(phase, MaxEventPhase), clean(message, MaxEventMessage)
	now := s.now().UnixMicro()
	err := s.inTx(ctx, func(tx querier) error {
		var n int64
		var org string
		err := tx.QueryRowContext(ctx, s.db.Rebind(`UPDATE operations SET event_count = event_count + 1, phase = ?,
			version = version + 1, updated_at = ?
			WHERE id = ? AND fence = ? AND state IN (1, 2) RETURNING event_count, org`),
			phase, now, id, token).Scan(&n, &org)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrLeaseLost
		}
		if err != nil {
			return fmt.Errorf("append event to %s: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO operation_events (org, op_id, n, at, phase, message) VALUES (?, ?, ?, ?, ?, ?)`),
			org, id, n, now, phase, message); err != nil {
			return fmt.Errorf("append event to %s: %w", id, err)
		}
		if n > MaxEvents {
			if _, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM operation_events WHERE org = ? AND op_id = ? AND n <= ?`), org, id, n-MaxEvents); err != nil {
				return fmt.Errorf("drop old events of %s: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.notify(id)
	return nil
}

// Finish ends an operation in state (StateSucceeded, StateFailed or
// StateCancelled) with its result or error, and frees its release for the
// next operation. errCode is a canonical gRPC code name ("INTERNAL"). A
// stale token, or an operation already finished, is ErrLeaseLost: final
// states are final.
func (s *Store) Finish(ctx context.Context, id string, token int64, state State, result []byte, errCode, errMessage string) error {
	if !state.Terminal() {
		return fmt.Errorf("finish operation %s: %s is not a final state", id, state)
	}
	now := s.now().UnixMicro()
	err := s.inTx(ctx, func(tx querier) error {
		// The next operation of the release is ready once this one ends.
		var org, key string
		err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT org, target FROM operations WHERE id = ?`), id).Scan(&org, &key)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrLeaseLost
		}
		if err != nil {
			return fmt.Errorf("finish operation %s: %w", id, err)
		}
		if err := s.readyTarget(ctx, tx, org, key, now); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE operations SET state = ?, result = ?, error_code = ?, error_message = ?,
			ended_at = ?, lease_owner = '', lease_until = 0, version = version + 1, updated_at = ?
			WHERE id = ? AND fence = ? AND state IN (1, 2)`),
			int(state), nullBytes(result), errCode, clean(errMessage, 4*MaxEventMessage), now, now, id, token)
		if err != nil {
			return fmt.Errorf("finish operation %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("finish operation %s: %w", id, err)
		} else if n == 0 {
			return ErrLeaseLost
		}
		return s.logTransition(ctx, tx, id)
	})
	if err != nil {
		return err
	}
	s.notify(id)
	return nil
}

// RequestCancel asks for an operation of org to stop and returns it as it
// is then. A queued operation is cancelled at once; a running one gets
// CancelRequested, which its worker learns from Heartbeat. A finished one
// is ErrFinished; another org's, ErrNotFound.
func (s *Store) RequestCancel(ctx context.Context, org, id string) (Operation, error) {
	now := s.now().UnixMicro()
	var op scanned
	changed := false
	err := s.inTx(ctx, func(tx querier) error {
		var key string
		var state int
		err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT target, state FROM operations WHERE org = ? AND id = ?`), org, id).Scan(&key, &state)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("cancel operation %s: %w", id, err)
		}
		// Cancelling a queued operation may make the next one the head.
		// (Running never goes back to queued, so a stale read only costs
		// a claimer one look.)
		if State(state) == StateQueued {
			if err := s.readyTarget(ctx, tx, org, key, now); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE operations SET
			state = CASE WHEN state = 1 THEN 5 ELSE state END,
			ended_at = CASE WHEN state = 1 THEN ? ELSE ended_at END,
			lease_owner = CASE WHEN state = 1 THEN '' ELSE lease_owner END,
			lease_until = CASE WHEN state = 1 THEN 0 ELSE lease_until END,
			cancel_requested = 1, version = version + 1, updated_at = ?
			WHERE org = ? AND id = ? AND (state = 1 OR (state = 2 AND cancel_requested = 0))`),
			now, now, org, id)
		if err != nil {
			return fmt.Errorf("cancel operation %s: %w", id, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("cancel operation %s: %w", id, err)
		}
		if changed = n == 1; changed {
			if err := s.logTransition(ctx, tx, id); err != nil {
				return err
			}
		}
		op, err = s.get(ctx, tx, org, id)
		if err != nil {
			return err
		}
		if !changed && op.State.Terminal() {
			return ErrFinished
		}
		return nil
	})
	if err != nil {
		return Operation{}, err
	}
	if changed {
		s.notify(id)
	}
	return op.Operation, nil
}

// clean makes s storable text of at most n bytes: valid UTF-8 without NUL
// (PostgreSQL refuses both), cut at a character boundary.
func clean(s string, n int) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// nullBytes stores an empty result as NULL, so that nil and empty read back
// alike on both engines.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}
