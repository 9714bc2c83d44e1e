package catalog

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/pkg/sqldb"
	"github.com/slipwayhq/slipway/services/catalog/internal/index"
)

// SourceKind is how a source is fetched.
type SourceKind int

// The source kinds, as stored.
const (
	SourceHTTP SourceKind = iota + 1
	SourceOCI
)

// Source is one fetched index: a URL with the login that fetches it,
// shared by every repository with the same key (see sourceKey).
type Source struct {
	ID, Key, URL      string
	Kind              SourceKind
	Org, CredentialID string // the login's owner; empty when anonymous
	OCICharts         []string
	Interval          time.Duration
	// Validators of the last good index: a fetch that matches them is
	// not parsed again.
	ETag, LastModified, Checksum string
	Sync                         SyncStatus
	NextSync                     time.Time
}

// Synced is the outcome of a sync, written by FinishSync.
type Synced struct {
	// Charts replaces the source's index when not nil.
	Charts                       []index.Chart
	ETag, LastModified, Checksum string
	Skipped                      int
	Err                          error // the sync failed: keep the old index
}

// Store persists the catalog. Every method taking an org is scoped by it.
type Store interface {
	// InsertRepository records r with src as its source, or with the
	// existing source of the same key. ErrRepositoryExists when the name
	// is taken.
	InsertRepository(ctx context.Context, r Repository, src Source) error
	GetRepository(ctx context.Context, org, name string) (Repository, error)
	ListRepositories(ctx context.Context, org, credentialID, after string, limit int) ([]Repository, error)
	// UpdateRepository stores r's settings; when src's key differs from
	// r's current source, r moves to src (or the existing source of that
	// key), and a source left without repositories is deleted.
	UpdateRepository(ctx context.Context, r Repository, src Source) error
	// DeleteRepository removes a repository (and its source when no other
	// repository uses it), refusing with *usedError while applications
	// use it.
	DeleteRepository(ctx context.Context, org, name string) error
	// RequestSync makes a source due now.
	RequestSync(ctx context.Context, sourceID string, now time.Time) error

	// ClaimDue leases up to limit due sources to owner until leaseUntil,
	// marking them syncing.
	ClaimDue(ctx context.Context, owner string, now, leaseUntil time.Time, limit int) ([]Source, error)
	// FinishSync records a sync's outcome of a source owner holds.
	FinishSync(ctx context.Context, sourceID, owner string, res Synced, now time.Time) error
	// SourceVersions returns every stored version of a source by chart.
	SourceVersions(ctx context.Context, sourceID string) (map[string][]index.Version, error)

	SearchCharts(ctx context.Context, org string, q ChartQuery, after chartCursor, limit int) ([]Chart, error)
	GetChart(ctx context.Context, org, repository, chart string) (Chart, error)
	ListVersions(ctx context.Context, org, repository, chart string, after, limit int) ([]ChartVersion, error)
	GetVersion(ctx context.Context, org, repository, chart, version string) (ChartVersion, error)
	// SetVersionDigest records an archive's digest for a version the index
	// gave none for.
	SetVersionDigest(ctx context.Context, sourceID, chart, version, digest string) error
	// GetArchive returns an archive stored in scope ("" for archives
	// fetched anonymously, else an org), or errArchiveNotFound.
	GetArchive(ctx context.Context, scope, digest string) ([]byte, error)
	PutArchive(ctx context.Context, scope, digest string, data []byte, now time.Time) error

	InsertApplication(ctx context.Context, app Application) error
	GetApplication(ctx context.Context, org, name string) (Application, error)
	ListApplications(ctx context.Context, org string, f ApplicationFilter, after string, limit int) ([]Application, error)
	// ReplaceApplication stores app when the stored etag is wantEtag (any
	// when empty): ErrEtagMismatch otherwise.
	ReplaceApplication(ctx context.Context, app Application, wantEtag string) error
	DeleteApplication(ctx context.Context, org, name string) error
}

//go:embed migrations/*.sql
var migrations embed.FS

