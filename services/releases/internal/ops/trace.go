package ops

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
)

// traceContext is the W3C trace context of ctx's span: its traceparent and
// tracestate headers, "" when ctx carries no valid span.
func traceContext(ctx context.Context) (parent, state string) {
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c.Get("traceparent"), c.Get("tracestate")
}

// TraceContext returns ctx with the trace context of the request that
// enqueued op as its remote parent span, so that spans started under it
// join that request's trace. Without a stored context it returns ctx.
func (op Operation) TraceContext(ctx context.Context) context.Context {
	if op.TraceParent == "" {
		return ctx
	}
	c := propagation.MapCarrier{"traceparent": op.TraceParent}
	if op.TraceState != "" {
		c["tracestate"] = op.TraceState
	}
	return propagation.TraceContext{}.Extract(ctx, c)
}
