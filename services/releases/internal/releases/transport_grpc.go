package releases

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/slipwayhq/slipway/pkg/validate"
	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
	"github.com/slipwayhq/slipway/services/releases/internal/ops"
)

// GRPCServer serves Service as the generated ReleasesService and
// OperationsService. The RPCs not built yet answer Unimplemented.
type GRPCServer struct {
	releasesv1.UnimplementedReleasesServiceServer
	releasesv1.UnimplementedOperationsServiceServer
	svc Service
	log *slog.Logger
	// statusSvc serves the status routes (transport_status.go).
	statusSvc StatusService
	// logSvc serves GetDeploymentLogs (transport_logs.go).
	logSvc LogService
	// planSvc serves the plan routes (transport_plan.go).
	planSvc PlanService
	// driftSvc serves GetDeploymentDrift (transport_drift.go).
	driftSvc DriftService
	// instSvc serves the instance RPCs (transport_instances.go).
	instSvc InstanceService
	// healthSvc serves GetDeploymentHealth and GetDeploymentMetrics
	// (transport_health.go).
	healthSvc HealthService
}

var (
	_ releasesv1.ReleasesServiceServer   = (*GRPCServer)(nil)
	_ releasesv1.OperationsServiceServer = (*GRPCServer)(nil)
)

// NewGRPCServer serves svc.
func NewGRPCServer(svc Service, log *slog.Logger) *GRPCServer { return &GRPCServer{svc: svc, log: log} }

func (s *GRPCServer) status(ctx context.Context, err error) error {
	if errorTable.IsInternal(err) {
		s.log.ErrorContext(ctx, "request failed", "error", err)
	}
	return errorTable.ToStatus(err)
}

// chartSource is the chart a request names, or its uploaded archive.
func chartSource(c *releasesv1.ChartSource) (*ChartRef, []byte, error) {
	if c == nil {
		return nil, nil, nil
	}
	switch src := c.GetSource().(type) {
	case *releasesv1.ChartSource_Catalog:
		return &ChartRef{Repository: src.Catalog.GetRepository(), Chart: src.Catalog.GetChart(), Version: src.Catalog.GetVersion()}, nil, nil
	case *releasesv1.ChartSource_OciReference:
		return &ChartRef{OCI: src.OciReference}, nil, nil
	case *releasesv1.ChartSource_Archive:
		if len(src.Archive) == 0 {
			return nil, nil, validate.Field("chart.archive", "is empty")
		}
		return nil, src.Archive, nil
	}
	return nil, nil, validate.Field("chart", "required")
}

func options(o *releasesv1.DeploymentOptions) Options {
	return Options{Wait: o.GetWait() || o.GetAtomic(), Timeout: o.GetTimeout().AsDuration(), Atomic: o.GetAtomic(), CreateNamespace: o.GetCreateNamespace(),
		DryRun: o.GetDryRun(), ReuseValues: o.GetReuseValues(), ResetValues: o.GetResetValues(), Description: o.GetDescription()}
}

func (s *GRPCServer) submit(ctx context.Context, kind ops.Kind, c Change) (*releasesv1.Operation, error) {
	op, err := s.svc.Submit(ctx, kind, c)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return operationProto(op), nil
}

func (s *GRPCServer) CreateDeployment(ctx context.Context, req *releasesv1.CreateDeploymentRequest) (*releasesv1.CreateDeploymentResponse, error) {
	ref, archive, err := chartSource(req.GetChart())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	op, err := s.submit(ctx, ops.KindInstall, Change{Cluster: req.GetCluster(), Namespace: req.GetNamespace(), Name: req.GetName(), Chart: ref, Archive: archive,
		ValuesYAML: req.GetValuesYaml(), Options: options(req.GetOptions()), IdempotencyKey: req.GetIdempotencyKey(), Queue: !req.GetNoQueue()})
	if err != nil {
		return nil, err
	}
	return &releasesv1.CreateDeploymentResponse{Operation: op}, nil
}

func (s *GRPCServer) UpdateDeployment(ctx context.Context, req *releasesv1.UpdateDeploymentRequest) (*releasesv1.UpdateDeploymentResponse, error) {
	ref, archive, err := chartSource(req.GetChart())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	op, err := s.submit(ctx, ops.KindUpgrade, Change{Cluster: req.GetCluster(), Namespace: req.GetNamespace(), Name: req.GetName(), Chart: ref, Archive: archive,
		ValuesYAML: req.GetValuesYaml(), Options: options(req.GetOptions()), IdempotencyKey: req.GetIdempotencyKey(), Queue: !req.GetNoQueue()})
	if err != nil {
		return nil, err
	}
	return &releasesv1.UpdateDeploymentResponse{Operation: op}, nil
}

