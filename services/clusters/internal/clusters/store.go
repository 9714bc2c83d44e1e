package clusters

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/pkg/sqldb"
	"github.com/slipwayhq/slipway/services/clusters/internal/kube"
)

// Store persists cluster and credential metadata (never a secret). Every
// method but the cross-org maintenance ones is scoped by org.
type Store interface {
	// InsertCluster records c and, when the cluster brings its own
	// connection, the credential it owns, in one transaction.
	// ErrClusterExists when the name is taken.
	InsertCluster(ctx context.Context, c Cluster, owned *Credential) error
	// GetCluster returns the cluster with id ("cl_...") or name ref.
	GetCluster(ctx context.Context, org, ref string) (Cluster, error)
	// ListClusters returns up to limit clusters by name after the name after.
	ListClusters(ctx context.Context, org, after string, limit int) ([]Cluster, error)
	// UpdateCluster writes c's name, labels and update time.
	UpdateCluster(ctx context.Context, c Cluster) error
	// TouchCluster sets the update time.
	TouchCluster(ctx context.Context, org, id string, at time.Time) error
	// RecordHealth stores the result of a check.
	RecordHealth(ctx context.Context, org, id string, h kube.Health) error
	// ClustersToCheck returns clusters of any org last checked before
	// before, least recently checked first.
	ClustersToCheck(ctx context.Context, before time.Time, limit int) ([]Cluster, error)
	// DeleteCluster forgets a cluster and the credential it owns, queueing
	// that credential's Vault data for destruction; it returns the owned
	// credential, if any.
	DeleteCluster(ctx context.Context, org, id string, at time.Time) (*Credential, error)
	// ClustersUsing names up to limit clusters connecting with credential id.
	ClustersUsing(ctx context.Context, org, credentialID string, limit int) ([]string, error)

	InsertCredential(ctx context.Context, c Credential) error
	// GetCredential returns the credential with id ("cred_...") or name ref.
	GetCredential(ctx context.Context, org, ref string) (Credential, error)
	ListCredentials(ctx context.Context, org string, typ CredentialType, after string, limit int) ([]Credential, error)
	// CredentialForEndpoint returns org's credential of typ for endpoint.
	CredentialForEndpoint(ctx context.Context, org string, typ CredentialType, endpoint string) (Credential, error)
	// UpdateCredential writes c's name, endpoint, version and update time
	// if its version is still prev (ErrConflict otherwise).
	UpdateCredential(ctx context.Context, c Credential, prev int64) error
	// SetCredentialVersion records a rotation of c to version.
	SetCredentialVersion(ctx context.Context, c Credential, version int64, endpoint string, at time.Time) error
	// DeleteCredential forgets c and queues its Vault data for destruction;
	// ErrInUse when a cluster connects with it.
	DeleteCredential(ctx context.Context, c Credential, at time.Time) error

	QueueDestroy(ctx context.Context, path string, at time.Time) error
	UnqueueDestroy(ctx context.Context, path string) error
	QueuedDestroys(ctx context.Context, limit int) ([]string, error)

	InsertChange(ctx context.Context, c Change) error
	ChangesSince(ctx context.Context, since time.Time) ([]Change, error)
	PruneChanges(ctx context.Context, before time.Time) error
}

//go:embed migrations/*.sql
var migrations embed.FS

// SQLStore is the Store on SQLite or PostgreSQL.
type SQLStore struct{ db *sqldb.DB }

var _ Store = (*SQLStore)(nil)

// OpenStore opens the database at dsn and brings its schema up to date.
func OpenStore(ctx context.Context, dsn string) (*SQLStore, error) {
	db, err := sqldb.OpenMigrated(ctx, dsn, migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("open clusters database: %w", err)
	}
	return &SQLStore{db: db}, nil
}

// Close closes the database.
func (s *SQLStore) Close() error { return s.db.Close() }

// Ping reports whether the database answers (readiness).
func (s *SQLStore) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

const clusterColumns = `id, org, name, labels, server, credential_id, creator, created_at, updated_at,
	reachability, kube_version, node_count, checked_at, health_message`

const credentialColumns = `id, org, name, type, endpoint, version, vault_path, owner_cluster_id, creator, created_at, updated_at`

