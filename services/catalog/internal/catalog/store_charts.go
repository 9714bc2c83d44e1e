package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/pkg/sqldb"
	"github.com/slipwayhq/slipway/services/catalog/internal/index"
)

// errArchiveNotFound: no archive of that digest is stored in that scope.
var errArchiveNotFound = errors.New("archive not stored")

// searchText is what a search matches: name, description and keywords.
func searchText(name, description string, keywords []string) string {
	return strings.ToLower(name + "\n" + description + "\n" + strings.Join(keywords, " "))
}

// replaceIndex writes a source's new index over its old one.
func (s *SQLStore) replaceIndex(ctx context.Context, tx *sql.Tx, sourceID string, charts []index.Chart) error {
	for _, q := range []string{`DELETE FROM chart_versions WHERE source_id = ?`, `DELETE FROM charts WHERE source_id = ?`} {
		if _, err := tx.ExecContext(ctx, s.db.Rebind(q), sourceID); err != nil {
			return fmt.Errorf("clear index: %w", err)
		}
	}
	insChart, err := tx.PrepareContext(ctx, s.db.Rebind(`INSERT INTO charts (source_id, name, latest_version, app_version, description, keywords, home_url, icon_url,
		deprecated, version_count, updated_at, search_text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`))
	if err != nil {
		return fmt.Errorf("prepare chart insert: %w", err)
	}
	defer insChart.Close()
	insVersion, err := tx.PrepareContext(ctx, s.db.Rebind(`INSERT INTO chart_versions (source_id, chart, version, position, digest, metadata) VALUES (?, ?, ?, ?, ?, ?)`))
	if err != nil {
		return fmt.Errorf("prepare version insert: %w", err)
	}
	defer insVersion.Close()
	for _, c := range charts {
		if len(c.Versions) == 0 {
			continue
		}
		l := c.Latest()
		if _, err := insChart.ExecContext(ctx, sourceID, c.Name, l.Version, l.AppVersion, l.Description, joinLines(l.Keywords), l.Home, l.Icon,
			boolInt(l.Deprecated), len(c.Versions), sqldb.Micros(l.Created), searchText(c.Name, l.Description, l.Keywords)); err != nil {
			return fmt.Errorf("insert chart %s: %w", c.Name, err)
		}
		for i, v := range c.Versions {
			meta, err := json.Marshal(v)
			if err != nil {
				return fmt.Errorf("encode %s %s: %w", c.Name, v.Version, err)
			}
			if _, err := insVersion.ExecContext(ctx, sourceID, c.Name, v.Version, i, v.Digest, string(meta)); err != nil {
				return fmt.Errorf("insert %s %s: %w", c.Name, v.Version, err)
			}
		}
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *SQLStore) SourceVersions(ctx context.Context, sourceID string) (map[string][]index.Version, error) {
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT chart, metadata FROM chart_versions WHERE source_id = ? ORDER BY chart, position`), sourceID)
	if err != nil {
		return nil, fmt.Errorf("read source versions: %w", err)
	}
	defer rows.Close()
	out := map[string][]index.Version{}
	for rows.Next() {
		var chart, meta string
		if err := rows.Scan(&chart, &meta); err != nil {
			return nil, err
		}
		var v index.Version
		if err := json.Unmarshal([]byte(meta), &v); err != nil {
			return nil, fmt.Errorf("decode stored version of %s: %w", chart, err)
		}
		out[chart] = append(out[chart], v)
	}
	return out, rows.Err()
}

const chartColumns = `r.name AS repository, c.name AS chart, c.latest_version, c.app_version, c.description, c.keywords, c.home_url, c.icon_url,
	c.deprecated, c.version_count, c.updated_at, c.source_id`

const chartFrom = ` FROM repositories r JOIN charts c ON c.source_id = r.source_id`

func scanChart(row scanner, extra ...any) (Chart, error) {
	var (
		c          Chart
		keywords   string
		deprecated int
		updated    int64
	)
	dest := append([]any{&c.Repository, &c.Name, &c.LatestVersion, &c.AppVersion, &c.Description, &keywords, &c.Home, &c.Icon,
		&deprecated, &c.VersionCount, &updated, &c.sourceID}, extra...)
	if err := row.Scan(dest...); err != nil {
		return Chart{}, err
	}
	c.Keywords, c.Deprecated, c.Updated = splitLines(keywords), deprecated != 0, sqldb.FromMicros(updated)
	return c, nil
}

// likePattern matches w anywhere, with LIKE's wildcards in w escaped.
func likePattern(w string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(w) + "%"
}

func (s *SQLStore) SearchCharts(ctx context.Context, org string, q ChartQuery, after chartCursor, limit int) ([]Chart, error) {
	var (
		where = []string{"r.org = ?"}
		args  = []any{org}
		rank  = "1"
	)
	if q.Repository != "" {
		where, args = append(where, "r.name = ?"), append(args, q.Repository)
	}
	if !q.IncludeDeprecated {
		where = append(where, "c.deprecated = 0")
	}
	ws := words(q.Q)
	var rankArgs []any
	if len(ws) > 0 {
		var nameMatch []string
		for _, w := range ws {
			where, args = append(where, `c.search_text LIKE ? ESCAPE '\'`), append(args, likePattern(w))
			nameMatch, rankArgs = append(nameMatch, `LOWER(c.name) LIKE ? ESCAPE '\'`), append(rankArgs, likePattern(w))
		}
		rank = "CASE WHEN " + strings.Join(nameMatch, " AND ") + " THEN 0 ELSE 1 END"
	}
	inner := `SELECT ` + chartColumns + `, ` + rank + ` AS rnk` + chartFrom + ` WHERE ` + strings.Join(where, " AND ")
	query := `SELECT * FROM (` + inner + `) t
		WHERE rnk > ? OR (rnk = ? AND (chart > ? OR (chart = ? AND repository > ?)))
		ORDER BY rnk, chart, repository LIMIT ?`
	all := append(append(rankArgs, args...), after.Rank, after.Rank, after.Name, after.Name, after.Repository, limit)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(query), all...)
	if err != nil {
		return nil, fmt.Errorf("search charts: %w", err)
	}
	defer rows.Close()
	var out []Chart
	for rows.Next() {
		var rnk int
		c, err := scanChart(rows, &rnk)
		if err != nil {
			return nil, fmt.Errorf("search charts: %w", err)
		}
		c.rank = rnk
		out = append(out, c)
	}
	return out, rows.Err()
}

