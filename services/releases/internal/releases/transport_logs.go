package releases

import (
	"context"

	"google.golang.org/grpc/codes"

	"github.com/slipwayhq/slipway/pkg/grpcerr"
	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
	"github.com/slipwayhq/slipway/services/releases/internal/podlogs"
)

// logErrors is errorTable with the logs route's own errors first.
var logErrors = append(grpcerr.Table{
	{Err: ErrPodNotFound, Code: codes.NotFound},
	{Err: podlogs.ErrNotFound, Code: codes.NotFound},
	{Err: podlogs.ErrUnavailable, Code: codes.FailedPrecondition},
	{Err: podlogs.ErrUnreachable, Code: codes.Unavailable},
	// The follower took its lines too slowly for the shared stream.
	{Err: podlogs.ErrFellBehind, Code: codes.ResourceExhausted},
}, errorTable...)

// ServeLogs serves GetDeploymentLogs from ls; without it the route
// answers Unimplemented.
func (s *GRPCServer) ServeLogs(ls LogService) *GRPCServer {
	s.logSvc = ls
	return s
}

func (s *GRPCServer) GetDeploymentLogs(req *releasesv1.GetDeploymentLogsRequest, stream releasesv1.ReleasesService_GetDeploymentLogsServer) error {
	if s.logSvc == nil {
		return s.UnimplementedReleasesServiceServer.GetDeploymentLogs(req, stream)
	}
	ctx := stream.Context()
	q := LogQuery{Pod: req.GetPod(), Container: req.GetContainer(), Tail: int(req.GetTailLines()), Follow: req.GetFollow(), Previous: req.GetPrevious()}
	if req.GetSince() != nil {
		q.Since = req.GetSince().AsDuration()
	}
	err := s.logSvc.DeploymentLogs(ctx, req.GetCluster(), req.GetNamespace(), req.GetName(), q, func(lines []podlogs.Line) error {
		// Following, each line is its own message, so that each
		// server-sent event at the edge is one line.
		if q.Follow {
			for _, l := range lines {
				if err := stream.Send(&releasesv1.GetDeploymentLogsResponse{Lines: []*releasesv1.LogLine{logLineProto(l)}}); err != nil {
					return err
				}
			}
			return nil
		}
		out := &releasesv1.GetDeploymentLogsResponse{Lines: make([]*releasesv1.LogLine, 0, len(lines))}
		for _, l := range lines {
			out.Lines = append(out.Lines, logLineProto(l))
		}
		return stream.Send(out)
	})
	if err != nil && ctx.Err() == nil {
		return s.logStatus(ctx, err)
	}
	return nil
}

func (s *GRPCServer) logStatus(ctx context.Context, err error) error {
	if logErrors.IsInternal(err) {
		s.log.ErrorContext(ctx, "request failed", "error", err)
	}
	return logErrors.ToStatus(err)
}

func logLineProto(l podlogs.Line) *releasesv1.LogLine {
	pl := &releasesv1.LogLine{Pod: l.Pod, Container: l.Container, Line: l.Line, Truncated: l.Truncated}
	if !l.Time.IsZero() {
		pl.Time = ts(l.Time)
	}
	return pl
}
