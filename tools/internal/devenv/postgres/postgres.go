// Package postgres runs a PostgreSQL server for the real environment: one
// database per Slipway service, reached over loopback TCP with a password
// (SCRAM) and, for psql, through a Unix socket in the state folder.
//
// The data folder, <state>/postgres/data, is kept between runs of the same
// state folder, so a warm start skips initdb; its password lives beside it
// in <state>/postgres/password (mode 0600). When this process is root the
// server runs as the `postgres` user, which PostgreSQL requires.
package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipwayhq/slipway/tools/internal/devenv"
)

// Published variables: AddrEnv holds host:port, SocketDirEnv the folder of
// the Unix socket (unset when the state path is too long for one), and
// DSNEnv(db) the pgx URL of each database.
const (
	AddrEnv      = "POSTGRES_ADDR"
	SocketDirEnv = "POSTGRES_SOCKET_DIR"
)

// Role is the login role every DSN uses. initdb makes it the superuser.
const Role = "slipway"

// DSNEnv names the variable holding the URL of database db.
func DSNEnv(db string) string { return "POSTGRES_DSN_" + strings.ToUpper(db) }

// PasswordFile is where, in a stack's state folder, the role's password is.
func PasswordFile(state string) string { return filepath.Join(state, "postgres", "password") }

// Postgres is the PostgreSQL component of the environment.
type Postgres struct {
	// Databases are created when missing, one per Slipway service.
	Databases []string
}

var _ devenv.Component = Postgres{}

// Name implements devenv.Component.
func (Postgres) Name() string { return "postgres" }

// dbName keeps database names to what needs no quoting in a URL, an
// environment variable name or SQL.
var dbName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Start initialises the data folder when it has none, starts the server on
// a free loopback port, creates the missing databases and publishes
// POSTGRES_ADDR and one POSTGRES_DSN_<DB> per database.
func (p Postgres) Start(ctx context.Context, s *devenv.Stack) error {
	for _, db := range p.Databases {
		if !dbName.MatchString(db) {
			return fmt.Errorf("postgres: database name %q: want lower-case letters, digits and _", db)
		}
	}
	bin, err := findBin()
	if err != nil {
		return err
	}
	owner, err := serverUser()
	if err != nil {
		return err
	}
	dir, err := s.Dir("postgres")
	if err != nil {
		return err
	}
	var runner []string // argv prefix that runs a tool as owner
	if owner != nil {
		// dir stays root's, so that the password file in it is safe from
		// the postgres account; that account only passes through it.
		if err := os.Chmod(dir, 0o711); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		if err := owner.reach(dir); err != nil {
			return err
		}
		pgrun, err := pgrunBinary(ctx)
		if err != nil {
			return err
		}
		runner = []string{pgrun, "-user", owner.name, "--"}
	}
	data := filepath.Join(dir, "data")
	run := filepath.Join(dir, "run")
	if err := mkdirOwned(run, owner); err != nil {
		return err
	}

	start := time.Now()
	pw, err := initialise(ctx, s, bin, runner, owner, dir, data)
	if err != nil {
		return err
	}
	initialised := time.Since(start)

	port, err := devenv.FreePort()
	if err != nil {
		return fmt.Errorf("postgres port: %w", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	// The socket's path must fit in sockaddr_un; a deep state folder goes
	// without one rather than failing, since every DSN uses TCP.
	socketDir := run
	if len(filepath.Join(run, ".s.PGSQL."+strconv.Itoa(port))) > 100 {
		socketDir = ""
	}
	// Development data: durability is traded for speed (a crash of the
	// machine, not of postgres, can lose the last writes).
	args := slices.Concat(runner, []string{filepath.Join(bin, "postgres"),
		"-D", data,
		"-h", "127.0.0.1",
		"-p", strconv.Itoa(port),
		"-k", socketDir,
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=200",
	})
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	proc, err := s.Start("postgres", cmd)
	if err != nil {
		return err
	}
	log := filepath.Join(s.State, "logs", "postgres.log")

	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	admin := dsn(pw, addr, "postgres")
	if err := devenv.WaitFor(ctx, "postgres", proc, func(ctx context.Context) error {
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			return err
		}
		return c.Close(ctx)
	}); err != nil {
		return fmt.Errorf("%w (log: %s)", err, log)
	}
	if err := createDatabases(ctx, admin, p.Databases); err != nil {
		return err
	}

	s.SetEnv(AddrEnv, addr)
	if socketDir != "" {
		s.SetEnv(SocketDirEnv, socketDir)
	}
	for _, db := range p.Databases {
		s.SetEnv(DSNEnv(db), dsn(pw, addr, db))
	}
	fmt.Fprintf(s.Out, "postgres ready at %s in %s (initdb %s); databases %s; password in %s\n",
		addr, time.Since(start).Round(time.Millisecond), initialised.Round(time.Millisecond),
		strings.Join(p.Databases, ", "), PasswordFile(s.State))
	return nil
}

// initialise returns the role's password, running initdb first when the
// state folder has no data folder yet.
func initialise(ctx context.Context, s *devenv.Stack, bin string, runner []string, owner *osUser, dir, data string) (string, error) {
	pwFile := PasswordFile(s.State)
	_, dataErr := os.Stat(filepath.Join(data, "PG_VERSION"))
	b, pwErr := os.ReadFile(pwFile)
	switch {
	case dataErr == nil && pwErr == nil:
		return strings.TrimSpace(string(b)), nil
	case dataErr == nil:
		return "", fmt.Errorf("postgres: %s has data but its password file is unreadable (%v); remove %s to start afresh", data, pwErr, dir)
	case !errors.Is(dataErr, fs.ErrNotExist):
		return "", fmt.Errorf("postgres: %w", dataErr)
	}
	// A half-made data folder from an interrupted initdb would stop it.
	if err := os.RemoveAll(data); err != nil {
		return "", fmt.Errorf("postgres: clear %s: %w", data, err)
	}
	if err := mkdirOwned(data, owner); err != nil {
		return "", err
	}
	pw := rand.Text()
	if err := writeSecret(pwFile, pw+"\n", nil); err != nil {
		return "", err
	}
	// initdb reads the password from a file, which it runs as owner to read.
	initPW := filepath.Join(dir, "initdb-password")
	if err := writeSecret(initPW, pw+"\n", owner); err != nil {
		return "", err
	}
	defer os.Remove(initPW)

	fmt.Fprintf(s.Out, "postgres: initdb %s\n", data)
	args := slices.Concat(runner, []string{filepath.Join(bin, "initdb"),
		"-D", data,
		"-U", Role,
		"--pwfile", initPW,
		"-A", "scram-sha-256",
		"-E", "UTF8",
		"--locale=C",
		"--no-sync",
		"--no-instructions",
	})
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("postgres: initdb: %w\n%s", err, out)
	}
	return pw, nil
}

