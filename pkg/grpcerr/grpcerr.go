// Package grpcerr turns domain errors into gRPC statuses.
//
// Each service keeps one table (its errors.go) mapping its sentinel errors to
// codes; ToStatus applies it, and handles what every service shares: field
// validation errors, context errors, an unreachable database (Unavailable)
// and statuses that already are statuses.
// Anything unmapped becomes Internal with a fixed message, so no internal
// detail (SQL, file paths, secrets) ever reaches a caller.
package grpcerr

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/slipwayhq/slipway/pkg/sqldb"
	"github.com/slipwayhq/slipway/pkg/validate"
)

// Rule maps one sentinel error to a code. A Reason is attached to the
// status as a google.rpc.ErrorInfo (domain ErrorDomain), for what a code
// alone does not say: ReasonUnprocessable makes the gateway answer 422.
type Rule struct {
	Err    error
	Code   codes.Code
	Reason string
}

// ErrorDomain is the domain of the ErrorInfo details Slipway attaches.
const ErrorDomain = "slipway.dev"

// ReasonUnprocessable marks a well-formed request whose content cannot be
// acted on (an image reference that resolves to nothing): HTTP 422.
const ReasonUnprocessable = "UNPROCESSABLE"

// Reason returns the ErrorInfo reason of Slipway's domain in err's status,
// or "".
func Reason(s *status.Status) string {
	for _, d := range s.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == ErrorDomain {
			return info.GetReason()
		}
	}
	return ""
}

// violations is an error naming several bad fields (validate.Errors, or a
// domain error listing what failed). A mapped error implementing it gets a
// google.rpc.BadRequest detail with every field, whatever its code.
type violations interface {
	error
	FieldViolations() []*validate.FieldError
}

// Table is one service's error table.
type Table []Rule

// InternalMessage is what callers see for an unexpected error.
const InternalMessage = "internal error"

// DatabaseUnavailableMessage is what callers see when a service cannot
// reach its database (sqldb.IsUnavailable): never the server's address.
const DatabaseUnavailableMessage = "the service's database is unavailable; retry shortly"

// ToStatus returns err as a gRPC status error. The message of a mapped error
// is err.Error(), so domain errors must be written to be shown to callers.
func (t Table) ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if fe, ok := validate.AsFieldError(err); ok {
		return FieldViolation(fe)
	}
	for _, r := range t {
		if !errors.Is(err, r.Err) {
			continue
		}
		st := status.New(r.Code, err.Error())
		if r.Reason != "" {
			if d, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: r.Reason, Domain: ErrorDomain}); derr == nil {
				st = d
			}
		}
		var fv violations
		if errors.As(err, &fv) {
			br := &errdetails.BadRequest{}
			for _, fe := range fv.FieldViolations() {
				br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: fe.Field, Description: fe.Reason})
			}
			if d, derr := st.WithDetails(br); derr == nil {
				st = d
			}
		}
		return st.Err()
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request cancelled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case sqldb.IsUnavailable(err):
		// The service's own database is down or restarting: it answers
		// again by itself once the database is back (the gateway adds
		// Retry-After).
		return status.Error(codes.Unavailable, DatabaseUnavailableMessage)
	}
	// A status from a downstream call keeps its code, message and details,
	// but not the text of whatever wrapped it on the way (addresses, ...).
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) && se.GRPCStatus() != nil {
		return se.GRPCStatus().Err()
	}
	return status.Error(codes.Internal, InternalMessage)
}

// IsInternal reports whether ToStatus would hide err behind InternalMessage;
// callers log such errors in full.
func (t Table) IsInternal(err error) bool {
	return err != nil && status.Code(t.ToStatus(err)) == codes.Internal
}

// Outcome labels err for metrics: "ok", "rejected" (the caller's doing:
// bad input, not found, conflicts) or "error" (ours: what ToStatus hides).
func (t Table) Outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case t.IsInternal(err):
		return "error"
	}
	return "rejected"
}

// FieldViolation returns InvalidArgument naming the field, with a
// google.rpc.BadRequest detail that clients can read field by field.
func FieldViolation(fe *validate.FieldError) error {
	s := status.New(codes.InvalidArgument, fe.Error())
	if d, err := s.WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: fe.Field, Description: fe.Reason}},
	}); err == nil {
		s = d
	}
	return s.Err()
}
