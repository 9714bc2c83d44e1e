package sqltest_test

import (
	"database/sql"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
)

func TestMain(m *testing.M) { sqltest.Main(m) }

// TestPostgresFresh checks that every call gets its own empty database.
func TestPostgresFresh(t *testing.T) {
	a, b := sqltest.Postgres(t), sqltest.Postgres(t)
	if a == b {
		t.Fatalf("two calls returned the same dsn %s", a)
	}
	for _, dsn := range []string{a, b} {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		var tables int
		err = db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables)
		if err != nil || tables != 0 {
			t.Errorf("%s: %d tables, %v; want an empty database", dsn, tables, err)
		}
		if _, err := db.ExecContext(t.Context(), "CREATE TABLE t (id TEXT)"); err != nil {
			t.Errorf("%s: create table: %v", dsn, err)
		}
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	}
}

func TestBackends(t *testing.T) {
	var ran []string
	sqltest.Backends(t, func(t *testing.T, dsn string) { ran = append(ran, t.Name()) })
	if len(ran) != 2 || ran[0] != "TestBackends/sqlite" || ran[1] != "TestBackends/postgres" {
		t.Fatalf("ran %v, want the sqlite and postgres subtests", ran)
	}
}
