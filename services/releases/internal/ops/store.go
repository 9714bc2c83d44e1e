package ops

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/slipwayhq/slipway/pkg/paging"
	"github.com/slipwayhq/slipway/pkg/sqldb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the operation queue on one database. It is safe for concurrent
// use, and several Stores (replicas) may share a PostgreSQL database.
type Store struct {
	db          *sqldb.DB
	now         func() time.Time
	maxAttempts int
	keyTTL      time.Duration
	poll        time.Duration
	entropy     *ulid.LockedMonotonicReader

	mu       sync.Mutex
	watchers map[string]map[chan struct{}]struct{} // by operation id

	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt // SQLite only, see sqliteTx

	// writing admits one writer at a time on SQLite, in arrival order; see
	// write.
	writing chan struct{}
}

// Option configures a Store.
type Option func(*Store)

// Clock replaces time.Now, in tests.
func Clock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// MaxAttempts is how many claims an operation gets before a lease running
// out fails it (DefaultMaxAttempts).
func MaxAttempts(n int) Option { return func(s *Store) { s.maxAttempts = n } }

// KeyTTL is how long an idempotency key is honoured (DefaultKeyTTL).
func KeyTTL(d time.Duration) Option { return func(s *Store) { s.keyTTL = d } }

// PollInterval is how often Watch reads the database (DefaultPollInterval).
func PollInterval(d time.Duration) Option { return func(s *Store) { s.poll = d } }

// Open opens the database at dsn (see sqldb.Open) and brings its schema up
// to date.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	s := &Store{
		now:         time.Now,
		maxAttempts: DefaultMaxAttempts,
		keyTTL:      DefaultKeyTTL,
		poll:        DefaultPollInterval,
		entropy:     &ulid.LockedMonotonicReader{MonotonicReader: ulid.Monotonic(rand.Reader, 0)},
		watchers:    map[string]map[chan struct{}]struct{}{},
		stmts:       map[string]*sql.Stmt{},
		writing:     make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(s)
	}
	if s.maxAttempts < 1 {
		return nil, fmt.Errorf("open operations store: max attempts %d, want at least 1", s.maxAttempts)
	}
	if s.poll <= 0 {
		return nil, fmt.Errorf("open operations store: poll interval %s, want more than 0", s.poll)
	}
	db, err := sqldb.OpenMigrated(ctx, dsn, migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("open operations database: %w", err)
	}
	s.db = db
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.stmtMu.Lock()
	var errs []error
	for _, st := range s.stmts {
		errs = append(errs, st.Close())
	}
	s.stmts = nil
	s.stmtMu.Unlock()
	return errors.Join(append(errs, s.db.Close())...)
}

// Ping reports whether the database answers (readiness).
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// querier is what *sql.Tx and *sqldb.DB share, so reads work in and out of
// a transaction.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) newID() (string, error) {
	id, err := ulid.New(ulid.Timestamp(s.now()), s.entropy)
	if err != nil {
		return "", fmt.Errorf("new operation id: %w", err)
	}
	return "op_" + id.String(), nil
}

