package releases

import (
	"context"

	"google.golang.org/protobuf/types/known/durationpb"

	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
	"github.com/slipwayhq/slipway/services/releases/internal/ops"
)

// ServeInstances serves the instance RPCs from i; without it they answer
// Unimplemented.
func (s *GRPCServer) ServeInstances(i InstanceService) *GRPCServer {
	s.instSvc = i
	return s
}

func (s *GRPCServer) LaunchInstance(ctx context.Context, req *releasesv1.LaunchInstanceRequest) (*releasesv1.LaunchInstanceResponse, error) {
	if s.instSvc == nil {
		return s.UnimplementedReleasesServiceServer.LaunchInstance(ctx, req)
	}
	i, op, err := s.instSvc.Launch(ctx, InstanceLaunch{Application: req.GetApplication(), Target: req.GetTarget(), ImageVersion: req.GetVersion(),
		ValuesYAML: req.GetValuesYaml(), TTL: req.GetTtl().AsDuration(), IdempotencyKey: req.GetIdempotencyKey()})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &releasesv1.LaunchInstanceResponse{Instance: instanceProto(i), Operation: operationOrNil(op)}, nil
}

func (s *GRPCServer) GetInstance(ctx context.Context, req *releasesv1.GetInstanceRequest) (*releasesv1.GetInstanceResponse, error) {
	if s.instSvc == nil {
		return s.UnimplementedReleasesServiceServer.GetInstance(ctx, req)
	}
	i, err := s.instSvc.Get(ctx, req.GetApplication(), req.GetInstance())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &releasesv1.GetInstanceResponse{Instance: instanceProto(i)}, nil
}

func (s *GRPCServer) ListInstances(ctx context.Context, req *releasesv1.ListInstancesRequest) (*releasesv1.ListInstancesResponse, error) {
	if s.instSvc == nil {
		return s.UnimplementedReleasesServiceServer.ListInstances(ctx, req)
	}
	list, next, err := s.instSvc.List(ctx, InstanceFilter{Application: req.GetApplication(), Target: req.GetTarget(), State: InstanceState(req.GetState())},
		PageRequest{Size: req.GetPageSize(), Token: req.GetPageToken()})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &releasesv1.ListInstancesResponse{NextPageToken: next, Instances: make([]*releasesv1.Instance, 0, len(list))}
	for _, i := range list {
		out.Instances = append(out.Instances, instanceProto(i))
	}
	return out, nil
}

func (s *GRPCServer) KeepAliveInstance(ctx context.Context, req *releasesv1.KeepAliveInstanceRequest) (*releasesv1.KeepAliveInstanceResponse, error) {
	if s.instSvc == nil {
		return s.UnimplementedReleasesServiceServer.KeepAliveInstance(ctx, req)
	}
	i, err := s.instSvc.KeepAlive(ctx, req.GetApplication(), req.GetInstance(), req.GetTtl().AsDuration())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &releasesv1.KeepAliveInstanceResponse{Instance: instanceProto(i)}, nil
}

func (s *GRPCServer) DeleteInstance(ctx context.Context, req *releasesv1.DeleteInstanceRequest) (*releasesv1.DeleteInstanceResponse, error) {
	if s.instSvc == nil {
		return s.UnimplementedReleasesServiceServer.DeleteInstance(ctx, req)
	}
	i, op, err := s.instSvc.Delete(ctx, req.GetApplication(), req.GetInstance(), req.GetIdempotencyKey())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &releasesv1.DeleteInstanceResponse{Instance: instanceProto(i), Operation: operationOrNil(op)}, nil
}

func operationOrNil(op ops.Operation) *releasesv1.Operation {
	if op.ID == "" {
		return nil
	}
	return operationProto(op)
}

// instanceProto copies the fields an instance may show, one by one.
func instanceProto(i Instance) *releasesv1.Instance {
	return &releasesv1.Instance{
		Id: i.ID, Org: i.Org, Application: i.Application, Target: i.Target, Cluster: i.Cluster, Namespace: i.Namespace, Release: i.Release,
		State: releasesv1.InstanceState(i.State), Location: i.Location, Ttl: durationpb.New(i.TTL),
		LastActivityTime: ts(i.LastActivity), ExpireTime: ts(i.Expires), LaunchOperation: i.LaunchOp, CreateTime: ts(i.Created), Creator: i.Creator,
		DeleteOperation: i.DeleteOp, DeleteTime: ts(i.Deleted),
	}
}
