package releases

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/slipwayhq/slipway/pkg/sqldb"
)

// InstanceState is where an instance is: the values of InstanceState in
// slipway.releases.v1.
type InstanceState int

// The states. Deleted is final.
const (
	InstanceLaunching InstanceState = iota + 1
	InstanceRunning
	InstanceFailed
	InstanceDeleting
	InstanceDeleted
)

// Instance is a short-lived release of an application in a namespace of
// its own.
type Instance struct {
	Org, ID             string
	Application, Target string
	Cluster             string // id
	Namespace, Release  string
	State               InstanceState
	Location            string
	TTL                 time.Duration
	LastActivity        time.Time
	Expires             time.Time
	LaunchOp            string
	Launched            time.Time // the launch operation succeeded; zero until then
	DeleteOp            string
	Creator             string
	IdempotencyKey      string
	RequestHash         string
	Created, Deleted    time.Time
}

// ErrInstanceNotFound: no such instance of the application in the org
// (another org's answers the same).
var ErrInstanceNotFound = errors.New("instance not found")

// errInstanceKeyRace: another launch recorded the same idempotency key
// first.
var errInstanceKeyRace = errors.New("instance idempotency key recorded concurrently")

// errInstanceLimit is returned by PutInstance when the org has max live
// instances.
type errInstanceLimit struct{ live, max int }

func (e errInstanceLimit) Error() string {
	return fmt.Sprintf("the organization has %d instances not yet deleted, the most allowed is %d: delete one or let one expire", e.live, e.max)
}

func (e errInstanceLimit) Is(target error) bool { return target == ErrInstanceLimit }

const instanceColumns = `org, id, application, target, cluster, namespace, release_name, state, location, ttl, last_activity_at, expire_at,
	launch_op, launched_at, delete_op, creator, idempotency_key, request_hash, created_at, deleted_at`

func scanInstance(row interface{ Scan(...any) error }) (Instance, error) {
	var (
		i                                                Instance
		state                                            int
		ttl, last, expires, launched, created, deletedAt int64
	)
	err := row.Scan(&i.Org, &i.ID, &i.Application, &i.Target, &i.Cluster, &i.Namespace, &i.Release, &state, &i.Location, &ttl, &last, &expires,
		&i.LaunchOp, &launched, &i.DeleteOp, &i.Creator, &i.IdempotencyKey, &i.RequestHash, &created, &deletedAt)
	if err != nil {
		return Instance{}, err
	}
	i.State, i.TTL = InstanceState(state), time.Duration(ttl)*time.Microsecond
	i.LastActivity, i.Expires, i.Created = sqldb.FromMicros(last), sqldb.FromMicros(expires), sqldb.FromMicros(created)
	if launched != 0 {
		i.Launched = sqldb.FromMicros(launched)
	}
	if deletedAt != 0 {
		i.Deleted = sqldb.FromMicros(deletedAt)
	}
	return i, nil
}