func (s *GRPCServer) RollbackDeployment(ctx context.Context, req *releasesv1.RollbackDeploymentRequest) (*releasesv1.RollbackDeploymentResponse, error) {
	op, err := s.submit(ctx, ops.KindRollback, Change{Cluster: req.GetCluster(), Namespace: req.GetNamespace(), Name: req.GetName(),
		Revision: int(req.GetRevision()), Options: options(req.GetOptions()), IdempotencyKey: req.GetIdempotencyKey(), Queue: !req.GetNoQueue()})
	if err != nil {
		return nil, err
	}
	return &releasesv1.RollbackDeploymentResponse{Operation: op}, nil
}

func (s *GRPCServer) RecoverDeployment(ctx context.Context, req *releasesv1.RecoverDeploymentRequest) (*releasesv1.RecoverDeploymentResponse, error) {
	op, err := s.submit(ctx, kindRecover, Change{Cluster: req.GetCluster(), Namespace: req.GetNamespace(), Name: req.GetName(),
		IdempotencyKey: req.GetIdempotencyKey(), Queue: !req.GetNoQueue()})
	if err != nil {
		return nil, err
	}
	return &releasesv1.RecoverDeploymentResponse{Operation: op}, nil
}

func (s *GRPCServer) DeleteDeployment(ctx context.Context, req *releasesv1.DeleteDeploymentRequest) (*releasesv1.DeleteDeploymentResponse, error) {
	op, err := s.submit(ctx, ops.KindUninstall, Change{Cluster: req.GetCluster(), Namespace: req.GetNamespace(), Name: req.GetName(),
		KeepHistory: req.GetKeepHistory(), Options: Options{Wait: req.GetWait(), Timeout: req.GetTimeout().AsDuration()},
		IdempotencyKey: req.GetIdempotencyKey(), Queue: !req.GetNoQueue()})
	if err != nil {
		return nil, err
	}
	return &releasesv1.DeleteDeploymentResponse{Operation: op}, nil
}

func (s *GRPCServer) DeployApplication(ctx context.Context, req *releasesv1.DeployApplicationRequest) (*releasesv1.DeployApplicationResponse, error) {
	op, err := s.svc.DeployApplication(ctx, AppDeploy{Application: req.GetApplication(), Target: req.GetTarget(), ImageVersion: req.GetVersion(),
		ValuesYAML: req.GetValuesYaml(), Options: options(req.GetOptions()), IdempotencyKey: req.GetIdempotencyKey(), Queue: !req.GetNoQueue()})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &releasesv1.DeployApplicationResponse{Operation: operationProto(op)}, nil
}

func (s *GRPCServer) RollbackApplication(ctx context.Context, req *releasesv1.RollbackApplicationRequest) (*releasesv1.RollbackApplicationResponse, error) {
	op, err := s.svc.RollbackApplication(ctx, req.GetApplication(), req.GetTarget(), int(req.GetRevision()), options(req.GetOptions()), req.GetIdempotencyKey(), !req.GetNoQueue())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &releasesv1.RollbackApplicationResponse{Operation: operationProto(op)}, nil
}

func (s *GRPCServer) ListApplicationReleases(ctx context.Context, req *releasesv1.ListApplicationReleasesRequest) (*releasesv1.ListApplicationReleasesResponse, error) {
	p, err := s.svc.ApplicationReleases(ctx, req.GetApplication(), req.GetTarget(), PageRequest{Size: req.GetPageSize(), Token: req.GetPageToken()})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &releasesv1.ListApplicationReleasesResponse{NextPageToken: p.NextPageToken}
	for _, r := range p.Revisions {
		out.Releases = append(out.Releases, releaseProto(r))
	}
	return out, nil
}

func (s *GRPCServer) ListDigestReleases(ctx context.Context, req *releasesv1.ListDigestReleasesRequest) (*releasesv1.ListDigestReleasesResponse, error) {
	list, next, err := s.svc.DigestReleases(ctx, req.GetDigests(), PageRequest{Size: req.GetPageSize(), Token: req.GetPageToken()})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &releasesv1.ListDigestReleasesResponse{NextPageToken: next}
	for _, d := range list {
		out.Releases = append(out.Releases, &releasesv1.DigestRelease{Cluster: d.Cluster, Namespace: d.Namespace, Name: d.Name, Revision: int32(d.Revision), Digest: d.Digest})
	}
	return out, nil
}

func (s *GRPCServer) GetDeployment(ctx context.Context, req *releasesv1.GetDeploymentRequest) (*releasesv1.GetDeploymentResponse, error) {
	r, active, err := s.svc.GetRelease(ctx, req.GetCluster(), req.GetNamespace(), req.GetName(), 0)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &releasesv1.GetDeploymentResponse{Release: releaseProto(r), ActiveOperation: active}, nil
}

