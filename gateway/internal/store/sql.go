package store

import (
	"context"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/sqldb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// SQLStore is the Store on SQLite or PostgreSQL.
type SQLStore struct{ db *sqldb.DB }

var _ Store = (*SQLStore)(nil)

// Open opens the database at dsn and brings its schema up to date.
func Open(ctx context.Context, dsn string) (*SQLStore, error) {
	db, err := sqldb.OpenMigrated(ctx, dsn, migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("open gateway database: %w", err)
	}
	return &SQLStore{db: db}, nil
}

// Close closes the database.
func (s *SQLStore) Close() error { return s.db.Close() }

// Ping reports whether the database answers (readiness).
func (s *SQLStore) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// touchEvery is how stale last_used_at must be before TouchToken writes it
// again: authenticating a request must not cost a write every time.
const touchEvery = time.Minute

// Organizations.

const orgColumns = `id, name, display_name, created_at, updated_at`

func (s *SQLStore) CreateOrg(ctx context.Context, org Org, owner string) error {
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.mustExist(ctx, tx, `SELECT 1 FROM users WHERE id = ?`, owner); err != nil {
			return err
		}
		var retired int
		switch err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT 1 FROM retired_org_names WHERE name = ?`), org.Name).Scan(&retired); {
		case err == nil:
			return ErrExists
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO orgs (`+orgColumns+`) VALUES (?, ?, ?, ?, ?)`),
			org.ID, org.Name, org.DisplayName, micros(org.Created), micros(org.Updated)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?, ?, ?, ?)`),
			org.ID, owner, string(identity.RoleOwner), micros(org.Created))
		return err
	})
	switch {
	case sqldb.IsUniqueViolation(err), errors.Is(err, ErrExists):
		return ErrExists
	case errors.Is(err, ErrNotFound):
		return ErrNotFound
	case err != nil:
		return fmt.Errorf("create org: %w", err)
	}
	return nil
}

func (s *SQLStore) GetOrgByName(ctx context.Context, name string) (Org, error) {
	row := s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT `+orgColumns+` FROM orgs WHERE name = ?`), name)
	org, err := scanOrg(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Org{}, ErrNotFound
	}
	if err != nil {
		return Org{}, fmt.Errorf("get org: %w", err)
	}
	return org, nil
}

func (s *SQLStore) GetOrg(ctx context.Context, id string) (Org, error) {
	row := s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT `+orgColumns+` FROM orgs WHERE id = ?`), id)
	org, err := scanOrg(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Org{}, ErrNotFound
	}
	if err != nil {
		return Org{}, fmt.Errorf("get org: %w", err)
	}
	return org, nil
}

func (s *SQLStore) UpdateOrgDisplayName(ctx context.Context, orgID, displayName string, now time.Time) (Org, error) {
	// RETURNING is spoken by PostgreSQL and by SQLite since 3.35.
	row := s.db.QueryRowContext(ctx, s.db.Rebind(`UPDATE orgs SET display_name = ?, updated_at = ? WHERE id = ? RETURNING `+orgColumns),
		displayName, micros(now), orgID)
	org, err := scanOrg(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Org{}, ErrNotFound
	}
	if err != nil {
		return Org{}, fmt.Errorf("update org: %w", err)
	}
	return org, nil
}

// DeleteOrg deletes the org's rows from every table itself rather than
// relying on ON DELETE CASCADE, which SQLite applies only while the
// foreign_keys pragma is on.
func (s *SQLStore) DeleteOrg(ctx context.Context, orgID string) error {
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		for _, table := range []string{"audit_events", "tokens", "memberships"} {
			if _, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM `+table+` WHERE org_id = ?`), orgID); err != nil {
				return fmt.Errorf("delete %s: %w", table, err)
			}
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO retired_org_names (name, retired_at)
			SELECT name, ? FROM orgs WHERE id = ?`), micros(time.Now()), orgID); err != nil {
			return fmt.Errorf("retire org name: %w", err)
		}
		res, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM orgs WHERE id = ?`), orgID)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
	if errors.Is(err, ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete org: %w", err)
	}
	return nil
}

