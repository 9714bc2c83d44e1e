// Package clusters keeps the Kubernetes clusters an organization deploys to
// and the credentials Slipway uses for clusters, registries and chart
// repositories. Metadata lives in the service's database; every secret
// lives in Vault (KV v2 under orgs/<org>/...) and leaves this service only
// through the internal AccessService, to the Slipway services that act with
// it.
//
// Layers: service.go and credentials.go, access.go (domain), endpoint.go
// (go-kit endpoints), transport_grpc.go (proto <-> domain), middleware.go
// (logging, metrics), errors.go (domain errors -> gRPC codes), store.go
// (persistence), health.go (periodic checks), changes.go (credential change
// feed).
package clusters

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/paging"
	"github.com/slipwayhq/slipway/pkg/validate"
	"github.com/slipwayhq/slipway/services/clusters/internal/kube"
)

// Errors of the clusters and credentials APIs; errors.go maps them to gRPC
// codes. Their text is shown to callers and never holds a secret.
var (
	ErrClusterExists       = errors.New("cluster already exists")
	ErrClusterNotFound     = errors.New("cluster not found")
	ErrCredentialExists    = errors.New("credential already exists")
	ErrCredentialNotFound  = errors.New("credential not found")
	ErrUnreachable         = errors.New("cluster check failed")
	ErrInUse               = errors.New("in use")
	ErrConflict            = errors.New("changed concurrently; retry")
	ErrUnauthorized        = errors.New("caller may not do this")
	ErrSecretsUnavailable  = errors.New("secret store unavailable; retry shortly")
	ErrDependentsUnknown   = errors.New("could not check what uses it; retry shortly")
	ErrWrongCredentialType = errors.New("wrong credential type")
	ErrWatchLagging        = errors.New("change stream fell behind; reconnect and drop cached credentials")
)

// Cluster is a registered cluster. It carries no secret.
type Cluster struct {
	ID           string
	Org          string
	Name         string
	Labels       map[string]string
	Server       string
	CredentialID string
	Health       kube.Health
	Creator      string
	Created      time.Time
	Updated      time.Time
}

// Connection is how a caller asks to connect to a cluster: exactly one of a
// kubeconfig, a direct connection, or an existing kubeconfig credential.
type Connection struct {
	Kubeconfig        []byte
	KubeconfigContext string
	Direct            *DirectConnection
	CredentialRef     string
}

// DirectConnection is an API server URL with its CA and a token or client
// certificate.
type DirectConnection struct {
	Server        string
	CAPEM         []byte
	TLSServerName string
	BearerToken   string
	CertPEM       []byte
	KeyPEM        []byte
}

// NewCluster is what a caller supplies to register a cluster.
type NewCluster struct {
	Name             string
	Labels           map[string]string
	Connection       Connection
	AllowUnreachable bool
}

// ClusterUpdate changes a cluster's name and/or labels.
type ClusterUpdate struct {
	Name      *string
	Labels    map[string]string
	SetLabels bool
}

// PageRequest asks for one page of a list.
type PageRequest struct {
	Size  int32
	Token string
}

// ClusterPage is one page of clusters, by name.
type ClusterPage struct {
	Clusters      []Cluster
	NextPageToken string
}

// Service is the clusters, credentials and internal access API. The
// organization is always the verified caller's, never an input field.
type Service interface {
	RegisterCluster(ctx context.Context, in NewCluster) (Cluster, error)
	GetCluster(ctx context.Context, ref string) (Cluster, error)
	ListClusters(ctx context.Context, selector string, p PageRequest) (ClusterPage, error)
	UpdateCluster(ctx context.Context, ref string, u ClusterUpdate) (Cluster, error)
	RotateClusterCredentials(ctx context.Context, ref string, conn Connection) (Cluster, error)
	DeleteCluster(ctx context.Context, ref string, force bool) error
	GetClusterConfig(ctx context.Context, ref string) ([]byte, error)
	CheckCluster(ctx context.Context, ref string) (kube.Health, error)

	CreateCredential(ctx context.Context, in NewCredential) (Credential, error)
	GetCredential(ctx context.Context, ref string) (Credential, error)
	ListCredentials(ctx context.Context, typ CredentialType, p PageRequest) (CredentialPage, error)
	UpdateCredential(ctx context.Context, ref string, u CredentialUpdate) (Credential, error)
	DeleteCredential(ctx context.Context, ref string) error

	ClusterAccess(ctx context.Context, ref string) (ClusterAccess, error)
	RegistryAuth(ctx context.Context, host string) (RegistryAuth, error)
	RepositoryAuth(ctx context.Context, credRef, url string) (RepositoryAuth, error)
}

