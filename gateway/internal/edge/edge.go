// Package edge is Slipway's REST edge: it serves /api/v1/orgs/..., decides
// who the caller is and what they may do in the organization a request
// names, mints the internal identity, and forwards the call over gRPC to the
// owning service (or to the gateway's own services, in process) through the
// grpc-gateway handlers generated from the protos. Every error is answered
// as application/problem+json with a stable code.
package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/slipwayhq/slipway/gateway/internal/authn"
	"github.com/slipwayhq/slipway/gateway/internal/authz"
	"github.com/slipwayhq/slipway/gateway/internal/ratelimit"
	"github.com/slipwayhq/slipway/gateway/internal/store"
	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/requestid"
	"github.com/slipwayhq/slipway/pkg/validate"
	"github.com/slipwayhq/slipway/proto/openapi"
	catalogv1 "github.com/slipwayhq/slipway/proto/slipway/catalog/v1"
	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
	registryv1 "github.com/slipwayhq/slipway/proto/slipway/registry/v1"
	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

// Paths the gateway serves besides the API routes.
const (
	OpenAPIPath = "/api/v1/openapi.json"
	DocsPath    = "/api/v1/docs"
	orgsPath    = "/api/v1/orgs"
	orgsPrefix  = orgsPath + "/"
)

// RegistryEventsMediaType is the Content-Type of an OCI registry's
// notification envelopes (distribution's notifications).
const RegistryEventsMediaType = "application/vnd.docker.distribution.events.v2+json"

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 4 << 20

// Authenticator authenticates callers and resolves their role in an org.
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request) (authn.Principal, error)
	Resolve(ctx context.Context, p authn.Principal, org string) (identity.Identity, store.Org, error)
}

// AuditLog records mutating calls.
type AuditLog interface {
	AppendAudit(ctx context.Context, e store.AuditEvent) error
}

// Conns are the connections to the services; a nil one is not routed.
type Conns struct {
	Clusters *grpc.ClientConn
	Registry *grpc.ClientConn
	Catalog  *grpc.ClientConn
	Releases *grpc.ClientConn
}

// Limits are the request rate limits: per client IP before authentication,
// per caller (token or user) after. Zero rates disable a limit.
type Limits struct {
	PerIP             float64
	PerIPBurst        int
	PerCaller         float64
	PerCallerBurst    int
	TrustForwardedFor bool // take the client IP from X-Forwarded-For (behind a trusted proxy)
}

// Register adds in-process handlers (the gateway's own services) to the mux.
type Register func(ctx context.Context, mux *runtime.ServeMux) error

