// Package releases runs Helm releases for many organizations: every
// mutating call becomes a durable operation (package ops) that a worker
// runs through the Helm SDK (package helmexec), one writer per release,
// and every revision goes to the ledger, which lists and history read.
//
// Layers: service.go (domain: accepting operations, reads), worker.go
// (running them), endpoint.go, transport_grpc.go, errors.go, ledger.go.
package releases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/chartutil"
	"sigs.k8s.io/yaml"

	"github.com/slipwayhq/slipway/pkg/chartarchive"
	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/validate"
	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
	"github.com/slipwayhq/slipway/services/releases/internal/ops"
)

// Errors of the releases API; errors.go maps them to gRPC codes.
var (
	ErrUnauthorized    = errors.New("caller may not do this")
	ErrReleaseExists   = errors.New("release already exists")
	ErrClusterNotFound = errors.New("cluster not found")
	ErrUnsupported     = errors.New("not supported yet")
	// ErrApplicationNotFound: no such application, or target of it.
	ErrApplicationNotFound = errors.New("application not found")
	// ErrImageUnusable: the application's image has no such version.
	ErrImageUnusable = errors.New("image cannot be deployed")
)

// depTimeout bounds each question to another Slipway service.
const depTimeout = 5 * time.Second

// Bounds of requests.
const (
	maxReleaseName   = 53
	maxValuesBytes   = 1 << 20
	maxDescription   = 512
	maxTimeout       = time.Hour
	DefaultTimeout   = 5 * time.Minute
	defaultNamespace = "default"
)

// ChartRef names the chart a change deploys, one of three ways: a chart
// of one of the org's catalog repositories (its version may be a
// constraint), an oci:// reference (OCI), or an archive uploaded with the
// request, by its digest (Upload).
type ChartRef struct {
	Repository string `json:"repository,omitempty"`
	Chart      string `json:"chart,omitempty"`
	Version    string `json:"version,omitempty"`
	OCI        string `json:"oci,omitempty"`
	Upload     string `json:"upload,omitempty"`
}

// String names the chart for events and messages.
func (r ChartRef) String() string {
	switch {
	case r.OCI != "":
		return r.OCI
	case r.Upload != "":
		return "uploaded chart " + r.Upload
	}
	return strings.TrimSuffix(r.Repository+"/"+r.Chart+" "+r.Version, " ")
}

// Options tune an install, upgrade, rollback or uninstall.
type Options struct {
	Wait            bool          `json:"wait,omitempty"`
	Timeout         time.Duration `json:"timeout,omitempty"`
	Atomic          bool          `json:"atomic,omitempty"`
	CreateNamespace bool          `json:"create_namespace,omitempty"`
	DryRun          bool          `json:"dry_run,omitempty"`
	ReuseValues     bool          `json:"reuse_values,omitempty"`
	ResetValues     bool          `json:"reset_values,omitempty"`
	Description     string        `json:"description,omitempty"`
}

// Change is a mutating request on a release.
type Change struct {
	Cluster, Namespace, Name string
	Chart                    *ChartRef
	Archive                  []byte // an uploaded chart, instead of Chart
	ValuesYAML               string
	Options                  Options
	Revision                 int  // rollback: 0 for the previous one
	KeepHistory              bool // uninstall
	IdempotencyKey           string
	Queue                    bool
}

// kindRecover settles a release Helm left pending (RecoverDeployment).
const kindRecover ops.Kind = "recover"

// job is an operation's payload: what the worker does, fully resolved at
// acceptance (the cluster by id), so it means the same on any replica.
type job struct {
	Application string         `json:"application,omitempty"`
	Target      string         `json:"target,omitempty"`
	Images      []Image        `json:"images,omitempty"`
	Chart       *ChartRef      `json:"chart,omitempty"`
	Values      map[string]any `json:"values,omitempty"`
	Options     Options        `json:"options"`
	Revision    int            `json:"revision,omitempty"`
	KeepHistory bool           `json:"keep_history,omitempty"`
	// Found is what the automatic sweep found, on the recover operations
	// it queues: "web/api revision 4 pending-upgrade since ...".
	Found string `json:"found,omitempty"`
	// An applied plan (plan.go): the operation runs only while the
	// release's latest revision and the chart's digest are as planned.
	Plan       string `json:"plan,omitempty"`
	PlanBase   int    `json:"plan_base,omitempty"`
	PlanDigest string `json:"plan_digest,omitempty"`
}

