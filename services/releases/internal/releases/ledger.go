package releases

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/pkg/sqldb"
)

// Status is a revision's status: the values of ReleaseStatus in
// slipway.releases.v1.
type Status int

// The statuses, as Helm names them.
const (
	StatusUnknown Status = iota + 1
	StatusDeployed
	StatusUninstalled
	StatusSuperseded
	StatusFailed
	StatusUninstalling
	StatusPendingInstall
	StatusPendingUpgrade
	StatusPendingRollback
)

// statusOf maps Helm's status names.
func statusOf(helm string) Status {
	switch helm {
	case "deployed":
		return StatusDeployed
	case "uninstalled":
		return StatusUninstalled
	case "superseded":
		return StatusSuperseded
	case "failed":
		return StatusFailed
	case "uninstalling":
		return StatusUninstalling
	case "pending-install":
		return StatusPendingInstall
	case "pending-upgrade":
		return StatusPendingUpgrade
	case "pending-rollback":
		return StatusPendingRollback
	}
	return StatusUnknown
}

// Image is an image a revision runs.
type Image struct {
	Reference string `json:"reference"`
	Digest    string `json:"digest,omitempty"`
}

// Revision is one revision of a release in the ledger.
type Revision struct {
	Org, Cluster, Namespace, Name string
	Revision                      int
	Status                        Status
	Chart, ChartVersion           string
	AppVersion                    string
	ChartSource, ChartDigest      string
	Images                        []Image
	Description                   string
	Application, Target           string
	Operation, Creator            string
	Values, Computed              map[string]any
	Manifest, Notes               string
	Created, Updated              time.Time
}

// ReleaseKey names a release.
type ReleaseKey struct{ Org, Cluster, Namespace, Name string }

// Key is the revision's release.
func (r Revision) Key() ReleaseKey { return ReleaseKey{r.Org, r.Cluster, r.Namespace, r.Name} }

// ErrReleaseNotFound: the ledger has no such release (or revision).
var ErrReleaseNotFound = errors.New("release not found")

//go:embed migrations/*.sql
var ledgerMigrations embed.FS

// Ledger is the record of every revision, on SQLite or PostgreSQL: lists
// and history are served from it, never from the clusters.
type Ledger struct{ db *sqldb.DB }

// OpenLedger opens the ledger at dsn (the releases database, beside the
// operation queue's tables) and brings its schema up to date.
func OpenLedger(ctx context.Context, dsn string) (*Ledger, error) {
	db, err := sqldb.OpenMigratedSet(ctx, dsn, ledgerMigrations, "migrations", "ledger")
	if err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	return &Ledger{db: db}, nil
}

// Close closes the database.
func (l *Ledger) Close() error { return l.db.Close() }

// Ping reports whether the database answers.
func (l *Ledger) Ping(ctx context.Context) error { return l.db.PingContext(ctx) }

