package releases

import (
	"context"
	"testing"

	otelcodes "go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/slipwayhq/slipway/services/releases/internal/ops"
)

// TestExecutionSpan: an attempt's span is a child of the enqueuing
// request's stored span, names the operation, and ends with its outcome;
// an operation no request traced starts a trace of its own.
func TestExecutionSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	w := &Worker{opts: WorkerOptions{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))}}
	l := ops.Lease{Operation: ops.Operation{
		ID: "op_1", Org: "acme", Kind: ops.KindDeployApplication, Attempt: 2,
		Target:      ops.Target{Cluster: "cl_1", Namespace: "shop", Release: "web-prod"},
		Payload:     []byte(`{"values":{"password":"hunter2"}}`),
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	}}
	ctx, span := w.startExecution(context.Background(), l)
	if got := trace.SpanFromContext(ctx).SpanContext(); !got.Equal(span.SpanContext()) {
		t.Errorf("the context carries span %v, want the execution's", got)
	}
	endExecution(span, attemptFailed, "FAILED_PRECONDITION")
	untraced := l
	untraced.TraceParent = ""
	_, span = w.startExecution(context.Background(), untraced)
	endExecution(span, attemptSucceeded, "")

	ended := rec.Ended()
	if len(ended) != 2 {
		t.Fatalf("%d spans ended, want 2", len(ended))
	}
	s := ended[0]
	if s.Name() != "operation.execute" || s.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("span %q of kind %v", s.Name(), s.SpanKind())
	}
	if s.Parent().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || s.Parent().SpanID().String() != "00f067aa0ba902b7" || !s.Parent().IsRemote() ||
		s.SpanContext().TraceID() != s.Parent().TraceID() {
		t.Errorf("span %v has parent %v; want a child of the stored request span", s.SpanContext(), s.Parent())
	}
	want := map[string]string{
		"slipway.operation.id": "op_1", "slipway.operation.kind": "deploy-application", "slipway.operation.attempt": "2",
		"slipway.org": "acme", "slipway.cluster": "cl_1", "slipway.namespace": "shop", "slipway.release": "web-prod",
		"slipway.operation.outcome": "failed", "slipway.operation.error_code": "FAILED_PRECONDITION",
	}
	got := map[string]string{}
	for _, a := range s.Attributes() {
		got[string(a.Key)] = a.Value.Emit()
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("attributes %v, want only %v", got, want)
	}
	if s.Status().Code != otelcodes.Error || s.Status().Description != "FAILED_PRECONDITION" {
		t.Errorf("status %+v, want an error with the code", s.Status())
	}
	u := ended[1]
	if u.Parent().IsValid() || u.SpanContext().TraceID() == s.SpanContext().TraceID() || u.Status().Code != otelcodes.Ok {
		t.Errorf("untraced operation's span: parent %v, trace %v, status %+v; want a new root, OK", u.Parent(), u.SpanContext().TraceID(), u.Status())
	}
}