// Middleware decorates a Service.
type Middleware func(Service) Service

// Secrets is the Vault store (secrets.Vault): KV v2 with check-and-set.
type Secrets interface {
	Put(ctx context.Context, path string, data map[string]string, cas int64) (int64, error)
	Get(ctx context.Context, path string) (map[string]string, int64, error)
	Destroy(ctx context.Context, path string) error
}

// Checker contacts a cluster through the outbound policy.
type Checker interface {
	// CheckServer refuses a server URL the outbound policy forbids.
	CheckServer(server string) error
	// Check contacts the API server; an unreachable cluster is a Health,
	// not an error.
	Check(ctx context.Context, c kube.Connection) (kube.Health, kube.Permissions)
}

// Dependents says what still uses a cluster or a credential, asking the
// services that know (releases, catalog).
type Dependents interface {
	// ClusterReleases names up to a few releases on the cluster.
	ClusterReleases(ctx context.Context, org, clusterID string) ([]string, error)
	// CredentialRepositories names up to a few repositories using it.
	CredentialRepositories(ctx context.Context, org, credentialID string) ([]string, error)
	// ClusterApplications names up to a few applications with a target on
	// the cluster.
	ClusterApplications(ctx context.Context, org, clusterID string) ([]string, error)
}

type service struct {
	store   Store
	secrets Secrets
	checker Checker
	deps    Dependents
	changes *Changes
	log     *slog.Logger
	now     func() time.Time
}

// NewService returns the API over its parts.
func NewService(store Store, secrets Secrets, checker Checker, deps Dependents, changes *Changes, log *slog.Logger) Service {
	return &service{store: store, secrets: secrets, checker: checker, deps: deps, changes: changes, log: log, now: time.Now}
}

func (s *service) RegisterCluster(ctx context.Context, in NewCluster) (Cluster, error) {
	caller, err := callerWith(ctx, identity.RoleAdmin)
	if err != nil {
		return Cluster{}, err
	}
	if err := validate.First(validate.DNSLabel("name", in.Name), validateLabels(in.Labels)); err != nil {
		return Cluster{}, err
	}
	if _, err := s.store.GetCluster(ctx, caller.Org, in.Name); err == nil {
		return Cluster{}, fmt.Errorf("%w: %s", ErrClusterExists, in.Name)
	}
	now := s.stamp()
	c := Cluster{ID: newID("cl_"), Org: caller.Org, Name: in.Name, Labels: orEmpty(in.Labels), Creator: caller.Subject, Created: now, Updated: now}
	var (
		conn  kube.Connection
		owned *Credential
	)
	if in.Connection.CredentialRef != "" {
		cred, err := s.credential(ctx, caller.Org, in.Connection.CredentialRef)
		if err != nil {
			return Cluster{}, fieldNotFound("credential_id", err)
		}
		if cred.Type != TypeKubeconfig {
			return Cluster{}, validate.Field("credential_id", "credential %s is a %s credential, not kubeconfig", cred.Name, cred.Type)
		}
		if cred.OwnerClusterID != "" {
			// It goes when its cluster goes; a second cluster on it would
			// lose its connection then.
			return Cluster{}, validate.Field("credential_id", "credential %s belongs to cluster %s; use a kubeconfig credential of its own", cred.Name, cred.OwnerClusterID)
		}
		if conn, err = s.readConnection(ctx, cred); err != nil {
			return Cluster{}, err
		}
		c.CredentialID = cred.ID
	} else {
		if conn, err = s.parseConnection(in.Connection, "connection"); err != nil {
			return Cluster{}, err
		}
		owned = &Credential{
			ID: newID("cred_"), Org: caller.Org, Name: strings.Replace(c.ID, "_", "-", 1),
			Type: TypeKubeconfig, Endpoint: conn.Server, OwnerClusterID: c.ID,
			VaultPath: clusterPath(caller.Org, c.ID), Creator: caller.Subject, Created: now, Updated: now,
		}
		c.CredentialID = owned.ID
	}
	c.Server = conn.Server
	if c.Health, err = s.admit(ctx, conn, in.AllowUnreachable); err != nil {
		return Cluster{}, err
	}
	if owned != nil {
		data, err := encodeKubeconfig(conn, in.Name)
		if err != nil {
			return Cluster{}, err
		}
		if owned.Version, err = s.putSecret(ctx, owned.VaultPath, data, 0); err != nil {
			return Cluster{}, err
		}
	}
	if err := s.store.InsertCluster(ctx, c, owned); err != nil {
		if owned != nil {
			s.destroy(ctx, owned.VaultPath)
		}
		if errors.Is(err, ErrClusterExists) {
			return Cluster{}, fmt.Errorf("%w: %s", ErrClusterExists, in.Name)
		}
		return Cluster{}, fmt.Errorf("record cluster: %w", err)
	}
	return c, nil
}

