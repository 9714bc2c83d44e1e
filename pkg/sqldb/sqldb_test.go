package sqldb_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/slipwayhq/slipway/pkg/sqldb"
	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
)

func TestMain(m *testing.M) { sqltest.Main(m) }

//go:embed testdata/migrations/*.sql
var testdata embed.FS

// migrations holds two portable migrations: a widgets table with a primary
// key and a unique column, then an index on it.
func migrations(t testing.TB) fs.FS {
	t.Helper()
	sub, err := fs.Sub(testdata, "testdata/migrations")
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// open opens dsn and closes the pool when the test ends.
func open(t testing.TB, dsn string) *sqldb.DB {
	t.Helper()
	db, err := sqldb.Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// migrated opens dsn and applies the test migrations.
func migrated(t testing.TB, dsn string) *sqldb.DB {
	t.Helper()
	db := open(t, dsn)
	if err := db.Migrate(t.Context(), migrations(t)); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

func insertWidget(ctx context.Context, db *sqldb.DB, q interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, id, name string) error {
	_, err := q.ExecContext(ctx, db.Rebind("INSERT INTO widgets (id, name, created_at) VALUES (?, ?, ?)"), id, name, int64(1))
	return err
}

func countWidgets(t testing.TB, db *sqldb.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM widgets").Scan(&n); err != nil {
		t.Fatalf("count widgets: %v", err)
	}
	return n
}

func TestDialectString(t *testing.T) {
	for d, want := range map[sqldb.Dialect]string{sqldb.SQLite: "sqlite", sqldb.Postgres: "postgres", 0: "Dialect(0)"} {
		if got := d.String(); got != want {
			t.Errorf("Dialect(%d).String() = %q, want %q", int(d), got, want)
		}
	}
}

func TestOpen(t *testing.T) {
	sqltest.Backends(t, func(t *testing.T, dsn string) {
		db := open(t, dsn)
		want := map[string]sqldb.Dialect{"sqlite": sqldb.SQLite, "postgres": sqldb.Postgres}[filepath.Base(t.Name())]
		if db.Dialect != want {
			t.Fatalf("Dialect = %s, want %s", db.Dialect, want)
		}
		if got := db.Stats().MaxOpenConnections; want == sqldb.Postgres && got != sqldb.PostgresMaxConns {
			t.Errorf("MaxOpenConnections = %d, want %d", got, sqldb.PostgresMaxConns)
		}
		var one int
		if err := db.QueryRowContext(t.Context(), db.Rebind("SELECT CAST(? AS BIGINT)"), 1).Scan(&one); err != nil || one != 1 {
			t.Fatalf("SELECT CAST(? AS BIGINT) = %d, %v; want 1", one, err)
		}
	})
}

func TestOpenSQLitePragmas(t *testing.T) {
	db := open(t, sqltest.SQLite(t))
	for pragma, want := range map[string]string{
		"journal_mode": "wal",
		"busy_timeout": "5000",
		"foreign_keys": "1",
		"synchronous":  "1", // NORMAL
	} {
		var got string
		if err := db.QueryRowContext(t.Context(), "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", pragma, err)
		}
		if !strings.EqualFold(got, want) {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
	if got := db.Stats().MaxOpenConnections; got < 2 {
		t.Errorf("MaxOpenConnections = %d, want several readers", got)
	}
}

func TestOpenSQLiteDSNs(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	tests := []struct {
		name   string
		dsn    string
		file   string // created by Open; "" for in-memory
		memory bool
	}{
		{name: "absolute", dsn: "sqlite://" + dir + "/a/b/abs.db", file: dir + "/a/b/abs.db"},
		{name: "relative", dsn: "sqlite:rel/dir/rel.db", file: dir + "/rel/dir/rel.db"},
		{name: "memory", dsn: "sqlite::memory:", memory: true},
		{name: "file uri", dsn: "file:" + dir + "/uri/f.db?cache=private", file: dir + "/uri/f.db"},
		{name: "file uri with authority", dsn: "file://" + dir + "/uri2/f.db", file: dir + "/uri2/f.db"},
		{name: "file uri memory", dsn: "file::memory:", memory: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := open(t, tc.dsn)
			ctx := t.Context()
			if _, err := db.ExecContext(ctx, "CREATE TABLE t (id TEXT PRIMARY KEY)"); err != nil {
				t.Fatalf("create table: %v", err)
			}
			// A second statement must see the table: an in-memory database
			// exists per connection.
			if _, err := db.ExecContext(ctx, "INSERT INTO t (id) VALUES ('x')"); err != nil {
				t.Fatalf("insert: %v", err)
			}
			if tc.memory {
				if got := db.Stats().MaxOpenConnections; got != 1 {
					t.Errorf("MaxOpenConnections = %d, want 1 for an in-memory database", got)
				}
				return
			}
			if _, err := os.Stat(tc.file); err != nil {
				t.Errorf("database file: %v", err)
			}
		})
	}

	t.Run("override wins", func(t *testing.T) {
		db := open(t, "sqlite:override.db?_pragma=synchronous(FULL)")
		var got int
		if err := db.QueryRowContext(t.Context(), "PRAGMA synchronous").Scan(&got); err != nil || got != 2 {
			t.Errorf("PRAGMA synchronous = %d, %v; want 2 (FULL)", got, err)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name string
		dsn  string
		want string // in the error
	}{
		{name: "unknown scheme", dsn: "mysql://root:hunter2@localhost/db", want: "unsupported dsn"},
		{name: "sqlite host", dsn: "sqlite://host/x.db", want: "unexpected host"},
		{name: "sqlite empty", dsn: "sqlite:", want: "no file path"},
		{name: "postgres unreachable", dsn: "postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=2", want: "ping postgres database"},
		{name: "postgres password param", dsn: "postgres://u@127.0.0.1:1/db?password=hunter2&connect_timeout=2", want: "ping postgres database"},
		{name: "postgres bad dsn", dsn: "postgres://u:hunter2@127.0.0.1:notaport/db", want: "parse postgres dsn"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, err := sqldb.Open(t.Context(), tc.dsn)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q leaks the password", err)
			}
		})
	}
}

func TestMigrate(t *testing.T) {
	sqltest.Backends(t, func(t *testing.T, dsn string) {
		db := migrated(t, dsn)
		// Again, on the same pool and on a new one: nothing left to do.
		if err := db.Migrate(t.Context(), migrations(t)); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
		if err := open(t, dsn).Migrate(t.Context(), migrations(t)); err != nil {
			t.Fatalf("Migrate from a new pool: %v", err)
		}
		assertApplied(t, db, 2)
		if err := insertWidget(t.Context(), db, db, "w1", "first"); err != nil {
			t.Fatalf("insert into migrated table: %v", err)
		}
	})
}

func TestMigrateNoMigrations(t *testing.T) {
	db := open(t, sqltest.SQLite(t))
	err := db.Migrate(t.Context(), os.DirFS(t.TempDir()))
	if err == nil || !strings.Contains(err.Error(), "load migrations") {
		t.Fatalf("Migrate(empty) = %v, want a load migrations error", err)
	}
}

// TestMigrateConcurrent starts two replicas together on one Postgres
// database; the advisory lock must let exactly one apply each migration.
func TestMigrateConcurrent(t *testing.T) {
	dsn := sqltest.Postgres(t)
	first := fstest.MapFS{
		"00001_widgets.sql": {Data: []byte("-- +goose Up\nCREATE TABLE widgets (id TEXT PRIMARY KEY);\n")},
	}
	// Version 1 is in place, so both replicas go straight for version 2,
	// which is slow enough that without the lock they would both run it and
	// one would fail on the existing table.
	if err := open(t, dsn).Migrate(t.Context(), first); err != nil {
		t.Fatalf("Migrate version 1: %v", err)
	}
	both := maps.Clone(first)
	both["00002_gadgets.sql"] = &fstest.MapFile{Data: []byte("-- +goose Up\nSELECT pg_sleep(0.5);\nCREATE TABLE gadgets (id TEXT PRIMARY KEY);\n")}

	const replicas = 2
	dbs := make([]*sqldb.DB, replicas)
	for i := range dbs {
		dbs[i] = open(t, dsn)
	}
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	for i, db := range dbs {
		wg.Go(func() { errs[i] = db.Migrate(t.Context(), both) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: Migrate: %v", i, err)
		}
	}
	assertApplied(t, dbs[0], 2)
}

// assertApplied checks that goose recorded each of versions 1..n exactly once.
func assertApplied(t testing.TB, db *sqldb.DB, n int) {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "SELECT version_id, COUNT(*) FROM goose_db_version WHERE version_id > 0 GROUP BY version_id ORDER BY version_id")
	if err != nil {
		t.Fatalf("read goose_db_version: %v", err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var v, c int
		if err := rows.Scan(&v, &c); err != nil {
			t.Fatalf("scan goose_db_version: %v", err)
		}
		got = append(got, fmt.Sprintf("%d×%d", v, c))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read goose_db_version: %v", err)
	}
	var want []string
	for v := 1; v <= n; v++ {
		want = append(want, fmt.Sprintf("%d×1", v))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("applied versions (version×times) = %v, want %v", got, want)
	}
}

func TestIsUniqueViolation(t *testing.T) {
	sqltest.Backends(t, func(t *testing.T, dsn string) {
		db := migrated(t, dsn)
		ctx := t.Context()
		if err := insertWidget(ctx, db, db, "w1", "first"); err != nil {
			t.Fatalf("insert: %v", err)
		}
		notNull := func() error {
			_, err := db.ExecContext(ctx, db.Rebind("INSERT INTO widgets (id, name, created_at) VALUES (?, NULL, 1)"), "w9")
			return err
		}
		tests := []struct {
			name string
			err  error
			want bool
		}{
			{name: "primary key", err: insertWidget(ctx, db, db, "w1", "other"), want: true},
			{name: "unique column", err: insertWidget(ctx, db, db, "w2", "first"), want: true},
			{name: "wrapped", err: fmt.Errorf("create widget: %w", insertWidget(ctx, db, db, "w1", "again")), want: true},
			{name: "not null", err: notNull(), want: false},
			{name: "syntax", err: func() error { _, err := db.ExecContext(ctx, "INSERT INTO"); return err }(), want: false},
			{name: "nil", err: nil, want: false},
			{name: "other", err: errors.New("unique"), want: false},
		}
		for _, tc := range tests {
			if got := sqldb.IsUniqueViolation(tc.err); got != tc.want {
				t.Errorf("%s: IsUniqueViolation(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
			}
		}
	})
}

func TestInTx(t *testing.T) {
	sqltest.Backends(t, func(t *testing.T, dsn string) {
		db := migrated(t, dsn)
		ctx := t.Context()
		errBoom := errors.New("boom")

		err := db.InTx(ctx, func(tx *sql.Tx) error {
			if err := insertWidget(ctx, db, tx, "w1", "rolled back"); err != nil {
				return err
			}
			return errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("InTx = %v, want %v", err, errBoom)
		}
		if n := countWidgets(t, db); n != 0 {
			t.Fatalf("after a failed InTx: %d widgets, want 0", n)
		}

		func() {
			defer func() {
				if r := recover(); r != "panic in tx" {
					t.Fatalf("recovered %v, want the panic passed on", r)
				}
			}()
			_ = db.InTx(ctx, func(tx *sql.Tx) error {
				if err := insertWidget(ctx, db, tx, "w1", "panicked"); err != nil {
					return err
				}
				panic("panic in tx")
			})
		}()
		if n := countWidgets(t, db); n != 0 {
			t.Fatalf("after a panicking InTx: %d widgets, want 0", n)
		}

		if err := db.InTx(ctx, func(tx *sql.Tx) error { return insertWidget(ctx, db, tx, "w1", "kept") }); err != nil {
			t.Fatalf("InTx: %v", err)
		}
		if n := countWidgets(t, db); n != 1 {
			t.Fatalf("after a committed InTx: %d widgets, want 1", n)
		}
	})
}

// TestSQLiteConcurrentWriters has transactions read and then write at the
// same time; with deferred transactions SQLite would fail some of them with
// SQLITE_BUSY instead of waiting.
func TestSQLiteConcurrentWriters(t *testing.T) {
	db := migrated(t, sqltest.SQLite(t))
	ctx := t.Context()
	const writers, each = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				errs <- db.InTx(ctx, func(tx *sql.Tx) error {
					var n int
					if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM widgets").Scan(&n); err != nil {
						return fmt.Errorf("count: %w", err)
					}
					id := fmt.Sprintf("w%d-%d", w, i)
					return insertWidget(ctx, db, tx, id, id)
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent InTx: %v", err)
		}
	}
	if n := countWidgets(t, db); n != writers*each {
		t.Fatalf("%d widgets, want %d", n, writers*each)
	}
}

func TestOpenMigrated(t *testing.T) {
	sqltest.Backends(t, func(t *testing.T, dsn string) {
		fsys := fstest.MapFS{"m/00001_t.sql": {Data: []byte("-- +goose Up\nCREATE TABLE t (id TEXT PRIMARY KEY);\n-- +goose Down\nDROP TABLE t;\n")}}
		db, err := sqldb.OpenMigrated(context.Background(), dsn, fsys, "m")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.ExecContext(context.Background(), db.Rebind(`INSERT INTO t (id) VALUES (?)`), "x"); err != nil {
			t.Errorf("migrated table missing: %v", err)
		}
		if _, err := sqldb.OpenMigrated(context.Background(), dsn, fsys, "../nope"); err == nil {
			t.Error("OpenMigrated accepted an invalid migrations folder")
		}
	})
}

// TestMigrateSets applies two sets whose files share numbers to one
// database: each keeps its own record, so both apply, and again is a no-op.
func TestMigrateSets(t *testing.T) {
	sqltest.Backends(t, func(t *testing.T, dsn string) {
		db := open(t, dsn)
		a := fstest.MapFS{"00001_a.sql": {Data: []byte("-- +goose Up\nCREATE TABLE set_a (id TEXT PRIMARY KEY);\n-- +goose Down\nDROP TABLE set_a;\n")}}
		b := fstest.MapFS{"00001_b.sql": {Data: []byte("-- +goose Up\nCREATE TABLE set_b (id TEXT PRIMARY KEY);\n-- +goose Down\nDROP TABLE set_b;\n")}}
		for range 2 {
			if err := db.MigrateSet(t.Context(), a, "a"); err != nil {
				t.Fatalf("set a: %v", err)
			}
			if err := db.MigrateSet(t.Context(), b, "b"); err != nil {
				t.Fatalf("set b: %v", err)
			}
		}
		for _, table := range []string{"set_a", "set_b"} {
			if _, err := db.ExecContext(t.Context(), "INSERT INTO "+table+" (id) VALUES ('x')"); err != nil {
				t.Errorf("table %s: %v", table, err)
			}
		}
	})
}

func TestIsUnavailable(t *testing.T) {
	// A real dial to a port nobody listens on: what a stopped server gives.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	_, refused := sqldb.Open(t.Context(), "postgres://u:secret@"+addr+"/db?sslmode=disable&connect_timeout=5")
	if refused == nil {
		t.Fatal("Open of a closed port succeeded")
	}
	wrapped := func(e error) error { return fmt.Errorf("list clusters: %w", e) }
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"refused (real)", refused, true},
		{"admin shutdown", wrapped(&pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}), true},
		{"crash shutdown", &pgconn.PgError{Code: "57P02"}, true},
		{"starting up", wrapped(&pgconn.PgError{Severity: "FATAL", Code: "57P03", Message: "the database system is starting up"}), true},
		{"too many clients", &pgconn.PgError{Code: "53300", Message: "sorry, too many clients already"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"bad conn", wrapped(driver.ErrBadConn), true},
		{"cut mid-query", wrapped(fmt.Errorf("failed to receive message: %w", io.ErrUnexpectedEOF)), true},
		{"reset", wrapped(&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}), true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"syntax error", &pgconn.PgError{Code: "42601"}, false},
		{"no rows", wrapped(sql.ErrNoRows), false},
		{"deadline", wrapped(context.DeadlineExceeded), false},
		{"canceled", context.Canceled, false},
		{"other", errors.New("boom"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := sqldb.IsUnavailable(tc.err); got != tc.want {
				t.Errorf("IsUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
