package catalog

import (
	"google.golang.org/grpc/codes"

	"github.com/slipwayhq/slipway/pkg/grpcerr"
)

// errorTable maps the catalog's domain errors to gRPC codes; the gateway
// maps codes to HTTP statuses (AlreadyExists -> 409, NotFound -> 404, ...).
var errorTable = grpcerr.Table{
	{Err: ErrRepositoryExists, Code: codes.AlreadyExists},
	{Err: ErrApplicationExists, Code: codes.AlreadyExists},
	{Err: ErrRepositoryNotFound, Code: codes.NotFound},
	{Err: ErrChartNotFound, Code: codes.NotFound},
	{Err: ErrChartVersionNotFound, Code: codes.NotFound},
	{Err: ErrApplicationNotFound, Code: codes.NotFound},
	{Err: ErrUnauthorized, Code: codes.PermissionDenied},
	{Err: ErrInUse, Code: codes.FailedPrecondition},
	{Err: ErrEtagMismatch, Code: codes.Aborted},
	{Err: ErrUnprocessable, Code: codes.FailedPrecondition, Reason: grpcerr.ReasonUnprocessable},
	{Err: ErrRepositoryUnavailable, Code: codes.Unavailable},
	{Err: ErrDependencyUnavailable, Code: codes.Unavailable},
}