// SQLStore is the Store on SQLite or PostgreSQL.
type SQLStore struct{ db *sqldb.DB }

var _ Store = (*SQLStore)(nil)

// OpenStore opens the database at dsn and brings its schema up to date.
func OpenStore(ctx context.Context, dsn string) (*SQLStore, error) {
	db, err := sqldb.OpenMigrated(ctx, dsn, migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("open catalog database: %w", err)
	}
	return &SQLStore{db: db}, nil
}

// Close closes the database.
func (s *SQLStore) Close() error { return s.db.Close() }

// Ping reports whether the database answers (readiness).
func (s *SQLStore) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

func joinLines(v []string) string { return strings.Join(v, "\n") }

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

const repositoryColumns = `r.org, r.name, r.url, r.credential_id, r.oci_charts, r.interval_us, r.source_id, r.creator, r.created_at, r.updated_at,
	s.state, s.last_sync_at, s.last_success_at, s.chart_count, s.skipped_versions, s.last_error`

const repositoryFrom = ` FROM repositories r JOIN sources s ON s.id = r.source_id`

type scanner interface{ Scan(dest ...any) error }

func scanRepository(row scanner) (Repository, error) {
	var (
		r                                      Repository
		charts                                 string
		interval, created, updated, last, okAt int64
		state                                  int
	)
	err := row.Scan(&r.Org, &r.Name, &r.URL, &r.CredentialID, &charts, &interval, &r.SourceID, &r.Creator, &created, &updated,
		&state, &last, &okAt, &r.Sync.ChartCount, &r.Sync.SkippedVersions, &r.Sync.LastError)
	if err != nil {
		return Repository{}, err
	}
	r.OCICharts = splitLines(charts)
	r.SyncInterval = time.Duration(interval) * time.Microsecond
	r.Created, r.Updated = sqldb.FromMicros(created), sqldb.FromMicros(updated)
	r.Sync.State, r.Sync.LastSync, r.Sync.LastSuccess = SyncState(state), sqldb.FromMicros(last), sqldb.FromMicros(okAt)
	return r, nil
}

// attachSource returns the id of the source with src's key, inserting src
// when there is none, and shortens its interval to src's when shorter.
func (s *SQLStore) attachSource(ctx context.Context, tx *sql.Tx, src Source) (string, error) {
	var id string
	var interval int64
	err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT id, interval_us FROM sources WHERE source_key = ?`), src.Key).Scan(&id, &interval)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO sources (id, source_key, kind, url, org, credential_id, oci_charts, interval_us, state, next_sync_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			src.ID, src.Key, int(src.Kind), src.URL, src.Org, src.CredentialID, joinLines(src.OCICharts), src.Interval.Microseconds(), int(SyncPending), sqldb.Micros(src.NextSync))
		if err != nil {
			return "", fmt.Errorf("insert source: %w", err)
		}
		return src.ID, nil
	case err != nil:
		return "", fmt.Errorf("find source: %w", err)
	}
	if src.Interval.Microseconds() < interval {
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE sources SET interval_us = ? WHERE id = ?`), src.Interval.Microseconds(), id); err != nil {
			return "", fmt.Errorf("update source interval: %w", err)
		}
	}
	return id, nil
}

// detachSource deletes a source no repository uses any more, with its
// index, or recomputes its interval from the repositories left.
func (s *SQLStore) detachSource(ctx context.Context, tx *sql.Tx, id string) error {
	var n int
	var shortest sql.NullInt64
	if err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT COUNT(*), MIN(interval_us) FROM repositories WHERE source_id = ?`), id).Scan(&n, &shortest); err != nil {
		return fmt.Errorf("count source users: %w", err)
	}
	if n > 0 {
		_, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE sources SET interval_us = ? WHERE id = ?`), shortest.Int64, id)
		return err
	}
	for _, q := range []string{`DELETE FROM chart_versions WHERE source_id = ?`, `DELETE FROM charts WHERE source_id = ?`, `DELETE FROM sources WHERE id = ?`} {
		if _, err := tx.ExecContext(ctx, s.db.Rebind(q), id); err != nil {
			return fmt.Errorf("delete source: %w", err)
		}
	}
	return nil
}

