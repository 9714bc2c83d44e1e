package releases

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipwayhq/slipway/services/releases/internal/ops"
)

// tracerName is the instrumentation scope of the worker's spans.
const tracerName = "github.com/slipwayhq/slipway/services/releases"

// How an attempt at an operation ended, as its span says.
const (
	attemptNotStarted  = "not-started" // Start refused: the lease was already lost
	attemptSucceeded   = "succeeded"
	attemptFailed      = "failed"
	attemptCancelled   = "cancelled"
	attemptLeaseLost   = "lease-lost"  // another worker continues it
	attemptInterrupted = "interrupted" // shutdown: the lease expires and it is retried
)

// startExecution starts the span of one attempt at l, "operation.execute":
// a child of the span of the request that enqueued the operation (see
// ops.Operation.TraceContext), so that the attempt, run later and perhaps
// by another replica, and the calls it makes to the other services, join
// that request's trace. An operation no request traced (the sweeper's, the
// drift checker's) starts a trace of its own. The attributes name the
// operation and its release, never the payload: values are the user's and
// may hold secrets.
func (w *Worker) startExecution(ctx context.Context, l ops.Lease) (context.Context, trace.Span) {
	tp := w.opts.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(tracerName).Start(l.TraceContext(ctx), "operation.execute",
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("slipway.operation.id", l.ID),
			attribute.String("slipway.operation.kind", string(l.Kind)),
			attribute.Int("slipway.operation.attempt", l.Attempt),
			attribute.String("slipway.org", l.Org),
			attribute.String("slipway.cluster", l.Target.Cluster),
			attribute.String("slipway.namespace", l.Target.Namespace),
			attribute.String("slipway.release", l.Target.Release),
		))
}

// endExecution ends an attempt's span with how it ended (attempt*) and,
// when it failed, the operation's error code (a gRPC code name): the
// status is OK when it succeeded, unset when cancelled, an error
// otherwise. The error's message stays out: the operation keeps it.
func endExecution(span trace.Span, outcome, code string) {
	span.SetAttributes(attribute.String("slipway.operation.outcome", outcome))
	switch outcome {
	case attemptSucceeded:
		span.SetStatus(otelcodes.Ok, "")
	case attemptCancelled:
	case attemptFailed:
		span.SetAttributes(attribute.String("slipway.operation.error_code", code))
		span.SetStatus(otelcodes.Error, code)
	default:
		span.SetStatus(otelcodes.Error, outcome)
	}
	span.End()
}
