package releases

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

// ServeDrift serves GetDeploymentDrift with d.
func (s *GRPCServer) ServeDrift(d DriftService) *GRPCServer {
	s.driftSvc = d
	return s
}

func (s *GRPCServer) GetDeploymentDrift(ctx context.Context, req *releasesv1.GetDeploymentDriftRequest) (*releasesv1.GetDeploymentDriftResponse, error) {
	if s.driftSvc == nil {
		return s.UnimplementedReleasesServiceServer.GetDeploymentDrift(ctx, req)
	}
	rep, err := s.driftSvc.Drift(ctx, req.GetCluster(), req.GetNamespace(), req.GetName(), PageRequest{Size: req.GetPageSize(), Token: req.GetPageToken()})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &releasesv1.GetDeploymentDriftResponse{Revision: int32(rep.Revision), DriftedCount: int32(rep.Drifted),
		CheckTime: timestamppb.New(rep.Checked), NextPageToken: rep.NextPageToken}
	if c := rep.LastCheck; c != nil {
		out.LastCheck = &releasesv1.DriftCheck{Revision: int32(c.Revision), DriftedCount: int32(c.Drifted), CheckTime: ts(c.Checked),
			DriftedSince: ts(c.Since), Error: c.Error}
	}
	for _, o := range rep.Objects {
		out.Resources = append(out.Resources, &releasesv1.DriftedResource{
			Object: &releasesv1.ObjectReference{ApiVersion: o.APIVersion, Kind: o.Kind, Namespace: o.Namespace, Name: o.Name},
			State:  releasesv1.DriftState(o.State), Diff: o.Diff,
		})
	}
	return out, nil
}

func (s *GRPCServer) CorrectDeploymentDrift(ctx context.Context, req *releasesv1.CorrectDeploymentDriftRequest) (*releasesv1.CorrectDeploymentDriftResponse, error) {
	op, err := s.submit(ctx, kindCorrectDrift, Change{Cluster: req.GetCluster(), Namespace: req.GetNamespace(), Name: req.GetName(),
		IdempotencyKey: req.GetIdempotencyKey(), Queue: !req.GetNoQueue()})
	if err != nil {
		return nil, err
	}
	return &releasesv1.CorrectDeploymentDriftResponse{Operation: op}, nil
}
