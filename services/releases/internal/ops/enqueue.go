package ops

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/slipwayhq/slipway/pkg/sqldb"
	"github.com/slipwayhq/slipway/pkg/validate"
)

// errKeyRace: another transaction recorded the same idempotency key first.
var errKeyRace = errors.New("idempotency key recorded concurrently")

// Enqueue records a new queued operation and returns it, with the trace
// context of ctx's span (see Operation.TraceContext). With an
// idempotency key already used for the same request it returns that
// operation instead, and replayed is true; used for another request, it
// returns ErrIdempotencyMismatch. With NoQueue, it returns ErrBusy when the
// release has a queued or running operation. Missing fields are a
// *validate.FieldError.
func (s *Store) Enqueue(ctx context.Context, req EnqueueRequest) (op Operation, replayed bool, err error) {
	if err := req.validate(); err != nil {
		return Operation{}, false, err
	}
	hash := requestHash(req)
	// Two replicas can both find the key free; the loser's insert fails on
	// the primary key once the winner commits, and a second pass finds it.
	for range 3 {
		op, replayed, err = s.enqueue(ctx, req, hash)
		if !errors.Is(err, errKeyRace) {
			break
		}
	}
	if err != nil {
		return Operation{}, false, err
	}
	if !replayed {
		s.notify(op.ID)
	}
	return op, replayed, nil
}

func (s *Store) enqueue(ctx context.Context, req EnqueueRequest, hash string) (op Operation, replayed bool, err error) {
	key := targetKey(req.Target)
	err = s.inTx(ctx, func(tx querier) error {
		if req.IdempotencyKey != "" {
			existing, found, err := s.lookupKey(ctx, tx, req, hash)
			if err != nil {
				return err
			}
			if found {
				op, replayed = existing, true
				return nil
			}
		}
		// The upsert locks the release's row until commit: enqueues of one
		// release take their places one after another, and the busy check
		// below cannot race another enqueue.
		var seq int64
		if err := tx.QueryRowContext(ctx, s.db.Rebind(`INSERT INTO operation_targets (org, target, enqueued, claim_after) VALUES (?, ?, 1, ?)
			ON CONFLICT (org, target) DO UPDATE SET enqueued = operation_targets.enqueued + 1,
				claim_after = CASE WHEN operation_targets.claim_after = ? THEN excluded.claim_after ELSE operation_targets.claim_after END
			RETURNING enqueued`),
			req.Org, key, s.now().UnixMicro(), int64(idle)).Scan(&seq); err != nil {
			return fmt.Errorf("enqueue operation: take a place in the queue: %w", err)
		}
		// The id and time are taken with the place held, so operations of
		// one release are ordered the same by id, time and place.
		now := s.now()
		id, err := s.newID()
		if err != nil {
			return err
		}
		if req.IdempotencyKey != "" {
			if err := s.recordKey(ctx, tx, req, hash, id, now.UnixMicro()); err != nil {
				return err
			}
		}
		if req.NoQueue {
			var busy string
			err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT id FROM operations WHERE org = ? AND target = ? AND state IN (1, 2) ORDER BY seq LIMIT 1`),
				req.Org, key).Scan(&busy)
			if err == nil {
				return fmt.Errorf("%w: operation %s", ErrBusy, busy)
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("enqueue operation: check the release's queue: %w", err)
			}
		}
		payload := req.Payload
		if payload == nil {
			payload = []byte{}
		}
		t := req.Target
		parent, state := traceContext(ctx)
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO operations (id, org, kind, target, cluster, namespace, release_name,
			application, application_target, instance, seq, dry_run, payload, idempotency_key, creator, state, version, created_at, updated_at,
			traceparent, tracestate)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)`),
			id, req.Org, string(req.Kind), key, t.Cluster, t.Namespace, t.Release, t.Application, t.ApplicationTarget, t.Instance,
			seq, boolInt(req.DryRun), payload, req.IdempotencyKey, req.Creator, int(StateQueued), now.UnixMicro(), now.UnixMicro(),
			parent, state); err != nil {
			return fmt.Errorf("enqueue operation: %w", err)
		}
		if err := s.logTransition(ctx, tx, id); err != nil {
			return err
		}
		got, err := s.get(ctx, tx, req.Org, id)
		op = got.Operation
		return err
	})
	return op, replayed, err
}

