// Package edge is Slipway's REST edge: it serves /api/v1/orgs/{org}/...,
// decides who the caller is and what they may do in that org, mints the
// internal identity, and forwards the call over gRPC to the owning service
// through the grpc-gateway handlers generated from the protos. Every error
// is answered as application/problem+json with a stable code.
package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/requestid"
	"github.com/slipwayhq/slipway/pkg/validate"
	"github.com/slipwayhq/slipway/proto/openapi"
	catalogv1 "github.com/slipwayhq/slipway/proto/slipway/catalog/v1"
	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
	registryv1 "github.com/slipwayhq/slipway/proto/slipway/registry/v1"
	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

// OpenAPIPath is where the gateway serves the OpenAPI document.
const OpenAPIPath = "/api/v1/openapi.json"

const orgsPrefix = "/api/v1/orgs/"

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 4 << 20

// Errors an Authorizer returns.
var (
	// ErrUnauthenticated: no credentials, or credentials that do not verify.
	ErrUnauthenticated = errors.New("authentication required")
	// ErrNoSuchOrg: the org does not exist or the caller is not a member;
	// both answer 404 so organizations cannot be enumerated.
	ErrNoSuchOrg = errors.New("organization not found")
)

// Authorizer decides who calls and with which role in org.
type Authorizer interface {
	Authorize(r *http.Request, org string) (identity.Identity, error)
}

// Conns are the connections to the services; a nil one is not routed.
type Conns struct {
	Clusters *grpc.ClientConn
	Registry *grpc.ClientConn
	Catalog  *grpc.ClientConn
	Releases *grpc.ClientConn
}

// Config configures the edge.
type Config struct {
	Log    *slog.Logger
	Signer *identity.Signer
	// Authorizer authenticates callers. While it is nil the org-scoped API
	// answers 501: Slipway never serves tenant data to anonymous callers.
	Authorizer Authorizer
	Conns      Conns
}

type tokenKey struct{}

// NewHandler returns the REST edge.
func NewHandler(ctx context.Context, cfg Config) (http.Handler, error) {
	mux := runtime.NewServeMux(
		runtime.WithErrorHandler(errorHandler),
		runtime.WithRoutingErrorHandler(routingErrorHandler),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}),
		// Nothing from the HTTP request reaches the services but what the
		// edge puts there: never the caller's Authorization header.
		runtime.WithIncomingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithOutgoingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithMiddlewares(nameSpan),
		runtime.WithMetadata(func(ctx context.Context, _ *http.Request) metadata.MD {
			md := metadata.Pairs(requestid.MetadataKey, requestid.FromContext(ctx))
			if tok, ok := ctx.Value(tokenKey{}).(string); ok {
				md.Set(identity.MetadataKey, tok)
			}
			return md
		}),
	)
	type registration struct {
		conn     *grpc.ClientConn
		register func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error
	}
	for _, r := range []registration{
		{cfg.Conns.Clusters, clustersv1.RegisterClustersServiceHandler},
		{cfg.Conns.Clusters, clustersv1.RegisterCredentialsServiceHandler},
		{cfg.Conns.Registry, registryv1.RegisterRegistryServiceHandler},
		{cfg.Conns.Catalog, catalogv1.RegisterCatalogServiceHandler},
		{cfg.Conns.Releases, releasesv1.RegisterReleasesServiceHandler},
		{cfg.Conns.Releases, releasesv1.RegisterOperationsServiceHandler},
	} {
		if r.conn == nil {
			continue
		}
		if err := r.register(ctx, mux, r.conn); err != nil {
			return nil, fmt.Errorf("register REST routes: %w", err)
		}
	}
	e := &edge{cfg: cfg, mux: mux}
	return otelhttp.NewHandler(e, "rest"), nil
}

// nameSpan names the request's span by its route template
// ("POST /api/v1/orgs/{org}/images"), never by the raw path, so span names
// stay few and carry no tenant data.
func nameSpan(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if pattern, ok := runtime.HTTPPathPattern(r.Context()); ok {
			trace.SpanFromContext(r.Context()).SetName(r.Method + " " + pattern)
		}
		next(w, r, params)
	}
}

type edge struct {
	cfg Config
	mux *runtime.ServeMux
}

func (e *edge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rid := requestid.Sanitize(r.Header.Get("X-Request-Id"))
	w.Header().Set("X-Request-Id", rid)
	ctx := requestid.NewContext(r.Context(), rid)
	r = r.WithContext(ctx)

	if r.URL.Path == OpenAPIPath && r.Method == http.MethodGet {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openapi.Document())
		return
	}
	org, ok := orgOf(r.URL.Path)
	if !ok {
		routingErrorHandler(ctx, e.mux, nil, w, r, http.StatusNotFound)
		return
	}
	if e.cfg.Authorizer == nil {
		WriteProblem(w, Problem{Status: http.StatusNotImplemented, Code: "unimplemented", RequestID: rid,
			Detail: "the organization API needs caller authentication, which this gateway does not have configured yet"})
		return
	}
	id, err := e.authorize(r, org)
	if err != nil {
		e.deny(w, r, org, err)
		return
	}
	id.RequestID = rid
	tok, err := e.cfg.Signer.Sign(id)
	if err != nil {
		e.cfg.Log.ErrorContext(ctx, "mint identity failed", "error", err)
		WriteProblem(w, Problem{Status: http.StatusInternalServerError, Code: "internal", Detail: "internal error", RequestID: rid})
		return
	}
	fwd := r.Clone(context.WithValue(ctx, tokenKey{}, tok))
	// grpc-gateway forwards Authorization to the service whatever the header
	// matcher says; the caller's credentials must stop here.
	fwd.Header.Del("Authorization")
	fwd.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	e.mux.ServeHTTP(w, fwd)
}

func (e *edge) authorize(r *http.Request, org string) (identity.Identity, error) {
	if validate.DNSLabel("org", org) != nil {
		return identity.Identity{}, ErrNoSuchOrg
	}
	id, err := e.cfg.Authorizer.Authorize(r, org)
	if err != nil {
		return identity.Identity{}, err
	}
	if id.Org != org {
		// An authorizer must never widen a caller's reach to another org.
		return identity.Identity{}, ErrNoSuchOrg
	}
	return id, nil
}

func (e *edge) deny(w http.ResponseWriter, r *http.Request, org string, err error) {
	rid := requestid.FromContext(r.Context())
	switch {
	case errors.Is(err, ErrUnauthenticated):
		w.Header().Set("WWW-Authenticate", `Bearer realm="slipway"`)
		WriteProblem(w, Problem{Status: http.StatusUnauthorized, Code: "unauthenticated", Detail: "authentication required", RequestID: rid})
	case errors.Is(err, ErrNoSuchOrg):
		WriteProblem(w, Problem{Status: http.StatusNotFound, Code: "not_found", Detail: "organization " + quote(org) + " not found", RequestID: rid})
	default:
		e.cfg.Log.ErrorContext(r.Context(), "authorize failed", "error", err)
		WriteProblem(w, Problem{Status: http.StatusInternalServerError, Code: "internal", Detail: "internal error", RequestID: rid})
	}
}

// orgOf returns the {org} of an org-scoped path.
func orgOf(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, orgsPrefix)
	if !ok {
		return "", false
	}
	org, _, _ := strings.Cut(rest, "/")
	return org, org != ""
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}