// ClusterAccess finds how to reach an org's cluster (pkg/clusteraccess).
type ClusterAccess interface {
	ClusterAccess(ctx context.Context, org, cluster string) (*clustersv1.ClusterAccess, error)
}

// Service is the releases API. The organization is always the verified
// caller's, never a field of the input.
type Service interface {
	Submit(ctx context.Context, kind ops.Kind, c Change) (ops.Operation, error)
	DeployApplication(ctx context.Context, d AppDeploy) (ops.Operation, error)
	RollbackApplication(ctx context.Context, application, target string, revision int, o Options, key string, queue bool) (ops.Operation, error)
	ApplicationReleases(ctx context.Context, application, target string, p PageRequest) (RevisionPage, error)
	DigestReleases(ctx context.Context, digests []string, p PageRequest) ([]DigestRelease, string, error)
	GetRelease(ctx context.Context, cluster, namespace, name string, revision int) (Revision, string, error)
	// ReleaseValues is GetRelease for the values, which need the deployer
	// role: they may hold what a chart is configured with.
	ReleaseValues(ctx context.Context, cluster, namespace, name string, revision int) (Revision, error)
	ListReleases(ctx context.Context, f ListFilter, p PageRequest) (RevisionPage, error)
	History(ctx context.Context, cluster, namespace, name string, p PageRequest) (RevisionPage, error)
	Manifest(ctx context.Context, cluster, namespace, name string, revision int, p PageRequest) (ManifestPage, error)

	GetOperation(ctx context.Context, id string) (ops.Operation, error)
	ListOperations(ctx context.Context, f ops.ListFilter, p PageRequest) ([]ops.Operation, string, error)
	CancelOperation(ctx context.Context, id string) (ops.Operation, error)
	WatchOperation(ctx context.Context, id string, send func(ops.Operation) error) error

	// ListAudit lists what the service did on its own (recoveries).
	ListAudit(ctx context.Context, f AuditFilter, limit int) ([]AuditEvent, error)
}

// PageRequest asks for one page of a list.
type PageRequest struct {
	Size  int32
	Token string
}

// RevisionPage is one page of revisions.
type RevisionPage struct {
	Revisions     []Revision
	NextPageToken string
}

type service struct {
	ops    *ops.Store
	ledger *Ledger
	access ClusterAccess
	apps   Applications
	images Images
	caller *identity.ServiceCaller
	log    *slog.Logger
	wake   func()
	now    func() time.Time
}

// NewService returns the releases API. The clusters' access is asked with
// the releases service's own identity (caller); wake tells the worker an
// operation was queued.
func NewService(store *ops.Store, ledger *Ledger, access ClusterAccess, apps Applications, images Images, caller *identity.ServiceCaller, wake func(), log *slog.Logger) Service {
	if wake == nil {
		wake = func() {}
	}
	return &service{ops: store, ledger: ledger, access: access, apps: apps, images: images, caller: caller, log: log, wake: wake, now: time.Now}
}

