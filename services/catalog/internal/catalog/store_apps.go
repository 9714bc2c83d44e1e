package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/slipwayhq/slipway/pkg/sqldb"
)

// appSpec is the stored JSON of an application's settings.
type appSpec struct {
	Chart          ChartRef       `json:"chart"`
	Image          string         `json:"image,omitempty"`
	ImageValuesKey string         `json:"image_values_key"`
	Values         map[string]any `json:"values,omitempty"`
	Targets        []targetSpec   `json:"targets,omitempty"`
	Probes         *Probes        `json:"probes,omitempty"`
}

type targetSpec struct {
	Name      string         `json:"name"`
	Cluster   string         `json:"cluster"`
	Namespace string         `json:"namespace"`
	Values    map[string]any `json:"values,omitempty"`
}

func encodeSpec(app Application) (string, error) {
	spec := appSpec{Chart: app.Chart, Image: app.Image, ImageValuesKey: app.ImageValuesKey, Values: app.Values}
	if app.Probes != (Probes{}) {
		spec.Probes = &app.Probes
	}
	for _, t := range app.Targets {
		spec.Targets = append(spec.Targets, targetSpec{Name: t.Name, Cluster: t.Cluster, Namespace: t.Namespace, Values: t.Values})
	}
	b, err := json.Marshal(spec)
	return string(b), err
}

const applicationColumns = `a.org, a.name, a.spec, a.etag, a.creator, a.created_at, a.updated_at`

func scanApplication(row scanner) (Application, error) {
	var (
		app              Application
		spec             string
		created, updated int64
	)
	if err := row.Scan(&app.Org, &app.Name, &spec, &app.Etag, &app.Creator, &created, &updated); err != nil {
		return Application{}, err
	}
	var s appSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		return Application{}, fmt.Errorf("decode application %s: %w", app.Name, err)
	}
	app.Chart, app.Image, app.ImageValuesKey, app.Values = s.Chart, s.Image, s.ImageValuesKey, s.Values
	if s.Probes != nil {
		app.Probes = *s.Probes
	}
	for _, t := range s.Targets {
		app.Targets = append(app.Targets, Target{Name: t.Name, Cluster: t.Cluster, Namespace: t.Namespace, Values: t.Values})
	}
	app.Created, app.Updated = sqldb.FromMicros(created), sqldb.FromMicros(updated)
	return app, nil
}

// writeClusters replaces the application's rows of application_clusters.
func (s *SQLStore) writeClusters(ctx context.Context, tx *sql.Tx, app Application) error {
	if _, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM application_clusters WHERE org = ? AND application = ?`), app.Org, app.Name); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, t := range app.Targets {
		if seen[t.Cluster] {
			continue
		}
		seen[t.Cluster] = true
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO application_clusters (org, application, cluster) VALUES (?, ?, ?)`), app.Org, app.Name, t.Cluster); err != nil {
			return fmt.Errorf("record application cluster: %w", err)
		}
	}
	return nil
}

func (s *SQLStore) InsertApplication(ctx context.Context, app Application) error {
	spec, err := encodeSpec(app)
	if err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO applications (org, name, repository, chart, image, spec, etag, creator, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			app.Org, app.Name, app.Chart.Repository, app.Chart.Chart, app.Image, spec, app.Etag, app.Creator, sqldb.Micros(app.Created), sqldb.Micros(app.Updated))
		if sqldb.IsUniqueViolation(err) {
			return ErrApplicationExists
		}
		if err != nil {
			return err
		}
		return s.writeClusters(ctx, tx, app)
	})
}

func (s *SQLStore) GetApplication(ctx context.Context, org, name string) (Application, error) {
	app, err := scanApplication(s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT `+applicationColumns+` FROM applications a WHERE a.org = ? AND a.name = ?`), org, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Application{}, ErrApplicationNotFound
	}
	if err != nil {
		return Application{}, fmt.Errorf("get application: %w", err)
	}
	return app, nil
}

func (s *SQLStore) ListApplications(ctx context.Context, org string, f ApplicationFilter, after string, limit int) ([]Application, error) {
	where, args := []string{"a.org = ?", "a.name > ?"}, []any{org, after}
	if f.Name != "" {
		where, args = append(where, "a.name = ?"), append(args, f.Name)
	}
	if f.Chart != "" {
		if repo, chart, ok := strings.Cut(f.Chart, "/"); ok {
			where, args = append(where, "a.repository = ? AND a.chart = ?"), append(args, repo, chart)
		} else {
			where, args = append(where, "a.chart = ?"), append(args, f.Chart)
		}
	}
	if f.Image != "" {
		where, args = append(where, "a.image = ?"), append(args, f.Image)
	}
	if f.Cluster != "" {
		where = append(where, "EXISTS (SELECT 1 FROM application_clusters ac WHERE ac.org = a.org AND ac.application = a.name AND ac.cluster = ?)")
		args = append(args, f.Cluster)
	}
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT `+applicationColumns+` FROM applications a WHERE `+strings.Join(where, " AND ")+` ORDER BY a.name LIMIT ?`),
		append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list applications: %w", err)
	}
	defer rows.Close()
	var out []Application
	for rows.Next() {
		app, err := scanApplication(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, app)
	}
	return out, rows.Err()
}

func (s *SQLStore) ReplaceApplication(ctx context.Context, app Application, wantEtag string) error {
	spec, err := encodeSpec(app)
	if err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		q := `UPDATE applications SET repository = ?, chart = ?, image = ?, spec = ?, etag = ?, updated_at = ? WHERE org = ? AND name = ?`
		args := []any{app.Chart.Repository, app.Chart.Chart, app.Image, spec, app.Etag, sqldb.Micros(app.Updated), app.Org, app.Name}
		if wantEtag != "" {
			q += ` AND etag = ?`
			args = append(args, wantEtag)
		}
		res, err := tx.ExecContext(ctx, s.db.Rebind(q), args...)
		if err != nil {
			return fmt.Errorf("replace application: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var exists int
			if err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT COUNT(*) FROM applications WHERE org = ? AND name = ?`), app.Org, app.Name).Scan(&exists); err != nil {
				return err
			}
			if exists == 0 {
				return ErrApplicationNotFound
			}
			return ErrEtagMismatch
		}
		return s.writeClusters(ctx, tx, app)
	})
}

func (s *SQLStore) DeleteApplication(ctx context.Context, org, name string) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM applications WHERE org = ? AND name = ?`), org, name)
		if err != nil {
			return fmt.Errorf("delete application: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrApplicationNotFound
		}
		_, err = tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM application_clusters WHERE org = ? AND application = ?`), org, name)
		return err
	})
}
