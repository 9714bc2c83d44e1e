package edge

import (
	"context"
	"sync"

	"google.golang.org/grpc/codes"
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

	mu   sync.Mutex
	reqs []proto.Message
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