func (s *SQLStore) ListUserOrgs(ctx context.Context, userID, after string, limit int) ([]Org, error) {
	where := []string{"m.user_id = ?"}
	args := []any{userID}
	if after != "" {
		where, args = append(where, "o.name > ?"), append(args, after)
	}
	q := `SELECT o.id, o.name, o.display_name, o.created_at, o.updated_at
		FROM orgs o JOIN memberships m ON m.org_id = o.id
		WHERE ` + strings.Join(where, " AND ") + ` ORDER BY o.name`
	return list(ctx, s, "list user orgs", q, args, limit, scanOrg)
}

func (s *SQLStore) CountOrgs(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM orgs`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count orgs: %w", err)
	}
	return n, nil
}

func scanOrg(row scanner) (Org, error) {
	var org Org
	var created, updated int64
	if err := row.Scan(&org.ID, &org.Name, &org.DisplayName, &created, &updated); err != nil {
		return Org{}, err
	}
	org.Created, org.Updated = fromMicros(created), fromMicros(updated)
	return org, nil
}

// Users.

const userColumns = `id, subject, email, created_at`

func (s *SQLStore) CreateUser(ctx context.Context, u User) error {
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?)`),
		u.ID, nullable(u.Subject), nullable(u.Email), micros(u.Created))
	if sqldb.IsUniqueViolation(err) {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	return nil
}

func (s *SQLStore) GetUser(ctx context.Context, id string) (User, error) {
	return s.getUser(ctx, "id", id)
}

func (s *SQLStore) GetUserBySubject(ctx context.Context, subject string) (User, error) {
	return s.getUser(ctx, "subject", subject)
}

func (s *SQLStore) GetUserByEmail(ctx context.Context, email string) (User, error) {
	return s.getUser(ctx, "email", email)
}

// getUser finds a user by one of its unique columns. An empty subject or
// email is stored as NULL, so looking one up finds nobody.
func (s *SQLStore) getUser(ctx context.Context, column, value string) (User, error) {
	row := s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT `+userColumns+` FROM users WHERE `+column+` = ?`), value)
	u, err := scanUser(row)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("get user by %s: %w", column, err)
	}
	return u, nil
}

// SetUserSubject binds a user that has no subject yet; binding it again to
// the same subject is a no-op. ErrExists when another user has the subject,
// or when this one is already bound to another: a person's identity is
// never moved to a different login.
func (s *SQLStore) SetUserSubject(ctx context.Context, userID, subject string) error {
	if subject == "" {
		return errors.New("set user subject: empty subject")
	}
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE users SET subject = ? WHERE id = ? AND (subject IS NULL OR subject = ?)`),
		subject, userID, subject)
	if sqldb.IsUniqueViolation(err) {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("set user subject: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("set user subject: %w", err)
	}
	if n > 0 {
		return nil
	}
	// No row matched: there is no such user, or it has another subject.
	if _, err := s.GetUser(ctx, userID); err != nil {
		return err
	}
	return ErrExists
}

func scanUser(row scanner) (User, error) {
	var u User
	var subject, email sql.NullString
	var created int64
	if err := row.Scan(&u.ID, &subject, &email, &created); err != nil {
		return User{}, err
	}
	u.Subject, u.Email, u.Created = subject.String, email.String, fromMicros(created)
	return u, nil
}

// Memberships.

const (
	memberColumns = `u.id, u.subject, u.email, u.created_at, m.role, m.created_at`
	memberFrom    = ` FROM memberships m JOIN users u ON u.id = m.user_id`
)