func jsonText(v any) (string, error) {
	if v == nil {
		return "{}", nil
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// Record writes revisions of one release as Helm reports them: new ones
// are inserted, known ones get their status, description and update time
// (an upgrade supersedes the previous revision), and the release's head
// becomes its highest revision. What Slipway alone knows of a revision
// (operation, creator, application, images) is kept when a later record
// of it lacks it.
func (l *Ledger) Record(ctx context.Context, revs []Revision) error {
	if len(revs) == 0 {
		return nil
	}
	return l.db.InTx(ctx, func(tx *sql.Tx) error {
		top := revs[0]
		for _, r := range revs {
			if r.Key() != top.Key() {
				return errors.New("record: revisions of several releases")
			}
			if r.Revision > top.Revision {
				top = r
			}
		}
		k := top.Key()
		var (
			hgen, hrev, hstatus int
			exists              = true
		)
		err := tx.QueryRowContext(ctx, l.db.Rebind(`SELECT generation, revision, status FROM heads WHERE org = ? AND cluster = ? AND namespace = ? AND name = ?`),
			k.Org, k.Cluster, k.Namespace, k.Name).Scan(&hgen, &hrev, &hstatus)
		if errors.Is(err, sql.ErrNoRows) {
			exists = false
		} else if err != nil {
			return fmt.Errorf("read head of %s: %w", k.Name, err)
		}
		// Helm counting from 1 again under an uninstalled head is the name
		// installed anew: its revisions must not overwrite the old ones.
		gen := hgen
		if exists && Status(hstatus) == StatusUninstalled && top.Revision <= hrev && top.Status != StatusUninstalled {
			gen++
		}
		headRev, headStatus := top.Revision, top.Status
		if exists && gen == hgen && hrev > top.Revision {
			headRev, headStatus = hrev, Status(hstatus)
		}
		for _, r := range revs {
			if r.Revision == headRev {
				headStatus = r.Status
			}
			vals, err := jsonText(r.Values)
			if err != nil {
				return fmt.Errorf("encode values: %w", err)
			}
			computed, err := jsonText(r.Computed)
			if err != nil {
				return fmt.Errorf("encode values: %w", err)
			}
			images := ""
			if len(r.Images) > 0 {
				b, _ := json.Marshal(r.Images)
				images = string(b)
			}
			_, err = tx.ExecContext(ctx, l.db.Rebind(`INSERT INTO revisions (org, cluster, namespace, name, generation, revision, status, chart, chart_version, app_version,
				chart_source, chart_digest, images, description, application, application_target, operation, creator, values_json, computed_json,
				manifest, notes, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (org, cluster, namespace, name, generation, revision) DO UPDATE SET status = excluded.status, description = excluded.description,
				updated_at = excluded.updated_at,
				operation = CASE WHEN excluded.operation = '' THEN revisions.operation ELSE excluded.operation END,
				creator = CASE WHEN excluded.creator = '' THEN revisions.creator ELSE excluded.creator END,
				application = CASE WHEN excluded.application = '' THEN revisions.application ELSE excluded.application END,
				application_target = CASE WHEN excluded.application_target = '' THEN revisions.application_target ELSE excluded.application_target END,
				images = CASE WHEN excluded.images = '' THEN revisions.images ELSE excluded.images END,
				chart_source = CASE WHEN excluded.chart_source = '' THEN revisions.chart_source ELSE excluded.chart_source END,
				chart_digest = CASE WHEN excluded.chart_digest = '' THEN revisions.chart_digest ELSE excluded.chart_digest END`),
				r.Org, r.Cluster, r.Namespace, r.Name, gen, r.Revision, int(r.Status), r.Chart, r.ChartVersion, r.AppVersion,
				r.ChartSource, r.ChartDigest, images, r.Description, r.Application, r.Target, r.Operation, r.Creator, vals, computed,
				r.Manifest, r.Notes, sqldb.Micros(r.Created), sqldb.Micros(r.Updated))
			if err != nil {
				return fmt.Errorf("record revision %d of %s: %w", r.Revision, r.Name, err)
			}
		}
		_, err = tx.ExecContext(ctx, l.db.Rebind(`INSERT INTO heads (org, cluster, namespace, name, generation, revision, status) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (org, cluster, namespace, name) DO UPDATE SET generation = excluded.generation, revision = excluded.revision, status = excluded.status`),
			k.Org, k.Cluster, k.Namespace, k.Name, gen, headRev, int(headStatus))
		if err != nil {
			return fmt.Errorf("record head of %s: %w", top.Name, err)
		}
		return l.recordImages(ctx, tx, top.Key())
	})
}

// recordImages sets what images the release's head runs: those of its
// head revision while it is deployed, none otherwise.
func (l *Ledger) recordImages(ctx context.Context, tx *sql.Tx, k ReleaseKey) error {
	if _, err := tx.ExecContext(ctx, l.db.Rebind(`DELETE FROM head_images WHERE org = ? AND cluster = ? AND namespace = ? AND name = ?`),
		k.Org, k.Cluster, k.Namespace, k.Name); err != nil {
		return fmt.Errorf("clear head images: %w", err)
	}
	head, err := scanRevision(tx.QueryRowContext(ctx, l.db.Rebind(`SELECT `+revisionColumns+` FROM heads h JOIN revisions r ON r.org = h.org
		AND r.cluster = h.cluster AND r.namespace = h.namespace AND r.name = h.name AND r.generation = h.generation AND r.revision = h.revision
		WHERE h.org = ? AND h.cluster = ? AND h.namespace = ? AND h.name = ?`), k.Org, k.Cluster, k.Namespace, k.Name))
	if err != nil {
		return fmt.Errorf("read head: %w", err)
	}
	if head.Status != StatusDeployed {
		return nil
	}
	seen := map[string]bool{}
	for _, img := range head.Images {
		if img.Digest == "" || seen[img.Digest] {
			continue
		}
		seen[img.Digest] = true
		if _, err := tx.ExecContext(ctx, l.db.Rebind(`INSERT INTO head_images (org, digest, cluster, namespace, name, revision) VALUES (?, ?, ?, ?, ?, ?)`),
			k.Org, img.Digest, k.Cluster, k.Namespace, k.Name, head.Revision); err != nil {
			return fmt.Errorf("record head image: %w", err)
		}
	}
	return nil
}

// DigestRelease is a release whose deployed head runs an image digest.
type DigestRelease struct {
	Cluster, Namespace, Name string
	Revision                 int
	Digest                   string
}

// DigestReleases returns org's releases running any of digests, by
// digest, cluster, namespace and name, after the entry after points at.
func (l *Ledger) DigestReleases(ctx context.Context, org string, digests []string, after DigestRelease, limit int) ([]DigestRelease, error) {
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(digests)), ", ")
	args := []any{org}
	for _, d := range digests {
		args = append(args, d)
	}
	args = append(args, after.Digest, after.Digest, after.Cluster, after.Cluster, after.Namespace, after.Namespace, after.Name, limit)
	rows, err := l.db.QueryContext(ctx, l.db.Rebind(`SELECT digest, cluster, namespace, name, revision FROM head_images WHERE org = ? AND digest IN (`+marks+`)
		AND (digest > ? OR (digest = ? AND (cluster > ? OR (cluster = ? AND (namespace > ? OR (namespace = ? AND name > ?))))))
		ORDER BY digest, cluster, namespace, name LIMIT ?`), args...)
	if err != nil {
		return nil, fmt.Errorf("digest releases: %w", err)
	}
	defer rows.Close()
	var out []DigestRelease
	for rows.Next() {
		var d DigestRelease
		if err := rows.Scan(&d.Digest, &d.Cluster, &d.Namespace, &d.Name, &d.Revision); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Forget removes a release uninstalled without history from the ledger's
// list (its revisions stay, for the record).
func (l *Ledger) Forget(ctx context.Context, k ReleaseKey) error {
	_, err := l.db.ExecContext(ctx, l.db.Rebind(`DELETE FROM heads WHERE org = ? AND cluster = ? AND namespace = ? AND name = ?`),
		k.Org, k.Cluster, k.Namespace, k.Name)
	return err
}

const revisionColumns = `r.org, r.cluster, r.namespace, r.name, r.revision, r.status, r.chart, r.chart_version, r.app_version, r.chart_source,
	r.chart_digest, r.images, r.description, r.application, r.application_target, r.operation, r.creator, r.values_json, r.computed_json,
	r.manifest, r.notes, r.created_at, r.updated_at`

func scanRevision(row interface{ Scan(...any) error }) (Revision, error) {
	var (
		r                      Revision
		status                 int
		images, vals, computed string
		created, updated       int64
	)
	err := row.Scan(&r.Org, &r.Cluster, &r.Namespace, &r.Name, &r.Revision, &status, &r.Chart, &r.ChartVersion, &r.AppVersion, &r.ChartSource,
		&r.ChartDigest, &images, &r.Description, &r.Application, &r.Target, &r.Operation, &r.Creator, &vals, &computed,
		&r.Manifest, &r.Notes, &created, &updated)
	if err != nil {
		return Revision{}, err
	}
	r.Status, r.Created, r.Updated = Status(status), sqldb.FromMicros(created), sqldb.FromMicros(updated)
	if images != "" {
		if err := json.Unmarshal([]byte(images), &r.Images); err != nil {
			return Revision{}, fmt.Errorf("decode images: %w", err)
		}
	}
	if err := json.Unmarshal([]byte(vals), &r.Values); err != nil {
		return Revision{}, fmt.Errorf("decode values: %w", err)
	}
	if err := json.Unmarshal([]byte(computed), &r.Computed); err != nil {
		return Revision{}, fmt.Errorf("decode values: %w", err)
	}
	return r, nil
}

// currentGeneration limits a query of one release's revisions to its
// current generation.
const currentGeneration = ` AND r.generation = (SELECT MAX(g.generation) FROM revisions g WHERE g.org = r.org AND g.cluster = r.cluster
	AND g.namespace = r.namespace AND g.name = r.name)`

// Get returns one revision of a release's current generation (its latest
// when revision is 0).
func (l *Ledger) Get(ctx context.Context, k ReleaseKey, revision int) (Revision, error) {
	q := `SELECT ` + revisionColumns + ` FROM revisions r WHERE r.org = ? AND r.cluster = ? AND r.namespace = ? AND r.name = ?` + currentGeneration
	args := []any{k.Org, k.Cluster, k.Namespace, k.Name}
	if revision > 0 {
		q += ` AND r.revision = ?`
		args = append(args, revision)
	} else {
		q += ` ORDER BY r.revision DESC LIMIT 1`
	}
	r, err := scanRevision(l.db.QueryRowContext(ctx, l.db.Rebind(q), args...))
	if errors.Is(err, sql.ErrNoRows) {
		return Revision{}, ErrReleaseNotFound
	}
	return r, err
}

// ListFilter narrows List.
type ListFilter struct {
	Cluster, Namespace string // "" for every cluster or namespace
	Status             Status // 0 for any
	IncludeUninstalled bool
}

// List returns the latest revision of org's releases by cluster,
// namespace and name, after the release named by after ("" first).
func (l *Ledger) List(ctx context.Context, org string, f ListFilter, after ReleaseKey, limit int) ([]Revision, error) {
	// A row-value comparison lets both engines walk the primary key.
	where := []string{"h.org = ?", "(h.cluster, h.namespace, h.name) > (?, ?, ?)"}
	args := []any{org, after.Cluster, after.Namespace, after.Name}
	if f.Cluster != "" {
		where, args = append(where, "h.cluster = ?"), append(args, f.Cluster)
	}
	if f.Namespace != "" {
		where, args = append(where, "h.namespace = ?"), append(args, f.Namespace)
	}
	if f.Status != 0 {
		where, args = append(where, "h.status = ?"), append(args, int(f.Status))
	} else if !f.IncludeUninstalled {
		where, args = append(where, "h.status <> ?"), append(args, int(StatusUninstalled))
	}
	q := `SELECT ` + revisionColumns + ` FROM heads h JOIN revisions r ON r.org = h.org AND r.cluster = h.cluster AND r.namespace = h.namespace
		AND r.name = h.name AND r.generation = h.generation AND r.revision = h.revision WHERE ` + strings.Join(where, " AND ") + ` ORDER BY h.cluster, h.namespace, h.name LIMIT ?`
	rows, err := l.db.QueryContext(ctx, l.db.Rebind(q), append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	defer rows.Close()
	var out []Revision
	for rows.Next() {
		r, err := scanRevision(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// History returns a release's revisions, newest first, below revision
// before (0: from the newest).
func (l *Ledger) History(ctx context.Context, k ReleaseKey, before, limit int) ([]Revision, error) {
	q := `SELECT ` + revisionColumns + ` FROM revisions r WHERE r.org = ? AND r.cluster = ? AND r.namespace = ? AND r.name = ?` + currentGeneration
	args := []any{k.Org, k.Cluster, k.Namespace, k.Name}
	if before > 0 {
		q += ` AND r.revision < ?`
		args = append(args, before)
	}
	rows, err := l.db.QueryContext(ctx, l.db.Rebind(q+` ORDER BY r.revision DESC LIMIT ?`), append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("release history: %w", err)
	}
	defer rows.Close()
	var out []Revision
	for rows.Next() {
		r, err := scanRevision(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ByApplication returns the revisions made for an application's target,
// newest first, updated before the microsecond before (0: from the newest).
func (l *Ledger) ByApplication(ctx context.Context, org, application, target string, before int64, limit int) ([]Revision, error) {
	q := `SELECT ` + revisionColumns + ` FROM revisions r WHERE r.org = ? AND r.application = ? AND r.application_target = ?`
	args := []any{org, application, target}
	if before > 0 {
		q += ` AND r.updated_at < ?`
		args = append(args, before)
	}
	rows, err := l.db.QueryContext(ctx, l.db.Rebind(q+` ORDER BY r.updated_at DESC, r.revision DESC LIMIT ?`), append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("application releases: %w", err)
	}
	defer rows.Close()
	var out []Revision
	for rows.Next() {
		r, err := scanRevision(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
