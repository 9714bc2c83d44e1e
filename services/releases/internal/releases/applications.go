package releases

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/slipwayhq/slipway/pkg/helmvalues"
	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/paging"
	"github.com/slipwayhq/slipway/pkg/validate"
	catalogv1 "github.com/slipwayhq/slipway/proto/slipway/catalog/v1"
	registryv1 "github.com/slipwayhq/slipway/proto/slipway/registry/v1"
	"github.com/slipwayhq/slipway/services/releases/internal/ops"
)

// AppTarget is what a deploy of an application to a target needs from the
// catalog and the registry, resolved at acceptance.
type AppTarget struct {
	Chart          ChartRef
	Cluster        string // id
	Namespace      string
	Values         map[string]any // application's, then target's, merged
	Image          string         // image name, "" for none
	ImageValuesKey string
}

// Applications reads the catalog's applications (with the caller's
// identity: deployers see values).
type Applications interface {
	Target(ctx context.Context, org, application, target string) (AppTarget, error)
}

// Images reads the registry's images.
type Images interface {
	// Version returns a version of image name, the newest when version
	// is "".
	Version(ctx context.Context, org, name, version string) (helmvalues.Image, error)
}

// AppDeploy is a deploy of an application to one of its targets.
type AppDeploy struct {
	Application, Target string
	ImageVersion        string
	ValuesYAML          string
	Options             Options
	IdempotencyKey      string
	Queue               bool
}

// ReleaseName is the release of an application's target.
func ReleaseName(application, target string) string { return application + "-" + target }

func (s *service) DeployApplication(ctx context.Context, d AppDeploy) (ops.Operation, error) {
	caller, err := callerWith(ctx, identity.RoleDeployer)
	if err != nil {
		return ops.Operation{}, err
	}
	if err := validate.First(validate.DNSLabel("application", d.Application), validate.DNSLabel("target", d.Target),
		validate.MaxLen("version", d.ImageVersion, 128)); err != nil {
		return ops.Operation{}, err
	}
	if len(d.ValuesYAML) > maxValuesBytes {
		return ops.Operation{}, validate.Field("values_yaml", "must be at most %d bytes", maxValuesBytes)
	}
	if err := validateOptions(d.Options); err != nil {
		return ops.Operation{}, err
	}
	t, err := s.apps.Target(ctx, caller.Org, d.Application, d.Target)
	if err != nil {
		return ops.Operation{}, err
	}
	var request map[string]any
	if d.ValuesYAML != "" {
		vals, err := chartutil.ReadValues([]byte(d.ValuesYAML))
		if err != nil {
			return ops.Operation{}, validate.Field("values_yaml", "is not a YAML mapping: %v", err)
		}
		request = vals.AsMap()
	}
	j := job{Chart: &t.Chart, Options: d.Options, Application: d.Application, Target: d.Target}
	j.Options.ReuseValues, j.Options.ResetValues = false, true
	if j.Options.Timeout == 0 {
		j.Options.Timeout = DefaultTimeout
	}
	var img *helmvalues.Image
	if t.Image != "" {
		i, err := s.images.Version(ctx, caller.Org, t.Image, d.ImageVersion)
		if err != nil {
			return ops.Operation{}, err
		}
		img = &i
		j.Images = []Image{{Reference: i.Reference, Digest: i.Digest}}
	} else if d.ImageVersion != "" {
		return ops.Operation{}, validate.Field("version", "application %s runs no image of the registry", d.Application)
	}
	// Nulls stay: Helm removes those keys from the chart's defaults, as the
	// catalog's validation assumed.
	j.Values = helmvalues.Overlay(t.Values, request, helmvalues.ImageValues(t.ImageValuesKey, img))
	return s.enqueue(ctx, caller, ops.KindDeployApplication, ops.Target{Cluster: t.Cluster, Namespace: t.Namespace,
		Release: ReleaseName(d.Application, d.Target), Application: d.Application, ApplicationTarget: d.Target}, j, d.IdempotencyKey, d.Queue)
}

