// Package sqltest gives tests fresh SQLite and PostgreSQL databases, and runs
// a store's conformance suite on both. Import it from tests only.
//
// PostgreSQL is a real server, started from the postgres binaries on PATH or
// under /usr/lib/postgresql/*/bin the first time a test asks for it, shared by
// the whole test binary and stopped by [Main]. A package that calls [Postgres]
// or [Backends] therefore needs
//
//	func TestMain(m *testing.M) { sqltest.Main(m) }
//
// When the server cannot start, the tests that need it are skipped, or fail
// when the CI environment variable is "true" (see [Require]).
package sqltest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A test binary has one server, so its state is package-level: every test
// that asks for PostgreSQL shares it, and Main stops it after the last test.
var (
	mainRunning atomic.Bool
	startOnce   sync.Once
	shared      atomic.Pointer[server]
	startErr    error
	dbSeq       atomic.Int64
)

// Main runs the package's tests, stops the PostgreSQL server if a test started
// one, and exits. Call it from TestMain; [Postgres] refuses to run without it,
// since nothing else would stop the server.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main without the exit, for a TestMain that also needs another
// harness (testenv.Run): it returns the exit code.
func Run(m *testing.M) int {
	mainRunning.Store(true)
	code := m.Run()
	if s := shared.Load(); s != nil {
		if err := s.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "sqltest: stop postgres: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// Require stops the test when a real dependency (a database server, a
// cluster) could not be provided: err == nil lets the test go on; otherwise
// the test is skipped, or fails when the environment variable CI is "true",
// so that CI never passes by skipping. what names the dependency.
func Require(t testing.TB, err error, what string) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s: %v", what, err)
	}
	t.Skipf("%s unavailable, skipping (CI=true makes this fail): %v", what, err)
}

// SQLite returns the DSN of a new SQLite file in t.TempDir.
func SQLite(t testing.TB) string {
	t.Helper()
	return "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "test.db"))
}

// Postgres returns the DSN of a new, empty database on the test binary's
// PostgreSQL server, starting the server on first use. The database is
// dropped when the test ends; connections still open then are cut.
func Postgres(t testing.TB) string {
	t.Helper()
	if !mainRunning.Load() {
		t.Fatal("sqltest.Postgres needs func TestMain(m *testing.M) { sqltest.Main(m) } in the package, which stops the server after the tests")
	}
	startOnce.Do(func() {
		s, err := startServer()
		if err != nil {
			startErr = err
			return
		}
		shared.Store(s)
	})
	Require(t, startErr, "postgres test server")
	s := shared.Load()

	name := fmt.Sprintf("sqltest_%d", dbSeq.Add(1))
	if _, err := s.admin.ExecContext(t.Context(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := s.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	return s.dsn(name)
}

// Backends runs fn as the subtests "sqlite" and "postgres", each given the DSN
// of a fresh database of that engine. It is the harness of every store
// conformance suite:
//
//	func TestStoreConformance(t *testing.T) {
//		sqltest.Backends(t, func(t *testing.T, dsn string) {
//			// open, migrate, run the suite
//		})
//	}
func Backends(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}