func (s *GRPCServer) HeadDeployment(ctx context.Context, req *releasesv1.HeadDeploymentRequest) (*releasesv1.HeadDeploymentResponse, error) {
	r, _, err := s.svc.GetRelease(ctx, req.GetCluster(), req.GetNamespace(), req.GetName(), 0)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &releasesv1.HeadDeploymentResponse{Status: releasesv1.ReleaseStatus(r.Status), Revision: int32(r.Revision)}, nil
}

func (s *GRPCServer) ListDeployments(ctx context.Context, req *releasesv1.ListDeploymentsRequest) (*releasesv1.ListDeploymentsResponse, error) {
	p, err := s.svc.ListReleases(ctx, ListFilter{Cluster: req.GetCluster(), Namespace: req.GetNamespace(), Status: Status(req.GetStatus()),
		IncludeUninstalled: req.GetIncludeUninstalled()}, PageRequest{Size: req.GetPageSize(), Token: req.GetPageToken()})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &releasesv1.ListDeploymentsResponse{NextPageToken: p.NextPageToken, Releases: make([]*releasesv1.Release, 0, len(p.Revisions))}
	for _, r := range p.Revisions {
		out.Releases = append(out.Releases, releaseProto(r))
	}
	return out, nil
}

func (s *GRPCServer) GetDeploymentHistory(ctx context.Context, req *releasesv1.GetDeploymentHistoryRequest) (*releasesv1.GetDeploymentHistoryResponse, error) {
	p, err := s.svc.History(ctx, req.GetCluster(), req.GetNamespace(), req.GetName(), PageRequest{Size: req.GetPageSize(), Token: req.GetPageToken()})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &releasesv1.GetDeploymentHistoryResponse{NextPageToken: p.NextPageToken}
	for _, r := range p.Revisions {
		out.Releases = append(out.Releases, releaseProto(r))
	}
	return out, nil
}

func (s *GRPCServer) GetDeploymentValues(ctx context.Context, req *releasesv1.GetDeploymentValuesRequest) (*releasesv1.GetDeploymentValuesResponse, error) {
	r, err := s.svc.ReleaseValues(ctx, req.GetCluster(), req.GetNamespace(), req.GetName(), int(req.GetRevision()))
	if err != nil {
		return nil, s.status(ctx, err)
	}
	vals := r.Values
	if req.GetAll() {
		vals = r.Computed
	}
	y, err := valuesYAML(vals)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &releasesv1.GetDeploymentValuesResponse{ValuesYaml: y, Revision: int32(r.Revision)}, nil
}

func (s *GRPCServer) GetDeploymentManifest(ctx context.Context, req *releasesv1.GetDeploymentManifestRequest) (*releasesv1.GetDeploymentManifestResponse, error) {
	p, err := s.svc.Manifest(ctx, req.GetCluster(), req.GetNamespace(), req.GetName(), int(req.GetRevision()), PageRequest{Size: req.GetPageSize(), Token: req.GetPageToken()})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &releasesv1.GetDeploymentManifestResponse{Revision: int32(p.Revision), NextPageToken: p.NextPageToken}
	for _, d := range p.Documents {
		out.Documents = append(out.Documents, &releasesv1.ManifestDocument{Source: d.Source, Yaml: d.YAML,
			Object: &releasesv1.ObjectReference{ApiVersion: d.APIVersion, Kind: d.Kind, Namespace: d.Namespace, Name: d.Name}})
	}
	return out, nil
}

func (s *GRPCServer) GetDeploymentNotes(ctx context.Context, req *releasesv1.GetDeploymentNotesRequest) (*releasesv1.GetDeploymentNotesResponse, error) {
	r, _, err := s.svc.GetRelease(ctx, req.GetCluster(), req.GetNamespace(), req.GetName(), int(req.GetRevision()))
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &releasesv1.GetDeploymentNotesResponse{Notes: r.Notes, Revision: int32(r.Revision)}, nil
}

func (s *GRPCServer) GetOperation(ctx context.Context, req *releasesv1.GetOperationRequest) (*releasesv1.GetOperationResponse, error) {
	op, err := s.svc.GetOperation(ctx, req.GetOperation())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &releasesv1.GetOperationResponse{Operation: operationProto(op)}, nil
}

func (s *GRPCServer) ListOperations(ctx context.Context, req *releasesv1.ListOperationsRequest) (*releasesv1.ListOperationsResponse, error) {
	list, next, err := s.svc.ListOperations(ctx, ops.ListFilter{Cluster: req.GetCluster(), Namespace: req.GetNamespace(), Release: req.GetRelease(),
		Application: req.GetApplication(), Kind: kindOf(req.GetKind()), State: ops.State(req.GetState())}, PageRequest{Size: req.GetPageSize(), Token: req.GetPageToken()})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &releasesv1.ListOperationsResponse{NextPageToken: next}
	for _, op := range list {
		out.Operations = append(out.Operations, operationProto(op))
	}
	return out, nil
}

