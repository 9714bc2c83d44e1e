package sqldb

import (
	"context"
	"testing"

	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
)

func TestStatementCache(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, sqltest.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	for i, kv := range [][2]string{{"a", "1"}, {"b", "2"}} {
		if _, err := db.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES (?, ?)`, kv[0], kv[1]); err != nil {
			t.Fatalf("insert %d: %v", i, err)
		}
	}
	var v string
	if err := db.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = ?`, "b").Scan(&v); err != nil || v != "2" {
		t.Fatalf("select = %q, %v", v, err)
	}
	rows, err := db.QueryContext(ctx, `SELECT k FROM kv ORDER BY k`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Close(); err != nil || n != 2 {
		t.Fatalf("rows = %d, %v", n, err)
	}
	db.stmts.mu.Lock()
	cached := len(db.stmts.stmts)
	db.stmts.mu.Unlock()
	// CREATE TABLE, INSERT, SELECT v, SELECT k: each text prepared once.
	if cached != 4 {
		t.Errorf("cached %d statements, want 4", cached)
	}
	// A statement that does not prepare reports its error through the plain call.
	if _, err := db.ExecContext(ctx, `INSERT INTO nope VALUES (1)`); err == nil {
		t.Error("insert into a missing table succeeded")
	}
	// Schema changes invalidate SQLite statements; database/sql re-prepares.
	if _, err := db.ExecContext(ctx, `ALTER TABLE kv ADD COLUMN w TEXT`); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = ?`, "a").Scan(&v); err != nil || v != "1" {
		t.Fatalf("select after ALTER = %q, %v", v, err)
	}
}