// PutInstance records a new instance, unless the org already has max
// instances not deleted (ErrInstanceLimit) or, with an idempotency key,
// another launch recorded the same key meanwhile (errInstanceKeyRace).
func (l *Ledger) PutInstance(ctx context.Context, i Instance, max int) error {
	return l.db.InTx(ctx, func(tx *sql.Tx) error {
		// The upsert locks the org's row until commit: launches of one org
		// count one after another.
		if _, err := tx.ExecContext(ctx, l.db.Rebind(`INSERT INTO instance_orgs (org, launches) VALUES (?, 1)
			ON CONFLICT (org) DO UPDATE SET launches = instance_orgs.launches + 1`), i.Org); err != nil {
			return fmt.Errorf("record instance: lock the organization's count: %w", err)
		}
		var live int
		if err := tx.QueryRowContext(ctx, l.db.Rebind(`SELECT COUNT(*) FROM instances WHERE org = ? AND state <> ?`), i.Org, int(InstanceDeleted)).Scan(&live); err != nil {
			return fmt.Errorf("record instance: count the organization's instances: %w", err)
		}
		if live >= max {
			return errInstanceLimit{live: live, max: max}
		}
		_, err := tx.ExecContext(ctx, l.db.Rebind(`INSERT INTO instances (`+instanceColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			i.Org, i.ID, i.Application, i.Target, i.Cluster, i.Namespace, i.Release, int(i.State), i.Location, i.TTL.Microseconds(),
			sqldb.Micros(i.LastActivity), sqldb.Micros(i.Expires), i.LaunchOp, micros(i.Launched), i.DeleteOp, i.Creator, i.IdempotencyKey, i.RequestHash,
			sqldb.Micros(i.Created), micros(i.Deleted))
		if sqldb.IsUniqueViolation(err) {
			return errInstanceKeyRace
		}
		if err != nil {
			return fmt.Errorf("record instance: %w", err)
		}
		return nil
	})
}

// storedNow is the time now as the instances table keeps it (to the
// microsecond, UTC), so an answer shows what a later read will.
func storedNow() time.Time { return sqldb.FromMicros(time.Now().UnixMicro()) }

// micros is sqldb.Micros with the zero time as 0 (unset).
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return sqldb.Micros(t)
}

// DropInstance deletes the record of an instance whose launch could not be
// queued.
func (l *Ledger) DropInstance(ctx context.Context, org, id string) error {
	if _, err := l.db.ExecContext(ctx, l.db.Rebind(`DELETE FROM instances WHERE org = ? AND id = ? AND launch_op = ''`), org, id); err != nil {
		return fmt.Errorf("drop instance %s: %w", id, err)
	}
	return nil
}

// GetInstance returns an instance of org.
func (l *Ledger) GetInstance(ctx context.Context, org, id string) (Instance, error) {
	i, err := scanInstance(l.db.QueryRowContext(ctx, l.db.Rebind(`SELECT `+instanceColumns+` FROM instances WHERE org = ? AND id = ?`), org, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Instance{}, fmt.Errorf("%w: %s", ErrInstanceNotFound, id)
	}
	if err != nil {
		return Instance{}, fmt.Errorf("read instance %s: %w", id, err)
	}
	return i, nil
}

// InstanceByKey returns the instance org launched with an idempotency key.
func (l *Ledger) InstanceByKey(ctx context.Context, org, key string) (Instance, bool, error) {
	i, err := scanInstance(l.db.QueryRowContext(ctx, l.db.Rebind(`SELECT `+instanceColumns+` FROM instances WHERE org = ? AND idempotency_key = ?`), org, key))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Instance{}, false, nil
	case err != nil:
		return Instance{}, false, fmt.Errorf("look up instance idempotency key: %w", err)
	}
	return i, true, nil
}

// ForgetInstanceKey frees an expired idempotency key of an instance.
func (l *Ledger) ForgetInstanceKey(ctx context.Context, org, id string) error {
	if _, err := l.db.ExecContext(ctx, l.db.Rebind(`UPDATE instances SET idempotency_key = '' WHERE org = ? AND id = ?`), org, id); err != nil {
		return fmt.Errorf("drop expired instance idempotency key: %w", err)
	}
	return nil
}

// InstanceFilter narrows ListInstances; empty fields match everything.
type InstanceFilter struct {
	Application string
	Target      string
	State       InstanceState
	// DeletedSince hides instances deleted before it (retention).
	DeletedSince time.Time
}