// admit checks a connection before it is recorded: reachable, accepted, and
// allowed to create namespaces and secrets (what installing charts needs).
func (s *service) admit(ctx context.Context, conn kube.Connection, allowUnreachable bool) (kube.Health, error) {
	h, perms := s.checker.Check(ctx, conn)
	switch {
	case h.Reachability == kube.Reachable:
		var missing []string
		if !perms.CreateNamespaces {
			missing = append(missing, "create namespaces")
		}
		if !perms.CreateSecrets {
			missing = append(missing, "create secrets")
		}
		if len(missing) > 0 {
			return h, fmt.Errorf("%w: the credentials may not %s", ErrUnreachable, strings.Join(missing, " or "))
		}
	case allowUnreachable && h.Reachability != kube.Unauthorized:
	default:
		return h, fmt.Errorf("%w: %s: %s", ErrUnreachable, reachabilityText(h.Reachability), h.Message)
	}
	return h, nil
}

func (s *service) GetCluster(ctx context.Context, ref string) (Cluster, error) {
	caller, err := callerWith(ctx, identity.RoleViewer)
	if err != nil {
		return Cluster{}, err
	}
	return s.cluster(ctx, caller.Org, ref)
}

func (s *service) ListClusters(ctx context.Context, selector string, p PageRequest) (ClusterPage, error) {
	caller, err := callerWith(ctx, identity.RoleViewer)
	if err != nil {
		return ClusterPage{}, err
	}
	sel, err := labels.Parse(selector)
	if err != nil {
		return ClusterPage{}, validate.Field("label_selector", "%v", err)
	}
	size, err := paging.Size(p.Size)
	if err != nil {
		return ClusterPage{}, err
	}
	fp := paging.Fingerprint(caller.Org, selector)
	after, err := paging.Decode(p.Token, fp)
	if err != nil {
		return ClusterPage{}, err
	}
	var page ClusterPage
	// Labels are matched here, not in SQL: read by name in batches until
	// the page is full (one extra tells whether another page follows).
	for {
		batch, err := s.store.ListClusters(ctx, caller.Org, after, size+1)
		if err != nil {
			return ClusterPage{}, fmt.Errorf("list clusters: %w", err)
		}
		for _, c := range batch {
			if !sel.Matches(labels.Set(c.Labels)) {
				continue
			}
			if len(page.Clusters) == size {
				page.NextPageToken = paging.Encode(page.Clusters[size-1].Name, fp)
				return page, nil
			}
			page.Clusters = append(page.Clusters, c)
		}
		if len(batch) < size+1 {
			return page, nil
		}
		after = batch[len(batch)-1].Name
	}
}