func (s *SQLStore) InsertCluster(ctx context.Context, c Cluster, owned *Credential) error {
	labels, err := json.Marshal(c.Labels)
	if err != nil {
		return fmt.Errorf("encode labels: %w", err)
	}
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		if owned != nil {
			if err := insertCredential(ctx, s.db, tx, *owned); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO clusters (`+clusterColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			c.ID, c.Org, c.Name, string(labels), c.Server, c.CredentialID, c.Creator, c.Created.UnixMicro(), c.Updated.UnixMicro(),
			int(c.Health.Reachability), c.Health.Version, c.Health.Nodes, micros(c.Health.CheckedAt), c.Health.Message)
		if sqldb.IsUniqueViolation(err) {
			return ErrClusterExists
		}
		if err != nil {
			return fmt.Errorf("insert cluster: %w", err)
		}
		return nil
	})
}

func (s *SQLStore) GetCluster(ctx context.Context, org, ref string) (Cluster, error) {
	col := "name"
	if strings.HasPrefix(ref, "cl_") {
		col = "id"
	}
	row := s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT `+clusterColumns+` FROM clusters WHERE org = ? AND `+col+` = ?`), org, ref)
	c, err := scanCluster(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Cluster{}, ErrClusterNotFound
	}
	if err != nil {
		return Cluster{}, fmt.Errorf("get cluster: %w", err)
	}
	return c, nil
}

func (s *SQLStore) ListClusters(ctx context.Context, org, after string, limit int) ([]Cluster, error) {
	return queryAll(ctx, s.db, scanCluster, `SELECT `+clusterColumns+` FROM clusters WHERE org = ? AND name > ? ORDER BY name LIMIT ?`, org, after, limit)
}

func (s *SQLStore) UpdateCluster(ctx context.Context, c Cluster) error {
	labels, err := json.Marshal(c.Labels)
	if err != nil {
		return fmt.Errorf("encode labels: %w", err)
	}
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE clusters SET name = ?, labels = ?, updated_at = ? WHERE org = ? AND id = ?`),
		c.Name, string(labels), c.Updated.UnixMicro(), c.Org, c.ID)
	if sqldb.IsUniqueViolation(err) {
		return ErrClusterExists
	}
	return oneRow(res, err, ErrClusterNotFound, "update cluster")
}

func (s *SQLStore) TouchCluster(ctx context.Context, org, id string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE clusters SET updated_at = ? WHERE org = ? AND id = ?`), at.UnixMicro(), org, id)
	return oneRow(res, err, ErrClusterNotFound, "touch cluster")
}

func (s *SQLStore) RecordHealth(ctx context.Context, org, id string, h kube.Health) error {
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE clusters SET reachability = ?, kube_version = ?, node_count = ?, checked_at = ?, health_message = ? WHERE org = ? AND id = ?`),
		int(h.Reachability), h.Version, h.Nodes, micros(h.CheckedAt), h.Message, org, id)
	return oneRow(res, err, ErrClusterNotFound, "record health")
}

func (s *SQLStore) ClustersToCheck(ctx context.Context, before time.Time, limit int) ([]Cluster, error) {
	return queryAll(ctx, s.db, scanCluster, `SELECT `+clusterColumns+` FROM clusters WHERE checked_at < ? ORDER BY checked_at LIMIT ?`, before.UnixMicro(), limit)
}

func (s *SQLStore) DeleteCluster(ctx context.Context, org, id string, at time.Time) (*Credential, error) {
	var owned *Credential
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM clusters WHERE org = ? AND id = ?`), org, id)
		if err := oneRow(res, err, ErrClusterNotFound, "delete cluster"); err != nil {
			return err
		}
		row := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT `+credentialColumns+` FROM credentials WHERE org = ? AND owner_cluster_id = ?`), org, id)
		c, err := scanCredential(row)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return nil
		case err != nil:
			return fmt.Errorf("find owned credential: %w", err)
		}
		if err := deleteCredentialTx(ctx, s.db, tx, c, at); err != nil {
			return err
		}
		owned = &c
		return nil
	})
	return owned, err
}

func (s *SQLStore) ClustersUsing(ctx context.Context, org, credentialID string, limit int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT name FROM clusters WHERE org = ? AND credential_id = ? ORDER BY name LIMIT ?`), org, credentialID, limit)
	if err != nil {
		return nil, fmt.Errorf("clusters using credential: %w", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("clusters using credential: %w", err)
		}
		names = append(names, n)
	}
	return names, rows.Err()
}

