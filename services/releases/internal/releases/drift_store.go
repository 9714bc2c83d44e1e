package releases

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/slipwayhq/slipway/pkg/sqldb"
)

// DriftCheck is the outcome of a release's last background drift check,
// or of its last correction.
type DriftCheck struct {
	Revision int
	Drifted  int
	Checked  time.Time
	Since    time.Time // when this revision was first found drifted; zero in sync
	Error    string    // why the last check could not compare
}

// errNoDriftCheck: no check of the release ran yet.
var errNoDriftCheck = errors.New("no drift check yet")

// maxDriftError bounds a recorded check error (it quotes the cluster).
const maxDriftError = 512

// DriftCheck returns the release's last check, errNoDriftCheck when none ran.
func (l *Ledger) DriftCheck(ctx context.Context, k ReleaseKey) (DriftCheck, error) {
	var (
		c              DriftCheck
		checked, since int64
	)
	err := l.db.QueryRowContext(ctx, l.db.Rebind(`SELECT revision, drifted_count, checked_at, drifted_since, error FROM drift_checks
		WHERE org = ? AND cluster = ? AND namespace = ? AND name = ?`), k.Org, k.Cluster, k.Namespace, k.Name).
		Scan(&c.Revision, &c.Drifted, &checked, &since, &c.Error)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return DriftCheck{}, errNoDriftCheck
	case err != nil:
		return DriftCheck{}, fmt.Errorf("read drift check: %w", err)
	}
	c.Checked = sqldb.FromMicros(checked)
	if since != 0 {
		c.Since = sqldb.FromMicros(since)
	}
	return c, nil
}

// RecordDriftCheck records that revision of the release had drifted objects
// at the time at, and reports whether this check is the one that found
// it newly drifted: drifted now, and in sync (or of an older revision) at
// the last check. Of concurrent checks (several replicas) exactly one
// finds a drift newly; a check of a revision older than the recorded one
// changes nothing. It returns the drift's start (zero in sync), the same
// for every check of one drift.
func (l *Ledger) RecordDriftCheck(ctx context.Context, k ReleaseKey, revision, drifted int, at time.Time) (since time.Time, newly bool, err error) {
	key := []any{k.Org, k.Cluster, k.Namespace, k.Name}
	now := sqldb.Micros(at)
	if _, err := l.db.ExecContext(ctx, l.db.Rebind(`INSERT INTO drift_checks (org, cluster, namespace, name, revision, drifted_count, checked_at, drifted_since, error)
		VALUES (?, ?, ?, ?, ?, 0, ?, 0, '') ON CONFLICT (org, cluster, namespace, name) DO NOTHING`), append(key, revision, now)...); err != nil {
		return time.Time{}, false, fmt.Errorf("record drift check: %w", err)
	}
	if drifted > 0 {
		// One statement decides: the row lock (PostgreSQL) or the single
		// writer (SQLite) lets one concurrent check match, not two.
		res, err := l.db.ExecContext(ctx, l.db.Rebind(`UPDATE drift_checks SET drifted_since = ?, revision = ?
			WHERE org = ? AND cluster = ? AND namespace = ? AND name = ? AND revision <= ? AND (drifted_since = 0 OR revision < ?)`),
			append(append([]any{now, revision}, key...), revision, revision)...)
		if err != nil {
			return time.Time{}, false, fmt.Errorf("record drift check: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return time.Time{}, false, fmt.Errorf("record drift check: %w", err)
		}
		newly = n == 1
	}
	_, err = l.db.ExecContext(ctx, l.db.Rebind(`UPDATE drift_checks SET revision = ?, drifted_count = ?, checked_at = ?, error = '',
		drifted_since = CASE WHEN ? = 0 THEN 0 ELSE drifted_since END
		WHERE org = ? AND cluster = ? AND namespace = ? AND name = ? AND revision <= ?`),
		append(append([]any{revision, drifted, now, drifted}, key...), revision)...)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("record drift check: %w", err)
	}
	c, err := l.DriftCheck(ctx, k)
	if err != nil {
		return time.Time{}, false, err
	}
	return c.Since, newly && c.Revision == revision, nil
}

// RecordDriftError records that a check of the release could not compare;
// what the last check that could found stays.
func (l *Ledger) RecordDriftError(ctx context.Context, k ReleaseKey, revision int, at time.Time, msg string) error {
	if len(msg) > maxDriftError {
		msg = msg[:maxDriftError-3] + "..."
	}
	_, err := l.db.ExecContext(ctx, l.db.Rebind(`INSERT INTO drift_checks (org, cluster, namespace, name, revision, drifted_count, checked_at, drifted_since, error)
		VALUES (?, ?, ?, ?, ?, 0, ?, 0, ?) ON CONFLICT (org, cluster, namespace, name) DO UPDATE SET checked_at = excluded.checked_at, error = excluded.error`),
		k.Org, k.Cluster, k.Namespace, k.Name, revision, sqldb.Micros(at), msg)
	if err != nil {
		return fmt.Errorf("record drift check: %w", err)
	}
	return nil
}

// deployedHead is a release whose latest revision is deployed.
type deployedHead struct {
	ReleaseKey
	Revision int
}

// deployedHeads lists every org's releases whose latest revision is
// deployed, by org, cluster, namespace and name.
func (l *Ledger) deployedHeads(ctx context.Context) ([]deployedHead, error) {
	rows, err := l.db.QueryContext(ctx, l.db.Rebind(`SELECT org, cluster, namespace, name, revision FROM heads WHERE status = ?
		ORDER BY org, cluster, namespace, name`), int(StatusDeployed))
	if err != nil {
		return nil, fmt.Errorf("list deployed releases: %w", err)
	}
	defer rows.Close()
	var out []deployedHead
	for rows.Next() {
		var h deployedHead
		if err := rows.Scan(&h.Org, &h.Cluster, &h.Namespace, &h.Name, &h.Revision); err != nil {
			return nil, fmt.Errorf("list deployed releases: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}
