package edge

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/slipwayhq/slipway/pkg/grpcerr"
	"github.com/slipwayhq/slipway/pkg/requestid"
)

// Problem is an RFC 9457 problem details document, the body of every error
// the REST API answers. Code is stable: clients branch on it, never on Detail.
type Problem struct {
	Type      string           `json:"type"`
	Title     string           `json:"title"`
	Status    int              `json:"status"`
	Detail    string           `json:"detail,omitempty"`
	Code      string           `json:"code"`
	RequestID string           `json:"request_id,omitempty"`
	Errors    []FieldViolation `json:"errors,omitempty"`
}

// FieldViolation names one bad field of a request.
type FieldViolation struct {
	Field       string `json:"field"`
	Description string `json:"description"`
}

// ProblemTypeBase prefixes each problem type; the page documents the code.
const ProblemTypeBase = "https://slipway.dev/problems/"

// httpStatus is grpc-gateway's code mapping, with the few codes Slipway
// answers differently.
func httpStatus(c codes.Code) int {
	switch c {
	case codes.Aborted:
		return http.StatusConflict
	case codes.FailedPrecondition:
		return http.StatusConflict
	}
	return runtime.HTTPStatusFromCode(c)
}

// problemCode is the stable code for a gRPC code: "not_found", "already_exists"...
func problemCode(c codes.Code) string {
	var b strings.Builder
	for i, r := range c.String() {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// WriteProblem writes p as application/problem+json.
func WriteProblem(w http.ResponseWriter, p Problem) {
	p = p.withDefaults()
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p) // the client may have gone; nothing to do
}

// withDefaults fills in the type and title from the code and status.
func (p Problem) withDefaults() Problem {
	if p.Type == "" {
		p.Type = ProblemTypeBase + p.Code
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	return p
}

// problemFromStatus converts a service's status into the REST problem.
func problemFromStatus(ctx context.Context, s *status.Status) Problem {
	p := Problem{
		Status:    httpStatus(s.Code()),
		Code:      problemCode(s.Code()),
		Detail:    s.Message(),
		RequestID: requestid.FromContext(ctx),
	}
	if grpcerr.Reason(s) == grpcerr.ReasonUnprocessable {
		p.Status, p.Code = http.StatusUnprocessableEntity, "unprocessable"
	}
	for _, d := range s.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				p.Errors = append(p.Errors, FieldViolation{Field: v.GetField(), Description: v.GetDescription()})
			}
		}
	}
	return p
}

// errorHandler is the grpc-gateway error handler: every error becomes a
// problem+json body.
func errorHandler(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	s := publicStatus(err)
	if s.Code() == codes.Unavailable {
		// A dependency of the service (Vault, another service) is down;
		// the service answers again without a restart once it is back.
		w.Header().Set("Retry-After", strconv.Itoa(UnavailableRetryAfter))
	}
	WriteProblem(w, problemFromStatus(r.Context(), s))
}

// publicStatus is err as a client may see it.
func publicStatus(err error) *status.Status {
	s := status.Convert(err)
	if s.Code() == codes.Unknown {
		// grpc-gateway reports undecodable bodies and bad path/query values
		// as Unknown or InvalidArgument; never echo internals for Unknown.
		s = status.New(codes.Internal, "internal error")
	}
	return s
}

// UnavailableRetryAfter is the Retry-After, in seconds, of a 503 answered
// for a service's UNAVAILABLE.
const UnavailableRetryAfter = 2

// routingErrorHandler answers unknown routes and wrong methods.
func routingErrorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	switch httpStatus {
	case http.StatusMethodNotAllowed:
		WriteProblem(w, Problem{Status: httpStatus, Code: "method_not_allowed", Detail: r.Method + " is not allowed on " + r.URL.Path, RequestID: requestid.FromContext(r.Context())})
	default:
		WriteProblem(w, Problem{Status: http.StatusNotFound, Code: "not_found", Detail: "no such route", RequestID: requestid.FromContext(r.Context())})
	}
}