func (s *SQLStore) InsertRepository(ctx context.Context, r Repository, src Source) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		id, err := s.attachSource(ctx, tx, src)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO repositories (org, name, url, credential_id, oci_charts, interval_us, source_id, creator, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			r.Org, r.Name, r.URL, r.CredentialID, joinLines(r.OCICharts), r.SyncInterval.Microseconds(), id, r.Creator, sqldb.Micros(r.Created), sqldb.Micros(r.Updated))
		if sqldb.IsUniqueViolation(err) {
			return ErrRepositoryExists
		}
		return err
	})
}

func (s *SQLStore) GetRepository(ctx context.Context, org, name string) (Repository, error) {
	r, err := scanRepository(s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT `+repositoryColumns+repositoryFrom+` WHERE r.org = ? AND r.name = ?`), org, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Repository{}, ErrRepositoryNotFound
	}
	if err != nil {
		return Repository{}, fmt.Errorf("get repository: %w", err)
	}
	return r, nil
}

func (s *SQLStore) ListRepositories(ctx context.Context, org, credentialID, after string, limit int) ([]Repository, error) {
	q := `SELECT ` + repositoryColumns + repositoryFrom + ` WHERE r.org = ? AND r.name > ?`
	args := []any{org, after}
	if credentialID != "" {
		q += ` AND r.credential_id = ?`
		args = append(args, credentialID)
	}
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(q+` ORDER BY r.name LIMIT ?`), append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	defer rows.Close()
	var out []Repository
	for rows.Next() {
		r, err := scanRepository(rows)
		if err != nil {
			return nil, fmt.Errorf("list repositories: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s *SQLStore) UpdateRepository(ctx context.Context, r Repository, src Source) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		var old string
		err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT source_id FROM repositories WHERE org = ? AND name = ?`), r.Org, r.Name).Scan(&old)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrRepositoryNotFound
		}
		if err != nil {
			return err
		}
		id, err := s.attachSource(ctx, tx, src)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE repositories SET url = ?, credential_id = ?, oci_charts = ?, interval_us = ?, source_id = ?, updated_at = ?
			WHERE org = ? AND name = ?`),
			r.URL, r.CredentialID, joinLines(r.OCICharts), r.SyncInterval.Microseconds(), id, sqldb.Micros(r.Updated), r.Org, r.Name); err != nil {
			return fmt.Errorf("update repository: %w", err)
		}
		if err := s.detachSource(ctx, tx, old); err != nil {
			return err
		}
		// An update asks for a sync, as the API says.
		_, err = tx.ExecContext(ctx, s.db.Rebind(`UPDATE sources SET next_sync_at = ? WHERE id = ?`), sqldb.Micros(r.Updated), id)
		return err
	})
}

func (s *SQLStore) DeleteRepository(ctx context.Context, org, name string) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, s.db.Rebind(`SELECT name FROM applications WHERE org = ? AND repository = ? ORDER BY name LIMIT 6`), org, name)
		if err != nil {
			return err
		}
		var used []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return err
			}
			used = append(used, n)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		if len(used) > 0 {
			return &usedError{names: used}
		}
		var src string
		err = tx.QueryRowContext(ctx, s.db.Rebind(`SELECT source_id FROM repositories WHERE org = ? AND name = ?`), org, name).Scan(&src)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrRepositoryNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM repositories WHERE org = ? AND name = ?`), org, name); err != nil {
			return fmt.Errorf("delete repository: %w", err)
		}
		return s.detachSource(ctx, tx, src)
	})
}

