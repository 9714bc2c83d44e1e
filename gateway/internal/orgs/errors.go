package orgs

import (
	"errors"

	"google.golang.org/grpc/codes"

	"github.com/slipwayhq/slipway/gateway/internal/store"
	"github.com/slipwayhq/slipway/pkg/grpcerr"
)

// errorTable maps the gateway's domain errors to codes (the edge maps codes
// to HTTP statuses).
var errorTable = grpcerr.Table{
	{Err: store.ErrNotFound, Code: codes.NotFound},
	{Err: store.ErrExists, Code: codes.AlreadyExists},
	{Err: store.ErrLastOwner, Code: codes.FailedPrecondition},
	{Err: ErrInUse, Code: codes.FailedPrecondition},
	{Err: ErrForbidden, Code: codes.PermissionDenied},
	{Err: ErrServiceUnavailable, Code: codes.Unavailable},
}

// ErrServiceUnavailable: a service whose answer is part of this one did
// not answer (the audit log's events of the releases service).
var ErrServiceUnavailable = errors.New("a service did not answer")

// errNoIdentity: an org-scoped handler ran without the edge's identity.
var errNoIdentity = errors.New("org-scoped call without a verified identity")
