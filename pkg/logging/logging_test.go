package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"testing/slogtest"

	"go.opentelemetry.io/otel/trace"

	"github.com/slipwayhq/slipway/pkg/requestid"
)

var (
	traceID = trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	spanID  = trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
)

func spanContext(ctx context.Context) context.Context {
	return trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    traceID,
		SpanID:     spanID,
		TraceFlags: trace.FlagsSampled,
	}))
}

func TestNewAddsContextFields(t *testing.T) {
	tests := []struct {
		name string
		ctx  context.Context
		want map[string]string // fields that must be present with these values
		not  []string          // fields that must be absent
	}{
		{
			name: "span and request id",
			ctx:  requestid.NewContext(spanContext(context.Background()), "req-1"),
			want: map[string]string{
				"trace_id":   "4bf92f3577b34da6a3ce929d0e0e4736",
				"span_id":    "00f067aa0ba902b7",
				"request_id": "req-1",
			},
		},
		{
			name: "request id only",
			ctx:  requestid.NewContext(context.Background(), "req-2"),
			want: map[string]string{"request_id": "req-2"},
			not:  []string{"trace_id", "span_id"},
		},
		{
			name: "span only",
			ctx:  spanContext(context.Background()),
			want: map[string]string{"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"},
			not:  []string{"request_id"},
		},
		{
			name: "invalid span context",
			ctx:  trace.ContextWithSpanContext(context.Background(), trace.SpanContext{}),
			not:  []string{"trace_id", "span_id", "request_id"},
		},
		{
			name: "nothing",
			ctx:  context.Background(),
			not:  []string{"trace_id", "span_id", "request_id"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			New(&buf, slog.LevelInfo, "releases").InfoContext(tc.ctx, "release installed", "release", "web")
			rec := decode(t, &buf)
			want := map[string]string{"service": "releases", "msg": "release installed", "level": "INFO", "release": "web"}
			for k, v := range tc.want {
				want[k] = v
			}
			for k, v := range want {
				if rec[k] != v {
					t.Errorf("field %s = %v, want %q (record %v)", k, rec[k], v, rec)
				}
			}
			for _, k := range tc.not {
				if _, ok := rec[k]; ok {
					t.Errorf("field %s present, want absent (record %v)", k, rec)
				}
			}
		})
	}
}

func TestNewKeepsContextFieldsThroughWith(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, slog.LevelInfo, "catalog").With("org", "acme")
	log.InfoContext(requestid.NewContext(spanContext(context.Background()), "req-3"), "chart indexed")
	rec := decode(t, &buf)
	for k, v := range map[string]string{"service": "catalog", "org": "acme", "request_id": "req-3", "trace_id": traceID.String()} {
		if rec[k] != v {
			t.Errorf("field %s = %v, want %q (record %v)", k, rec[k], v, rec)
		}
	}
}

func TestNewLevel(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, slog.LevelWarn, "gateway")
	log.Info("dropped")
	if buf.Len() != 0 {
		t.Fatalf("info record written at warn level: %s", buf.String())
	}
	log.Warn("kept")
	if rec := decode(t, &buf); rec["msg"] != "kept" {
		t.Fatalf("record = %v, want msg kept", rec)
	}
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    slog.Level
		wantErr bool
	}{
		{name: "debug", in: "debug", want: slog.LevelDebug},
		{name: "info", in: "info", want: slog.LevelInfo},
		{name: "warn", in: "warn", want: slog.LevelWarn},
		{name: "error", in: "error", want: slog.LevelError},
		{name: "upper case", in: "DEBUG", want: slog.LevelDebug},
		{name: "mixed case", in: "Warn", want: slog.LevelWarn},
		{name: "empty", in: "", wantErr: true},
		{name: "unknown", in: "verbose", wantErr: true},
		{name: "warning", in: "warning", wantErr: true},
		{name: "trace", in: "trace", wantErr: true},
		{name: "number", in: "4", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseLevel(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseLevel(%q) error = %v, wantErr %v", tc.in, err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("ParseLevel(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

// decode reads exactly one JSON record from buf.
func decode(t *testing.T, buf *bytes.Buffer) map[string]any {
	t.Helper()
	dec := json.NewDecoder(buf)
	var rec map[string]any
	if err := dec.Decode(&rec); err != nil {
		t.Fatalf("decode log record %q: %v", buf.String(), err)
	}
	if dec.More() {
		t.Fatalf("more than one record logged")
	}
	return rec
}

func TestContextFieldsStayTopLevelInGroups(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, slog.LevelInfo, "registry").WithGroup("req").With("org", "acme")
	log.InfoContext(requestid.NewContext(context.Background(), "rid-1"), "done", "n", 1)
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got["request_id"] != "rid-1" || got["service"] != "registry" {
		t.Errorf("top-level fields = %v, want request_id and service at the top", got)
	}
	req, _ := got["req"].(map[string]any)
	if req["org"] != "acme" || req["n"] != float64(1) {
		t.Errorf("group req = %v, want org and n inside it", req)
	}
}

func TestHandlerConformsToSlog(t *testing.T) {
	var buf bytes.Buffer
	err := slogtest.TestHandler(New(&buf, slog.LevelDebug, "x").Handler(), func() []map[string]any {
		var out []map[string]any
		for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatal(err)
			}
			delete(m, "service")
			out = append(out, m)
		}
		return out
	})
	if err != nil {
		t.Fatal(err)
	}
}
