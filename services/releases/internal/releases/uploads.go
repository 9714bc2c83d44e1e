package releases

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/slipwayhq/slipway/pkg/chartarchive"
	"github.com/slipwayhq/slipway/pkg/sqldb"
)

// MaxUpload bounds an uploaded chart archive: Helm keeps the chart in the
// release's Secret, which Kubernetes caps at 1 MiB, so nothing larger
// could be installed.
const MaxUpload = 1 << 20

// uploadRetention is how long an uploaded archive is kept: far past the
// run of any operation that deploys it (a release then holds its chart).
const uploadRetention = 7 * 24 * time.Hour

// uploadLimits are the limits an uploaded archive is read under: the
// catalog's for the archives of repositories, but for the size.
var uploadLimits = chartarchive.Limits{MaxCompressed: MaxUpload}

// errUploadGone: an operation's uploaded archive is no longer kept.
var errUploadGone = errors.New("uploaded chart no longer kept")

// PutUpload keeps an uploaded archive of org by its digest (again: the
// retention starts anew).
func (l *Ledger) PutUpload(ctx context.Context, org, digest string, data []byte, now time.Time) error {
	_, err := l.db.ExecContext(ctx, l.db.Rebind(`INSERT INTO chart_uploads (org, digest, data, upload_time) VALUES (?, ?, ?, ?)
		ON CONFLICT (org, digest) DO UPDATE SET upload_time = excluded.upload_time`), org, digest, data, sqldb.Micros(now))
	if err != nil {
		return fmt.Errorf("store uploaded chart: %w", err)
	}
	return nil
}

// Upload returns an archive org uploaded.
func (l *Ledger) Upload(ctx context.Context, org, digest string) ([]byte, error) {
	var data []byte
	err := l.db.QueryRowContext(ctx, l.db.Rebind(`SELECT data FROM chart_uploads WHERE org = ? AND digest = ?`), org, digest).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", errUploadGone, digest)
	}
	if err != nil {
		return nil, fmt.Errorf("read uploaded chart: %w", err)
	}
	return data, nil
}

// DeleteUploadsBefore forgets the archives uploaded before t.
func (l *Ledger) DeleteUploadsBefore(ctx context.Context, t time.Time) (int64, error) {
	res, err := l.db.ExecContext(ctx, l.db.Rebind(`DELETE FROM chart_uploads WHERE upload_time < ?`), sqldb.Micros(t))
	if err != nil {
		return 0, fmt.Errorf("delete old uploaded charts: %w", err)
	}
	return res.RowsAffected()
}
