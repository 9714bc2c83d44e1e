// Package catalog keeps what an organization can deploy: its chart
// repositories, the chart index synced from them, and its applications
// (a chart, an image and named deploy targets).
//
// Layers, one file per concern: service.go (domain types, repositories),
// charts.go and applications.go (the rest of the domain), sync.go (the
// background index sync), endpoint.go (go-kit endpoints),
// transport_grpc.go (proto <-> domain), middleware.go (logging, metrics),
// errors.go (domain errors -> gRPC codes), store*.go (persistence).
package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/paging"
	"github.com/slipwayhq/slipway/pkg/validate"
)

// Errors of the catalog API; errors.go maps them to gRPC codes. Their text
// is shown to callers.
var (
	ErrRepositoryExists      = errors.New("repository already exists")
	ErrRepositoryNotFound    = errors.New("repository not found")
	ErrChartNotFound         = errors.New("chart not found")
	ErrChartVersionNotFound  = errors.New("chart version not found")
	ErrApplicationExists     = errors.New("application already exists")
	ErrApplicationNotFound   = errors.New("application not found")
	ErrUnauthorized          = errors.New("caller may not do this")
	ErrInUse                 = errors.New("in use")
	ErrEtagMismatch          = errors.New("application changed since it was read")
	ErrUnprocessable         = errors.New("unprocessable")
	ErrRepositoryUnavailable = errors.New("chart repository unavailable; retry shortly")
	ErrDependencyUnavailable = errors.New("a Slipway service this depends on is unavailable; retry shortly")
)

// Sync intervals of a repository.
const (
	DefaultSyncInterval = 10 * time.Minute
	MinSyncInterval     = time.Minute
	MaxSyncInterval     = 7 * 24 * time.Hour
)

// Bounds of a repository's settings.
const (
	maxURLLen    = 2048
	maxOCICharts = 500
)

// SyncState is where a repository's sync is.
type SyncState int

// The sync states, as stored.
const (
	SyncPending SyncState = iota + 1
	SyncSyncing
	SyncSynced
	SyncFailed
)

// SyncStatus is the status of a source's latest sync, shown on every
// repository that uses the source.
type SyncStatus struct {
	State           SyncState
	LastSync        time.Time
	LastSuccess     time.Time
	ChartCount      int
	SkippedVersions int
	LastError       string
}

// Repository is a chart repository of an organization.
type Repository struct {
	Org, Name, URL string
	CredentialID   string
	OCICharts      []string
	SyncInterval   time.Duration
	SourceID       string
	Sync           SyncStatus
	Creator        string
	Created        time.Time
	Updated        time.Time
}

// IsOCI reports whether the repository is an OCI registry path.
func (r Repository) IsOCI() bool { return strings.HasPrefix(r.URL, "oci://") }

// NewRepository is what a caller supplies to add a repository.
type NewRepository struct {
	Name, URL    string
	Credential   string // id or name
	OCICharts    []string
	SyncInterval time.Duration
}

// RepositoryUpdate changes the fields named in Mask ("url",
// "credential_id", "oci_charts", "sync_interval").
type RepositoryUpdate struct {
	URL          string
	Credential   string
	OCICharts    []string
	SyncInterval time.Duration
	Mask         []string
}

// PageRequest asks for one page of a list.
type PageRequest struct {
	Size  int32
	Token string
}

// RepositoryPage is one page of repositories by name.
type RepositoryPage struct {
	Repositories  []Repository
	NextPageToken string
}

