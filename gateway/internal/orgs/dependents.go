package orgs

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/slipwayhq/slipway/gateway/internal/store"

	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

// ServiceDependents asks the clusters and releases services whether an org
// still has clusters or releases. Calls carry the caller's identity (the
// client forwards it from the context).
type ServiceDependents struct {
	Clusters   clustersv1.ClustersServiceClient
	Releases   releasesv1.ReleasesServiceClient
	Operations releasesv1.OperationsServiceClient
}

// NewServiceDependents returns a Dependents over the two connections.
func NewServiceDependents(clusters, releases grpc.ClientConnInterface) ServiceDependents {
	return ServiceDependents{
		Clusters:   clustersv1.NewClustersServiceClient(clusters),
		Releases:   releasesv1.NewReleasesServiceClient(releases),
		Operations: releasesv1.NewOperationsServiceClient(releases),
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

// ListServiceAudit lists what the releases service did on its own (a
// release a dead writer left pending, recovered), newest first, for the
// audit log. A releases service that does not serve them has none.
func (d ServiceDependents) ListServiceAudit(ctx context.Context, org string, f store.AuditFilter, before string, limit int) ([]store.AuditEvent, error) {
	req := &releasesv1.ListSystemAuditEventsRequest{Org: org, Actor: f.Actor, Action: f.Action, BeforeId: before, PageSize: int32(limit)}
	if !f.Since.IsZero() {
		req.Since = timestamppb.New(f.Since)
	}
	resp, err := d.Operations.ListSystemAuditEvents(ctx, req)
	switch status.Code(err) {
	case codes.OK:
	case codes.Unimplemented:
		return nil, nil
	default:
		return nil, fmt.Errorf("%w: releases: %s", ErrServiceUnavailable, status.Convert(err).Message())
	}
	out := make([]store.AuditEvent, 0, len(resp.GetEvents()))
	for _, e := range resp.GetEvents() {
		out = append(out, store.AuditEvent{
			ID: e.GetId(), Time: e.GetTime().AsTime(), Actor: e.GetActor(), Action: e.GetAction(),
			Target: e.GetTarget(), Result: int(e.GetResult()), Detail: e.GetDetail(),
		})
	}
	return out, nil
}
