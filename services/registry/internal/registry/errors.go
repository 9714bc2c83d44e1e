package registry

import (
	"google.golang.org/grpc/codes"

	"github.com/slipwayhq/slipway/pkg/grpcerr"
)

// errorTable maps the registry's domain errors to gRPC codes; the gateway
// maps codes to HTTP statuses (AlreadyExists -> 409, NotFound -> 404, ...).
var errorTable = grpcerr.Table{
	{Err: ErrImageExists, Code: codes.AlreadyExists},
	{Err: ErrImageNotFound, Code: codes.NotFound},
	{Err: ErrUnauthorized, Code: codes.PermissionDenied},
	{Err: ErrUnresolvable, Code: codes.FailedPrecondition, Reason: grpcerr.ReasonUnprocessable},
	{Err: ErrRegistryUnavailable, Code: codes.Unavailable},
	{Err: ErrInUse, Code: codes.FailedPrecondition},
	{Err: ErrDeploymentsNotTracked, Code: codes.Unimplemented},
	{Err: ErrDeploymentsUnknown, Code: codes.Unavailable},
}