// Service is the catalog API. The organization is always the verified
// caller's (see identity.FromContext), never a field of the input.
type Service interface {
	CreateRepository(ctx context.Context, in NewRepository) (Repository, error)
	GetRepository(ctx context.Context, name string) (Repository, error)
	ListRepositories(ctx context.Context, credentialID string, p PageRequest) (RepositoryPage, error)
	UpdateRepository(ctx context.Context, name string, u RepositoryUpdate) (Repository, error)
	DeleteRepository(ctx context.Context, name string) error
	SyncRepository(ctx context.Context, name string) (Repository, error)

	SearchCharts(ctx context.Context, q ChartQuery, p PageRequest) (ChartPage, error)
	ListCharts(ctx context.Context, repository string, p PageRequest) (ChartPage, error)
	GetChart(ctx context.Context, repository, chart string, p PageRequest) (ChartDetail, error)
	GetChartVersion(ctx context.Context, repository, chart, version string) (ChartFiles, error)
	GetChartArchive(ctx context.Context, ref ChartRef) (ChartVersion, []byte, error)

	CreateApplication(ctx context.Context, app Application) (Application, error)
	GetApplication(ctx context.Context, name string) (Application, error)
	ListApplications(ctx context.Context, f ApplicationFilter, p PageRequest) (ApplicationPage, error)
	UpdateApplication(ctx context.Context, app Application) (Application, error)
	DeleteApplication(ctx context.Context, name string) error
}

// Middleware decorates a Service.
type Middleware func(Service) Service

// Deps are the other services and parts the catalog works with.
type Deps struct {
	Store    Store
	Fetcher  Fetcher
	Logins   Logins
	Clusters Clusters
	Images   Images
	Releases Releases
	// Wake asks the syncer to look for due sources now (Syncer.Wake).
	Wake func()
}

// Options tune the service.
type Options struct {
	Limits Limits
}

type service struct {
	Deps
	opts  Options
	files *filesCache
	log   *slog.Logger
	now   func() time.Time
}

// NewService returns the catalog API over deps.
func NewService(deps Deps, opts Options, log *slog.Logger) Service {
	opts.Limits = opts.Limits.withDefaults()
	if deps.Wake == nil {
		deps.Wake = func() {}
	}
	return &service{Deps: deps, opts: opts, files: newFilesCache(256), log: log, now: time.Now}
}