func (s *SQLStore) RequestSync(ctx context.Context, sourceID string, now time.Time) error {
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE sources SET next_sync_at = ?,
		state = CASE WHEN state = ? THEN state ELSE ? END WHERE id = ?`), sqldb.Micros(now), int(SyncSyncing), int(SyncPending), sourceID)
	return err
}

const sourceColumns = `id, source_key, kind, url, org, credential_id, oci_charts, interval_us, etag, last_modified, checksum,
	state, last_sync_at, last_success_at, chart_count, skipped_versions, last_error, next_sync_at`

func scanSource(row scanner) (Source, error) {
	var (
		src                        Source
		kind, state                int
		charts                     string
		interval, last, okAt, next int64
	)
	err := row.Scan(&src.ID, &src.Key, &kind, &src.URL, &src.Org, &src.CredentialID, &charts, &interval, &src.ETag, &src.LastModified, &src.Checksum,
		&state, &last, &okAt, &src.Sync.ChartCount, &src.Sync.SkippedVersions, &src.Sync.LastError, &next)
	if err != nil {
		return Source{}, err
	}
	src.Kind, src.OCICharts, src.Interval = SourceKind(kind), splitLines(charts), time.Duration(interval)*time.Microsecond
	src.Sync.State, src.Sync.LastSync, src.Sync.LastSuccess, src.NextSync = SyncState(state), sqldb.FromMicros(last), sqldb.FromMicros(okAt), sqldb.FromMicros(next)
	return src, nil
}

func (s *SQLStore) ClaimDue(ctx context.Context, owner string, now, leaseUntil time.Time, limit int) ([]Source, error) {
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT id FROM sources WHERE next_sync_at <= ? AND lease_until < ? ORDER BY next_sync_at LIMIT ?`),
		sqldb.Micros(now), sqldb.Micros(now), limit)
	if err != nil {
		return nil, fmt.Errorf("find due sources: %w", err)
	}
	var due []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		due = append(due, id)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}
	var out []Source
	for _, id := range due {
		// The lease is taken by whoever updates first: another replica
		// that read the same row finds lease_until in the future.
		res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE sources SET lease_owner = ?, lease_until = ?, state = ?, next_sync_at = ? + interval_us
			WHERE id = ? AND lease_until < ? AND next_sync_at <= ?`),
			owner, sqldb.Micros(leaseUntil), int(SyncSyncing), sqldb.Micros(now), id, sqldb.Micros(now), sqldb.Micros(now))
		if err != nil {
			return nil, fmt.Errorf("lease source: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			continue
		}
		src, err := scanSource(s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT `+sourceColumns+` FROM sources WHERE id = ?`), id))
		if errors.Is(err, sql.ErrNoRows) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("read source: %w", err)
		}
		out = append(out, src)
	}
	return out, nil
}

func (s *SQLStore) FinishSync(ctx context.Context, sourceID, owner string, res Synced, now time.Time) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		// next_sync_at was set when the lease was taken, or lowered since
		// by a sync request, which then runs as soon as this one ends.
		var held int
		err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT COUNT(*) FROM sources WHERE id = ? AND lease_owner = ?`), sourceID, owner).Scan(&held)
		if err != nil || held == 0 {
			return err // none held: deleted, or the lease was lost and taken over
		}
		if res.Err != nil {
			_, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE sources SET state = ?, last_sync_at = ?, last_error = ?, lease_owner = '', lease_until = 0 WHERE id = ?`),
				int(SyncFailed), sqldb.Micros(now), res.Err.Error(), sourceID)
			return err
		}
		if res.Charts != nil {
			if err := s.replaceIndex(ctx, tx, sourceID, res.Charts); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, s.db.Rebind(`UPDATE sources SET chart_count = ?, skipped_versions = ? WHERE id = ?`), len(res.Charts), res.Skipped, sourceID)
			if err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, s.db.Rebind(`UPDATE sources SET state = ?, last_sync_at = ?, last_success_at = ?, last_error = '', etag = ?, last_modified = ?, checksum = ?,
			lease_owner = '', lease_until = 0 WHERE id = ?`),
			int(SyncSynced), sqldb.Micros(now), sqldb.Micros(now), res.ETag, res.LastModified, res.Checksum, sourceID)
		return err
	})
}