func (s *SQLStore) AddMember(ctx context.Context, orgID, userID string, role identity.Role, now time.Time) error {
	if !role.Valid() {
		return fmt.Errorf("add member: unknown role %q", role)
	}
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.mustExist(ctx, tx, `SELECT 1 FROM orgs WHERE id = ?`, orgID); err != nil {
			return err
		}
		if err := s.mustExist(ctx, tx, `SELECT 1 FROM users WHERE id = ?`, userID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?, ?, ?, ?)`),
			orgID, userID, string(role), micros(now))
		return err
	})
	switch {
	case sqldb.IsUniqueViolation(err):
		return ErrExists
	case errors.Is(err, ErrNotFound):
		return ErrNotFound
	case err != nil:
		return fmt.Errorf("add member: %w", err)
	}
	return nil
}

func (s *SQLStore) GetMember(ctx context.Context, orgID, userID string) (Member, error) {
	m, err := s.getMember(ctx, s.db, orgID, userID)
	if errors.Is(err, sql.ErrNoRows) {
		return Member{}, ErrNotFound
	}
	if err != nil {
		return Member{}, fmt.Errorf("get member: %w", err)
	}
	return m, nil
}

func (s *SQLStore) getMember(ctx context.Context, q querier, orgID, userID string) (Member, error) {
	return scanMember(q.QueryRowContext(ctx, s.db.Rebind(`SELECT `+memberColumns+memberFrom+` WHERE m.org_id = ? AND m.user_id = ?`), orgID, userID))
}

func (s *SQLStore) ListMembers(ctx context.Context, orgID, after string, limit int) ([]Member, error) {
	where := []string{"m.org_id = ?"}
	args := []any{orgID}
	if after != "" {
		where, args = append(where, "m.user_id > ?"), append(args, after)
	}
	q := `SELECT ` + memberColumns + memberFrom + ` WHERE ` + strings.Join(where, " AND ") + ` ORDER BY m.user_id`
	return list(ctx, s, "list members", q, args, limit, scanMember)
}

func (s *SQLStore) UpdateMemberRole(ctx context.Context, orgID, userID string, role identity.Role) (Member, error) {
	if !role.Valid() {
		return Member{}, fmt.Errorf("update member: unknown role %q", role)
	}
	var m Member
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		current, owners, err := s.lockMembership(ctx, tx, orgID, userID)
		if err != nil {
			return err
		}
		if current == identity.RoleOwner && role != identity.RoleOwner && owners < 2 {
			return ErrLastOwner
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE memberships SET role = ? WHERE org_id = ? AND user_id = ?`),
			string(role), orgID, userID); err != nil {
			return err
		}
		m, err = s.getMember(ctx, tx, orgID, userID)
		return err
	})
	switch {
	case errors.Is(err, ErrNotFound):
		return Member{}, ErrNotFound
	case errors.Is(err, ErrLastOwner):
		return Member{}, ErrLastOwner
	case err != nil:
		return Member{}, fmt.Errorf("update member: %w", err)
	}
	return m, nil
}