func (s *GRPCServer) CancelOperation(ctx context.Context, req *releasesv1.CancelOperationRequest) (*releasesv1.CancelOperationResponse, error) {
	op, err := s.svc.CancelOperation(ctx, req.GetOperation())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &releasesv1.CancelOperationResponse{Operation: operationProto(op)}, nil
}

func (s *GRPCServer) WatchOperation(req *releasesv1.WatchOperationRequest, stream releasesv1.OperationsService_WatchOperationServer) error {
	ctx := stream.Context()
	err := s.svc.WatchOperation(ctx, req.GetOperation(), func(op ops.Operation) error {
		return stream.Send(&releasesv1.WatchOperationResponse{Operation: operationProto(op)})
	})
	if err != nil {
		return s.status(ctx, err)
	}
	return nil
}

var kinds = map[ops.Kind]releasesv1.OperationKind{
	ops.KindInstall: releasesv1.OperationKind_OPERATION_KIND_INSTALL, ops.KindUpgrade: releasesv1.OperationKind_OPERATION_KIND_UPGRADE,
	ops.KindRollback: releasesv1.OperationKind_OPERATION_KIND_ROLLBACK, ops.KindUninstall: releasesv1.OperationKind_OPERATION_KIND_UNINSTALL,
	ops.KindDeployApplication:   releasesv1.OperationKind_OPERATION_KIND_DEPLOY_APPLICATION,
	ops.KindRollbackApplication: releasesv1.OperationKind_OPERATION_KIND_ROLLBACK_APPLICATION,
	ops.KindLaunchInstance:      releasesv1.OperationKind_OPERATION_KIND_LAUNCH_INSTANCE,
	ops.KindDeleteInstance:      releasesv1.OperationKind_OPERATION_KIND_DELETE_INSTANCE,
	kindRecover:                 releasesv1.OperationKind_OPERATION_KIND_RECOVER,
	kindCorrectDrift:            releasesv1.OperationKind_OPERATION_KIND_CORRECT_DRIFT,
}

func kindOf(k releasesv1.OperationKind) ops.Kind {
	for dk, pk := range kinds {
		if pk == k {
			return dk
		}
	}
	return ""
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// operationProto copies the fields an operation may show, one by one.
func operationProto(op ops.Operation) *releasesv1.Operation {
	out := &releasesv1.Operation{
		Id: op.ID, Org: op.Org, Kind: kinds[op.Kind], State: releasesv1.OperationState(op.State), DryRun: op.DryRun,
		Target: &releasesv1.OperationTarget{Cluster: op.Target.Cluster, Namespace: op.Target.Namespace, Release: op.Target.Release,
			Application: op.Target.Application, ApplicationTarget: op.Target.ApplicationTarget, Instance: op.Target.Instance},
		DroppedEventCount: int32(op.DroppedEventCount), CancelRequested: op.CancelRequested, IdempotencyKey: op.IdempotencyKey,
		Creator: op.Creator, CreateTime: ts(op.Created), StartTime: ts(op.Started), EndTime: ts(op.Ended),
	}
	for _, e := range op.Events {
		out.Events = append(out.Events, &releasesv1.OperationEvent{Time: ts(e.Time), Phase: e.Phase, Message: e.Message})
	}
	if op.State == ops.StateSucceeded && len(op.Result) > 0 {
		var rel releasesv1.Release
		if err := protojson.Unmarshal(op.Result, &rel); err == nil {
			out.Result = &releasesv1.OperationResult{Release: &rel}
		}
	}
	if op.ErrorCode != "" {
		out.Error = &releasesv1.OperationError{Code: op.ErrorCode, Message: op.ErrorMessage}
	}
	return out
}

// releaseProto copies the fields a revision may show, one by one (values
// and manifest have routes of their own).
func releaseProto(r Revision) *releasesv1.Release {
	out := &releasesv1.Release{
		Name: r.Name, Namespace: r.Namespace, Cluster: r.Cluster, Revision: int32(r.Revision), Status: releasesv1.ReleaseStatus(r.Status),
		Chart: r.Chart, ChartVersion: r.ChartVersion, AppVersion: r.AppVersion, ChartSource: r.ChartSource, ChartDigest: r.ChartDigest, Description: r.Description,
		Application: r.Application, ApplicationTarget: r.Target, Operation: r.Operation, Creator: r.Creator,
		CreateTime: ts(r.Created), UpdateTime: ts(r.Updated),
	}
	for _, img := range r.Images {
		out.Images = append(out.Images, &releasesv1.ReleaseImage{Reference: img.Reference, Digest: img.Digest})
	}
	return out
}