// targetKey names a release's queue. Escaping keeps it unambiguous
// whatever the parts contain.
func targetKey(t Target) string {
	return url.PathEscape(t.Cluster) + "/" + url.PathEscape(t.Namespace) + "/" + url.PathEscape(t.Release)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

const (
	opColumns = `id, org, kind, cluster, namespace, release_name, application, application_target, instance,
		dry_run, payload, idempotency_key, creator, state, phase, attempt, cancel_requested, event_count,
		result, error_code, error_message, version, created_at, started_at, ended_at, traceparent, tracestate`
	// listColumns leave the payload out: lists are for people.
	listColumns = `id, org, kind, cluster, namespace, release_name, application, application_target, instance,
		dry_run, NULL, idempotency_key, creator, state, phase, attempt, cancel_requested, event_count,
		result, error_code, error_message, version, created_at, started_at, ended_at, traceparent, tracestate`
)

// scanned is an operation row with the event count the events are read
// against.
type scanned struct {
	Operation
	eventCount int64
	numbered   []numberedEvent // Events with their numbers
}

func scanOp(row interface{ Scan(...any) error }) (scanned, error) {
	var (
		op                      scanned
		dryRun, cancel, state   int
		created, started, ended int64
		kind                    string
		payload, result         []byte
		target                  Target
	)
	err := row.Scan(&op.ID, &op.Org, &kind, &target.Cluster, &target.Namespace, &target.Release,
		&target.Application, &target.ApplicationTarget, &target.Instance,
		&dryRun, &payload, &op.IdempotencyKey, &op.Creator, &state, &op.Phase, &op.Attempt, &cancel, &op.eventCount,
		&result, &op.ErrorCode, &op.ErrorMessage, &op.Version, &created, &started, &ended, &op.TraceParent, &op.TraceState)
	if err != nil {
		return scanned{}, err
	}
	op.Kind, op.Target, op.State = Kind(kind), target, State(state)
	op.DryRun, op.CancelRequested = dryRun != 0, cancel != 0
	// Empty and NULL read back alike on both engines.
	if len(payload) > 0 {
		op.Payload = payload
	}
	if len(result) > 0 {
		op.Result = result
	}
	op.Created, op.Started, op.Ended = sqldb.FromMicros(created), sqldb.FromMicros(started), sqldb.FromMicros(ended)
	return op, nil
}

// setEvents attaches events read for op, keeping those the row counted (a
// concurrent append may have added later ones since the row was read).
func (op *scanned) setEvents(evs []numberedEvent) {
	op.Events, op.numbered = nil, nil
	for _, e := range evs {
		if e.n <= op.eventCount {
			op.Events = append(op.Events, e.Event)
			op.numbered = append(op.numbered, e)
		}
	}
	op.DroppedEventCount = int(op.eventCount) - len(op.Events)
}

type numberedEvent struct {
	n int64
	Event
}

// get reads one operation of org with its events; ErrNotFound when there
// is none.
func (s *Store) get(ctx context.Context, q querier, org, id string) (scanned, error) {
	op, err := scanOp(q.QueryRowContext(ctx, s.db.Rebind(`SELECT `+opColumns+` FROM operations WHERE org = ? AND id = ?`), org, id))
	if errors.Is(err, sql.ErrNoRows) {
		return scanned{}, ErrNotFound
	}
	if err != nil {
		return scanned{}, fmt.Errorf("get operation %s: %w", id, err)
	}
	evs, err := s.events(ctx, q, org, id, op.eventCount-MaxEvents)
	if err != nil {
		return scanned{}, err
	}
	op.setEvents(evs)
	return op, nil
}

// events reads the stored events of an operation numbered above after.
func (s *Store) events(ctx context.Context, q querier, org, id string, after int64) ([]numberedEvent, error) {
	rows, err := q.QueryContext(ctx, s.db.Rebind(`SELECT n, at, phase, message FROM operation_events WHERE org = ? AND op_id = ? AND n > ? ORDER BY n`), org, id, after)
	if err != nil {
		return nil, fmt.Errorf("read events of %s: %w", id, err)
	}
	defer rows.Close()
	var out []numberedEvent
	for rows.Next() {
		var e numberedEvent
		var at int64
		if err := rows.Scan(&e.n, &at, &e.Phase, &e.Message); err != nil {
			return nil, fmt.Errorf("read events of %s: %w", id, err)
		}
		e.Time = sqldb.FromMicros(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events of %s: %w", id, err)
	}
	return out, nil
}

// Get returns one operation of org with all its kept events, or
// ErrNotFound.
func (s *Store) Get(ctx context.Context, org, id string) (Operation, error) {
	op, err := s.get(ctx, s.db, org, id)
	return op.Operation, err
}

// List returns a page of org's operations matching f, newest first, and
// the token of the next page ("" after the last). Each carries only its
// ListedEvents latest events (DroppedEventCount then counts every event
// left out) and no payload. A token from another query is a
// *validate.FieldError on page_token.
func (s *Store) List(ctx context.Context, org string, f ListFilter, p Page) ([]Operation, string, error) {
	size := p.Size
	switch {
	case size < 0:
		return nil, "", fmt.Errorf("list operations: page size %d", size)
	case size == 0:
		size = paging.DefaultSize
	case size > paging.MaxSize:
		size = paging.MaxSize
	}
	fp := paging.Fingerprint(org, f.Cluster, f.Namespace, f.Release, f.Application, string(f.Kind), f.State.String())
	after, err := paging.Decode(p.Token, fp)
	if err != nil {
		return nil, "", err
	}
	where := []string{"org = ?"}
	args := []any{org}
	for _, c := range []struct {
		col string
		v   any
		set bool
	}{
		{"cluster", f.Cluster, f.Cluster != ""},
		{"namespace", f.Namespace, f.Namespace != ""},
		{"release_name", f.Release, f.Release != ""},
		{"application", f.Application, f.Application != ""},
		{"kind", string(f.Kind), f.Kind != ""},
		{"state", int(f.State), f.State != 0},
		{"id", after, after != ""},
	} {
		if !c.set {
			continue
		}
		op := " = ?"
		if c.col == "id" {
			op = " < ?"
		}
		where, args = append(where, c.col+op), append(args, c.v)
	}
	args = append(args, size+1)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT `+listColumns+` FROM operations WHERE `+strings.Join(where, " AND ")+` ORDER BY id DESC LIMIT ?`), args...)
	if err != nil {
		return nil, "", fmt.Errorf("list operations: %w", err)
	}
	var page []scanned
	for rows.Next() {
		op, err := scanOp(rows)
		if err != nil {
			_ = rows.Close()
			return nil, "", fmt.Errorf("list operations: %w", err)
		}
		page = append(page, op)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, "", fmt.Errorf("list operations: %w", err)
	}
	next := ""
	if len(page) > size {
		page = page[:size]
		next = paging.Encode(page[len(page)-1].ID, fp)
	}
	if err := s.listedEvents(ctx, org, page); err != nil {
		return nil, "", err
	}
	out := make([]Operation, len(page))
	for i := range page {
		out[i] = page[i].Operation
	}
	return out, next, nil
}

// listedEvents attaches the latest ListedEvents events to each operation of
// page, in one query.
func (s *Store) listedEvents(ctx context.Context, org string, page []scanned) error {
	if len(page) == 0 {
		return nil
	}
	args := make([]any, 0, len(page)+2)
	args = append(args, org, ListedEvents)
	for _, op := range page {
		args = append(args, op.ID)
	}
	q := `SELECT e.op_id, e.n, e.at, e.phase, e.message FROM operation_events e JOIN operations o ON o.org = e.org AND o.id = e.op_id
		WHERE e.org = ? AND e.n > o.event_count - ? AND e.op_id IN (?` + strings.Repeat(", ?", len(page)-1) + `) ORDER BY e.op_id, e.n`
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(q), args...)
	if err != nil {
		return fmt.Errorf("list operation events: %w", err)
	}
	defer rows.Close()
	byID := map[string][]numberedEvent{}
	for rows.Next() {
		var id string
		var e numberedEvent
		var at int64
		if err := rows.Scan(&id, &e.n, &at, &e.Phase, &e.Message); err != nil {
			return fmt.Errorf("list operation events: %w", err)
		}
		e.Time = sqldb.FromMicros(at)
		byID[id] = append(byID[id], e)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list operation events: %w", err)
	}
	for i := range page {
		evs := byID[page[i].ID]
		// Events appended after the page was read are left out, and so are
		// those beyond the latest ListedEvents the row counted.
		kept := evs[:0]
		for _, e := range evs {
			if e.n <= page[i].eventCount && e.n > page[i].eventCount-ListedEvents {
				kept = append(kept, e)
			}
		}
		page[i].setEvents(kept)
	}
	return nil
}

// write runs a write on the database. On SQLite, which has one writer at a
// time, the Store's writers queue for it here, in arrival order, before
// they take a connection: left to SQLite's busy handler, which polls, a
// writer can lose to newer ones until busy_timeout fails it.
func (s *Store) write(ctx context.Context, fn func() error) error {
	if s.db.Dialect != sqldb.SQLite {
		return fn()
	}
	select {
	case s.writing <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.writing }()
	return fn()
}

// inTx runs fn in a transaction (see sqldb.DB.InTx), handing it the
// transaction as a querier that reuses prepared statements on SQLite.
func (s *Store) inTx(ctx context.Context, fn func(querier) error) error {
	if s.db.Dialect != sqldb.SQLite {
		// pgx caches prepared statements per connection itself.
		return s.db.InTx(ctx, func(tx *sql.Tx) error { return fn(tx) })
	}
	var missing []string
	err := s.write(ctx, func() error {
		return s.db.InTx(ctx, func(tx *sql.Tx) error { return fn(sqliteTx{tx: tx, s: s, missing: &missing}) })
	})
	// Prepared after the transaction: preparing takes a connection from
	// the pool, whose others may all be waiting for this transaction's
	// write lock.
	for _, q := range missing {
		s.prepare(ctx, q)
	}
	return err
}

// sqliteTx runs a transaction's statements through prepared statements
// kept by the Store: pure-Go SQLite spends more time parsing a statement
// than running a small one, and sqldb's cache serves only statements run
// outside transactions. database/sql prepares each once per connection.
type sqliteTx struct {
	tx      *sql.Tx
	s       *Store
	missing *[]string // statements to prepare once the transaction is over
}

func (t sqliteTx) stmt(ctx context.Context, query string) *sql.Stmt {
	t.s.stmtMu.Lock()
	st, ok := t.s.stmts[query]
	t.s.stmtMu.Unlock()
	if !ok {
		*t.missing = append(*t.missing, query)
		return nil
	}
	return t.tx.StmtContext(ctx, st)
}

func (t sqliteTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

func (t sqliteTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}

func (t sqliteTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}

// maxStmts bounds the statement cache: the queries are program text, but
// a bug must not grow it forever.
const maxStmts = 256

// prepare adds query to the Store's prepared statements, if it can; when
// it cannot, the query keeps running unprepared.
func (s *Store) prepare(ctx context.Context, query string) {
	s.stmtMu.Lock()
	_, ok := s.stmts[query]
	full := len(s.stmts) >= maxStmts
	s.stmtMu.Unlock()
	if ok || full {
		return
	}
	st, err := s.db.DB.PrepareContext(ctx, query)
	if err != nil {
		return
	}
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if _, ok := s.stmts[query]; ok || s.stmts == nil {
		_ = st.Close() // prepared concurrently, or the Store closed meanwhile
		return
	}
	s.stmts[query] = st
}