func (s *SQLStore) RemoveMember(ctx context.Context, orgID, userID string) error {
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		current, owners, err := s.lockMembership(ctx, tx, orgID, userID)
		if err != nil {
			return err
		}
		if current == identity.RoleOwner && owners < 2 {
			return ErrLastOwner
		}
		_, err = tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM memberships WHERE org_id = ? AND user_id = ?`), orgID, userID)
		return err
	})
	switch {
	case errors.Is(err, ErrNotFound):
		return ErrNotFound
	case errors.Is(err, ErrLastOwner):
		return ErrLastOwner
	case err != nil:
		return fmt.Errorf("remove member: %w", err)
	}
	return nil
}

// lockMembership returns userID's role in orgID and how many owners the org
// has, for a change to that membership: ErrNotFound when there is none.
//
// The check and the change must be atomic, or two owners demoting each
// other at once would both see a second owner and leave none. On
// PostgreSQL the rows read here (the member's and every owner's) are locked
// FOR UPDATE until the transaction ends, in one order, so such changes queue
// up; the one that waited re-reads the rows it locks, and a row that is no
// longer an owner's drops out of the count. (Under REPEATABLE READ it fails
// with a serialisation error instead.) An owner promoted meanwhile may be
// missed, which only errs towards refusing. On SQLite the transaction holds
// the database's write lock from its start.
func (s *SQLStore) lockMembership(ctx context.Context, tx *sql.Tx, orgID, userID string) (role identity.Role, owners int, err error) {
	q := `SELECT user_id, role FROM memberships WHERE org_id = ? AND (user_id = ? OR role = ?) ORDER BY user_id`
	if s.db.Dialect == sqldb.Postgres {
		q += ` FOR UPDATE`
	}
	rows, err := tx.QueryContext(ctx, s.db.Rebind(q), orgID, userID, string(identity.RoleOwner))
	if err != nil {
		return "", 0, fmt.Errorf("lock memberships: %w", err)
	}
	defer rows.Close()
	found := false
	for rows.Next() {
		var id string
		var r identity.Role
		if err := rows.Scan(&id, &r); err != nil {
			return "", 0, fmt.Errorf("lock memberships: %w", err)
		}
		if r == identity.RoleOwner {
			owners++
		}
		if id == userID {
			role, found = r, true
		}
	}
	if err := rows.Err(); err != nil {
		return "", 0, fmt.Errorf("lock memberships: %w", err)
	}
	if !found {
		return "", 0, ErrNotFound
	}
	return role, owners, nil
}

func scanMember(row scanner) (Member, error) {
	var m Member
	var subject, email sql.NullString
	var userCreated, created int64
	if err := row.Scan(&m.User.ID, &subject, &email, &userCreated, &m.Role, &created); err != nil {
		return Member{}, err
	}
	m.User.Subject, m.User.Email, m.User.Created = subject.String, email.String, fromMicros(userCreated)
	m.Created = fromMicros(created)
	return m, nil
}

// Tokens.

const tokenColumns = `id, org_id, name, role, hash, creator, created_at, expires_at, last_used_at, revoked_at`

func (s *SQLStore) CreateToken(ctx context.Context, t Token) error {
	if !t.Role.Valid() {
		return fmt.Errorf("create token: unknown role %q", t.Role)
	}
	if len(t.Hash) == 0 {
		return errors.New("create token: empty hash")
	}
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.mustExist(ctx, tx, `SELECT 1 FROM orgs WHERE id = ?`, t.OrgID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO tokens (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			t.ID, t.OrgID, t.Name, string(t.Role), hex.EncodeToString(t.Hash), t.Creator,
			micros(t.Created), micros(t.Expires), micros(t.LastUsed), micros(t.Revoked))
		return err
	})
	switch {
	case sqldb.IsUniqueViolation(err):
		return ErrExists
	case errors.Is(err, ErrNotFound):
		return ErrNotFound
	case err != nil:
		return fmt.Errorf("create token: %w", err)
	}
	return nil
}

func (s *SQLStore) GetTokenByHash(ctx context.Context, hash []byte) (Token, error) {
	if len(hash) == 0 {
		return Token{}, ErrNotFound
	}
	return s.getToken(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = ?`, hex.EncodeToString(hash))
}

