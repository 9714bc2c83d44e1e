package sqltest

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// superuser is the role initdb creates; trust authentication lets any local
// OS user connect as it.
const superuser = "sqltest"

// server is a throw-away PostgreSQL instance. Its root directory holds the
// data directory, the Unix socket, the server log and the pid of the test
// binary that owns it.
type server struct {
	root    string
	bin     string  // directory of initdb, pg_ctl and postgres
	owner   *osUser // OS user the server runs as; nil means this process's
	port    int
	started bool // pg_ctl start was attempted
	admin   *sql.DB
}

// osUser is an account to run the postgres tools as.
type osUser struct {
	name     string
	uid, gid int
}

func startServer() (_ *server, err error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	owner, err := serverUser()
	if err != nil {
		return nil, err
	}
	base := tempBase()
	reapStale(bin, base, owner)

	root, err := os.MkdirTemp(base, "sqltest-pg-")
	if err != nil {
		return nil, fmt.Errorf("create server directory: %w", err)
	}
	s := &server{root: root, bin: bin, owner: owner}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.stop())
		}
	}()
	if err := os.WriteFile(filepath.Join(root, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, fmt.Errorf("write owner pid: %w", err)
	}
	if owner != nil {
		if err := os.Chown(root, owner.uid, owner.gid); err != nil {
			return nil, fmt.Errorf("chown server directory to %s: %w", owner.name, err)
		}
	}
	if s.port, err = freePort(); err != nil {
		return nil, err
	}

	data := filepath.Join(root, "data")
	if err := s.run("initdb", "-D", data, "-U", superuser, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		return nil, err
	}
	// Unix socket only: no TCP port is opened, so parallel test binaries
	// cannot collide; durability is traded for speed.
	opts := fmt.Sprintf("-c listen_addresses='' -k %s -p %d -c fsync=off -c full_page_writes=off -c synchronous_commit=off",
		shellQuote(root), s.port)
	s.started = true
	logFile := filepath.Join(root, "postgres.log")
	if err := s.run("pg_ctl", "-w", "-t", "60", "-D", data, "-l", logFile, "-o", opts, "start"); err != nil {
		return nil, fmt.Errorf("%w\nserver log:\n%s", err, tail(logFile, 2048))
	}

	if s.admin, err = sql.Open("pgx", s.dsn("postgres")); err != nil {
		return nil, fmt.Errorf("open admin connection: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.admin.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("ping server: %w", err)
	}
	return s, nil
}

// stop shuts the server down and removes its directory.
func (s *server) stop() error {
	return s.shutdown("fast")
}

func (s *server) shutdown(mode string) error {
	var errs []error
	if s.admin != nil {
		errs = append(errs, s.admin.Close())
	}
	if s.started {
		errs = append(errs, s.run("pg_ctl", "-w", "-D", filepath.Join(s.root, "data"), "-m", mode, "stop"))
	}
	// Even when pg_ctl failed, this brings the server down: the postmaster
	// shuts itself down within a minute of its lock file disappearing.
	if err := os.RemoveAll(s.root); err != nil {
		errs = append(errs, fmt.Errorf("remove server directory: %w", err))
	}
	return errors.Join(errs...)
}

// dsn returns the pgx DSN of database db on s.
func (s *server) dsn(db string) string {
	return fmt.Sprintf("postgres://%s@/%s?host=%s&port=%d&sslmode=disable", superuser, db, url.QueryEscape(s.root), s.port)
}

// run runs one of the postgres tools as the server's owner.
func (s *server) run(tool string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, tool), args...)
	cmd.Dir = s.root // the owner may not be allowed into the test's directory
	cmd.WaitDelay = 5 * time.Second
	s.owner.apply(cmd)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", tool, args[len(args)-1], err, bytes.TrimSpace(out))
	}
	return nil
}

// reapStale removes the servers of test binaries that died before Main could
// stop them (a -timeout panic, a kill).
func reapStale(bin, base string, owner *osUser) {
	dirs, _ := filepath.Glob(filepath.Join(base, "sqltest-pg-*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "owner.pid"))
		if err != nil {
			continue // still being set up, or not ours
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		old := &server{root: dir, bin: bin, owner: owner, started: true}
		_ = old.shutdown("immediate") // best effort: it may not be running
	}
}

// findBin returns the directory holding initdb, pg_ctl and postgres: the one
// of initdb on PATH, else the newest /usr/lib/postgresql/*/bin.
func findBin() (string, error) {
	complete := func(dir string) bool {
		for _, tool := range []string{"initdb", "pg_ctl", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, tool)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if p, err := exec.LookPath("initdb"); err == nil && complete(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	dirs = slices.DeleteFunc(dirs, func(d string) bool { return !complete(d) })
	if len(dirs) == 0 {
		return "", errors.New("initdb, pg_ctl and postgres not found on PATH or under /usr/lib/postgresql/*/bin")
	}
	return slices.MaxFunc(dirs, func(a, b string) int {
		return compareVersions(filepath.Base(filepath.Dir(a)), filepath.Base(filepath.Dir(b)))
	}), nil
}

// compareVersions orders "9.6" before "15" before "16".
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if c := cmp.Compare(x, y); c != 0 {
			return c
		}
	}
	return 0
}

// tempBase is where server directories go. The socket path must fit in
// sockaddr_un (about 100 bytes), so a long TMPDIR is passed over for /tmp.
func tempBase() string {
	if d := os.TempDir(); len(d) <= 60 {
		return d
	}
	return "/tmp"
}

// freePort returns a port number no local TCP listener uses. Only the Unix
// socket's name carries it, but a unique one also keeps the server's System V
// IPC keys, which postgres derives from the port, clear of other servers'.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// shellQuote quotes s for the shell pg_ctl passes its -o options through.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// tail returns at most the last n bytes of file, for error messages.
func tail(file string, n int) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
