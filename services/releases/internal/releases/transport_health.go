package releases

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/slipwayhq/slipway/pkg/grpcerr"
	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

// healthErrors is errorTable with the metrics route's own errors first.
var healthErrors = append(grpcerr.Table{
	// The gateway answers 501, naming what the cluster lacks.
	{Err: ErrMetricsUnsupported, Code: codes.Unimplemented},
	{Err: ErrMetricsUnavailable, Code: codes.Unavailable},
	{Err: ErrMetricsForbidden, Code: codes.FailedPrecondition},
}, errorTable...)

// ServeHealth serves GetDeploymentHealth and GetDeploymentMetrics from h;
// without it they answer Unimplemented.
func (s *GRPCServer) ServeHealth(h HealthService) *GRPCServer {
	s.healthSvc = h
	return s
}

func (s *GRPCServer) healthStatus(ctx context.Context, err error) error {
	if healthErrors.IsInternal(err) {
		s.log.ErrorContext(ctx, "request failed", "error", err)
	}
	return healthErrors.ToStatus(err)
}

func (s *GRPCServer) GetDeploymentHealth(ctx context.Context, req *releasesv1.GetDeploymentHealthRequest) (*releasesv1.GetDeploymentHealthResponse, error) {
	if s.healthSvc == nil {
		return s.UnimplementedReleasesServiceServer.GetDeploymentHealth(ctx, req)
	}
	h, err := s.healthSvc.DeploymentHealth(ctx, req.GetCluster(), req.GetNamespace(), req.GetName())
	if err != nil {
		return nil, s.healthStatus(ctx, err)
	}
	return healthProto(h), nil
}

// healthProto copies the fields a health answer shows, one by one.
func healthProto(h DeploymentHealth) *releasesv1.GetDeploymentHealthResponse {
	out := &releasesv1.GetDeploymentHealthResponse{
		Verdict: releasesv1.Verdict(h.Verdict), Message: h.Message, ReleaseStatus: releasesv1.ReleaseStatus(h.Release.Status),
		ReadyWorkloadCount: int32(h.ReadyWorkloads), WorkloadCount: int32(h.Workloads), ObserveTime: ts(h.Observed),
		PodCount: int32(h.Pods), ReadyPodCount: int32(h.ReadyPods),
	}
	if p := h.Probe; p != nil {
		out.Probe = &releasesv1.HealthProbe{Path: p.Path, Port: p.Port, SkippedPodCount: int32(p.Skipped), Pods: make([]*releasesv1.PodProbe, 0, len(p.Pods))}
		for _, pp := range p.Pods {
			out.Probe.Pods = append(out.Probe.Pods, &releasesv1.PodProbe{Pod: pp.Pod, Healthy: pp.Healthy, StatusCode: int32(pp.Code),
				Message: pp.Message, Latency: durationpb.New(pp.Latency)})
		}
	}
	return out
}

func (s *GRPCServer) GetDeploymentMetrics(ctx context.Context, req *releasesv1.GetDeploymentMetricsRequest) (*releasesv1.GetDeploymentMetricsResponse, error) {
	if s.healthSvc == nil {
		return s.UnimplementedReleasesServiceServer.GetDeploymentMetrics(ctx, req)
	}
	m, err := s.healthSvc.DeploymentMetrics(ctx, req.GetCluster(), req.GetNamespace(), req.GetName(), req.GetIncludePrometheus(),
		PageRequest{Size: req.GetPageSize(), Token: req.GetPageToken()})
	if err != nil {
		return nil, s.healthStatus(ctx, err)
	}
	return metricsProto(m), nil
}

func usageProto(u Usage) *releasesv1.ResourceUsage {
	return &releasesv1.ResourceUsage{CpuMillicores: u.CPUMillis, MemoryBytes: u.MemoryBytes}
}

// metricsProto copies the fields a metrics answer shows, one by one.
func metricsProto(m MetricsPage) *releasesv1.GetDeploymentMetricsResponse {
	out := &releasesv1.GetDeploymentMetricsResponse{Total: usageProto(m.Total), ObserveTime: ts(m.Observed), NextPageToken: m.NextPageToken,
		PodCount: int32(m.PodCount), Pods: make([]*releasesv1.PodMetrics, 0, len(m.Pods))}
	if m.Window > 0 {
		out.Window = durationpb.New(m.Window)
	}
	for _, p := range m.Pods {
		pp := &releasesv1.PodMetrics{Pod: p.Name, Usage: usageProto(p.Usage), UsageMissing: p.UsageMissing}
		for _, c := range p.Containers {
			pp.Containers = append(pp.Containers, &releasesv1.ContainerMetrics{Container: c.Name, Usage: usageProto(c.Usage),
				Requests: usageProto(c.Requests), Limits: usageProto(c.Limits), RestartCount: c.Restarts})
		}
		if sc := p.Prometheus; sc != nil {
			pp.Prometheus = &releasesv1.PrometheusScrape{Path: sc.Path, Port: sc.Port, StatusCode: int32(sc.Code), Text: sc.Text,
				Truncated: sc.Truncated, Message: sc.Message}
		}
		out.Pods = append(out.Pods, pp)
	}
	return out
}