func (s *SQLStore) InsertCredential(ctx context.Context, c Credential) error {
	return insertCredential(ctx, s.db, nil, c)
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func insertCredential(ctx context.Context, db *sqldb.DB, tx *sql.Tx, c Credential) error {
	var ex execer = db
	if tx != nil {
		ex = tx
	}
	_, err := ex.ExecContext(ctx, db.Rebind(`INSERT INTO credentials (`+credentialColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		c.ID, c.Org, c.Name, string(c.Type), c.Endpoint, c.Version, c.VaultPath, c.OwnerClusterID, c.Creator, c.Created.UnixMicro(), c.Updated.UnixMicro())
	if sqldb.IsUniqueViolation(err) {
		if c.OwnerClusterID != "" {
			return ErrClusterExists
		}
		return ErrCredentialExists
	}
	if err != nil {
		return fmt.Errorf("insert credential: %w", err)
	}
	return nil
}

func (s *SQLStore) GetCredential(ctx context.Context, org, ref string) (Credential, error) {
	col := "name"
	if strings.HasPrefix(ref, "cred_") {
		col = "id"
	}
	row := s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT `+credentialColumns+` FROM credentials WHERE org = ? AND `+col+` = ?`), org, ref)
	c, err := scanCredential(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Credential{}, ErrCredentialNotFound
	}
	if err != nil {
		return Credential{}, fmt.Errorf("get credential: %w", err)
	}
	return c, nil
}

func (s *SQLStore) ListCredentials(ctx context.Context, org string, typ CredentialType, after string, limit int) ([]Credential, error) {
	q := `SELECT ` + credentialColumns + ` FROM credentials WHERE org = ? AND name > ?`
	args := []any{org, after}
	if typ != "" {
		q, args = q+` AND type = ?`, append(args, string(typ))
	}
	return queryAll(ctx, s.db, scanCredential, q+` ORDER BY name LIMIT ?`, append(args, limit)...)
}

func (s *SQLStore) CredentialForEndpoint(ctx context.Context, org string, typ CredentialType, endpoint string) (Credential, error) {
	row := s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT `+credentialColumns+` FROM credentials WHERE org = ? AND type = ? AND endpoint = ? ORDER BY updated_at DESC LIMIT 1`),
		org, string(typ), endpoint)
	c, err := scanCredential(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Credential{}, ErrCredentialNotFound
	}
	if err != nil {
		return Credential{}, fmt.Errorf("credential for endpoint: %w", err)
	}
	return c, nil
}

func (s *SQLStore) UpdateCredential(ctx context.Context, c Credential, prev int64) error {
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE credentials SET name = ?, endpoint = ?, version = ?, updated_at = ? WHERE org = ? AND id = ? AND version = ?`),
		c.Name, c.Endpoint, c.Version, c.Updated.UnixMicro(), c.Org, c.ID, prev)
	if sqldb.IsUniqueViolation(err) {
		return ErrCredentialExists
	}
	return oneRow(res, err, ErrConflict, "update credential")
}

func (s *SQLStore) SetCredentialVersion(ctx context.Context, c Credential, version int64, endpoint string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE credentials SET version = ?, endpoint = ?, updated_at = ? WHERE org = ? AND id = ? AND version = ?`),
		version, endpoint, at.UnixMicro(), c.Org, c.ID, c.Version)
	return oneRow(res, err, ErrConflict, "record rotation")
}

func (s *SQLStore) DeleteCredential(ctx context.Context, c Credential, at time.Time) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		// Checked again inside the transaction: a cluster registered with
		// the credential since the caller looked must not lose its secret.
		var n int
		if err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT COUNT(*) FROM clusters WHERE org = ? AND credential_id = ?`), c.Org, c.ID).Scan(&n); err != nil {
			return fmt.Errorf("count clusters using credential: %w", err)
		}
		if n > 0 {
			return fmt.Errorf("%w: credential %s is used by %d cluster(s)", ErrInUse, c.Name, n)
		}
		return deleteCredentialTx(ctx, s.db, tx, c, at)
	})
}

func deleteCredentialTx(ctx context.Context, db *sqldb.DB, tx *sql.Tx, c Credential, at time.Time) error {
	res, err := tx.ExecContext(ctx, db.Rebind(`DELETE FROM credentials WHERE org = ? AND id = ?`), c.Org, c.ID)
	if err := oneRow(res, err, ErrCredentialNotFound, "delete credential"); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO secret_destroys (vault_path, created_at) VALUES (?, ?)`), c.VaultPath, at.UnixMicro()); err != nil {
		return fmt.Errorf("queue secret destroy: %w", err)
	}
	return nil
}