// ListInstances lists org's instances of an application, newest first,
// after the id before ("" for the first page).
func (l *Ledger) ListInstances(ctx context.Context, org string, f InstanceFilter, before string, limit int) ([]Instance, error) {
	where := `org = ? AND application = ? AND NOT (state = ? AND deleted_at < ?)`
	args := []any{org, f.Application, int(InstanceDeleted), sqldb.Micros(f.DeletedSince)}
	if f.Target != "" {
		where += ` AND target = ?`
		args = append(args, f.Target)
	}
	if f.State != 0 {
		where += ` AND state = ?`
		args = append(args, int(f.State))
	}
	if before != "" {
		where += ` AND id < ?`
		args = append(args, before)
	}
	return l.instancesWhere(ctx, where+` ORDER BY id DESC LIMIT ?`, append(args, limit)...)
}

// KeepInstanceAlive records activity at now on a live instance, with a
// new TTL when ttl is not 0. A deleting or deleted instance is returned
// unchanged with ok false.
func (l *Ledger) KeepInstanceAlive(ctx context.Context, org, id string, ttl time.Duration, now time.Time) (i Instance, ok bool, err error) {
	err = l.db.InTx(ctx, func(tx *sql.Tx) error {
		i, err = scanInstance(tx.QueryRowContext(ctx, l.db.Rebind(`SELECT `+instanceColumns+` FROM instances WHERE org = ? AND id = ?`), org, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s", ErrInstanceNotFound, id)
		}
		if err != nil {
			return fmt.Errorf("read instance %s: %w", id, err)
		}
		if i.State == InstanceDeleting || i.State == InstanceDeleted {
			return nil
		}
		if ttl != 0 {
			i.TTL = ttl
		}
		i.LastActivity, i.Expires = now, now.Add(i.TTL)
		if _, err := tx.ExecContext(ctx, l.db.Rebind(`UPDATE instances SET ttl = ?, last_activity_at = ?, expire_at = ? WHERE org = ? AND id = ?`),
			i.TTL.Microseconds(), sqldb.Micros(i.LastActivity), sqldb.Micros(i.Expires), org, id); err != nil {
			return fmt.Errorf("keep instance %s alive: %w", id, err)
		}
		ok = true
		return nil
	})
	return i, ok, err
}

// SetInstanceLaunchOp records the launch operation, unless one is.
func (l *Ledger) SetInstanceLaunchOp(ctx context.Context, org, id, op string) error {
	if _, err := l.db.ExecContext(ctx, l.db.Rebind(`UPDATE instances SET launch_op = ? WHERE org = ? AND id = ? AND launch_op = ''`), op, org, id); err != nil {
		return fmt.Errorf("record the launch operation of instance %s: %w", id, err)
	}
	return nil
}

// InstanceLaunched records a succeeded launch: running at location when
// found, else launching until a location is. Only a launching instance
// changes (one asked to be deleted meanwhile stays deleting).
func (l *Ledger) InstanceLaunched(ctx context.Context, org, id, location string, found bool, now time.Time) error {
	state := InstanceLaunching
	if found {
		state = InstanceRunning
	}
	_, err := l.db.ExecContext(ctx, l.db.Rebind(`UPDATE instances SET state = ?, location = ?,
		launched_at = CASE WHEN launched_at = 0 THEN ? ELSE launched_at END WHERE org = ? AND id = ? AND state = ?`),
		int(state), location, sqldb.Micros(now), org, id, int(InstanceLaunching))
	if err != nil {
		return fmt.Errorf("record the launch of instance %s: %w", id, err)
	}
	return nil
}

// InstanceLaunchFailed marks a launching instance failed.
func (l *Ledger) InstanceLaunchFailed(ctx context.Context, org, id string) error {
	if _, err := l.db.ExecContext(ctx, l.db.Rebind(`UPDATE instances SET state = ? WHERE org = ? AND id = ? AND state = ?`),
		int(InstanceFailed), org, id, int(InstanceLaunching)); err != nil {
		return fmt.Errorf("record the failed launch of instance %s: %w", id, err)
	}
	return nil
}

// InstanceDeleting records the delete operation of a live instance and
// brings its expiry to now at the latest; it reports whether the instance
// was live (an instance already deleting or deleted keeps its operation).
func (l *Ledger) InstanceDeleting(ctx context.Context, org, id, op string, now time.Time) (bool, error) {
	res, err := l.db.ExecContext(ctx, l.db.Rebind(`UPDATE instances SET state = ?, delete_op = ?,
		expire_at = CASE WHEN expire_at > ? THEN ? ELSE expire_at END WHERE org = ? AND id = ? AND state IN (?, ?, ?)`),
		int(InstanceDeleting), op, sqldb.Micros(now), sqldb.Micros(now), org, id, int(InstanceLaunching), int(InstanceRunning), int(InstanceFailed))
	if err != nil {
		return false, fmt.Errorf("record the deletion of instance %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// InstanceDeleted records the success of delete operation op.
func (l *Ledger) InstanceDeleted(ctx context.Context, org, id, op string, now time.Time) error {
	if _, err := l.db.ExecContext(ctx, l.db.Rebind(`UPDATE instances SET state = ?, deleted_at = ?, location = '' WHERE org = ? AND id = ? AND state = ? AND delete_op = ?`),
		int(InstanceDeleted), sqldb.Micros(now), org, id, int(InstanceDeleting), op); err != nil {
		return fmt.Errorf("record the deletion of instance %s: %w", id, err)
	}
	return nil
}

// InstanceDeleteFailed records the failure of delete operation op: the
// instance is failed, and culled again at retry.
func (l *Ledger) InstanceDeleteFailed(ctx context.Context, org, id, op string, retry time.Time) error {
	if _, err := l.db.ExecContext(ctx, l.db.Rebind(`UPDATE instances SET state = ?, expire_at = ? WHERE org = ? AND id = ? AND state = ? AND delete_op = ?`),
		int(InstanceFailed), sqldb.Micros(retry), org, id, int(InstanceDeleting), op); err != nil {
		return fmt.Errorf("record the failed deletion of instance %s: %w", id, err)
	}
	return nil
}

// ExpiredInstances lists, oldest expiry first, at most limit instances of
// every org not deleted nor deleting whose expiry is at now or before.
func (l *Ledger) ExpiredInstances(ctx context.Context, now time.Time, limit int) ([]Instance, error) {
	return l.instancesWhere(ctx, `state IN (?, ?, ?) AND expire_at <= ? ORDER BY expire_at LIMIT ?`,
		int(InstanceLaunching), int(InstanceRunning), int(InstanceFailed), sqldb.Micros(now), limit)
}

// UnsettledInstances lists at most limit instances of every org that are
// launching or deleting and were created before: the culler checks their
// operations and locations.
func (l *Ledger) UnsettledInstances(ctx context.Context, before time.Time, limit int) ([]Instance, error) {
	return l.instancesWhere(ctx, `state IN (?, ?) AND created_at <= ? ORDER BY created_at LIMIT ?`,
		int(InstanceLaunching), int(InstanceDeleting), sqldb.Micros(before), limit)
}

func (l *Ledger) instancesWhere(ctx context.Context, where string, args ...any) ([]Instance, error) {
	rows, err := l.db.QueryContext(ctx, l.db.Rebind(`SELECT `+instanceColumns+` FROM instances WHERE `+where), args...)
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	defer rows.Close()
	var out []Instance
	for rows.Next() {
		i, err := scanInstance(rows)
		if err != nil {
			return nil, fmt.Errorf("list instances: %w", err)
		}
		out = append(out, i)
	}
	return out, rows.Err()
}

// PurgeInstances deletes the records of instances deleted before cutoff
// and returns how many.
func (l *Ledger) PurgeInstances(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := l.db.ExecContext(ctx, l.db.Rebind(`DELETE FROM instances WHERE state = ? AND deleted_at < ?`), int(InstanceDeleted), sqldb.Micros(cutoff))
	if err != nil {
		return 0, fmt.Errorf("purge deleted instances: %w", err)
	}
	return res.RowsAffected()
}