func (s *SQLStore) GetToken(ctx context.Context, orgID, id string) (Token, error) {
	return s.getToken(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE org_id = ? AND id = ?`, orgID, id)
}

func (s *SQLStore) getToken(ctx context.Context, query string, args ...any) (Token, error) {
	t, err := scanToken(s.db.QueryRowContext(ctx, s.db.Rebind(query), args...))
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, ErrNotFound
	}
	if err != nil {
		return Token{}, fmt.Errorf("get token: %w", err)
	}
	return t, nil
}

func (s *SQLStore) ListTokens(ctx context.Context, orgID, after string, limit int) ([]Token, error) {
	where := []string{"org_id = ?"}
	args := []any{orgID}
	if after != "" {
		where, args = append(where, "id > ?"), append(args, after)
	}
	q := `SELECT ` + tokenColumns + ` FROM tokens WHERE ` + strings.Join(where, " AND ") + ` ORDER BY id`
	return list(ctx, s, "list tokens", q, args, limit, scanToken)
}

func (s *SQLStore) RevokeToken(ctx context.Context, orgID, id string, now time.Time) error {
	// One statement, so that two revocations at once still keep the first time.
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE tokens SET revoked_at = CASE WHEN revoked_at = 0 THEN ? ELSE revoked_at END WHERE org_id = ? AND id = ?`),
		micros(now), orgID, id)
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// TouchToken writes last_used_at only when it is more than touchEvery older
// than now. A missing token is not an error: it may just have been deleted.
func (s *SQLStore) TouchToken(ctx context.Context, id string, now time.Time) error {
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE tokens SET last_used_at = ? WHERE id = ? AND last_used_at < ?`),
		micros(now), id, micros(now.Add(-touchEvery)))
	if err != nil {
		return fmt.Errorf("touch token: %w", err)
	}
	return nil
}

func scanToken(row scanner) (Token, error) {
	var t Token
	var hash string
	var created, expires, lastUsed, revoked int64
	if err := row.Scan(&t.ID, &t.OrgID, &t.Name, &t.Role, &hash, &t.Creator, &created, &expires, &lastUsed, &revoked); err != nil {
		return Token{}, err
	}
	h, err := hex.DecodeString(hash)
	if err != nil {
		return Token{}, fmt.Errorf("token %s: decode hash: %w", t.ID, err)
	}
	t.Hash = h
	t.Created, t.Expires, t.LastUsed, t.Revoked = fromMicros(created), fromMicros(expires), fromMicros(lastUsed), fromMicros(revoked)
	return t, nil
}

// Audit log.

const auditColumns = `id, org_id, occurred_at, actor, token_id, action, target, result, request_id`

func (s *SQLStore) AppendAudit(ctx context.Context, e AuditEvent) error {
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.mustExist(ctx, tx, `SELECT 1 FROM orgs WHERE id = ?`, e.OrgID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO audit_events (`+auditColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			e.ID, e.OrgID, micros(e.Time), e.Actor, e.TokenID, e.Action, e.Target, e.Result, e.RequestID)
		return err
	})
	switch {
	case sqldb.IsUniqueViolation(err):
		return ErrExists
	case errors.Is(err, ErrNotFound):
		return ErrNotFound
	case err != nil:
		return fmt.Errorf("append audit event: %w", err)
	}
	return nil
}

func (s *SQLStore) ListAudit(ctx context.Context, orgID string, f AuditFilter, after string, limit int) ([]AuditEvent, error) {
	where := []string{"org_id = ?"}
	args := []any{orgID}
	if f.Actor != "" {
		where, args = append(where, "actor = ?"), append(args, f.Actor)
	}
	if f.Action != "" {
		where, args = append(where, "action = ?"), append(args, f.Action)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "occurred_at >= ?"), append(args, micros(f.Since))
	}
	if after != "" {
		where, args = append(where, "id < ?"), append(args, after)
	}
	q := `SELECT ` + auditColumns + ` FROM audit_events WHERE ` + strings.Join(where, " AND ") + ` ORDER BY id DESC`
	return list(ctx, s, "list audit events", q, args, limit, scanAudit)
}

func scanAudit(row scanner) (AuditEvent, error) {
	var e AuditEvent
	var at int64
	if err := row.Scan(&e.ID, &e.OrgID, &at, &e.Actor, &e.TokenID, &e.Action, &e.Target, &e.Result, &e.RequestID); err != nil {
		return AuditEvent{}, err
	}
	e.Time = fromMicros(at)
	return e, nil
}

// Helpers.

type scanner interface{ Scan(dest ...any) error }

// querier is a *sql.Tx or the pool.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// list runs a page query (without its LIMIT) and scans every row.
func list[T any](ctx context.Context, s *SQLStore, what, query string, args []any, limit int, scan func(scanner) (T, error)) ([]T, error) {
	if limit < 1 {
		// SQLite reads a negative LIMIT as none and PostgreSQL refuses it.
		return nil, fmt.Errorf("%s: limit %d, want at least 1", what, limit)
	}
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(query+` LIMIT ?`), append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// mustExist returns ErrNotFound unless query finds a row.
func (s *SQLStore) mustExist(ctx context.Context, q querier, query string, args ...any) error {
	var one int
	err := q.QueryRowContext(ctx, s.db.Rebind(query), args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// mustAffect returns ErrNotFound when res changed no row.
func mustAffect(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// micros is t as stored: unix microseconds, with 0 for the zero time.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromMicros reads a time written by micros, in UTC.
func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// nullable stores "" as NULL, which a UNIQUE constraint lets many rows share.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