func (s *SQLStore) QueueDestroy(ctx context.Context, path string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO secret_destroys (vault_path, created_at) VALUES (?, ?)`), path, at.UnixMicro())
	if err != nil && !sqldb.IsUniqueViolation(err) {
		return fmt.Errorf("queue secret destroy: %w", err)
	}
	return nil
}

func (s *SQLStore) UnqueueDestroy(ctx context.Context, path string) error {
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM secret_destroys WHERE vault_path = ?`), path); err != nil {
		return fmt.Errorf("unqueue secret destroy: %w", err)
	}
	return nil
}

func (s *SQLStore) QueuedDestroys(ctx context.Context, limit int) ([]string, error) {
	return queryAll(ctx, s.db, func(r scanner) (string, error) {
		var p string
		return p, r.Scan(&p)
	}, `SELECT vault_path FROM secret_destroys ORDER BY created_at LIMIT ?`, limit)
}

func (s *SQLStore) InsertChange(ctx context.Context, c Change) error {
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO credential_changes (id, org, credential_id, cluster_id, version, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
		c.ID, c.Org, c.CredentialID, c.ClusterID, c.Version, c.At.UnixMicro())
	if err != nil {
		return fmt.Errorf("insert credential change: %w", err)
	}
	return nil
}

func (s *SQLStore) ChangesSince(ctx context.Context, since time.Time) ([]Change, error) {
	return queryAll(ctx, s.db, func(r scanner) (Change, error) {
		var c Change
		var at int64
		err := r.Scan(&c.ID, &c.Org, &c.CredentialID, &c.ClusterID, &c.Version, &at)
		c.At = time.UnixMicro(at).UTC()
		return c, err
	}, `SELECT id, org, credential_id, cluster_id, version, created_at FROM credential_changes WHERE created_at >= ? ORDER BY created_at`, since.UnixMicro())
}

func (s *SQLStore) PruneChanges(ctx context.Context, before time.Time) error {
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM credential_changes WHERE created_at < ?`), before.UnixMicro()); err != nil {
		return fmt.Errorf("prune credential changes: %w", err)
	}
	return nil
}

type scanner interface{ Scan(...any) error }

func queryAll[T any](ctx context.Context, db *sqldb.DB, scan func(scanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, db.Rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("scan: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	return out, nil
}

func oneRow(res sql.Result, err error, none error, what string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return none
	}
	return nil
}

func scanCluster(row scanner) (Cluster, error) {
	var (
		c                         Cluster
		labels                    string
		created, updated, checked int64
		reach                     int
	)
	if err := row.Scan(&c.ID, &c.Org, &c.Name, &labels, &c.Server, &c.CredentialID, &c.Creator, &created, &updated,
		&reach, &c.Health.Version, &c.Health.Nodes, &checked, &c.Health.Message); err != nil {
		return Cluster{}, err
	}
	if err := json.Unmarshal([]byte(labels), &c.Labels); err != nil {
		return Cluster{}, fmt.Errorf("decode labels of %s: %w", c.ID, err)
	}
	c.Created, c.Updated = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
	c.Health.Reachability = kube.Reachability(reach)
	if checked > 0 {
		c.Health.CheckedAt = time.UnixMicro(checked).UTC()
	}
	return c, nil
}

func scanCredential(row scanner) (Credential, error) {
	var (
		c                Credential
		typ              string
		created, updated int64
	)
	if err := row.Scan(&c.ID, &c.Org, &c.Name, &typ, &c.Endpoint, &c.Version, &c.VaultPath, &c.OwnerClusterID, &c.Creator, &created, &updated); err != nil {
		return Credential{}, err
	}
	c.Type = CredentialType(typ)
	c.Created, c.Updated = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
	return c, nil
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}