// Config configures the edge.
type Config struct {
	Log    *slog.Logger
	Signer *identity.Signer
	// Authn authenticates callers. While it is nil the API answers 501:
	// Slipway never serves tenant data to anonymous callers.
	Authn       Authenticator
	Audit       AuditLog
	Conns       Conns
	InProcess   []Register
	Limits      Limits
	CORSOrigins []string
	// Metrics receives the request metrics (nil: a private registry).
	Metrics prometheus.Registerer
	// StreamKeepAlive is the silence after which an event stream gets a
	// comment (0: DefaultStreamKeepAlive).
	StreamKeepAlive time.Duration
}

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "slipway", Subsystem: "gateway", Name: "requests_total",
			Help: "REST requests by operation (OpenAPI operation id, or none when no route matched) and HTTP status.",
		}, []string{"operation", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "slipway", Subsystem: "gateway", Name: "request_duration_seconds",
			Help:    "REST request latency by operation.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"operation"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

type routeKey struct{}

// route is filled in by the router middleware once a route matched.
type route struct {
	op  authz.Operation
	org store.Org
}

// NewHandler returns the REST edge.
func NewHandler(ctx context.Context, cfg Config) (http.Handler, error) {
	routes, err := authz.Routes()
	if err != nil {
		return nil, err
	}
	e := &edge{
		cfg:       cfg,
		routes:    routes,
		ipLimit:   ratelimit.New(cfg.Limits.PerIP, cfg.Limits.PerIPBurst),
		callLimit: ratelimit.New(cfg.Limits.PerCaller, cfg.Limits.PerCallerBurst),
		minted:    map[identity.Identity]mintedToken{},
		metrics:   newMetrics(cfg.Metrics),
		keepAlive: cfg.StreamKeepAlive,
		json: &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		},
	}
	if e.keepAlive <= 0 {
		e.keepAlive = DefaultStreamKeepAlive
	}
	yamlPB := &yamlMarshaler{json: e.json}
	// OCI registries' notification envelopes carry more than Slipway reads
	// (request, actor, source...) and grow with registry versions: only
	// their media type is decoded leniently.
	eventsPB := &runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
	}
	mux := runtime.NewServeMux(
		runtime.WithErrorHandler(errorHandler),
		runtime.WithRoutingErrorHandler(routingErrorHandler),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, e.json),
		runtime.WithMarshalerOption("application/json", e.json),
		runtime.WithMarshalerOption("application/yaml", yamlPB),
		runtime.WithMarshalerOption("application/x-yaml", yamlPB),
		runtime.WithMarshalerOption(RegistryEventsMediaType, eventsPB),
		// Nothing from the HTTP request reaches the services but what the
		// edge puts there: never the caller's Authorization header.
		runtime.WithIncomingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithOutgoingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithMiddlewares(e.authorizeRoute),
		runtime.WithForwardResponseOption(acceptOperation),
		runtime.WithForwardResponseOption(headDeployment),
		runtime.WithMetadata(func(ctx context.Context, r *http.Request) metadata.MD {
			md := metadata.Pairs(requestid.MetadataKey, requestid.FromContext(ctx))
			if tok, ok := identity.TokenFromContext(ctx); ok {
				md.Set(identity.MetadataKey, tok)
			}
			return md
		}),
	)
	type registration struct {
		conn     *grpc.ClientConn
		service  string
		register func(context.Context, *runtime.ServeMux, grpc.ClientConnInterface) error
	}
	for _, r := range []registration{
		{cfg.Conns.Clusters, clustersv1.ClustersService_ServiceDesc.ServiceName,
			through(clustersv1.NewClustersServiceClient, clustersv1.RegisterClustersServiceHandlerClient)},
		{cfg.Conns.Clusters, clustersv1.CredentialsService_ServiceDesc.ServiceName,
			through(clustersv1.NewCredentialsServiceClient, clustersv1.RegisterCredentialsServiceHandlerClient)},
		{cfg.Conns.Registry, registryv1.RegistryService_ServiceDesc.ServiceName,
			through(registryv1.NewRegistryServiceClient, registryv1.RegisterRegistryServiceHandlerClient)},
		{cfg.Conns.Catalog, catalogv1.CatalogService_ServiceDesc.ServiceName,
			through(catalogv1.NewCatalogServiceClient, catalogv1.RegisterCatalogServiceHandlerClient)},
		{cfg.Conns.Releases, releasesv1.ReleasesService_ServiceDesc.ServiceName,
			through(releasesv1.NewReleasesServiceClient, releasesv1.RegisterReleasesServiceHandlerClient)},
		{cfg.Conns.Releases, releasesv1.OperationsService_ServiceDesc.ServiceName,
			through(releasesv1.NewOperationsServiceClient, releasesv1.RegisterOperationsServiceHandlerClient)},
	} {
		if r.conn == nil {
			continue
		}
		cc := idempotentConn{r.conn}
		if err := r.register(ctx, mux, cc); err != nil {
			return nil, fmt.Errorf("register REST routes: %w", err)
		}
		if err := e.registerStreams(mux, r.service, cc); err != nil {
			return nil, fmt.Errorf("register REST streams: %w", err)
		}
	}
	for _, reg := range cfg.InProcess {
		if err := reg(ctx, mux); err != nil {
			return nil, fmt.Errorf("register gateway routes: %w", err)
		}
	}
	e.mux = mux
	return otelhttp.NewHandler(withCORS(cfg.CORSOrigins, e), "rest"), nil
}