func (s *service) RollbackApplication(ctx context.Context, application, target string, revision int, o Options, key string, queue bool) (ops.Operation, error) {
	caller, err := callerWith(ctx, identity.RoleDeployer)
	if err != nil {
		return ops.Operation{}, err
	}
	if err := validate.First(validate.DNSLabel("application", application), validate.DNSLabel("target", target), validateOptions(o)); err != nil {
		return ops.Operation{}, err
	}
	if revision < 0 {
		return ops.Operation{}, validate.Field("revision", "must be a revision number, or 0 for the previous one")
	}
	t, err := s.apps.Target(ctx, caller.Org, application, target)
	if err != nil {
		return ops.Operation{}, err
	}
	k := ReleaseKey{caller.Org, t.Cluster, t.Namespace, ReleaseName(application, target)}
	j := job{Options: o, Revision: revision, Application: application, Target: target}
	if op, found, err := s.replay(ctx, caller, ops.KindRollbackApplication, ops.Target{Cluster: t.Cluster, Namespace: t.Namespace, Release: k.Name,
		Application: application, ApplicationTarget: target}, j, key); err != nil || found {
		return op, err
	}
	if head, err := s.ledger.Get(ctx, k, 0); err != nil || head.Status == StatusUninstalled {
		return ops.Operation{}, fmt.Errorf("%w: application %s is not deployed on target %s", ErrReleaseNotFound, application, target)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	return s.enqueue(ctx, caller, ops.KindRollbackApplication, ops.Target{Cluster: t.Cluster, Namespace: t.Namespace, Release: k.Name,
		Application: application, ApplicationTarget: target}, j, key, queue)
}

// replay returns the operation an idempotency key already names for this
// same request, if any (see ops.Store.Replay).
func (s *service) replay(ctx context.Context, caller identity.Identity, kind ops.Kind, t ops.Target, j job, key string) (ops.Operation, bool, error) {
	if key == "" {
		return ops.Operation{}, false, nil
	}
	payload, err := json.Marshal(j)
	if err != nil {
		return ops.Operation{}, false, err
	}
	return s.ops.Replay(ctx, ops.EnqueueRequest{Org: caller.Org, Kind: kind, Target: t, DryRun: j.Options.DryRun, Payload: payload, IdempotencyKey: key})
}

func (s *service) enqueue(ctx context.Context, caller identity.Identity, kind ops.Kind, t ops.Target, j job, key string, queue bool) (ops.Operation, error) {
	if len(key) > 255 {
		return ops.Operation{}, validate.Field("idempotency_key", "must be at most 255 characters")
	}
	payload, err := json.Marshal(j)
	if err != nil {
		return ops.Operation{}, fmt.Errorf("encode operation: %w", err)
	}
	op, _, err := s.ops.Enqueue(ctx, ops.EnqueueRequest{Org: caller.Org, Kind: kind, Target: t, DryRun: j.Options.DryRun, Payload: payload,
		Creator: caller.Subject, IdempotencyKey: key, NoQueue: !queue})
	if err != nil {
		return ops.Operation{}, err
	}
	s.wake()
	return op, nil
}

func (s *service) ApplicationReleases(ctx context.Context, application, target string, p PageRequest) (RevisionPage, error) {
	caller, err := callerWith(ctx, identity.RoleViewer)
	if err != nil {
		return RevisionPage{}, err
	}
	if err := validate.First(validate.DNSLabel("application", application), validate.DNSLabel("target", target)); err != nil {
		return RevisionPage{}, err
	}
	size, err := paging.Size(p.Size)
	if err != nil {
		return RevisionPage{}, err
	}
	fp := paging.Fingerprint(caller.Org, "application-releases", application, target)
	tok, err := paging.Decode(p.Token, fp)
	if err != nil {
		return RevisionPage{}, err
	}
	var before int64
	if tok != "" {
		if before, err = strconv.ParseInt(tok, 10, 64); err != nil {
			return RevisionPage{}, validate.Field("page_token", "is not a token this list issued")
		}
	}
	revs, err := s.ledger.ByApplication(ctx, caller.Org, application, target, before, size+1)
	if err != nil {
		return RevisionPage{}, err
	}
	page := RevisionPage{Revisions: revs}
	if len(revs) > size {
		page.Revisions = revs[:size]
		page.NextPageToken = paging.Encode(strconv.FormatInt(revs[size-1].Updated.UnixMicro(), 10), fp)
	}
	return page, nil
}

// CatalogApplications is Applications over the catalog service.
type CatalogApplications struct {
	rpc catalogv1.CatalogServiceClient
}

// NewCatalogApplications returns Applications over conn.
func NewCatalogApplications(conn grpc.ClientConnInterface) CatalogApplications {
	return CatalogApplications{rpc: catalogv1.NewCatalogServiceClient(conn)}
}

// Target implements Applications.
func (c CatalogApplications) Target(ctx context.Context, org, application, target string) (AppTarget, error) {
	ctx, cancel := context.WithTimeout(ctx, depTimeout)
	defer cancel()
	resp, err := c.rpc.GetApplication(ctx, &catalogv1.GetApplicationRequest{Org: org, Application: application})
	switch status.Code(err) {
	case codes.OK:
	case codes.NotFound:
		return AppTarget{}, fmt.Errorf("%w: application %s", ErrApplicationNotFound, application)
	default:
		return AppTarget{}, fmt.Errorf("%w: catalog: %s", ErrDependencyUnavailable, status.Convert(err).Message())
	}
	app := resp.GetApplication()
	for _, t := range app.GetTargets() {
		if t.GetName() != target {
			continue
		}
		key := app.GetImageValuesKey()
		if key == "" {
			key = helmvalues.DefaultImageKey
		}
		c := app.GetChart()
		return AppTarget{
			Chart:   ChartRef{Repository: c.GetRepository(), Chart: c.GetChart(), Version: c.GetVersion()},
			Cluster: t.GetCluster(), Namespace: t.GetNamespace(),
			Values: helmvalues.Overlay(app.GetValues().AsMap(), t.GetValues().AsMap()),
			Image:  app.GetImage(), ImageValuesKey: key,
		}, nil
	}
	return AppTarget{}, fmt.Errorf("%w: application %s has no target %s", ErrApplicationNotFound, application, target)
}

// RegistryImages is Images over the registry service.
type RegistryImages struct {
	rpc registryv1.RegistryServiceClient
}

// NewRegistryImages returns Images over conn.
func NewRegistryImages(conn grpc.ClientConnInterface) RegistryImages {
	return RegistryImages{rpc: registryv1.NewRegistryServiceClient(conn)}
}

// Version implements Images.
func (r RegistryImages) Version(ctx context.Context, org, name, version string) (helmvalues.Image, error) {
	ctx, cancel := context.WithTimeout(ctx, depTimeout)
	defer cancel()
	var img *registryv1.Image
	if version != "" {
		resp, err := r.rpc.GetImage(ctx, &registryv1.GetImageRequest{Org: org, Name: name, Version: version})
		if err != nil {
			return helmvalues.Image{}, imageError(name, version, err)
		}
		img = resp.GetImage()
	} else {
		resp, err := r.rpc.ListImages(ctx, &registryv1.ListImagesRequest{Org: org, Name: name, PageSize: 1})
		if err != nil {
			return helmvalues.Image{}, imageError(name, version, err)
		}
		if len(resp.GetImages()) == 0 {
			return helmvalues.Image{}, fmt.Errorf("%w: image %s has no version recorded", ErrImageUnusable, name)
		}
		img = resp.GetImages()[0]
	}
	return helmvalues.Image{Version: img.GetVersion(), Reference: img.GetReference(), Digest: img.GetDigest()}, nil
}

func imageError(name, version string, err error) error {
	switch status.Code(err) {
	case codes.NotFound, codes.InvalidArgument:
		return fmt.Errorf("%w: image %s version %s: %s", ErrImageUnusable, name, version, status.Convert(err).Message())
	}
	return fmt.Errorf("%w: registry: %s", ErrDependencyUnavailable, status.Convert(err).Message())
}