func (s *service) UpdateCluster(ctx context.Context, ref string, u ClusterUpdate) (Cluster, error) {
	caller, err := callerWith(ctx, identity.RoleAdmin)
	if err != nil {
		return Cluster{}, err
	}
	if u.Name == nil && !u.SetLabels {
		return Cluster{}, validate.Field("update_mask", "required: name and/or labels")
	}
	c, err := s.cluster(ctx, caller.Org, ref)
	if err != nil {
		return Cluster{}, err
	}
	if u.Name != nil {
		if err := validate.DNSLabel("name", *u.Name); err != nil {
			return Cluster{}, err
		}
		c.Name = *u.Name
	}
	if u.SetLabels {
		if err := validateLabels(u.Labels); err != nil {
			return Cluster{}, err
		}
		c.Labels = orEmpty(u.Labels)
	}
	c.Updated = s.stamp()
	if err := s.store.UpdateCluster(ctx, c); err != nil {
		if errors.Is(err, ErrClusterExists) {
			return Cluster{}, fmt.Errorf("%w: %s", ErrClusterExists, c.Name)
		}
		return Cluster{}, fmt.Errorf("update cluster: %w", err)
	}
	return c, nil
}

func (s *service) RotateClusterCredentials(ctx context.Context, ref string, in Connection) (Cluster, error) {
	caller, err := callerWith(ctx, identity.RoleAdmin)
	if err != nil {
		return Cluster{}, err
	}
	c, err := s.cluster(ctx, caller.Org, ref)
	if err != nil {
		return Cluster{}, err
	}
	if in.CredentialRef != "" {
		return Cluster{}, validate.Field("connection", "a kubeconfig or server_connection is required")
	}
	conn, err := s.parseConnection(in, "connection")
	if err != nil {
		return Cluster{}, err
	}
	cred, err := s.store.GetCredential(ctx, caller.Org, c.CredentialID)
	if err != nil {
		return Cluster{}, fmt.Errorf("load cluster credential: %w", err)
	}
	if cred.OwnerClusterID != c.ID {
		return Cluster{}, fmt.Errorf("%w: cluster %s connects with the shared credential %s: rotate that credential instead",
			ErrInUse, c.Name, cred.Name)
	}
	if conn.Server != c.Server {
		return Cluster{}, validate.Field("connection", "must reach the cluster's API server %s, got %s", c.Server, conn.Server)
	}
	health, err := s.admit(ctx, conn, false)
	if err != nil {
		return Cluster{}, err
	}
	data, err := encodeKubeconfig(conn, c.Name)
	if err != nil {
		return Cluster{}, err
	}
	version, err := s.putSecret(ctx, cred.VaultPath, data, cred.Version)
	if err != nil {
		return Cluster{}, err
	}
	now := s.stamp()
	if err := s.store.SetCredentialVersion(ctx, cred, version, conn.Server, now); err != nil {
		return Cluster{}, err
	}
	c.Health, c.Updated = health, now
	if err := s.store.RecordHealth(ctx, c.Org, c.ID, health); err != nil {
		return Cluster{}, fmt.Errorf("record health: %w", err)
	}
	if err := s.store.TouchCluster(ctx, c.Org, c.ID, now); err != nil {
		return Cluster{}, err
	}
	s.changes.Publish(ctx, Change{Org: c.Org, CredentialID: cred.ID, ClusterID: c.ID, Version: version})
	return c, nil
}

func (s *service) DeleteCluster(ctx context.Context, ref string, force bool) error {
	caller, err := callerWith(ctx, identity.RoleAdmin)
	if err != nil {
		return err
	}
	c, err := s.cluster(ctx, caller.Org, ref)
	if err != nil {
		return err
	}
	releases, err := s.deps.ClusterReleases(ctx, c.Org, c.ID)
	if err != nil {
		return fmt.Errorf("%w: releases of cluster %s: %v", ErrDependentsUnknown, c.Name, err)
	}
	if len(releases) > 0 && !force {
		return fmt.Errorf("%w: cluster %s has releases (%s); delete them first, or force", ErrInUse, c.Name, strings.Join(releases, ", "))
	}
	apps, err := s.deps.ClusterApplications(ctx, c.Org, c.ID)
	if err != nil {
		return fmt.Errorf("%w: applications targeting cluster %s: %v", ErrDependentsUnknown, c.Name, err)
	}
	if len(apps) > 0 && !force {
		return fmt.Errorf("%w: applications target cluster %s (%s); change their targets first, or force", ErrInUse, c.Name, strings.Join(apps, ", "))
	}
	destroyed, err := s.store.DeleteCluster(ctx, c.Org, c.ID, s.stamp())
	if err != nil {
		return err
	}
	if destroyed != nil {
		s.changes.Publish(ctx, Change{Org: c.Org, CredentialID: destroyed.ID, ClusterID: c.ID})
		s.destroyQueued(ctx, destroyed.VaultPath)
	}
	if force && len(releases)+len(apps) > 0 {
		s.log.WarnContext(ctx, "cluster deleted by force while in use", "cluster", c.ID, "releases", len(releases), "applications", len(apps))
	}
	return nil
}

