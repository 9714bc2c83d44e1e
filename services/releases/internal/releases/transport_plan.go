package releases

import (
	"context"

	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

// ServePlans serves PlanDeployment and ApplyDeploymentPlan from p;
// without it they answer Unimplemented.
func (s *GRPCServer) ServePlans(p PlanService) *GRPCServer {
	s.planSvc = p
	return s
}

func (s *GRPCServer) PlanDeployment(ctx context.Context, req *releasesv1.PlanDeploymentRequest) (*releasesv1.PlanDeploymentResponse, error) {
	if s.planSvc == nil {
		return s.UnimplementedReleasesServiceServer.PlanDeployment(ctx, req)
	}
	ref, archive, err := chartSource(req.GetChart())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	o := options(req.GetOptions())
	o.ReuseValues = o.ReuseValues || req.GetReuseValues()
	o.ResetValues = o.ResetValues || req.GetResetValues()
	res, err := s.planSvc.Plan(ctx, Change{Cluster: req.GetCluster(), Namespace: req.GetNamespace(), Name: req.GetName(), Chart: ref, Archive: archive,
		ValuesYAML: req.GetValuesYaml(), Options: o})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &releasesv1.PlanDeploymentResponse{
		CurrentRevision: int32(res.Plan.Base), CurrentChartVersion: res.CurrentChartVersion, PlannedChartVersion: res.PlannedChartVersion,
		ValuesDiff: res.ValuesDiff, UnchangedCount: int32(res.Unchanged), Truncated: res.Truncated,
		PlanId: res.Plan.ID, ExpireTime: ts(res.Plan.Expires), Changes: make([]*releasesv1.ResourceChange, 0, len(res.Changes)),
	}
	for _, c := range res.Changes {
		out.Changes = append(out.Changes, &releasesv1.ResourceChange{
			Object: &releasesv1.ObjectReference{ApiVersion: c.Object.APIVersion, Kind: c.Object.Kind, Namespace: c.Object.Namespace, Name: c.Object.Name},
			Action: releasesv1.ChangeAction(c.Action), Diff: c.Diff,
		})
	}
	return out, nil
}

func (s *GRPCServer) ApplyDeploymentPlan(ctx context.Context, req *releasesv1.ApplyDeploymentPlanRequest) (*releasesv1.ApplyDeploymentPlanResponse, error) {
	if s.planSvc == nil {
		return s.UnimplementedReleasesServiceServer.ApplyDeploymentPlan(ctx, req)
	}
	op, err := s.planSvc.ApplyPlan(ctx, req.GetCluster(), req.GetNamespace(), req.GetName(), req.GetPlanId(), req.GetIdempotencyKey())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &releasesv1.ApplyDeploymentPlanResponse{Operation: operationProto(op)}, nil
}