// through registers a service's generated REST handlers on a client of the
// given connection, which the edge wraps (see idempotentConn).
func through[C any](newClient func(grpc.ClientConnInterface) C, register func(context.Context, *runtime.ServeMux, C) error) func(context.Context, *runtime.ServeMux, grpc.ClientConnInterface) error {
	return func(ctx context.Context, mux *runtime.ServeMux, cc grpc.ClientConnInterface) error {
		return register(ctx, mux, newClient(cc))
	}
}

type edge struct {
	cfg       Config
	mux       *runtime.ServeMux
	routes    map[string]authz.Operation
	ipLimit   *ratelimit.Limiter
	callLimit *ratelimit.Limiter

	metrics metrics

	json      *runtime.JSONPb // the API's JSON; event streams' data is in it whatever the Accept
	keepAlive time.Duration

	// minted reuses a caller's identity token for half its lifetime: an
	// EdDSA signature per request would cost more than the request.
	mu     sync.Mutex
	minted map[identity.Identity]mintedToken
}

type mintedToken struct {
	token string
	renew time.Time
}

// maxMinted bounds the token cache; past it, the cache starts over.
const maxMinted = 10_000

// mint returns a token for id (whose RequestID must be empty: the request
// id travels in its own metadata, so one token serves many requests).
func (e *edge) mint(id identity.Identity, now time.Time) (string, error) {
	e.mu.Lock()
	m, ok := e.minted[id]
	e.mu.Unlock()
	if ok && now.Before(m.renew) {
		return m.token, nil
	}
	tok, err := e.cfg.Signer.Sign(id)
	if err != nil {
		return "", err
	}
	e.mu.Lock()
	if len(e.minted) >= maxMinted {
		clear(e.minted)
	}
	e.minted[id] = mintedToken{token: tok, renew: now.Add(e.cfg.Signer.TTL() / 2)}
	e.mu.Unlock()
	return tok, nil
}

