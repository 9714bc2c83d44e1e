package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// sqlitePragmas are set on every SQLite connection unless the DSN sets a
// pragma of the same name. busy_timeout makes a writer wait for the write
// lock instead of failing at once; NORMAL is durable enough under WAL (a
// power cut can lose the last commits, never corrupt the file).
var sqlitePragmas = []string{
	"busy_timeout(5000)",
	"journal_mode(WAL)",
	"foreign_keys(1)",
	"synchronous(NORMAL)",
}

// sqliteMinConns is the smallest pool Open gives a SQLite file; below it, code
// that runs a query while iterating the rows of another would wait on itself.
const sqliteMinConns = 4

func openSQLite(ctx context.Context, dsn string) (*DB, error) {
	name, path, memory, err := sqliteDriverName(dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite database %s: %w", dsn, err)
	}
	if !memory {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("create directory for sqlite database %s: %w", dsn, err)
		}
	}
	db, err := sql.Open("sqlite", name)
	if err != nil {
		return nil, fmt.Errorf("open sqlite database %s: %w", dsn, err)
	}
	if memory {
		// Every connection to an in-memory database gets its own empty
		// database, so the pool must hold exactly one, forever.
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
	} else {
		// WAL lets readers run alongside each other and alongside the one
		// writer SQLite allows, so the pool is sized for readers (the engine
		// is CPU-bound Go code: more connections than CPUs buy nothing).
		// Writers are made safe by the DSN rather than by starving the pool:
		// _txlock=immediate takes the write lock at BEGIN, so a transaction
		// that reads and then writes can never fail half way with
		// SQLITE_BUSY (SQLite does not retry a read-to-write upgrade), and
		// busy_timeout queues writers for up to 5s. The price is that
		// read-only transactions serialise too: read with plain queries.
		n := max(sqliteMinConns, runtime.GOMAXPROCS(0))
		db.SetMaxOpenConns(n)
		db.SetMaxIdleConns(n)
	}
	if err := db.PingContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("ping sqlite database %s: %w", dsn, err), db.Close())
	}
	return &DB{DB: db, Dialect: SQLite}, nil
}

// sqliteDriverName turns a sqlite: or file: DSN into the name the modernc
// driver opens, the file's path (for creating its directory) and whether the
// database lives in memory.
func sqliteDriverName(dsn string) (name, path string, memory bool, err error) {
	rest, query, _ := strings.Cut(dsn, "?")
	user, err := url.ParseQuery(query)
	if err != nil {
		return "", "", false, fmt.Errorf("parse query: %w", err)
	}
	params := sqliteParams(user)

	if uri, ok := strings.CutPrefix(rest, "file:"); ok {
		// A SQLite URI goes to SQLite whole: it understands mode=, cache=
		// and friends itself and ignores the driver's _ parameters.
		path, err := fileURIPath(uri)
		if err != nil {
			return "", "", false, err
		}
		memory := path == "" || path == ":memory:" || user.Get("mode") == "memory"
		return rest + "?" + params.Encode(), path, memory, nil
	}

	rest = strings.TrimPrefix(rest, "sqlite:")
	if after, ok := strings.CutPrefix(rest, "//"); ok {
		host, p, _ := strings.Cut(after, "/")
		if host != "" {
			return "", "", false, fmt.Errorf("unexpected host %q: use sqlite:///abs/path.db or sqlite:rel/path.db", host)
		}
		rest = "/" + p
	}
	if rest == ":memory:" {
		return ":memory:?" + params.Encode(), "", true, nil
	}
	path, err = url.PathUnescape(rest)
	if err != nil {
		return "", "", false, fmt.Errorf("parse path: %w", err)
	}
	if path == "" || path == "/" {
		return "", "", false, errors.New("no file path")
	}
	if strings.ContainsRune(path, '?') {
		// The driver would cut the name at the '?'.
		return "", "", false, errors.New("file path contains '?'")
	}
	return path + "?" + params.Encode(), path, false, nil
}

// fileURIPath returns the file path of a SQLite URI without its "file:" prefix.
func fileURIPath(uri string) (string, error) {
	uri, _, _ = strings.Cut(uri, "#")
	if after, ok := strings.CutPrefix(uri, "//"); ok {
		host, p, _ := strings.Cut(after, "/")
		if host != "" && host != "localhost" {
			return "", fmt.Errorf("unexpected host %q in file uri", host)
		}
		uri = "/" + p
	}
	p, err := url.PathUnescape(uri)
	if err != nil {
		return "", fmt.Errorf("parse file uri path: %w", err)
	}
	return p, nil
}

// sqliteParams returns the DSN's own query parameters plus the defaults it
// does not override.
func sqliteParams(user url.Values) url.Values {
	set := make(map[string]bool)
	for _, p := range user["_pragma"] {
		set[pragmaName(p)] = true
	}
	params := url.Values{}
	for _, p := range sqlitePragmas {
		if !set[pragmaName(p)] {
			params.Add("_pragma", p)
		}
	}
	if !user.Has("_txlock") {
		params.Set("_txlock", "immediate")
	}
	for k, vs := range user {
		for _, v := range vs {
			params.Add(k, v)
		}
	}
	return params
}

// pragmaName returns "journal_mode" for "journal_mode(WAL)" or "journal_mode = WAL".
func pragmaName(p string) string {
	if i := strings.IndexAny(p, "(="); i >= 0 {
		p = p[:i]
	}
	return strings.ToLower(strings.TrimSpace(p))
}