// Submit validates a change, resolves its cluster and queues it as an
// operation of kind (install, upgrade, rollback, uninstall).
func (s *service) Submit(ctx context.Context, kind ops.Kind, c Change) (ops.Operation, error) {
	min := identity.RoleDeployer
	if kind == kindRecover {
		min = identity.RoleAdmin
	}
	caller, err := callerWith(ctx, min)
	if err != nil {
		return ops.Operation{}, err
	}
	if c.Namespace == "" {
		c.Namespace = defaultNamespace
	}
	if err := validateChange(kind, c); err != nil {
		return ops.Operation{}, err
	}
	j := job{Chart: c.Chart, Options: c.Options, Revision: c.Revision, KeepHistory: c.KeepHistory}
	if j.Options.Timeout == 0 {
		j.Options.Timeout = DefaultTimeout
	}
	if c.ValuesYAML != "" {
		vals, err := chartutil.ReadValues([]byte(c.ValuesYAML))
		if err != nil {
			return ops.Operation{}, validate.Field("values_yaml", "is not a YAML mapping: %v", err)
		}
		j.Values = vals.AsMap()
	}
	clusterID, err := s.clusterID(ctx, caller.Org, c.Cluster)
	if err != nil {
		return ops.Operation{}, err
	}
	if c.Archive != nil {
		// Read under the limits now, so a bad chart is refused at once;
		// kept by digest for whichever replica runs the operation.
		if _, err := chartarchive.Load(c.Archive, uploadLimits); err != nil {
			return ops.Operation{}, validate.Field("chart.archive", "%v", err)
		}
		j.Chart = &ChartRef{Upload: chartarchive.Digest(c.Archive)}
	}
	payload, err := json.Marshal(j)
	if err != nil {
		return ops.Operation{}, fmt.Errorf("encode operation: %w", err)
	}
	req := ops.EnqueueRequest{
		Org: caller.Org, Kind: kind, Target: ops.Target{Cluster: clusterID, Namespace: c.Namespace, Release: c.Name},
		DryRun: c.Options.DryRun, Payload: payload, Creator: caller.Subject, IdempotencyKey: c.IdempotencyKey, NoQueue: !c.Queue,
	}
	// A retry of a request that already ran gets its operation back, before
	// the checks its own success would now fail (the release exists).
	if op, found, err := s.ops.Replay(ctx, req); err != nil || found {
		return op, err
	}
	key := ReleaseKey{caller.Org, clusterID, c.Namespace, c.Name}
	head, herr := s.ledger.Get(ctx, key, 0)
	switch {
	case herr != nil && !errors.Is(herr, ErrReleaseNotFound):
		return ops.Operation{}, fmt.Errorf("read ledger: %w", herr)
	case kind == ops.KindInstall && herr == nil && head.Status != StatusUninstalled:
		return ops.Operation{}, fmt.Errorf("%w: %s/%s on cluster %s; upgrade it instead", ErrReleaseExists, c.Namespace, c.Name, c.Cluster)
	case kind != ops.KindInstall && kind != kindRecover && (herr != nil || head.Status == StatusUninstalled):
		// (A release to recover may be one Helm left pending outside
		// Slipway, unknown to the ledger: the worker asks Helm.)
		return ops.Operation{}, fmt.Errorf("%w: %s/%s on cluster %s", ErrReleaseNotFound, c.Namespace, c.Name, c.Cluster)
	case kind == kindCorrectDrift && head.Status != StatusDeployed:
		return ops.Operation{}, fmt.Errorf("%w: revision %d of %s/%s is %s: only a deployed revision is put back", ErrNotDeployed, head.Revision, c.Namespace, c.Name, statusName(head.Status))
	}
	if c.Archive != nil {
		// Stored only once the request is sure to queue, not for one refused.
		if err := s.ledger.PutUpload(ctx, caller.Org, j.Chart.Upload, c.Archive, s.now()); err != nil {
			return ops.Operation{}, err
		}
	}
	op, _, err := s.ops.Enqueue(ctx, req)
	if err != nil {
		return ops.Operation{}, err
	}
	s.wake()
	return op, nil
}

// clusterID resolves a cluster id or name of org through the clusters
// service, which also proves it is org's.
func (s *service) clusterID(ctx context.Context, org, cluster string) (string, error) {
	a, err := s.access.ClusterAccess(ctx, org, cluster)
	if err != nil {
		return "", clusterError(cluster, err)
	}
	return a.GetClusterId(), nil
}