// ServeHTTP serves one request and records it in the request metrics, by
// operation (never by raw path: paths name tenants).
func (e *edge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rt := &route{}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	e.serve(sw, r.WithContext(context.WithValue(r.Context(), routeKey{}, rt)), rt)
	op := rt.op.ID
	if op == "" {
		op = "none"
	}
	e.metrics.requests.WithLabelValues(op, strconv.Itoa(sw.status)).Inc()
	e.metrics.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

func (e *edge) serve(w *statusWriter, r *http.Request, rt *route) {
	rid := requestid.Sanitize(r.Header.Get("X-Request-Id"))
	w.Header().Set("X-Request-Id", rid)
	ctx := requestid.NewContext(r.Context(), rid)
	// W3C trace context out, so a client can find its request's trace.
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(w.Header()))
	r = r.WithContext(ctx)

	switch {
	case r.URL.Path == OpenAPIPath && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openapi.Document())
		return
	case r.URL.Path == DocsPath && r.Method == http.MethodGet:
		serveDocs(w)
		return
	case r.URL.Path != orgsPath && !strings.HasPrefix(r.URL.Path, orgsPrefix):
		routingErrorHandler(ctx, e.mux, nil, w, r, http.StatusNotFound)
		return
	case e.cfg.Authn == nil:
		WriteProblem(w, Problem{Status: http.StatusNotImplemented, Code: "unimplemented", RequestID: rid,
			Detail: "the organization API needs caller authentication, which this gateway does not have configured"})
		return
	}
	if !e.allow(w, e.ipLimit, "ip:"+e.clientIP(r), rid) {
		return
	}
	// Who is calling is read from the gateway's database: bounded, so that
	// a database that hangs (frozen, or behind a network that drops
	// packets) answers 503 rather than hold every request.
	actx, acancel := context.WithTimeout(ctx, authTimeout)
	defer acancel()
	p, err := e.cfg.Authn.Authenticate(actx, r)
	if err != nil {
		e.deny(w, r, "", err)
		return
	}
	if !e.allow(w, e.callLimit, p.Subject(), rid) {
		return
	}
	ctx = authn.NewContext(ctx, p)

	var id identity.Identity
	if org, ok := orgOf(r.URL.Path); ok {
		if validate.DNSLabel("org", org) != nil {
			e.deny(w, r, org, authn.ErrNoSuchOrg)
			return
		}
		id, rt.org, err = e.cfg.Authn.Resolve(actx, p, org)
		if err != nil {
			e.deny(w, r, org, err)
			return
		}
		tok, err := e.mint(id, time.Now())
		if err != nil {
			e.cfg.Log.ErrorContext(ctx, "mint identity failed", "error", err)
			WriteProblem(w, Problem{Status: http.StatusInternalServerError, Code: "internal", Detail: "internal error", RequestID: rid})
			return
		}
		// The gateway's own services read the identity back with
		// identity.FromContext; remote services get the token.
		ctx = identity.NewContext(ctx, id, tok)
	}

	key, err := idempotencyKey(r.Header)
	if err != nil {
		WriteProblem(w, Problem{Status: http.StatusBadRequest, Code: "invalid_argument", RequestID: rid,
			Detail: IdempotencyKeyHeader + ": " + err.Error(), Errors: []FieldViolation{{Field: IdempotencyKeyHeader, Description: err.Error()}}})
		return
	}
	ctx = withIdempotencyKey(ctx, key)

	fwd := r.Clone(ctx)
	// grpc-gateway forwards Authorization to the service whatever the header
	// matcher says; the caller's credentials must stop here.
	fwd.Header.Del("Authorization")
	fwd.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	e.mux.ServeHTTP(w, fwd)
	e.audit(ctx, r, p, rt, w.status)
}

// authorizeRoute runs once the router matched a route: it names the span
// after the route template and refuses a caller whose role is below the
// operation's in the permission table.
func (e *edge) authorizeRoute(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		ctx := r.Context()
		pattern := ""
		if p, ok := runtime.HTTPPattern(ctx); ok {
			pattern = template(p)
		}
		trace.SpanFromContext(ctx).SetName(r.Method + " " + pattern)
		op, ok := e.routes[r.Method+" "+pattern]
		if rt, _ := ctx.Value(routeKey{}).(*route); rt != nil {
			rt.op = op
		}
		id, scoped := identity.FromContext(ctx)
		if !ok || (!scoped && authz.Table[op.ID] != authz.Any) || !authz.Allowed(op.ID, id.Role) {
			WriteProblem(w, Problem{Status: http.StatusForbidden, Code: "permission_denied", RequestID: requestid.FromContext(ctx),
				Detail: fmt.Sprintf("role %q may not %s %s", id.Role, r.Method, pattern)})
			return
		}
		next(w, r, params)
	}
}

// audit appends a mutating call on an org to the org's audit log: who, what,
// on which path, with which result. Never a body, a query or a header.
//
// Two kinds of reads are recorded too: downloads of secrets meant for
// people (auditedReads), and the flags that make a call more dangerous
// (auditedFlags, such as a forced delete) are kept in the target.
func (e *edge) audit(ctx context.Context, r *http.Request, p authn.Principal, rt *route, status int) {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		if !auditedReads[rt.op.ID] {
			return
		}
	}
	if e.cfg.Audit == nil || rt.org.ID == "" || rt.op.ID == "" {
		return
	}
	if rt.op.ID == "OrganizationsService_DeleteOrganization" && status < 300 {
		return // the log went with the org
	}
	evID, err := uuid.NewV7()
	if err != nil {
		e.cfg.Log.ErrorContext(ctx, "append audit event failed", "error", err)
		return
	}
	ev := store.AuditEvent{
		ID: evID.String(), OrgID: rt.org.ID, Time: time.Now().UTC(), Actor: p.Subject(), TokenID: p.TokenID,
		Action: rt.op.RPC(), Target: auditTarget(r), Result: status, RequestID: requestid.FromContext(ctx),
	}
	if err := e.cfg.Audit.AppendAudit(context.WithoutCancel(ctx), ev); err != nil {
		e.cfg.Log.ErrorContext(ctx, "append audit event failed", "error", err, "action", ev.Action)
	}
}

