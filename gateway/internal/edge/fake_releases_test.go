package edge

import (
	"context"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

// fakeReleases stands in for the releases service (ReleasesService and
// OperationsService) where a test needs answers rather than
// Unimplemented. Every call that starts an operation answers with
// operation fakeOperationID in org acme and records its request.
type fakeReleases struct {
	releasesv1.UnimplementedReleasesServiceServer
	releasesv1.UnimplementedOperationsServiceServer

	// head answers HeadDeployment; nil answers NotFound.
	head *releasesv1.HeadDeploymentResponse
	// stream is what the streaming RPCs answer.
	stream fakeStream

	mu       sync.Mutex
	reqs     []proto.Message
	streamMD metadata.MD // of the last streaming call
}

const fakeOperationID = "op_01JABCDEF0123456789XYZ"

func (f *fakeReleases) record(req proto.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, proto.Clone(req))
}

// requests returns the requests received, in order.
func (f *fakeReleases) requests() []proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]proto.Message(nil), f.reqs...)
}

func (f *fakeReleases) start(req proto.Message, kind releasesv1.OperationKind) *releasesv1.Operation {
	f.record(req)
	return &releasesv1.Operation{Id: fakeOperationID, Org: "acme", Kind: kind, State: releasesv1.OperationState_OPERATION_STATE_QUEUED}
}

func (f *fakeReleases) CreateDeployment(_ context.Context, req *releasesv1.CreateDeploymentRequest) (*releasesv1.CreateDeploymentResponse, error) {
	return &releasesv1.CreateDeploymentResponse{Operation: f.start(req, releasesv1.OperationKind_OPERATION_KIND_INSTALL)}, nil
}

func (f *fakeReleases) UpdateDeployment(_ context.Context, req *releasesv1.UpdateDeploymentRequest) (*releasesv1.UpdateDeploymentResponse, error) {
	return &releasesv1.UpdateDeploymentResponse{Operation: f.start(req, releasesv1.OperationKind_OPERATION_KIND_UPGRADE)}, nil
}

func (f *fakeReleases) DeleteDeployment(_ context.Context, req *releasesv1.DeleteDeploymentRequest) (*releasesv1.DeleteDeploymentResponse, error) {
	return &releasesv1.DeleteDeploymentResponse{Operation: f.start(req, releasesv1.OperationKind_OPERATION_KIND_UNINSTALL)}, nil
}

func (f *fakeReleases) RecoverDeployment(_ context.Context, req *releasesv1.RecoverDeploymentRequest) (*releasesv1.RecoverDeploymentResponse, error) {
	return &releasesv1.RecoverDeploymentResponse{Operation: f.start(req, releasesv1.OperationKind_OPERATION_KIND_RECOVER)}, nil
}

func (f *fakeReleases) CorrectDeploymentDrift(_ context.Context, req *releasesv1.CorrectDeploymentDriftRequest) (*releasesv1.CorrectDeploymentDriftResponse, error) {
	return &releasesv1.CorrectDeploymentDriftResponse{Operation: f.start(req, releasesv1.OperationKind_OPERATION_KIND_CORRECT_DRIFT)}, nil
}

func (f *fakeReleases) RollbackDeployment(_ context.Context, req *releasesv1.RollbackDeploymentRequest) (*releasesv1.RollbackDeploymentResponse, error) {
	return &releasesv1.RollbackDeploymentResponse{Operation: f.start(req, releasesv1.OperationKind_OPERATION_KIND_ROLLBACK)}, nil
}

func (f *fakeReleases) DeployApplication(_ context.Context, req *releasesv1.DeployApplicationRequest) (*releasesv1.DeployApplicationResponse, error) {
	return &releasesv1.DeployApplicationResponse{Operation: f.start(req, releasesv1.OperationKind_OPERATION_KIND_DEPLOY_APPLICATION)}, nil
}

func (f *fakeReleases) RollbackApplication(_ context.Context, req *releasesv1.RollbackApplicationRequest) (*releasesv1.RollbackApplicationResponse, error) {
	return &releasesv1.RollbackApplicationResponse{Operation: f.start(req, releasesv1.OperationKind_OPERATION_KIND_ROLLBACK_APPLICATION)}, nil
}

