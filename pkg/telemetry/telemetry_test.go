package telemetry

import (
	"context"
	"strings"
	"testing"
)

func TestSetupWithoutCollector(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tel, err := Setup(context.Background(), "slipway-test", "1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	if tel.Exporting {
		t.Error("Exporting = true with no OTLP endpoint")
	}
	// Spans still get ids, so logs carry trace ids without a collector.
	_, span := tel.TracerProvider.Tracer("t").Start(context.Background(), "s")
	if !span.SpanContext().IsValid() {
		t.Error("span without a valid context")
	}
	span.End()
	families, err := tel.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, mf := range families {
		found[mf.GetName()] = true
		if mf.GetName() == "slipway_build_info" {
			labels := map[string]string{}
			for _, l := range mf.GetMetric()[0].GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["service"] != "slipway-test" || labels["version"] != "1.2.3" {
				t.Errorf("build info labels = %v", labels)
			}
		}
	}
	for _, want := range []string{"slipway_build_info", "go_goroutines", "process_cpu_seconds_total"} {
		if !found[want] {
			t.Errorf("registry lacks %s", want)
		}
	}
}

func TestSetupWithCollector(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
	for _, proto := range []string{"", "http/protobuf", "grpc"} {
		t.Run("protocol "+proto, func(t *testing.T) {
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", proto)
			tel, err := Setup(context.Background(), "slipway-test", "dev")
			if err != nil {
				t.Fatal(err)
			}
			if !tel.Exporting {
				t.Error("Exporting = false with an OTLP endpoint")
			}
			// Nothing listens there: shutdown must still return, not hang.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_ = tel.Shutdown(ctx)
		})
	}
	t.Run("unknown protocol", func(t *testing.T) {
		t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")
		_, err := Setup(context.Background(), "slipway-test", "dev")
		if err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_PROTOCOL") {
			t.Fatalf("Setup = %v, want an error naming OTEL_EXPORTER_OTLP_PROTOCOL", err)
		}
	})
}