// auditedReads are the GET operations written to the audit log.
var auditedReads = map[string]bool{
	"ClustersService_GetClusterConfig": true,
}

// auditedFlags are the query flags an audit target keeps; every other part
// of the query stays out (it may hold anything).
var auditedFlags = []string{"force"}

func auditTarget(r *http.Request) string {
	q := r.URL.Query()
	var kept []string
	for _, f := range auditedFlags {
		if v := q.Get(f); v == "true" || v == "1" {
			kept = append(kept, f+"=true")
		}
	}
	if len(kept) == 0 {
		return r.URL.Path
	}
	return r.URL.Path + "?" + strings.Join(kept, "&")
}

func (e *edge) allow(w http.ResponseWriter, l *ratelimit.Limiter, key, rid string) bool {
	ok, wait := l.Allow(key, time.Now())
	if ok {
		return true
	}
	secs := int(wait/time.Second) + 1
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	WriteProblem(w, Problem{Status: http.StatusTooManyRequests, Code: "resource_exhausted",
		Detail: fmt.Sprintf("rate limit exceeded; retry in %d s", secs), RequestID: rid})
	return false
}

func (e *edge) clientIP(r *http.Request) string {
	if e.cfg.Limits.TrustForwardedFor {
		// The rightmost address is the one our proxy appended; anything to
		// its left came from the client and may be forged.
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			last := xff[len(xff)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if ip := strings.TrimSpace(last); ip != "" {
				return ip
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (e *edge) deny(w http.ResponseWriter, r *http.Request, org string, err error) {
	rid := requestid.FromContext(r.Context())
	switch {
	case errors.Is(err, authn.ErrUnauthenticated):
		w.Header().Set("WWW-Authenticate", `Bearer realm="slipway"`)
		WriteProblem(w, Problem{Status: http.StatusUnauthorized, Code: "unauthenticated", Detail: "authentication required", RequestID: rid})
	case errors.Is(err, authn.ErrNoSuchOrg):
		WriteProblem(w, Problem{Status: http.StatusNotFound, Code: "not_found", Detail: "organization " + quote(org) + " not found", RequestID: rid})
	default:
		e.cfg.Log.ErrorContext(r.Context(), "authenticate failed", "error", err)
		// The gateway's database is down or restarting: the same answer,
		// Retry-After included, as a service's UNAVAILABLE.
		w.Header().Set("Retry-After", strconv.Itoa(UnavailableRetryAfter))
		WriteProblem(w, Problem{Status: http.StatusServiceUnavailable, Code: "unavailable", Detail: "authentication is unavailable; retry", RequestID: rid})
	}
}

// authTimeout bounds authenticating a caller and resolving its org (the
// gateway's database, an OIDC issuer's keys). A var for tests.
var authTimeout = 10 * time.Second

// captureAll matches the "{name=*}" captures of a rendered route pattern.
var captureAll = regexp.MustCompile(`\{([^=}]+)=\*\}`)

// template renders a matched route the way the OpenAPI document names it:
// "/api/v1/orgs/{org}/images".
func template(p runtime.Pattern) string {
	return captureAll.ReplaceAllString(p.String(), "{$1}")
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

// statusWriter remembers the status written, for the audit log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Flush keeps streaming responses (SSE, watch) streaming.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
