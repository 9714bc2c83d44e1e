package orgs

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

// ServiceDependents asks the clusters and releases services whether an org
// still has clusters or releases. Calls carry the caller's identity (the
// client forwards it from the context).
type ServiceDependents struct {
	Clusters clustersv1.ClustersServiceClient
	Releases releasesv1.ReleasesServiceClient
}

// NewServiceDependents returns a Dependents over the two connections.
func NewServiceDependents(clusters, releases grpc.ClientConnInterface) ServiceDependents {
	return ServiceDependents{
		Clusters: clustersv1.NewClustersServiceClient(clusters),
		Releases: releasesv1.NewReleasesServiceClient(releases),
	}
}

// HasDependents reports whether org has a cluster or a release. A service
// that does not serve the list yet (Unimplemented) holds none.
func (d ServiceDependents) HasDependents(ctx context.Context, org string) (bool, error) {
	cl, err := d.Clusters.ListClusters(ctx, &clustersv1.ListClustersRequest{Org: org, PageSize: 1})
	switch {
	case status.Code(err) == codes.Unimplemented:
	case err != nil:
		return false, fmt.Errorf("list clusters: %w", err)
	case len(cl.GetClusters()) > 0:
		return true, nil
	}
	rel, err := d.Releases.ListDeployments(ctx, &releasesv1.ListDeploymentsRequest{Org: org, Cluster: "-", PageSize: 1})
	switch {
	case status.Code(err) == codes.Unimplemented:
	case err != nil:
		return false, fmt.Errorf("list releases: %w", err)
	case len(rel.GetReleases()) > 0:
		return true, nil
	}
	return false, nil
}
