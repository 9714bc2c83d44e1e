package registry

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/pkg/sqldb"
)

// Store persists images. Every method is scoped by org.
type Store interface {
	// InsertImage records img, or returns ErrImageExists when its org,
	// name and version are taken, writing nothing.
	InsertImage(ctx context.Context, img Image) error
	// GetImage returns an image or ErrImageNotFound.
	GetImage(ctx context.Context, org, name, version string) (Image, error)
	// ListImages returns up to limit images matching f, newest first,
	// starting after the image with id after ("" for the first page).
	ListImages(ctx context.Context, org string, f ImageFilter, after string, limit int) ([]Image, error)
	// GetPushRule returns org's push rule, DefaultPushRule when none is set.
	GetPushRule(ctx context.Context, org string) (PushRule, error)
	// PutPushRule sets org's push rule.
	PutPushRule(ctx context.Context, org string, r PushRule, at time.Time) error
	// DeleteImage removes an image or returns ErrImageNotFound.
	DeleteImage(ctx context.Context, org, name, version string) error
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
		return nil, fmt.Errorf("open registry database: %w", err)
	}
	return &SQLStore{db: db}, nil
}

// Close closes the database.
func (s *SQLStore) Close() error { return s.db.Close() }

// Ping reports whether the database answers (readiness).
func (s *SQLStore) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

const imageColumns = `id, org, name, version, reference, digest, creator, created_at`

func (s *SQLStore) InsertImage(ctx context.Context, img Image) error {
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO images (`+imageColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		img.ID, img.Org, img.Name, img.Version, img.Reference, img.Digest, img.Creator, img.Created.UnixMicro())
	if sqldb.IsUniqueViolation(err) {
		return ErrImageExists
	}
	if err != nil {
		return fmt.Errorf("insert image: %w", err)
	}
	return nil
}

func (s *SQLStore) GetImage(ctx context.Context, org, name, version string) (Image, error) {
	row := s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT `+imageColumns+` FROM images WHERE org = ? AND name = ? AND version = ?`), org, name, version)
	img, err := scanImage(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Image{}, ErrImageNotFound
	}
	if err != nil {
		return Image{}, fmt.Errorf("get image: %w", err)
	}
	return img, nil
}

func (s *SQLStore) ListImages(ctx context.Context, org string, f ImageFilter, after string, limit int) ([]Image, error) {
	where := []string{"org = ?"}
	args := []any{org}
	if f.Name != "" {
		where, args = append(where, "name = ?"), append(args, f.Name)
	}
	if f.Version != "" {
		where, args = append(where, "version = ?"), append(args, f.Version)
	}
	if after != "" {
		where, args = append(where, "id < ?"), append(args, after)
	}
	args = append(args, limit)
	q := `SELECT ` + imageColumns + ` FROM images WHERE ` + strings.Join(where, " AND ") + ` ORDER BY id DESC LIMIT ?`
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	defer rows.Close()
	var out []Image
	for rows.Next() {
		img, err := scanImage(rows)
		if err != nil {
			return nil, fmt.Errorf("list images: %w", err)
		}
		out = append(out, img)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	return out, nil
}

func (s *SQLStore) DeleteImage(ctx context.Context, org, name, version string) error {
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM images WHERE org = ? AND name = ? AND version = ?`), org, name, version)
	if err != nil {
		return fmt.Errorf("delete image: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("delete image: %w", err)
	}
	if n == 0 {
		return ErrImageNotFound
	}
	return nil
}

func scanImage(row interface{ Scan(...any) error }) (Image, error) {
	var img Image
	var created int64
	if err := row.Scan(&img.ID, &img.Org, &img.Name, &img.Version, &img.Reference, &img.Digest, &img.Creator, &created); err != nil {
		return Image{}, err
	}
	img.Created = time.UnixMicro(created).UTC()
	return img, nil
}

func (s *SQLStore) GetPushRule(ctx context.Context, org string) (PushRule, error) {
	var r PushRule
	var naming int
	err := s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT repository_prefix, naming FROM push_rules WHERE org = ?`), org).Scan(&r.RepositoryPrefix, &naming)
	if errors.Is(err, sql.ErrNoRows) {
		return DefaultPushRule, nil
	}
	if err != nil {
		return PushRule{}, fmt.Errorf("get push rule: %w", err)
	}
	r.Naming = PushNaming(naming)
	return r, nil
}

func (s *SQLStore) PutPushRule(ctx context.Context, org string, r PushRule, at time.Time) error {
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO push_rules (org, repository_prefix, naming, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (org) DO UPDATE SET repository_prefix = excluded.repository_prefix, naming = excluded.naming, updated_at = excluded.updated_at`),
		org, r.RepositoryPrefix, int(r.Naming), at.UnixMicro())
	if err != nil {
		return fmt.Errorf("put push rule: %w", err)
	}
	return nil
}
