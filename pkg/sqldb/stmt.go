package sqldb

import (
	"context"
	"database/sql"
	"sync"
)

// maxCachedStmts bounds the statement cache; queries are program text, so
// a store has a few dozen distinct ones, but a bug must not grow it forever.
const maxCachedStmts = 512

// stmtCache keeps one prepared statement per query text. On SQLite, parsing
// and planning a statement costs more than running a point query (pure-Go
// SQLite has no statement cache of its own); pgx caches prepared statements
// per connection itself, so PostgreSQL does not use this cache.
type stmtCache struct {
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

func (d *DB) prepared(ctx context.Context, query string) *sql.Stmt {
	if d.Dialect != SQLite {
		return nil
	}
	c := &d.stmts
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.stmts[query]; ok {
		return st
	}
	if len(c.stmts) >= maxCachedStmts {
		return nil
	}
	st, err := d.DB.PrepareContext(ctx, query)
	if err != nil {
		return nil // the unprepared call reports the error
	}
	if c.stmts == nil {
		c.stmts = map[string]*sql.Stmt{}
	}
	c.stmts[query] = st
	return st
}

// ExecContext runs query through a cached prepared statement where it can.
func (d *DB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := d.prepared(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return d.DB.ExecContext(ctx, query, args...)
}

// QueryContext runs query through a cached prepared statement where it can.
func (d *DB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := d.prepared(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return d.DB.QueryContext(ctx, query, args...)
}

// QueryRowContext runs query through a cached prepared statement where it can.
func (d *DB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := d.prepared(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return d.DB.QueryRowContext(ctx, query, args...)
}

// Close closes the cached statements and the pool.
func (d *DB) Close() error {
	d.stmts.mu.Lock()
	for q, st := range d.stmts.stmts {
		_ = st.Close()
		delete(d.stmts.stmts, q)
	}
	d.stmts.mu.Unlock()
	return d.DB.Close()
}