// lookupKey looks the request's idempotency key up: a live key returns its
// operation (found) or ErrIdempotencyMismatch; an expired one, or one whose
// operation is gone, is dropped so that recordKey can take it.
func (s *Store) lookupKey(ctx context.Context, tx querier, req EnqueueRequest, hash string) (Operation, bool, error) {
	var opID, oldHash string
	var created int64
	err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT op_id, request_hash, created_at FROM operation_idempotency_keys WHERE org = ? AND idem_key = ?`),
		req.Org, req.IdempotencyKey).Scan(&opID, &oldHash, &created)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Operation{}, false, nil
	case err != nil:
		return Operation{}, false, fmt.Errorf("enqueue operation: look up idempotency key: %w", err)
	case created > s.now().UnixMicro()-s.keyTTL.Microseconds():
		if oldHash != hash {
			return Operation{}, false, ErrIdempotencyMismatch
		}
		op, err := s.get(ctx, tx, req.Org, opID)
		if err == nil {
			return op.Operation, true, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return Operation{}, false, err
		}
		// The operation is gone (retention): the key protects nothing.
	}
	if _, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM operation_idempotency_keys WHERE org = ? AND idem_key = ?`), req.Org, req.IdempotencyKey); err != nil {
		return Operation{}, false, fmt.Errorf("enqueue operation: drop expired idempotency key: %w", err)
	}
	return Operation{}, false, nil
}

// recordKey records the request's idempotency key for operation id; a key
// recorded meanwhile by another transaction is errKeyRace (Enqueue tries
// again, and then finds it).
func (s *Store) recordKey(ctx context.Context, tx querier, req EnqueueRequest, hash, id string, now int64) error {
	_, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO operation_idempotency_keys (org, idem_key, op_id, request_hash, created_at) VALUES (?, ?, ?, ?, ?)`),
		req.Org, req.IdempotencyKey, id, hash, now)
	if sqldb.IsUniqueViolation(err) {
		return errKeyRace
	}
	if err != nil {
		return fmt.Errorf("enqueue operation: record idempotency key: %w", err)
	}
	return nil
}

// DeleteExpiredKeys deletes the idempotency keys older than their lifetime
// and returns how many. The operations they named stay.
func (s *Store) DeleteExpiredKeys(ctx context.Context) (int64, error) {
	cutoff := s.now().Add(-s.keyTTL).UnixMicro()
	var res sql.Result
	err := s.write(ctx, func() (err error) {
		res, err = s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM operation_idempotency_keys WHERE created_at <= ?`), cutoff)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("delete expired idempotency keys: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete expired idempotency keys: %w", err)
	}
	return n, nil
}

func (r EnqueueRequest) validate() error {
	for _, f := range []struct{ name, v string }{
		{"org", r.Org},
		{"kind", string(r.Kind)},
		{"target.cluster", r.Target.Cluster},
		{"target.namespace", r.Target.Namespace},
		{"target.release", r.Target.Release},
		{"creator", r.Creator},
	} {
		if f.v == "" {
			return validate.Field(f.name, "must be set")
		}
	}
	return nil
}

// requestHash fingerprints what an idempotency key promises to repeat:
// everything about the request but who sent it and how it wants queueing.
// Each field is length-prefixed, so no two requests share an encoding.
func requestHash(r EnqueueRequest) string {
	var b []byte
	for _, f := range []string{string(r.Kind), r.Target.Cluster, r.Target.Namespace, r.Target.Release,
		r.Target.Application, r.Target.ApplicationTarget, r.Target.Instance} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	b = append(b, byte(boolInt(r.DryRun)))
	b = binary.AppendUvarint(b, uint64(len(r.Payload)))
	h := sha256.New()
	h.Write(b)
	h.Write(r.Payload)
	return hex.EncodeToString(h.Sum(nil))
}

// Replay returns the operation req's idempotency key already names, when
// the key is live and was used for this same request (found); a key used
// for another request is ErrIdempotencyMismatch. It writes nothing: a
// caller that checks preconditions before enqueueing (the release exists,
// or not) asks it first, so a retry of a request that already ran gets its
// operation back instead of the precondition's refusal.
func (s *Store) Replay(ctx context.Context, req EnqueueRequest) (op Operation, found bool, err error) {
	if req.IdempotencyKey == "" {
		return Operation{}, false, nil
	}
	var opID, oldHash string
	var created int64
	err = s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT op_id, request_hash, created_at FROM operation_idempotency_keys WHERE org = ? AND idem_key = ?`),
		req.Org, req.IdempotencyKey).Scan(&opID, &oldHash, &created)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Operation{}, false, nil
	case err != nil:
		return Operation{}, false, fmt.Errorf("look up idempotency key: %w", err)
	case created <= s.now().UnixMicro()-s.keyTTL.Microseconds():
		return Operation{}, false, nil
	case oldHash != requestHash(req):
		return Operation{}, false, ErrIdempotencyMismatch
	}
	op, err = s.Get(ctx, req.Org, opID)
	if errors.Is(err, ErrNotFound) {
		return Operation{}, false, nil
	}
	return op, err == nil, err
}