func (s *service) CreateRepository(ctx context.Context, in NewRepository) (Repository, error) {
	caller, err := callerWith(ctx, identity.RoleAdmin)
	if err != nil {
		return Repository{}, err
	}
	if err := validate.DNSLabel("name", in.Name); err != nil {
		return Repository{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	r := Repository{Org: caller.Org, Name: in.Name, Creator: caller.Subject, Created: now, Updated: now}
	if err := s.settle(ctx, &r, in.URL, in.Credential, in.OCICharts, in.SyncInterval); err != nil {
		return Repository{}, err
	}
	if err := s.Store.InsertRepository(ctx, r, newSource(r, now)); err != nil {
		if errors.Is(err, ErrRepositoryExists) {
			return Repository{}, fmt.Errorf("%w: %s", ErrRepositoryExists, in.Name)
		}
		return Repository{}, fmt.Errorf("insert repository: %w", err)
	}
	s.Wake()
	return s.Store.GetRepository(ctx, caller.Org, in.Name)
}

// settle validates a repository's settings and fills them into r: the
// URL normalised, the credential resolved to its id (which must cover the
// URL), the OCI chart names and the interval.
func (s *service) settle(ctx context.Context, r *Repository, rawURL, credential string, ociCharts []string, interval time.Duration) error {
	if err := validate.MaxLen("url", rawURL, maxURLLen); err != nil {
		return err
	}
	if rawURL == "" {
		return validate.Field("url", "required")
	}
	u, err := s.Fetcher.CheckURL(rawURL)
	if err != nil {
		return validate.Field("url", "%v", err)
	}
	r.URL = u
	switch {
	case interval == 0:
		interval = DefaultSyncInterval
	case interval < MinSyncInterval || interval > MaxSyncInterval:
		return validate.Field("sync_interval", "must be between %s and %s, got %s", MinSyncInterval, MaxSyncInterval, interval)
	}
	r.SyncInterval = interval.Truncate(time.Second)
	r.OCICharts = nil
	if r.IsOCI() {
		if len(ociCharts) > maxOCICharts {
			return validate.Field("oci_charts", "at most %d charts, got %d", maxOCICharts, len(ociCharts))
		}
		for i, c := range ociCharts {
			if err := validateOCIChart(c); err != nil {
				return validate.Field(fmt.Sprintf("oci_charts[%d]", i), "%v", err)
			}
		}
		r.OCICharts = slices.Compact(slices.Sorted(slices.Values(ociCharts)))
	}
	r.CredentialID = ""
	if credential != "" {
		if err := validate.MaxLen("credential_id", credential, 128); err != nil {
			return err
		}
		// Asking for the login proves the credential exists in the
		// caller's org, is a helm-repository one and covers the URL.
		auth, err := s.Logins.RepositoryAuth(ctx, r.Org, credential, r.URL)
		if err != nil {
			return loginError(credential, err)
		}
		r.CredentialID = auth.CredentialID
	}
	return nil
}

// validateOCIChart checks a chart name under an oci:// repository: one
// OCI repository path component, directly under the repository's path.
func validateOCIChart(c string) error {
	if len(c) > 128 || !ociComponent.MatchString(c) {
		return fmt.Errorf("%q is not a chart directly under the repository: one OCI path component (lower-case letters, digits, '.', '_', '-'); put the rest of the path in the repository URL", c)
	}
	return nil
}

// newSource is the source a repository's settings call for; the store
// shares it when one with the same key exists.
func newSource(r Repository, now time.Time) Source {
	kind := SourceHTTP
	if r.IsOCI() {
		kind = SourceOCI
	}
	src := Source{
		ID: uuid.NewString(), Kind: kind, URL: r.URL, OCICharts: r.OCICharts,
		Interval: r.SyncInterval, NextSync: now, Sync: SyncStatus{State: SyncPending},
	}
	if r.CredentialID != "" {
		src.Org, src.CredentialID = r.Org, r.CredentialID
	}
	src.Key = sourceKey(src)
	return src
}

// sourceKey identifies what is fetched: an anonymous fetch of a URL is the
// same for every organization; a fetch with a credential is its org's own.
func sourceKey(src Source) string {
	h := sha256.New()
	for _, part := range []string{fmt.Sprint(int(src.Kind)), src.URL, strings.Join(src.OCICharts, ","), src.Org, src.CredentialID} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (s *service) GetRepository(ctx context.Context, name string) (Repository, error) {
	caller, err := callerWith(ctx, identity.RoleViewer)
	if err != nil {
		return Repository{}, err
	}
	if err := validate.DNSLabel("repository", name); err != nil {
		return Repository{}, err
	}
	return s.repository(ctx, caller.Org, name)
}

func (s *service) repository(ctx context.Context, org, name string) (Repository, error) {
	r, err := s.Store.GetRepository(ctx, org, name)
	if errors.Is(err, ErrRepositoryNotFound) {
		return Repository{}, fmt.Errorf("%w: %s", ErrRepositoryNotFound, name)
	}
	return r, err
}

func (s *service) ListRepositories(ctx context.Context, credentialID string, p PageRequest) (RepositoryPage, error) {
	caller, err := callerWith(ctx, identity.RoleViewer)
	if err != nil {
		return RepositoryPage{}, err
	}
	if err := validate.MaxLen("credential_id", credentialID, 128); err != nil {
		return RepositoryPage{}, err
	}
	size, err := paging.Size(p.Size)
	if err != nil {
		return RepositoryPage{}, err
	}
	fp := paging.Fingerprint(caller.Org, "repositories", credentialID)
	after, err := paging.Decode(p.Token, fp)
	if err != nil {
		return RepositoryPage{}, err
	}
	rs, err := s.Store.ListRepositories(ctx, caller.Org, credentialID, after, size+1)
	if err != nil {
		return RepositoryPage{}, fmt.Errorf("list repositories: %w", err)
	}
	page := RepositoryPage{Repositories: rs}
	if len(rs) > size {
		page.Repositories = rs[:size]
		page.NextPageToken = paging.Encode(rs[size-1].Name, fp)
	}
	return page, nil
}

func (s *service) UpdateRepository(ctx context.Context, name string, u RepositoryUpdate) (Repository, error) {
	caller, err := callerWith(ctx, identity.RoleAdmin)
	if err != nil {
		return Repository{}, err
	}
	if err := validate.DNSLabel("repository", name); err != nil {
		return Repository{}, err
	}
	if len(u.Mask) == 0 {
		return Repository{}, validate.Field("update_mask", "required: name the fields to change (url, credentialId, ociCharts, syncInterval)")
	}
	r, err := s.repository(ctx, caller.Org, name)
	if err != nil {
		return Repository{}, err
	}
	url, cred, charts, interval := r.URL, r.CredentialID, r.OCICharts, r.SyncInterval
	for _, f := range u.Mask {
		switch f {
		case "url":
			url = u.URL
		case "credential_id":
			cred = u.Credential
		case "oci_charts":
			charts = u.OCICharts
		case "sync_interval":
			interval = u.SyncInterval
		default:
			return Repository{}, validate.Field("update_mask", "unknown field %q (url, credentialId, ociCharts, syncInterval)", f)
		}
	}
	if err := s.settle(ctx, &r, url, cred, charts, interval); err != nil {
		return Repository{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	r.Updated = now
	if err := s.Store.UpdateRepository(ctx, r, newSource(r, now)); err != nil {
		return Repository{}, fmt.Errorf("update repository: %w", err)
	}
	s.Wake()
	return s.Store.GetRepository(ctx, caller.Org, name)
}

func (s *service) DeleteRepository(ctx context.Context, name string) error {
	caller, err := callerWith(ctx, identity.RoleAdmin)
	if err != nil {
		return err
	}
	if err := validate.DNSLabel("repository", name); err != nil {
		return err
	}
	if _, err := s.repository(ctx, caller.Org, name); err != nil {
		return err
	}
	err = s.Store.DeleteRepository(ctx, caller.Org, name)
	var used *usedError
	switch {
	case errors.As(err, &used):
		return fmt.Errorf("%w: repository %s is the chart source of application(s) %s; change or delete them first",
			ErrInUse, name, strings.Join(used.names, ", "))
	case errors.Is(err, ErrRepositoryNotFound):
		return fmt.Errorf("%w: %s", ErrRepositoryNotFound, name)
	}
	return err
}

func (s *service) SyncRepository(ctx context.Context, name string) (Repository, error) {
	caller, err := callerWith(ctx, identity.RoleDeployer)
	if err != nil {
		return Repository{}, err
	}
	if err := validate.DNSLabel("repository", name); err != nil {
		return Repository{}, err
	}
	r, err := s.repository(ctx, caller.Org, name)
	if err != nil {
		return Repository{}, err
	}
	if err := s.Store.RequestSync(ctx, r.SourceID, s.now()); err != nil {
		return Repository{}, fmt.Errorf("request sync: %w", err)
	}
	s.Wake()
	return s.Store.GetRepository(ctx, caller.Org, name)
}

// usedError names the applications that keep a repository from being
// deleted.
type usedError struct{ names []string }

func (e *usedError) Error() string { return "repository in use by " + strings.Join(e.names, ", ") }

// releasesService is the Slipway service that deploys what the catalog
// holds: it reads archives and application values on its own behalf while
// it runs operations, long after the request that started them.
const releasesService = "releases"

// deployerOrReleases returns the caller when it is a deployer (or above)
// or the releases service acting on its own behalf.
func deployerOrReleases(ctx context.Context) (identity.Identity, error) {
	if id, ok := identity.FromContext(ctx); ok && id.Service == releasesService {
		return id, nil
	}
	return callerWith(ctx, identity.RoleDeployer)
}

// callerWith returns the verified caller, refusing one whose role is below min.
func callerWith(ctx context.Context, min identity.Role) (identity.Identity, error) {
	id, ok := identity.FromContext(ctx)
	if !ok {
		return identity.Identity{}, fmt.Errorf("%w: no caller identity", ErrUnauthorized)
	}
	if !id.Role.AtLeast(min) {
		return identity.Identity{}, fmt.Errorf("%w: role %s needed, caller is %s", ErrUnauthorized, min, id.Role)
	}
	return id, nil
}