func (s *service) GetClusterConfig(ctx context.Context, ref string) ([]byte, error) {
	caller, err := callerWith(ctx, identity.RoleAdmin)
	if err != nil {
		return nil, err
	}
	c, err := s.cluster(ctx, caller.Org, ref)
	if err != nil {
		return nil, err
	}
	conn, err := s.clusterConnection(ctx, c)
	if err != nil {
		return nil, err
	}
	cfg, err := conn.Kubeconfig(c.Name)
	if err != nil {
		return nil, fmt.Errorf("render kubeconfig: %w", err)
	}
	return cfg, nil
}

func (s *service) CheckCluster(ctx context.Context, ref string) (kube.Health, error) {
	caller, err := callerWith(ctx, identity.RoleAdmin)
	if err != nil {
		return kube.Health{}, err
	}
	c, err := s.cluster(ctx, caller.Org, ref)
	if err != nil {
		return kube.Health{}, err
	}
	return s.check(ctx, c)
}

// check contacts c and records what it found.
func (s *service) check(ctx context.Context, c Cluster) (kube.Health, error) {
	conn, err := s.clusterConnection(ctx, c)
	if err != nil {
		return kube.Health{}, err
	}
	h, _ := s.checker.Check(ctx, conn)
	if err := s.store.RecordHealth(ctx, c.Org, c.ID, h); err != nil {
		return kube.Health{}, fmt.Errorf("record health: %w", err)
	}
	return h, nil
}

// cluster resolves an id ("cl_...") or a name in org.
func (s *service) cluster(ctx context.Context, org, ref string) (Cluster, error) {
	if ref == "" {
		return Cluster{}, validate.Field("cluster", "required")
	}
	c, err := s.store.GetCluster(ctx, org, ref)
	if errors.Is(err, ErrClusterNotFound) {
		return Cluster{}, fmt.Errorf("%w: %s", ErrClusterNotFound, ref)
	}
	return c, err
}

// clusterConnection reads the connection of c from Vault.
func (s *service) clusterConnection(ctx context.Context, c Cluster) (kube.Connection, error) {
	cred, err := s.store.GetCredential(ctx, c.Org, c.CredentialID)
	if err != nil {
		return kube.Connection{}, fmt.Errorf("load credential of cluster %s: %w", c.ID, err)
	}
	return s.readConnection(ctx, cred)
}

func (s *service) readConnection(ctx context.Context, cred Credential) (kube.Connection, error) {
	data, err := s.getSecret(ctx, cred)
	if err != nil {
		return kube.Connection{}, err
	}
	conn, err := decodeKubeconfig(data)
	if err != nil {
		return kube.Connection{}, fmt.Errorf("decode credential %s: %w", cred.ID, err)
	}
	return conn, nil
}

// parseConnection validates a kubeconfig or a direct connection, and the
// server URL against the outbound policy.
func (s *service) parseConnection(in Connection, field string) (kube.Connection, error) {
	var (
		conn kube.Connection
		err  error
	)
	switch {
	case in.Kubeconfig != nil && in.Direct != nil:
		return kube.Connection{}, validate.Field(field, "give a kubeconfig or a server_connection, not both")
	case in.Kubeconfig != nil:
		conn, err = kube.ParseKubeconfig(in.Kubeconfig, in.KubeconfigContext)
		field += ".kubeconfig"
	case in.Direct != nil:
		d := in.Direct
		conn, err = kube.NewConnection(d.Server, d.CAPEM, d.TLSServerName, d.BearerToken, d.CertPEM, d.KeyPEM)
		field += ".server_connection"
	default:
		return kube.Connection{}, validate.Field(field, "required: a kubeconfig, a server_connection or a credential_id")
	}
	if err != nil {
		return kube.Connection{}, validate.Field(field, "%v", err)
	}
	if err := s.checker.CheckServer(conn.Server); err != nil {
		return kube.Connection{}, validate.Field(field, "%v", err)
	}
	return conn, nil
}

