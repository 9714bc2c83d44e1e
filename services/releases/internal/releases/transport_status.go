package releases

import (
	"context"

	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
	"github.com/slipwayhq/slipway/services/releases/internal/status"
)

// ServeStatus serves the status routes (GetDeploymentStatus,
// WatchDeploymentStatus, ListDeploymentResources, ListDeploymentEvents)
// from st; without it they answer Unimplemented.
func (s *GRPCServer) ServeStatus(st StatusService) *GRPCServer {
	s.statusSvc = st
	return s
}

func (s *GRPCServer) GetDeploymentStatus(ctx context.Context, req *releasesv1.GetDeploymentStatusRequest) (*releasesv1.GetDeploymentStatusResponse, error) {
	if s.statusSvc == nil {
		return s.UnimplementedReleasesServiceServer.GetDeploymentStatus(ctx, req)
	}
	d, err := s.statusSvc.DeploymentStatus(ctx, req.GetCluster(), req.GetNamespace(), req.GetName())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &releasesv1.GetDeploymentStatusResponse{Status: deploymentStatusProto(d)}, nil
}

func (s *GRPCServer) WatchDeploymentStatus(req *releasesv1.WatchDeploymentStatusRequest, stream releasesv1.ReleasesService_WatchDeploymentStatusServer) error {
	if s.statusSvc == nil {
		return s.UnimplementedReleasesServiceServer.WatchDeploymentStatus(req, stream)
	}
	ctx := stream.Context()
	err := s.statusSvc.WatchDeploymentStatus(ctx, req.GetCluster(), req.GetNamespace(), req.GetName(), func(d DeploymentStatus) error {
		return stream.Send(&releasesv1.WatchDeploymentStatusResponse{Status: deploymentStatusProto(d)})
	})
	if err != nil && ctx.Err() == nil {
		return s.status(ctx, err)
	}
	return nil
}

func (s *GRPCServer) ListDeploymentResources(ctx context.Context, req *releasesv1.ListDeploymentResourcesRequest) (*releasesv1.ListDeploymentResourcesResponse, error) {
	if s.statusSvc == nil {
		return s.UnimplementedReleasesServiceServer.ListDeploymentResources(ctx, req)
	}
	p, err := s.statusSvc.DeploymentResources(ctx, req.GetCluster(), req.GetNamespace(), req.GetName(), req.GetIncludePods(),
		PageRequest{Size: req.GetPageSize(), Token: req.GetPageToken()})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &releasesv1.ListDeploymentResourcesResponse{NextPageToken: p.NextPageToken, Resources: make([]*releasesv1.DeploymentResource, 0, len(p.Resources))}
	for _, r := range p.Resources {
		res := &releasesv1.DeploymentResource{Object: objectProto(r.Object), Verdict: releasesv1.Verdict(r.Verdict), Message: r.Message,
			Missing: r.Missing, CreateTime: ts(r.Created)}
		if r.Owner != nil {
			res.Owner = objectProto(*r.Owner)
		}
		out.Resources = append(out.Resources, res)
	}
	return out, nil
}

func (s *GRPCServer) ListDeploymentEvents(ctx context.Context, req *releasesv1.ListDeploymentEventsRequest) (*releasesv1.ListDeploymentEventsResponse, error) {
	if s.statusSvc == nil {
		return s.UnimplementedReleasesServiceServer.ListDeploymentEvents(ctx, req)
	}
	p, err := s.statusSvc.DeploymentEvents(ctx, req.GetCluster(), req.GetNamespace(), req.GetName(),
		EventQuery{Type: req.GetType(), Since: req.GetSince().AsDuration()}, PageRequest{Size: req.GetPageSize(), Token: req.GetPageToken()})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &releasesv1.ListDeploymentEventsResponse{NextPageToken: p.NextPageToken, Events: make([]*releasesv1.DeploymentEvent, 0, len(p.Events))}
	for _, e := range p.Events {
		out.Events = append(out.Events, &releasesv1.DeploymentEvent{InvolvedObject: objectProto(e.Involved), Type: e.Type, Reason: e.Reason,
			Message: e.Message, Count: e.Count, FirstTime: ts(e.First), LastTime: ts(e.Last), Source: e.Source})
	}
	return out, nil
}

func objectProto(o status.Object) *releasesv1.ObjectReference {
	return &releasesv1.ObjectReference{ApiVersion: o.APIVersion, Kind: o.Kind, Namespace: o.Namespace, Name: o.Name}
}

// deploymentStatusProto copies the fields a status shows, one by one.
func deploymentStatusProto(d DeploymentStatus) *releasesv1.DeploymentStatus {
	out := &releasesv1.DeploymentStatus{
		Release: releaseProto(d.Release), Verdict: releasesv1.Verdict(d.Verdict), Message: d.Message,
		WorkloadCount: int32(d.WorkloadCount), ActiveOperation: d.Active, ObserveTime: ts(d.Observed),
		Workloads: make([]*releasesv1.Workload, 0, len(d.Workloads)),
	}
	for _, w := range d.Workloads {
		pw := &releasesv1.Workload{Object: objectProto(w.Object), Verdict: releasesv1.Verdict(w.Verdict), Message: w.Message,
			DesiredReplicas: w.Desired, ReadyReplicas: w.Ready, AvailableReplicas: w.Available, UpdatedReplicas: w.Updated,
			Generation: w.Generation, ObservedGeneration: w.ObservedGeneration}
		for _, c := range w.Conditions {
			pw.Conditions = append(pw.Conditions, &releasesv1.Condition{Type: c.Type, Status: c.Status, Reason: c.Reason, Message: c.Message,
				LastTransitionTime: ts(c.LastTransition), LastUpdateTime: ts(c.LastUpdate)})
		}
		out.Workloads = append(out.Workloads, pw)
	}
	return out
}
