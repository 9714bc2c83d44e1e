package catalog

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/slipwayhq/slipway/pkg/clusteraccess"
	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
	registryv1 "github.com/slipwayhq/slipway/proto/slipway/registry/v1"
	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
	"github.com/slipwayhq/slipway/services/catalog/internal/fetch"
)

// ociComponent is one path component of an OCI repository name.
var ociComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)

// Fetcher reaches chart repositories (fetch.Fetcher).
type Fetcher interface {
	CheckURL(raw string) (string, error)
	Index(ctx context.Context, repoURL string, auth *fetch.Auth, etag, lastModified string, maxBytes int64) (fetch.IndexResponse, error)
	Archive(ctx context.Context, repoURL, chartURL string, auth *fetch.Auth, maxBytes int64) ([]byte, error)
	OCICharts(ctx context.Context, repoURL string, names []string, auth *fetch.Auth) ([]string, error)
	OCITags(ctx context.Context, repoURL, chart string, auth *fetch.Auth) ([]string, error)
	OCIVersion(ctx context.Context, repoURL, chart, version string, auth *fetch.Auth) (fetch.OCIVersion, error)
	OCIArchive(ctx context.Context, repoURL, chart, archiveDigest string, auth *fetch.Auth, maxBytes int64) ([]byte, error)
}

var _ Fetcher = (*fetch.Fetcher)(nil)

// RepositoryLogin is a helm-repository credential's login.
type RepositoryLogin struct {
	CredentialID string
	Auth         *fetch.Auth
}

// Logins finds repository logins (the clusters service's AccessService).
type Logins interface {
	// RepositoryAuth returns the login of org's helm-repository credential
	// (id or name) for url, which the credential must cover.
	RepositoryAuth(ctx context.Context, org, credential, url string) (RepositoryLogin, error)
}

// AccessLogins is Logins over pkg/clusteraccess.
type AccessLogins struct{ Client *clusteraccess.Client }

// RepositoryAuth implements Logins.
func (a AccessLogins) RepositoryAuth(ctx context.Context, org, credential, url string) (RepositoryLogin, error) {
	resp, err := a.Client.RepositoryAuth(ctx, org, credential, url)
	if err != nil {
		return RepositoryLogin{}, err
	}
	return RepositoryLogin{CredentialID: resp.GetCredentialId(), Auth: &fetch.Auth{
		Username: resp.GetUsername(), Password: resp.GetPassword(), BearerToken: resp.GetBearerToken(),
		ClientCertPEM: resp.GetClientCertificatePem(), ClientKeyPEM: resp.GetClientKeyPem(),
		CAPEM: resp.GetCertificateAuthorityPem(),
	}}, nil
}

// Clusters finds the caller's clusters (the clusters service).
type Clusters interface {
	// ClusterID returns the id of the caller's cluster (id or name), or an
	// error wrapping ErrUnprocessable when the org has no such cluster.
	ClusterID(ctx context.Context, org, cluster string) (string, error)
}

// Image is the newest recorded version of an image.
type Image struct {
	Name, Version, Reference, Digest string
}

// Images finds the caller's images (the registry service).
type Images interface {
	// Newest returns the newest version of the image name, or an error
	// wrapping ErrUnprocessable when the org has none.
	Newest(ctx context.Context, org, name string) (Image, error)
}

// TargetRelease is what the releases service reports of a target.
type TargetRelease struct {
	Deployed     bool
	ChartVersion string
}

// Releases asks the releases service what runs on application targets.
type Releases interface {
	// Latest returns the newest release of an application's target; ok is
	// false when there is none. ErrNotTracked when the releases service
	// does not report application releases.
	Latest(ctx context.Context, org, application, target string) (rel TargetRelease, ok bool, err error)
}

// ErrNotTracked: the releases service does not report application
// releases (yet), so nothing can be deployed through it.
var ErrNotTracked = errors.New("the releases service does not report application releases")

// depTimeout bounds each question to another Slipway service.
const depTimeout = 5 * time.Second

// RemoteClusters is Clusters over the clusters service, with the caller's
// identity forwarded.
type RemoteClusters struct {
	rpc clustersv1.ClustersServiceClient
}

// NewRemoteClusters returns Clusters over conn.
func NewRemoteClusters(conn grpc.ClientConnInterface) RemoteClusters {
	return RemoteClusters{rpc: clustersv1.NewClustersServiceClient(conn)}
}

