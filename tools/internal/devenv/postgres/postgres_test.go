package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/slipwayhq/slipway/tools/internal/devenv"
	"github.com/slipwayhq/slipway/tools/internal/devenv/devenvtest"
	"github.com/slipwayhq/slipway/tools/internal/devenv/postgres"
)

var databases = []string{"gateway", "clusters", "registry", "catalog", "releases"}

func TestPostgres(t *testing.T) {
	s := devenvtest.Start(t, postgres.Postgres{Databases: databases})
	env := s.Env()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	for _, db := range databases {
		t.Run("round trip "+db, func(t *testing.T) {
			dsn := env[postgres.DSNEnv(db)]
			if dsn == "" {
				t.Fatalf("%s not published", postgres.DSNEnv(db))
			}
			c, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			var current string
			if err := c.QueryRow(ctx, "SELECT current_database()").Scan(&current); err != nil || current != db {
				t.Fatalf("current_database() = %q, %v; want %q", current, err, db)
			}
			if _, err := c.Exec(ctx, "CREATE TABLE smoke (id int PRIMARY KEY, note text NOT NULL)"); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Exec(ctx, "INSERT INTO smoke VALUES ($1, $2)", 1, "hello "+db); err != nil {
				t.Fatal(err)
			}
			var note string
			if err := c.QueryRow(ctx, "SELECT note FROM smoke WHERE id = $1", 1).Scan(&note); err != nil || note != "hello "+db {
				t.Fatalf("select = %q, %v; want %q", note, err, "hello "+db)
			}
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		u, err := url.Parse(env[postgres.DSNEnv("gateway")])
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.UserPassword(postgres.Role, "not-the-password")
		c, err := pgx.Connect(ctx, u.String())
		if err == nil {
			c.Close(ctx)
			t.Fatal("connected with a wrong password")
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "28P01" { // invalid_password
			t.Fatalf("err = %v; want SQLSTATE 28P01", err)
		}
	})

	t.Run("password file", func(t *testing.T) {
		fi, err := os.Stat(postgres.PasswordFile(s.State))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("password file mode %v, want 0600", fi.Mode().Perm())
		}
	})

	t.Run("socket", func(t *testing.T) {
		dir := env[postgres.SocketDirEnv]
		if dir == "" {
			t.Skip("state folder too deep for a Unix socket")
		}
		port := env[postgres.AddrEnv][strings.LastIndexByte(env[postgres.AddrEnv], ':')+1:]
		u, _ := url.Parse(env[postgres.DSNEnv("catalog")])
		pw, _ := u.User.Password()
		c, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%s user=%s password=%s dbname=catalog", dir, port, postgres.Role, pw))
		if err != nil {
			t.Fatal(err)
		}
		c.Close(ctx)
	})

	t.Run("stop leaves nothing running", func(t *testing.T) {
		group := devenvtest.GroupMembers(t, s.State)
		if len(group) < 2 {
			t.Fatalf("processes of the stack = %v; want postgres and its workers", group)
		}
		s.Stop()
		for _, pid := range group {
			if devenv.Alive(pid) {
				t.Errorf("pid %d still running after Stop", pid)
			}
		}
	})
}

// TestWarmStart: `down` stops the server cleanly, and a second start on the
// same state folder reuses the data and its password, and keeps what was
// written.
func TestWarmStart(t *testing.T) {
	state := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := func() *devenv.Stack {
		s, err := devenv.NewStack(state, testWriter{t})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
		began := time.Now()
		err = postgres.Postgres{Databases: []string{"releases"}}.Start(ctx, s)
		devenvtest.Require(t, err, "postgres")
		t.Logf("postgres started in %s", time.Since(began).Round(time.Millisecond))
		return s
	}
	s := start()
	c, err := pgx.Connect(ctx, s.Env()[postgres.DSNEnv("releases")])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')"); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	// `devstack down` stops it from another process, through the pid file.
	group := devenvtest.GroupMembers(t, state)
	if stopped, err := devenv.Down(state); err != nil || !slices.Equal(stopped, []string{"postgres"}) {
		t.Fatalf("Down = %v, %v; want postgres stopped", stopped, err)
	}
	for _, pid := range group {
		if devenv.Alive(pid) {
			t.Errorf("pid %d still running after Down", pid)
		}
	}
	// A clean shutdown, so the next start needs no crash recovery.
	if log, err := os.ReadFile(filepath.Join(state, "logs", "postgres.log")); err != nil || !strings.Contains(string(log), "database system is shut down") {
		t.Fatalf("postgres did not shut down cleanly (%v); log:\n%s", err, log)
	}

	s = start()
	c, err = pgx.Connect(ctx, s.Env()[postgres.DSNEnv("releases")])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var v string
	if err := c.QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != "still here" {
		t.Fatalf("after restart: %q, %v", v, err)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