func (s *SQLStore) GetChart(ctx context.Context, org, repository, chart string) (Chart, error) {
	c, err := scanChart(s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT `+chartColumns+chartFrom+` WHERE r.org = ? AND r.name = ? AND c.name = ?`), org, repository, chart))
	if errors.Is(err, sql.ErrNoRows) {
		return Chart{}, ErrChartNotFound
	}
	if err != nil {
		return Chart{}, fmt.Errorf("get chart: %w", err)
	}
	return c, nil
}

const versionColumns = `r.name, v.source_id, v.position, v.digest, v.metadata`

const versionFrom = ` FROM repositories r JOIN chart_versions v ON v.source_id = r.source_id`

func scanVersion(row scanner) (ChartVersion, error) {
	var (
		v      ChartVersion
		digest string
		meta   string
	)
	if err := row.Scan(&v.Repository, &v.sourceID, &v.position, &digest, &meta); err != nil {
		return ChartVersion{}, err
	}
	if err := json.Unmarshal([]byte(meta), &v.Version); err != nil {
		return ChartVersion{}, fmt.Errorf("decode stored version: %w", err)
	}
	// A digest learnt by downloading the archive overrides the index's none.
	v.Digest = digest
	return v, nil
}

func (s *SQLStore) ListVersions(ctx context.Context, org, repository, chart string, after, limit int) ([]ChartVersion, error) {
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT `+versionColumns+versionFrom+` WHERE r.org = ? AND r.name = ? AND v.chart = ? AND v.position > ?
		ORDER BY v.position LIMIT ?`), org, repository, chart, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list versions: %w", err)
	}
	defer rows.Close()
	var out []ChartVersion
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (s *SQLStore) GetVersion(ctx context.Context, org, repository, chart, version string) (ChartVersion, error) {
	v, err := scanVersion(s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT `+versionColumns+versionFrom+` WHERE r.org = ? AND r.name = ? AND v.chart = ? AND v.version = ?`),
		org, repository, chart, version))
	if errors.Is(err, sql.ErrNoRows) {
		return ChartVersion{}, ErrChartVersionNotFound
	}
	if err != nil {
		return ChartVersion{}, fmt.Errorf("get version: %w", err)
	}
	return v, nil
}

func (s *SQLStore) SetVersionDigest(ctx context.Context, sourceID, chart, version, digest string) error {
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE chart_versions SET digest = ? WHERE source_id = ? AND chart = ? AND version = ?`), digest, sourceID, chart, version)
	return err
}

func (s *SQLStore) GetArchive(ctx context.Context, scope, digest string) ([]byte, error) {
	var data []byte
	err := s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT data FROM archives WHERE scope = ? AND digest = ?`), scope, digest).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errArchiveNotFound
	}
	return data, err
}

func (s *SQLStore) PutArchive(ctx context.Context, scope, digest string, data []byte, now time.Time) error {
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO archives (scope, digest, size, data, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (scope, digest) DO NOTHING`), scope, digest, len(data), data, sqldb.Micros(now))
	return err
}
