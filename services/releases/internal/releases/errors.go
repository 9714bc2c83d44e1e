package releases

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"unicode"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/slipwayhq/slipway/pkg/grpcerr"
	"github.com/slipwayhq/slipway/services/releases/internal/helmexec"
	"github.com/slipwayhq/slipway/services/releases/internal/ops"
	slipstatus "github.com/slipwayhq/slipway/services/releases/internal/status"
)

// ErrDependencyUnavailable: a Slipway service this needs did not answer,
// or answered that what it needs is unavailable (the catalog, a chart
// repository it cannot reach). What follows it names the service.
var ErrDependencyUnavailable = errors.New("unavailable; retry shortly")

// errorTable maps the releases service's domain errors to gRPC codes.
var errorTable = grpcerr.Table{
	{Err: ErrUnauthorized, Code: codes.PermissionDenied},
	{Err: ErrReleaseExists, Code: codes.AlreadyExists},
	{Err: ErrReleaseNotFound, Code: codes.NotFound},
	{Err: ErrClusterNotFound, Code: codes.NotFound},
	{Err: ErrUnsupported, Code: codes.Unimplemented},
	{Err: ErrApplicationNotFound, Code: codes.NotFound},
	{Err: ErrImageUnusable, Code: codes.FailedPrecondition, Reason: grpcerr.ReasonUnprocessable},
	{Err: ErrDependencyUnavailable, Code: codes.Unavailable},
	{Err: ops.ErrNotFound, Code: codes.NotFound},
	{Err: ops.ErrIdempotencyMismatch, Code: codes.FailedPrecondition, Reason: grpcerr.ReasonUnprocessable},
	{Err: ops.ErrBusy, Code: codes.Aborted},
	{Err: ops.ErrFinished, Code: codes.FailedPrecondition},
	// The status cache's (status.go).
	{Err: slipstatus.ErrBusy, Code: codes.Unavailable},
	{Err: slipstatus.ErrUnknown, Code: codes.Unavailable},
	{Err: helmexec.ErrInvalidAccess, Code: codes.FailedPrecondition},
	// Plans' (plan.go).
	{Err: ErrPlanNotFound, Code: codes.NotFound},
	{Err: ErrPlanStale, Code: codes.FailedPrecondition},
	{Err: ErrPlanInvalid, Code: codes.InvalidArgument},
	// Drift's (drift_correct.go).
	{Err: ErrNotDeployed, Code: codes.FailedPrecondition},
	// Instances' (instances.go).
	{Err: ErrInstanceNotFound, Code: codes.NotFound},
	{Err: ErrInstanceLimit, Code: codes.ResourceExhausted},
	{Err: ErrInstanceDeleted, Code: codes.FailedPrecondition},
}

// clusterError explains why a cluster could not be reached through the
// clusters service: missing (or another org's), or the service's trouble.
func clusterError(cluster string, err error) error {
	switch status.Code(err) {
	case codes.NotFound, codes.InvalidArgument, codes.PermissionDenied:
		return fmt.Errorf("%w: %s", ErrClusterNotFound, cluster)
	}
	return fmt.Errorf("%w: clusters: %s", ErrDependencyUnavailable, status.Convert(err).Message())
}

// failure is how an operation's error is recorded: a canonical code name
// and a message for people.
func failure(err error) (code, message string) {
	switch {
	case errors.Is(err, helmexec.ErrTimeout):
		return codeName(codes.DeadlineExceeded), err.Error()
	case errors.Is(err, helmexec.ErrRecordTooLarge), errors.Is(err, helmexec.ErrInvalidRequest), errors.Is(err, helmexec.ErrReleaseExists),
		errors.Is(err, helmexec.ErrPending), errors.Is(err, helmexec.ErrInvalidAccess), errors.Is(err, ErrClusterNotFound),
		errors.Is(err, ErrPlanStale), errors.Is(err, ErrNotDeployed), errors.Is(err, errNotCorrected):
		return codeName(codes.FailedPrecondition), err.Error()
	case errors.Is(err, helmexec.ErrReleaseNotFound), errors.Is(err, ErrReleaseNotFound):
		return codeName(codes.NotFound), err.Error()
	case errors.Is(err, errGaveUp), errors.Is(err, errEarlierFailed):
		return codeName(codes.Aborted), err.Error()
	case errors.Is(err, ErrDependencyUnavailable), clusterUnreachable(err):
		return codeName(codes.Unavailable), err.Error()
	}
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
		return codeName(s.Code()), s.Message()
	}
	return codeName(codes.Internal), err.Error()
}

// codeName is a code's canonical name ("DEADLINE_EXCEEDED"), as
// OperationError.code has it.
func codeName(c codes.Code) string {
	var b strings.Builder
	for i, r := range c.String() {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

// clusterUnreachable reports whether err says the cluster's API server
// could not be reached or did not answer (refused, reset, a TLS handshake
// or response timeout; Helm's "Kubernetes cluster unreachable"): the
// operation may succeed once it is back.
func clusterUnreachable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	var answered apierrors.APIStatus
	if errors.As(err, &answered) {
		return false // it answered: credentials rejected, forbidden, ...
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	return strings.Contains(err.Error(), "Kubernetes cluster unreachable")
}