func (f *fakeReleases) LaunchInstance(_ context.Context, req *releasesv1.LaunchInstanceRequest) (*releasesv1.LaunchInstanceResponse, error) {
	return &releasesv1.LaunchInstanceResponse{
		Instance:  &releasesv1.Instance{Id: "pr-42"},
		Operation: f.start(req, releasesv1.OperationKind_OPERATION_KIND_LAUNCH_INSTANCE),
	}, nil
}

func (f *fakeReleases) ApplyDeploymentPlan(_ context.Context, req *releasesv1.ApplyDeploymentPlanRequest) (*releasesv1.ApplyDeploymentPlanResponse, error) {
	return &releasesv1.ApplyDeploymentPlanResponse{Operation: f.start(req, releasesv1.OperationKind_OPERATION_KIND_UPGRADE)}, nil
}

func (f *fakeReleases) DeleteInstance(_ context.Context, req *releasesv1.DeleteInstanceRequest) (*releasesv1.DeleteInstanceResponse, error) {
	return &releasesv1.DeleteInstanceResponse{Operation: f.start(req, releasesv1.OperationKind_OPERATION_KIND_DELETE_INSTANCE)}, nil
}

func (f *fakeReleases) GetDeployment(_ context.Context, req *releasesv1.GetDeploymentRequest) (*releasesv1.GetDeploymentResponse, error) {
	f.record(req)
	return &releasesv1.GetDeploymentResponse{
		Release:         &releasesv1.Release{Name: req.GetName(), Revision: 3, Status: releasesv1.ReleaseStatus_RELEASE_STATUS_DEPLOYED},
		ActiveOperation: fakeOperationID,
	}, nil
}

func (f *fakeReleases) HeadDeployment(_ context.Context, req *releasesv1.HeadDeploymentRequest) (*releasesv1.HeadDeploymentResponse, error) {
	f.record(req)
	if f.head == nil {
		return nil, status.Error(codes.NotFound, "deployment not found")
	}
	return f.head, nil
}

func (f *fakeReleases) GetOperation(_ context.Context, req *releasesv1.GetOperationRequest) (*releasesv1.GetOperationResponse, error) {
	f.record(req)
	return &releasesv1.GetOperationResponse{Operation: &releasesv1.Operation{Id: req.GetOperation(), Org: "acme"}}, nil
}

func (f *fakeReleases) CancelOperation(_ context.Context, req *releasesv1.CancelOperationRequest) (*releasesv1.CancelOperationResponse, error) {
	f.record(req)
	return &releasesv1.CancelOperationResponse{Operation: &releasesv1.Operation{Id: req.GetOperation(), Org: "acme", CancelRequested: true}}, nil
}

// fakeStream scripts the streaming RPCs: they send msgs, each once the test
// sends on gate (when set), then end with err, or, with hold, stay open
// until the client goes away. ended (when set) gets the RPC's context
// error as it returns: nil when it ended by itself.
type fakeStream struct {
	msgs  []proto.Message
	gate  chan struct{}
	err   error
	hold  bool
	ended chan error
}

func serveFakeStream[T proto.Message](f *fakeReleases, ctx context.Context, req proto.Message, send func(T) error) error {
	f.record(req)
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.streamMD = md
	f.mu.Unlock()
	s := f.stream
	if s.ended != nil {
		defer func() { s.ended <- ctx.Err() }()
	}
	for _, m := range s.msgs {
		if s.gate != nil {
			select {
			case <-s.gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := send(m.(T)); err != nil {
			return err
		}
	}
	if s.hold {
		<-ctx.Done()
		return ctx.Err()
	}
	return s.err
}

func (f *fakeReleases) WatchOperation(req *releasesv1.WatchOperationRequest, ss grpc.ServerStreamingServer[releasesv1.WatchOperationResponse]) error {
	return serveFakeStream(f, ss.Context(), req, ss.Send)
}

func (f *fakeReleases) WatchDeploymentStatus(req *releasesv1.WatchDeploymentStatusRequest, ss grpc.ServerStreamingServer[releasesv1.WatchDeploymentStatusResponse]) error {
	return serveFakeStream(f, ss.Context(), req, ss.Send)
}

func (f *fakeReleases) GetDeploymentLogs(req *releasesv1.GetDeploymentLogsRequest, ss grpc.ServerStreamingServer[releasesv1.GetDeploymentLogsResponse]) error {
	return serveFakeStream(f, ss.Context(), req, ss.Send)
}