func (s *service) putSecret(ctx context.Context, path string, data map[string]string, cas int64) (int64, error) {
	v, err := s.secrets.Put(ctx, path, data, cas)
	if err != nil {
		return 0, s.secretErr(ctx, "write", err)
	}
	return v, nil
}

func (s *service) getSecret(ctx context.Context, cred Credential) (map[string]string, error) {
	data, _, err := s.secrets.Get(ctx, cred.VaultPath)
	if err != nil {
		return nil, s.secretErr(ctx, "read", err)
	}
	return data, nil
}

// secretErr turns a Vault error into what a caller may see; the full error
// (paths, status; never secret values) goes to the log.
func (s *service) secretErr(ctx context.Context, op string, err error) error {
	switch {
	case errors.Is(err, errSecretsUnavailable):
		s.log.WarnContext(ctx, "vault unavailable", "op", op, "error", err)
		return ErrSecretsUnavailable
	case errors.Is(err, errSecretsConflict):
		return ErrConflict
	}
	return fmt.Errorf("%s secret: %w", op, err)
}

// destroy removes Vault data now, or queues it when Vault can't.
func (s *service) destroy(ctx context.Context, path string) {
	if err := s.secrets.Destroy(ctx, path); err != nil {
		s.log.WarnContext(ctx, "vault destroy deferred", "error", err)
		if qerr := s.store.QueueDestroy(context.WithoutCancel(ctx), path, s.stamp()); qerr != nil {
			s.log.ErrorContext(ctx, "queue vault destroy failed", "error", qerr)
		}
	}
}

// destroyQueued destroys a path the store already queued, and unqueues it.
func (s *service) destroyQueued(ctx context.Context, path string) {
	if err := s.secrets.Destroy(ctx, path); err != nil {
		s.log.WarnContext(ctx, "vault destroy deferred", "error", err)
		return
	}
	if err := s.store.UnqueueDestroy(context.WithoutCancel(ctx), path); err != nil {
		s.log.WarnContext(ctx, "unqueue vault destroy failed", "error", err)
	}
}

func (s *service) stamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// callerWith returns the verified caller, refusing one whose role is below
// min and any Slipway service acting on its own behalf (the public APIs are
// for users; services use the AccessService).
func callerWith(ctx context.Context, min identity.Role) (identity.Identity, error) {
	id, ok := identity.FromContext(ctx)
	if !ok {
		return identity.Identity{}, fmt.Errorf("%w: no caller identity", ErrUnauthorized)
	}
	if id.Service != "" && min != identity.RoleViewer {
		return identity.Identity{}, fmt.Errorf("%w: service %s may only read", ErrUnauthorized, id.Service)
	}
	if !id.Role.AtLeast(min) {
		return identity.Identity{}, fmt.Errorf("%w: role %s needed, caller is %s", ErrUnauthorized, min, id.Role)
	}
	return id, nil
}

func validateLabels(l map[string]string) error {
	if len(l) > 64 {
		return validate.Field("labels", "at most 64 labels, got %d", len(l))
	}
	for k, v := range l {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return validate.Field("labels", "key %q: %s", k, errs[0])
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return validate.Field("labels", "value of %q: %s", k, errs[0])
		}
	}
	return nil
}

func reachabilityText(r kube.Reachability) string {
	switch r {
	case kube.Unauthorized:
		return "credentials rejected"
	case kube.Unreachable:
		return "unreachable"
	}
	return "not checked"
}

func fieldNotFound(field string, err error) error {
	if errors.Is(err, ErrCredentialNotFound) {
		return validate.Field(field, "%v", err)
	}
	return err
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return maps.Clone(m)
}

func newID(prefix string) string { return prefix + strings.ToLower(ulid.Make().String()) }

func clusterPath(org, id string) string    { return "orgs/" + org + "/clusters/" + id }
func credentialPath(org, id string) string { return "orgs/" + org + "/credentials/" + id }
