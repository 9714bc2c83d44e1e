package registry

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/paging"
	"github.com/slipwayhq/slipway/pkg/validate"
	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

// Errors of the deployments lookup; errors.go maps them to gRPC codes.
var (
	// ErrInUse: an image still runs somewhere and may not be deleted.
	ErrInUse = errors.New("image in use")
	// ErrDeploymentsNotTracked: the releases service does not report which
	// releases run which digest (yet).
	ErrDeploymentsNotTracked = errors.New("the releases service does not report deployments yet")
	// ErrDeploymentsUnknown: the releases service could not be asked.
	ErrDeploymentsUnknown = errors.New("could not ask the releases service; retry shortly")
)

// Deployment is one release running an image digest.
type Deployment struct {
	Cluster, Namespace, Release string
	Revision                    int32
	Digest                      string
}

// DeploymentPage is one page of deployments.
type DeploymentPage struct {
	Deployments   []Deployment
	NextPageToken string
}

// Deployments answers which releases run image digests: the releases
// service, which alone knows what is deployed.
type Deployments interface {
	// Running returns one page of org's releases running any of digests;
	// ErrDeploymentsNotTracked when that is not known.
	Running(ctx context.Context, org string, digests []string, p PageRequest) (DeploymentPage, error)
}

// digestPattern is the only digest form image records hold.
var digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func (s *service) ListImageDeployments(ctx context.Context, name, version string, p PageRequest) (DeploymentPage, error) {
	img, err := s.GetImage(ctx, name, version)
	if err != nil {
		return DeploymentPage{}, err
	}
	if img.Digest == "" {
		// Recorded unresolved: nothing can be running it by digest.
		return DeploymentPage{}, nil
	}
	return s.running(ctx, img.Org, img.Digest, p)
}

func (s *service) ListDigestDeployments(ctx context.Context, digest string, p PageRequest) (DeploymentPage, error) {
	caller, err := callerWith(ctx, identity.RoleViewer)
	if err != nil {
		return DeploymentPage{}, err
	}
	if !digestPattern.MatchString(digest) {
		return DeploymentPage{}, validate.Field("digest", "must be sha256: and 64 lower-case hex digits")
	}
	return s.running(ctx, caller.Org, digest, p)
}

func (s *service) running(ctx context.Context, org, digest string, p PageRequest) (DeploymentPage, error) {
	if _, err := paging.Size(p.Size); err != nil {
		return DeploymentPage{}, err
	}
	return s.deployments.Running(ctx, org, []string{digest}, p)
}

// checkUnused refuses to delete an image a release still runs.
func (s *service) checkUnused(ctx context.Context, img Image) error {
	if img.Digest == "" {
		return nil
	}
	page, err := s.deployments.Running(ctx, img.Org, []string{img.Digest}, PageRequest{Size: 5})
	switch {
	case errors.Is(err, ErrDeploymentsNotTracked):
		// Nothing reports deployments, so nothing deployed can be known to
		// use it.
		return nil
	case err != nil:
		return err
	case len(page.Deployments) > 0:
		var names []string
		for _, d := range page.Deployments {
			names = append(names, d.Cluster+"/"+d.Namespace+"/"+d.Release)
		}
		return fmt.Errorf("%w: %s version %s runs in %s; uninstall or upgrade those first", ErrInUse, img.Name, img.Version, strings.Join(names, ", "))
	}
	return nil
}

// RemoteDeployments asks the releases service, forwarding the caller's
// identity. A nil connection means it is not deployed.
type RemoteDeployments struct {
	client releasesv1.ReleasesServiceClient
}

var _ Deployments = (*RemoteDeployments)(nil)

// NewRemoteDeployments returns Deployments over conn.
func NewRemoteDeployments(conn grpc.ClientConnInterface) *RemoteDeployments {
	if conn == nil {
		return &RemoteDeployments{}
	}
	return &RemoteDeployments{client: releasesv1.NewReleasesServiceClient(conn)}
}

// Running implements Deployments.
func (r *RemoteDeployments) Running(ctx context.Context, org string, digests []string, p PageRequest) (DeploymentPage, error) {
	if r.client == nil {
		return DeploymentPage{}, ErrDeploymentsNotTracked
	}
	resp, err := r.client.ListDigestReleases(ctx, &releasesv1.ListDigestReleasesRequest{Org: org, Digests: digests, PageSize: p.Size, PageToken: p.Token})
	switch status.Code(err) {
	case codes.OK:
	case codes.Unimplemented:
		return DeploymentPage{}, ErrDeploymentsNotTracked
	case codes.InvalidArgument:
		// A bad page token or size: the caller's, and the releases service
		// says which.
		return DeploymentPage{}, validate.Field("page_token", "%s", status.Convert(err).Message())
	default:
		return DeploymentPage{}, fmt.Errorf("%w: %s", ErrDeploymentsUnknown, status.Convert(err).Message())
	}
	page := DeploymentPage{NextPageToken: resp.GetNextPageToken()}
	for _, d := range resp.GetReleases() {
		page.Deployments = append(page.Deployments, Deployment{Cluster: d.GetCluster(), Namespace: d.GetNamespace(), Release: d.GetName(), Revision: d.GetRevision(), Digest: d.GetDigest()})
	}
	return page, nil
}