// createDatabases creates those of dbs the server does not have yet.
func createDatabases(ctx context.Context, admin string, dbs []string) (err error) {
	c, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("postgres: connect to create databases: %w", err)
	}
	defer func() {
		if cerr := c.Close(ctx); cerr != nil && err == nil {
			err = fmt.Errorf("postgres: close admin connection: %w", cerr)
		}
	}()
	for _, db := range dbs {
		var exists bool
		if err := c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", db).Scan(&exists); err != nil {
			return fmt.Errorf("postgres: look up database %s: %w", db, err)
		}
		if exists {
			continue
		}
		if _, err := c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
			return fmt.Errorf("postgres: create database %s: %w", db, err)
		}
	}
	return nil
}

// dsn is the pgx URL of database db.
func dsn(pw, addr, db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(Role, pw),
		Host:     addr,
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// writeSecret writes content to a new file of mode 0600, owned by owner
// when one is given.
func writeSecret(path, content string, owner *osUser) error {
	// Removed first so that the file is created, and only ever exists, 0600.
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("postgres: replace %s: %w", path, err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return fmt.Errorf("postgres: write %s: %w", path, err)
	}
	if owner != nil {
		if err := os.Chown(path, owner.uid, owner.gid); err != nil {
			return fmt.Errorf("postgres: chown %s: %w", path, err)
		}
	}
	return nil
}

// mkdirOwned creates dir (mode 0700), owned by owner when one is given.
func mkdirOwned(dir string, owner *osUser) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("postgres: create %s: %w", dir, err)
	}
	if owner == nil {
		return nil
	}
	if err := os.Chown(dir, owner.uid, owner.gid); err != nil {
		return fmt.Errorf("postgres: chown %s to %s: %w", dir, owner.name, err)
	}
	return nil
}

// findBin returns the folder holding initdb and postgres: that of initdb on
// PATH, else the newest /usr/lib/postgresql/*/bin (Debian's layout).
func findBin() (string, error) {
	complete := func(dir string) bool {
		for _, tool := range []string{"initdb", "postgres"} {
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
		return "", errors.New("postgres: initdb and postgres not found on PATH or under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
	}
	return slices.MaxFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return va - vb
	}), nil
}

// osUser is the account the server runs as when this process is root.
type osUser struct {
	name     string
	uid, gid int
	groups   []int
}

// serverUser returns nil when this process is not root (the server runs as
// this process's user), else the `postgres` account.
func serverUser() (*osUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("postgres refuses to run as root and there is no postgres user to run it as: %w", err)
	}
	o := &osUser{name: u.Username}
	if o.uid, err = strconv.Atoi(u.Uid); err != nil {
		return nil, fmt.Errorf("postgres user uid %q: %w", u.Uid, err)
	}
	if o.gid, err = strconv.Atoi(u.Gid); err != nil {
		return nil, fmt.Errorf("postgres user gid %q: %w", u.Gid, err)
	}
	o.groups = []int{o.gid}
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.Atoi(id); err == nil {
				o.groups = append(o.groups, g)
			}
		}
	}
	return o, nil
}

// reach makes sure o can walk down to dir: every folder above it must grant
// o search permission. Folders inside the system's temporary folder (test
// state folders are made 0700 there) are given search permission for
// others, which lets nobody list them; anywhere else that is the operator's
// decision, so it is an error naming the folder.
func (o *osUser) reach(dir string) error {
	tmp, err := filepath.Abs(os.TempDir())
	if err != nil {
		return err
	}
	var ancestors []string
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		ancestors = append(ancestors, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	for i := len(ancestors) - 1; i >= 0; i-- {
		d := ancestors[i]
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		if o.canSearch(fi) {
			continue
		}
		if rel, err := filepath.Rel(tmp, d); err != nil || rel == "." || strings.HasPrefix(rel, "..") {
			return fmt.Errorf("postgres runs as user %s, which cannot enter %s: grant it search permission (chmod o+x %s) or use a state folder it can reach", o.name, d, d)
		}
		if err := os.Chmod(d, fi.Mode().Perm()|0o001); err != nil {
			return fmt.Errorf("postgres: let user %s enter %s: %w", o.name, d, err)
		}
	}
	return nil
}

func (o *osUser) canSearch(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true // not a unix file system: nothing to check
	}
	perm := fi.Mode().Perm()
	switch {
	case int(st.Uid) == o.uid:
		return perm&0o100 != 0
	case slices.Contains(o.groups, int(st.Gid)):
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}
