package clusters

import (
	"google.golang.org/grpc/codes"

	"github.com/slipwayhq/slipway/pkg/grpcerr"
	"github.com/slipwayhq/slipway/services/clusters/internal/secrets"
)

// The secret store's errors the service turns into its own.
var (
	errSecretsUnavailable = secrets.ErrUnavailable
	errSecretsConflict    = secrets.ErrConflict
)

// errorTable maps the service's domain errors to gRPC codes; the gateway
// maps codes to HTTP statuses (Unavailable -> 503 with Retry-After, ...).
var errorTable = grpcerr.Table{
	{Err: ErrClusterExists, Code: codes.AlreadyExists},
	{Err: ErrCredentialExists, Code: codes.AlreadyExists},
	{Err: ErrClusterNotFound, Code: codes.NotFound},
	{Err: ErrCredentialNotFound, Code: codes.NotFound},
	{Err: ErrUnreachable, Code: codes.FailedPrecondition},
	{Err: ErrInUse, Code: codes.FailedPrecondition},
	{Err: ErrWrongCredentialType, Code: codes.FailedPrecondition},
	{Err: ErrConflict, Code: codes.Aborted},
	{Err: ErrUnauthorized, Code: codes.PermissionDenied},
	{Err: ErrSecretsUnavailable, Code: codes.Unavailable},
	{Err: ErrDependentsUnknown, Code: codes.Unavailable},
	{Err: ErrWatchLagging, Code: codes.Unavailable},
}
