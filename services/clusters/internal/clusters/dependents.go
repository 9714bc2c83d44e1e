package clusters

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/slipwayhq/slipway/proto/slipway/catalog/v1"
	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

// dependentsShown is how many dependents an "in use" error names.
const dependentsShown = 5

// dependentsTimeout bounds each question to another service: a delete
// waits for the answer, and no answer refuses the delete.
const dependentsTimeout = 5 * time.Second

// RemoteDependents asks the releases service which releases a cluster has
// and the catalog which repositories use a credential, forwarding the
// caller's identity (the question is asked for the caller's org). A nil
// connection means the service is not deployed: nothing can depend on it.
type RemoteDependents struct {
	releases releasesv1.ReleasesServiceClient
	catalog  catalogv1.CatalogServiceClient
}

var _ Dependents = (*RemoteDependents)(nil)

// NewRemoteDependents returns Dependents over the two connections.
func NewRemoteDependents(releases, catalog grpc.ClientConnInterface) *RemoteDependents {
	d := &RemoteDependents{}
	if releases != nil {
		d.releases = releasesv1.NewReleasesServiceClient(releases)
	}
	if catalog != nil {
		d.catalog = catalogv1.NewCatalogServiceClient(catalog)
	}
	return d
}

// ClusterReleases names up to a few of the cluster's tracked releases.
func (d *RemoteDependents) ClusterReleases(ctx context.Context, org, clusterID string) ([]string, error) {
	if d.releases == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, dependentsTimeout)
	defer cancel()
	resp, err := d.releases.ListDeployments(ctx, &releasesv1.ListDeploymentsRequest{Org: org, Cluster: clusterID, PageSize: dependentsShown})
	if err != nil {
		return nil, notBuilt(err, "releases")
	}
	var names []string
	for _, r := range resp.GetReleases() {
		names = append(names, r.GetNamespace()+"/"+r.GetName())
	}
	return names, nil
}

// CredentialRepositories names up to a few repositories fetching with the
// credential.
func (d *RemoteDependents) CredentialRepositories(ctx context.Context, org, credentialID string) ([]string, error) {
	if d.catalog == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, dependentsTimeout)
	defer cancel()
	resp, err := d.catalog.ListRepositories(ctx, &catalogv1.ListRepositoriesRequest{Org: org, CredentialId: credentialID, PageSize: dependentsShown})
	if err != nil {
		return nil, notBuilt(err, "catalog")
	}
	var names []string
	for _, r := range resp.GetRepositories() {
		names = append(names, r.GetName())
	}
	return names, nil
}

// ClusterApplications names up to a few applications targeting the
// cluster.
func (d *RemoteDependents) ClusterApplications(ctx context.Context, org, clusterID string) ([]string, error) {
	if d.catalog == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, dependentsTimeout)
	defer cancel()
	resp, err := d.catalog.ListApplications(ctx, &catalogv1.ListApplicationsRequest{Org: org, Cluster: clusterID, PageSize: dependentsShown})
	if err != nil {
		return nil, notBuilt(err, "catalog")
	}
	var names []string
	for _, a := range resp.GetApplications() {
		names = append(names, a.GetName())
	}
	return names, nil
}

// notBuilt treats UNIMPLEMENTED as "nothing depends on it": a service that
// does not implement the list yet cannot be tracking anything. Any other
// error is reported, and the delete refused.
func notBuilt(err error, svc string) error {
	if status.Code(err) == codes.Unimplemented {
		return nil
	}
	return fmt.Errorf("ask %s: %s", svc, status.Convert(err).Message())
}