func validateChange(kind ops.Kind, c Change) error {
	if err := validate.First(validate.DNSLabel("name", c.Name), validate.DNSLabel("namespace", c.Namespace)); err != nil {
		return err
	}
	if len(c.Name) > maxReleaseName {
		return validate.Field("name", "must be at most %d characters (Helm's limit), got %d", maxReleaseName, len(c.Name))
	}
	if c.Cluster == "" {
		return validate.Field("cluster", "required")
	}
	if err := validate.MaxLen("cluster", c.Cluster, 128); err != nil {
		return err
	}
	if len(c.ValuesYAML) > maxValuesBytes {
		return validate.Field("values_yaml", "must be at most %d bytes, got %d", maxValuesBytes, len(c.ValuesYAML))
	}
	if err := validateOptions(c.Options); err != nil {
		return err
	}
	if len(c.IdempotencyKey) > 255 {
		return validate.Field("idempotency_key", "must be at most 255 characters")
	}
	switch kind {
	case ops.KindInstall, ops.KindUpgrade:
		switch {
		case c.Archive != nil:
			if len(c.Archive) > MaxUpload {
				return validate.Field("chart.archive", "must be at most %d bytes (Kubernetes' limit on the Secret Helm keeps the chart in), got %d", MaxUpload, len(c.Archive))
			}
		case c.Chart == nil:
			return validate.Field("chart", "required: a chart of one of the organization's repositories (catalog), an oci:// reference or an archive")
		case c.Chart.OCI != "":
			last := c.Chart.OCI[strings.LastIndex(c.Chart.OCI, "/")+1:]
			if !strings.HasPrefix(c.Chart.OCI, "oci://") || strings.Count(c.Chart.OCI, "/") < 3 || !strings.ContainsAny(last, ":@") {
				return validate.Field("chart.oci_reference", "must name a chart under a registry with a tag or digest (oci://host/path/chart:1.2.3 or ...@sha256:...)")
			}
			return validate.MaxLen("chart.oci_reference", c.Chart.OCI, 1024)
		default:
			if err := validate.First(validate.DNSLabel("chart.catalog.repository", c.Chart.Repository), validate.MaxLen("chart.catalog.chart", c.Chart.Chart, 255)); err != nil {
				return err
			}
			if c.Chart.Chart == "" {
				return validate.Field("chart.catalog.chart", "required")
			}
		}
	case ops.KindRollback:
		if c.Revision < 0 {
			return validate.Field("revision", "must be a revision number, or 0 for the previous one")
		}
	}
	return nil
}

func (s *service) GetRelease(ctx context.Context, cluster, namespace, name string, revision int) (Revision, string, error) {
	caller, err := callerWith(ctx, identity.RoleViewer)
	if err != nil {
		return Revision{}, "", err
	}
	k, err := s.key(ctx, caller.Org, cluster, namespace, name)
	if err != nil {
		return Revision{}, "", err
	}
	r, err := s.ledger.Get(ctx, k, revision)
	if err != nil {
		return Revision{}, "", notFound(err, namespace, name)
	}
	var active string
	if list, _, err := s.ops.List(ctx, caller.Org, ops.ListFilter{Cluster: k.Cluster, Namespace: k.Namespace, Release: k.Name, State: ops.StateRunning}, ops.Page{Size: 1}); err == nil && len(list) > 0 {
		active = list[0].ID
	}
	return r, active, nil
}

func (s *service) ReleaseValues(ctx context.Context, cluster, namespace, name string, revision int) (Revision, error) {
	if _, err := callerWith(ctx, identity.RoleDeployer); err != nil {
		return Revision{}, err
	}
	r, _, err := s.GetRelease(ctx, cluster, namespace, name, revision)
	return r, err
}

func (s *service) key(ctx context.Context, org, cluster, namespace, name string) (ReleaseKey, error) {
	if namespace == "" {
		namespace = defaultNamespace
	}
	if err := validate.First(validate.DNSLabel("name", name), validate.DNSLabel("namespace", namespace), validate.MaxLen("cluster", cluster, 128)); err != nil {
		return ReleaseKey{}, err
	}
	id, err := s.clusterID(ctx, org, cluster)
	if err != nil {
		return ReleaseKey{}, err
	}
	return ReleaseKey{org, id, namespace, name}, nil
}

func notFound(err error, namespace, name string) error {
	if errors.Is(err, ErrReleaseNotFound) {
		return fmt.Errorf("%w: %s/%s", ErrReleaseNotFound, namespace, name)
	}
	return err
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

// valuesYAML writes values as YAML for the values routes.
func valuesYAML(v map[string]any) (string, error) {
	if len(v) == 0 {
		return "", nil
	}
	b, err := yaml.Marshal(v)
	return string(b), err
}

// validateOptions checks the options every change takes.
func validateOptions(o Options) error {
	switch {
	case o.Timeout < 0 || o.Timeout > maxTimeout:
		return validate.Field("options.timeout", "must be between 0 and %s", maxTimeout)
	case len(o.Description) > maxDescription:
		return validate.Field("options.description", "must be at most %d characters", maxDescription)
	case o.ReuseValues && o.ResetValues:
		return validate.Field("options", "reuse_values and reset_values exclude each other")
	}
	return nil
}
