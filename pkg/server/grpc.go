// Package server is the one way a Slipway process serves: the gRPC server
// constructor with its interceptor chain in a fixed order, the admin HTTP
// endpoints (health, readiness, metrics), and an oklog/run group that runs
// every listener and stops them all on SIGINT/SIGTERM.
package server

import (
	"context"
	"log/slog"
	"runtime/debug"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/requestid"
)

// GRPCConfig is what every Slipway gRPC server needs.
type GRPCConfig struct {
	Logger         *slog.Logger
	Registry       *prometheus.Registry
	TracerProvider trace.TracerProvider
	// Verifier checks the caller identity on every call but health checks
	// and reflection. Required: no Slipway service serves anonymous callers.
	Verifier *identity.Verifier
}

// GRPC is a gRPC server with health and reflection registered.
type GRPC struct {
	*grpc.Server
	Health  *health.Server
	metrics *grpcprom.ServerMetrics
}

// NewGRPC returns a server whose interceptors run in this order: request id,
// panic recovery, metrics, identity, logging (and recovery once more, around
// the handler alone). Tracing is an otelgrpc stats
// handler, so spans cover the whole chain. Register the service
// implementations, then call Ready.
func NewGRPC(cfg GRPCConfig, opts ...grpc.ServerOption) *GRPC {
	metrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram())
	cfg.Registry.MustRegister(metrics)
	recover := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		cfg.Logger.ErrorContext(ctx, "panic serving request", "panic", p, "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error")
	})
	logOpts := []logging.Option{
		logging.WithLogOnEvents(logging.FinishCall),
		logging.WithFieldsFromContext(callerFields),
	}
	base := []grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(cfg.TracerProvider))),
		grpc.ChainUnaryInterceptor(
			unaryRequestID,
			recovery.UnaryServerInterceptor(recover),
			metrics.UnaryServerInterceptor(),
			identity.UnaryServerInterceptor(cfg.Verifier),
			logging.UnaryServerInterceptor(slogAdapter(cfg.Logger), logOpts...),
			// Again innermost, so a handler's panic is counted and logged
			// as the Internal error the caller sees.
			recovery.UnaryServerInterceptor(recover),
		),
		grpc.ChainStreamInterceptor(
			streamRequestID,
			recovery.StreamServerInterceptor(recover),
			metrics.StreamServerInterceptor(),
			identity.StreamServerInterceptor(cfg.Verifier),
			logging.StreamServerInterceptor(slogAdapter(cfg.Logger), logOpts...),
			recovery.StreamServerInterceptor(recover),
		),
	}
	s := grpc.NewServer(append(base, opts...)...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	reflection.Register(s)
	return &GRPC{Server: s, Health: hs, metrics: metrics}
}

// Ready initialises the per-method metrics and marks every registered
// service, and the server as a whole, SERVING.
func (s *GRPC) Ready() {
	s.metrics.InitializeMetrics(s.Server)
	s.Health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	for name := range s.GetServiceInfo() {
		s.Health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
}

func slogAdapter(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}

func callerFields(ctx context.Context) logging.Fields {
	id, ok := identity.FromContext(ctx)
	if !ok {
		return nil
	}
	return logging.Fields{"org", id.Org, "subject", id.Subject}
}

func withRequestID(ctx context.Context) context.Context {
	var id string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(requestid.MetadataKey); len(v) > 0 {
			id = v[0]
		}
	}
	id = requestid.Sanitize(id)
	_ = grpc.SetHeader(ctx, metadata.Pairs(requestid.MetadataKey, id)) // fails only after headers went out
	return requestid.NewContext(ctx, id)
}

func unaryRequestID(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	return h(withRequestID(ctx), req)
}

func streamRequestID(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	return h(srv, &ctxStream{ServerStream: ss, ctx: withRequestID(ss.Context())})
}

type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }
