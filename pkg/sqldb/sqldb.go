// Package sqldb opens the SQL database a Slipway service stores its state in.
//
// One DSN picks the engine: SQLite (pure Go, modernc.org/sqlite) is the embedded
// default, PostgreSQL (pgx) serves production and several replicas. Stores write
// portable SQL with '?' placeholders and pass it through [DB.Rebind]; one set of
// goose migrations, applied by [DB.Migrate], works on both engines.
package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect is the SQL engine behind a [DB].
type Dialect int

// The engines Open supports. The zero Dialect is none of them.
const (
	SQLite Dialect = iota + 1
	Postgres
)

// String returns the engine's lower-case name.
func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	default:
		return fmt.Sprintf("Dialect(%d)", int(d))
	}
}

// DB is a connection pool together with the engine it talks to.
type DB struct {
	*sql.DB
	Dialect Dialect
	stmts   stmtCache
}

// Open connects to the database named by dsn and pings it.
//
// Accepted forms:
//
//	sqlite:///abs/path/file.db   absolute path
//	sqlite:relative/path.db      path relative to the working directory
//	sqlite::memory:              private in-memory database
//	file:...                     SQLite URI, handed to SQLite as is
//	postgres://... postgresql://...
//
// SQLite databases get WAL, busy_timeout(5000), foreign_keys(1) and
// synchronous(NORMAL); a query parameter such as _pragma=synchronous(FULL)
// overrides the default of the same name. Their transactions begin
// IMMEDIATE (_txlock), taking the write lock up front: read outside
// transactions when you can. Missing parent directories of a
// SQLite file are created. Errors never contain the password.
func Open(ctx context.Context, dsn string) (*DB, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"), strings.HasPrefix(dsn, "file:"):
		return openSQLite(ctx, dsn)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return openPostgres(ctx, dsn)
	default:
		return nil, fmt.Errorf("open database %s: unsupported dsn, want sqlite:, file:, postgres:// or postgresql://", redact(dsn))
	}
}

// PostgresMaxConns is how many connections one process opens to its
// PostgreSQL database at most.
const PostgresMaxConns = 8

func openPostgres(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgconn redacts the password in ParseConfigError.
		return nil, fmt.Errorf("parse postgres dsn: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	// Bounded: under load requests wait for a connection rather than open
	// one each, and every replica of every service fits in the server's
	// max_connections (100 by default).
	db.SetMaxOpenConns(PostgresMaxConns)
	db.SetMaxIdleConns(PostgresMaxConns)
	if err := db.PingContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("ping postgres database %s: %w", redact(dsn), err), db.Close())
	}
	return &DB{DB: db, Dialect: Postgres}, nil
}

// redact hides the password of a URL-shaped dsn, in the user info and in the
// password and sslpassword query parameters pgx accepts.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		scheme, _, _ := strings.Cut(dsn, ":")
		return scheme + ":(unparseable dsn)"
	}
	q := u.Query()
	changed := false
	for _, k := range []string{"password", "sslpassword"} {
		if q.Has(k) {
			q.Set(k, "xxxxx")
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// IsUniqueViolation reports whether err is a unique or primary key constraint
// violation on either engine.
func IsUniqueViolation(err error) bool {
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pgErr.Code == "23505" // unique_violation
	}
	if sqliteErr, ok := errors.AsType[*sqlite.Error](err); ok {
		code := sqliteErr.Code()
		return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// InTx runs fn in a transaction and commits it when fn returns nil. When fn
// fails or panics the transaction is rolled back and fn's error (or panic) is
// passed on unchanged, so callers can still match their sentinel errors.
//
// fn must use tx, not d: on SQLite the transaction holds the write lock (and,
// for an in-memory database, the only connection), so a statement on d would
// wait for it.
func (d *DB) InTx(ctx context.Context, fn func(*sql.Tx) error) (err error) {
	tx, err := d.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	committed := false
	defer func() {
		if committed {
			return
		}
		// ErrTxDone: the driver already rolled back, for example because ctx ended.
		if rbErr := tx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) && err != nil {
			err = errors.Join(err, fmt.Errorf("roll back transaction: %w", rbErr))
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	committed = true
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

// IsUnavailable reports whether err says the database could not be reached
// or is not serving right now, rather than that a statement failed: a
// refused or reset connection, a server shutting down or starting up
// ("the database system is starting up"), one out of connections. Such an
// error goes away by itself once the server is back, so callers answer it
// as Unavailable (503, retry) rather than as an internal error. A context
// that ended (a stopped server that never answers) is the caller's
// deadline, not this.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch pgErr.Code {
		case "57P01", // admin_shutdown: "terminating connection due to administrator command"
			"57P02", // crash_shutdown
			"57P03", // cannot_connect_now: starting up, shutting down, in recovery
			"53300": // too_many_connections
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08") // connection_exception
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	_, isNet := errors.AsType[net.Error](err)
	return isNet
}
