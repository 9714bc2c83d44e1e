package grpcerr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/slipwayhq/slipway/pkg/validate"
)

var (
	errNotFound = errors.New("release not found")
	errExists   = errors.New("release already exists")
	errLocked   = errors.New("release is locked")
)

var table = Table{
	{Err: errNotFound, Code: codes.NotFound},
	{Err: errExists, Code: codes.AlreadyExists},
	{Err: errLocked, Code: codes.FailedPrecondition},
}

func TestToStatus(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantCode codes.Code
		wantMsg  string
	}{
		{name: "sentinel", err: errNotFound, wantCode: codes.NotFound, wantMsg: "release not found"},
		{
			name:     "wrapped sentinel",
			err:      fmt.Errorf("release %q: %w", "web", errExists),
			wantCode: codes.AlreadyExists,
			wantMsg:  `release "web": release already exists`,
		},
		{
			name:     "wrapped twice",
			err:      fmt.Errorf("upgrade: %w", fmt.Errorf("release web: %w", errLocked)),
			wantCode: codes.FailedPrecondition,
			wantMsg:  "upgrade: release web: release is locked",
		},
		{name: "canceled", err: context.Canceled, wantCode: codes.Canceled, wantMsg: "request cancelled"},
		{name: "wrapped canceled", err: fmt.Errorf("query /var/db: %w", context.Canceled), wantCode: codes.Canceled, wantMsg: "request cancelled"},
		{name: "deadline", err: fmt.Errorf("dial 10.0.0.7: %w", context.DeadlineExceeded), wantCode: codes.DeadlineExceeded, wantMsg: "deadline exceeded"},
		{name: "status passes through", err: status.Error(codes.PermissionDenied, "role deployer required"), wantCode: codes.PermissionDenied, wantMsg: "role deployer required"},
		{name: "database down", err: fmt.Errorf("list clusters: %w", &pgconn.ConnectError{Config: &pgconn.Config{Host: "10.0.0.7"}}), wantCode: codes.Unavailable, wantMsg: DatabaseUnavailableMessage},
		{name: "database starting up", err: fmt.Errorf("get token: %w", &pgconn.PgError{Code: "57P03", Message: "the database system is starting up"}), wantCode: codes.Unavailable, wantMsg: DatabaseUnavailableMessage},
		{name: "database shut down", err: &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}, wantCode: codes.Unavailable, wantMsg: DatabaseUnavailableMessage},
		{name: "statement error stays internal", err: &pgconn.PgError{Code: "42P01", Message: `relation "x" does not exist`}, wantCode: codes.Internal, wantMsg: InternalMessage},
		{name: "unknown", err: errors.New(`pq: relation "secrets" does not exist at /srv/db password=hunter2`), wantCode: codes.Internal, wantMsg: InternalMessage},
		{name: "wrapped unknown", err: fmt.Errorf("load chart /charts/web: %w", errors.New("EOF")), wantCode: codes.Internal, wantMsg: InternalMessage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := table.ToStatus(tc.err)
			s, ok := status.FromError(got)
			if !ok {
				t.Fatalf("ToStatus(%v) = %v, not a status", tc.err, got)
			}
			if s.Code() != tc.wantCode || s.Message() != tc.wantMsg {
				t.Errorf("ToStatus(%v) = %v %q, want %v %q", tc.err, s.Code(), s.Message(), tc.wantCode, tc.wantMsg)
			}
		})
	}
}

func TestToStatusNil(t *testing.T) {
	if err := table.ToStatus(nil); err != nil {
		t.Fatalf("ToStatus(nil) = %v, want nil", err)
	}
	if err := Table(nil).ToStatus(nil); err != nil {
		t.Fatalf("empty Table.ToStatus(nil) = %v, want nil", err)
	}
}

func TestToStatusHidesInternalDetail(t *testing.T) {
	secret := "postgres://slipway:hunter2@db:5432"
	err := table.ToStatus(fmt.Errorf("connect %s: %w", secret, errors.New("refused")))
	s := status.Convert(err)
	if s.Code() != codes.Internal {
		t.Fatalf("code = %v, want Internal", s.Code())
	}
	if strings.Contains(s.Message(), "hunter2") || strings.Contains(fmt.Sprint(s.Proto()), "hunter2") {
		t.Fatalf("status %v leaks the original error", s.Proto())
	}
	if len(s.Details()) != 0 {
		t.Errorf("Internal status has details %v, want none", s.Details())
	}
}

func TestToStatusFieldError(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{name: "direct", err: validate.Field("image.reference", "must have a tag")},
		{name: "wrapped", err: fmt.Errorf("create release: %w", validate.Field("image.reference", "must have a tag"))},
		// A field error wins over a table entry that also matches.
		{name: "joined with sentinel", err: errors.Join(errNotFound, validate.Field("image.reference", "must have a tag"))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := status.Convert(table.ToStatus(tc.err))
			if s.Code() != codes.InvalidArgument {
				t.Fatalf("code = %v, want InvalidArgument", s.Code())
			}
			if want := "image.reference: must have a tag"; s.Message() != want {
				t.Errorf("message = %q, want %q", s.Message(), want)
			}
			assertViolation(t, s, "image.reference", "must have a tag")
		})
	}
}