// ClusterID implements Clusters.
func (c RemoteClusters) ClusterID(ctx context.Context, org, cluster string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, depTimeout)
	defer cancel()
	resp, err := c.rpc.GetCluster(ctx, &clustersv1.GetClusterRequest{Org: org, Cluster: cluster})
	switch status.Code(err) {
	case codes.OK:
		return resp.GetCluster().GetId(), nil
	case codes.NotFound, codes.InvalidArgument:
		return "", fmt.Errorf("%w: cluster %q is not registered in the organization", ErrUnprocessable, cluster)
	}
	return "", fmt.Errorf("%w: clusters: %s", ErrDependencyUnavailable, status.Convert(err).Message())
}

// RemoteImages is Images over the registry service.
type RemoteImages struct {
	rpc registryv1.RegistryServiceClient
}

// NewRemoteImages returns Images over conn.
func NewRemoteImages(conn grpc.ClientConnInterface) RemoteImages {
	return RemoteImages{rpc: registryv1.NewRegistryServiceClient(conn)}
}

// Newest implements Images.
func (r RemoteImages) Newest(ctx context.Context, org, name string) (Image, error) {
	ctx, cancel := context.WithTimeout(ctx, depTimeout)
	defer cancel()
	resp, err := r.rpc.ListImages(ctx, &registryv1.ListImagesRequest{Org: org, Name: name, PageSize: 1})
	switch {
	case status.Code(err) == codes.InvalidArgument:
		return Image{}, fmt.Errorf("%w: image %q: %s", ErrUnprocessable, name, status.Convert(err).Message())
	case err != nil:
		return Image{}, fmt.Errorf("%w: registry: %s", ErrDependencyUnavailable, status.Convert(err).Message())
	case len(resp.GetImages()) == 0:
		return Image{}, fmt.Errorf("%w: image %q has no version recorded in the organization", ErrUnprocessable, name)
	}
	img := resp.GetImages()[0]
	return Image{Name: img.GetName(), Version: img.GetVersion(), Reference: img.GetReference(), Digest: img.GetDigest()}, nil
}

// RemoteReleases is Releases over the releases service; a nil connection
// means the releases service is not deployed.
type RemoteReleases struct {
	rpc releasesv1.ReleasesServiceClient
}

// NewRemoteReleases returns Releases over conn (nil: none deployed).
func NewRemoteReleases(conn grpc.ClientConnInterface) RemoteReleases {
	if conn == nil {
		return RemoteReleases{}
	}
	return RemoteReleases{rpc: releasesv1.NewReleasesServiceClient(conn)}
}

// Latest implements Releases.
func (r RemoteReleases) Latest(ctx context.Context, org, application, target string) (TargetRelease, bool, error) {
	if r.rpc == nil {
		return TargetRelease{}, false, ErrNotTracked
	}
	ctx, cancel := context.WithTimeout(ctx, depTimeout)
	defer cancel()
	resp, err := r.rpc.ListApplicationReleases(ctx, &releasesv1.ListApplicationReleasesRequest{Org: org, Application: application, Target: target, PageSize: 1})
	switch status.Code(err) {
	case codes.OK:
	case codes.Unimplemented:
		return TargetRelease{}, false, ErrNotTracked
	case codes.NotFound:
		return TargetRelease{}, false, nil
	default:
		return TargetRelease{}, false, fmt.Errorf("%w: releases: %s", ErrDependencyUnavailable, status.Convert(err).Message())
	}
	if len(resp.GetReleases()) == 0 {
		return TargetRelease{}, false, nil
	}
	rel := resp.GetReleases()[0]
	deployed := rel.GetStatus() != releasesv1.ReleaseStatus_RELEASE_STATUS_UNINSTALLED
	return TargetRelease{Deployed: deployed, ChartVersion: rel.GetChartVersion()}, true, nil
}

// statusMessage is the message of the gRPC status err wraps (not the text
// wrapped around it, which may name addresses), or err's text.
func statusMessage(err error) string {
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) && se.GRPCStatus() != nil {
		return se.GRPCStatus().Message()
	}
	return err.Error()
}

// loginError explains why a credential's login could not be had: the
// caller's doing (no such credential, wrong type, does not cover the URL)
// or the clusters service's.
func loginError(credential string, err error) error {
	switch status.Code(err) {
	case codes.NotFound, codes.InvalidArgument, codes.FailedPrecondition, codes.PermissionDenied:
		return fmt.Errorf("%w: credential %q: %s", ErrUnprocessable, credential, statusMessage(err))
	}
	return fmt.Errorf("%w: clusters: %s", ErrDependencyUnavailable, statusMessage(err))
}
