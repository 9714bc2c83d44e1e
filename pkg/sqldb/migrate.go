package sqldb

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Migrate applies the goose SQL migrations at the root of migrations (use
// fs.Sub for a directory of an embed.FS) that the database has not seen yet.
// The files must be portable between the engines: TEXT, BIGINT, no
// autoincrement.
//
// On Postgres a session advisory lock makes replicas that start together
// migrate once: the others wait for it and then find nothing to do. SQLite
// has no such lock; a SQLite file belongs to a single process.
func (d *DB) Migrate(ctx context.Context, migrations fs.FS) error {
	return d.MigrateSet(ctx, migrations, "")
}

// MigrateSet is Migrate for one of several independent sets of migrations
// in one database (a service whose packages each own their tables): each
// set records what it applied in its own table, "goose_db_version_<set>"
// ("goose_db_version", Migrate's, for the empty set), so their numbers never
// collide.
func (d *DB) MigrateSet(ctx context.Context, migrations fs.FS, set string) error {
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if set != "" {
		opts = append(opts, goose.WithTableName("goose_db_version_"+set))
	}
	var dialect goose.Dialect
	switch d.Dialect {
	case SQLite:
		dialect = goose.DialectSQLite3
	case Postgres:
		dialect = goose.DialectPostgres
		// Poll every second, for up to 5 minutes, so a waiting replica
		// starts soon after the first one is done.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			return fmt.Errorf("create migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	default:
		return fmt.Errorf("migrate: unsupported dialect %s", d.Dialect)
	}
	p, err := goose.NewProvider(dialect, d.DB, migrations, opts...)
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	// p.Close would close d's pool; there is nothing else to release.
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply %s migrations: %w", d.Dialect, err)
	}
	return nil
}

// OpenMigrated opens the database at dsn and applies the *.sql migrations
// found in dir of fsys (typically an embed.FS and "migrations"): what every
// store's Open does.
func OpenMigrated(ctx context.Context, dsn string, fsys fs.FS, dir string) (*DB, error) {
	return OpenMigratedSet(ctx, dsn, fsys, dir, "")
}

// OpenMigratedSet is OpenMigrated for a named set of migrations (see
// MigrateSet).
func OpenMigratedSet(ctx context.Context, dsn string, fsys fs.FS, dir, set string) (*DB, error) {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("migrations %s: %w", dir, err)
	}
	db, err := Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	if err := db.MigrateSet(ctx, sub, set); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}