func TestFieldViolation(t *testing.T) {
	fe := &validate.FieldError{Field: "page_size", Reason: "must be positive"}
	s := status.Convert(FieldViolation(fe))
	if s.Code() != codes.InvalidArgument || s.Message() != "page_size: must be positive" {
		t.Fatalf("FieldViolation = %v %q", s.Code(), s.Message())
	}
	assertViolation(t, s, "page_size", "must be positive")
}

func assertViolation(t *testing.T, s *status.Status, field, desc string) {
	t.Helper()
	var brs []*errdetails.BadRequest
	for _, d := range s.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			brs = append(brs, br)
		}
	}
	if len(brs) != 1 {
		t.Fatalf("details = %v, want one BadRequest", s.Details())
	}
	fv := brs[0].GetFieldViolations()
	if len(fv) != 1 || fv[0].GetField() != field || fv[0].GetDescription() != desc {
		t.Fatalf("field violations = %v, want [%s: %s]", fv, field, desc)
	}
}

func TestIsInternal(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "nil", err: nil, want: false},
		{name: "sentinel", err: fmt.Errorf("x: %w", errNotFound), want: false},
		{name: "field error", err: validate.Field("org", "required"), want: false},
		{name: "canceled", err: context.Canceled, want: false},
		{name: "status", err: status.Error(codes.Unavailable, "catalog down"), want: false},
		{name: "internal status", err: status.Error(codes.Internal, "boom"), want: true},
		{name: "unknown", err: errors.New("disk full"), want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := table.IsInternal(tc.err); got != tc.want {
				t.Errorf("IsInternal(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestToStatusKeepsStatus(t *testing.T) {
	withDetail, err := status.New(codes.FailedPrecondition, "cluster unreachable").WithDetails(&errdetails.ErrorInfo{Reason: "CLUSTER_UNREACHABLE"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		err  error
	}{
		{name: "bare", err: withDetail.Err()},
		// A downstream status wrapped on its way up keeps its code.
		{name: "wrapped", err: fmt.Errorf("call clusters: %w", withDetail.Err())},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := status.Convert(table.ToStatus(tc.err))
			if s.Code() != codes.FailedPrecondition {
				t.Fatalf("code = %v, want FailedPrecondition", s.Code())
			}
			d := s.Details()
			if len(d) != 1 {
				t.Fatalf("details = %v, want the ErrorInfo kept", d)
			}
			if ei, ok := d[0].(*errdetails.ErrorInfo); !ok || ei.GetReason() != "CLUSTER_UNREACHABLE" {
				t.Errorf("detail = %v, want the ErrorInfo kept", d[0])
			}
		})
	}
}

// A downstream status wrapped with internal context keeps its own code and
// message; the wrapping text (here an address) never reaches the caller.
func TestToStatusUnwrapsDownstreamStatus(t *testing.T) {
	down := status.Error(codes.NotFound, "cluster not found")
	err := Table{}.ToStatus(fmt.Errorf("call clusters at 10.0.0.7:9090: %w", down))
	if status.Code(err) != codes.NotFound || status.Convert(err).Message() != "cluster not found" {
		t.Fatalf("ToStatus = %v, want NotFound %q", err, "cluster not found")
	}
}

func TestToStatusReason(t *testing.T) {
	errUnresolvable := errors.New("reference does not resolve")
	table := Table{{Err: errUnresolvable, Code: codes.FailedPrecondition, Reason: ReasonUnprocessable}, {Err: errNotFound, Code: codes.NotFound}}
	s := status.Convert(table.ToStatus(fmt.Errorf("%w: tag 1.0 not found", errUnresolvable)))
	if s.Code() != codes.FailedPrecondition || Reason(s) != ReasonUnprocessable || s.Message() != "reference does not resolve: tag 1.0 not found" {
		t.Errorf("status %v, reason %q", s, Reason(s))
	}
	if r := Reason(status.Convert(table.ToStatus(errNotFound))); r != "" {
		t.Errorf("a rule without a reason attached %q", r)
	}
}

func TestOutcome(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{{nil, "ok"}, {errNotFound, "rejected"}, {errors.New("disk on fire"), "error"}} {
		if got := table.Outcome(tc.err); got != tc.want {
			t.Errorf("Outcome(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// schemaError is a domain error listing several failing fields.
type schemaError struct{ fields []*validate.FieldError }

func (e *schemaError) Error() string                           { return "values do not match the schema" }
func (e *schemaError) Unwrap() error                           { return errLocked }
func (e *schemaError) FieldViolations() []*validate.FieldError { return e.fields }

func TestToStatusListsViolations(t *testing.T) {
	err := fmt.Errorf("target prod: %w", &schemaError{fields: []*validate.FieldError{
		{Field: "/replicaCount", Reason: "got string, want integer"},
		{Field: "/image", Reason: "missing property tag"},
	}})
	s := status.Convert(table.ToStatus(err))
	if s.Code() != codes.FailedPrecondition {
		t.Fatalf("code %v, want FailedPrecondition", s.Code())
	}
	var got []string
	for _, d := range s.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				got = append(got, v.GetField()+": "+v.GetDescription())
			}
		}
	}
	want := "/replicaCount: got string, want integer|/image: missing property tag"
	if strings.Join(got, "|") != want {
		t.Errorf("violations %q, want %q", got, want)
	}
}
