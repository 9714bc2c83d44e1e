// Package telemetry sets up tracing and metrics for one Slipway process.
//
// Traces: an OpenTelemetry tracer provider, W3C trace-context propagation,
// and an OTLP exporter when OTEL_EXPORTER_OTLP_ENDPOINT (or the traces
// variant) is set; otherwise spans are created, so logs still carry trace
// ids, but exported nowhere. Metrics: a Prometheus registry of the process's
// own (never the global default), served at /metrics by the admin server.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Telemetry is one process's tracer provider and metrics registry.
type Telemetry struct {
	TracerProvider trace.TracerProvider
	Registry       *prometheus.Registry
	// Exporting reports whether spans are sent to an OTLP collector.
	Exporting bool
	version   string
	shutdown  func(context.Context) error
}

// Version is the build version the process reports.
func (t *Telemetry) Version() string { return t.version }

// Setup builds the process's telemetry and installs its tracer provider and
// propagator as the OpenTelemetry globals (libraries such as otelhttp use them).
func Setup(ctx context.Context, service, version string) (*Telemetry, error) {
	res, err := resource.New(ctx,
		resource.WithFromEnv(),
		resource.WithAttributes(
			attribute.String("service.name", service),
			attribute.String("service.version", version),
		),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	exporting := otlpConfigured()
	if exporting {
		exp, err := newExporter(ctx)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "slipway_build_info",
			Help:        "Always 1; labels name the running build.",
			ConstLabels: prometheus.Labels{"service": service, "version": version},
		}, func() float64 { return 1 }),
	)
	return &Telemetry{TracerProvider: tp, Registry: reg, Exporting: exporting, version: version, shutdown: tp.Shutdown}, nil
}

// Shutdown flushes pending spans.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if err := t.shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("telemetry shutdown: %w", err)
	}
	return nil
}

func otlpConfigured() bool {
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// newExporter honours OTEL_EXPORTER_OTLP_PROTOCOL; the exporters read the
// endpoint, headers and TLS settings from the standard variables themselves.
func newExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	proto := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch proto {
	case "grpc":
		exp, err := otlptracegrpc.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("otlp grpc exporter: %w", err)
		}
		return exp, nil
	case "", "http/protobuf":
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("otlp http exporter: %w", err)
		}
		return exp, nil
	}
	return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: want grpc or http/protobuf", proto)
}
