// Package logging builds the JSON slog loggers every Slipway process uses.
//
// Records logged with a context carry the trace and span ids of the active
// OpenTelemetry span and the request id, so a log line can be joined to its
// trace and to the other lines of the same request.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/trace"

	"github.com/slipwayhq/slipway/pkg/requestid"
)

// New returns a JSON logger writing to w at level, tagging every record with
// the service name.
func New(w io.Writer, level slog.Level, service string) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	return slog.New(contextHandler{root: h}).With("service", service)
}

// ParseLevel parses "debug", "info", "warn" or "error".
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// contextHandler adds request-scoped attributes found in the record's
// context, always at the top level: a logger with groups still writes
// trace_id, span_id and request_id where log-to-trace joins look for them.
type contextHandler struct {
	root slog.Handler // carries the attributes added before the first group
	ops  []groupOrAttrs
}

// groupOrAttrs is one WithGroup (group != "") or WithAttrs after a group.
type groupOrAttrs struct {
	group string
	attrs []slog.Attr
}

func (h contextHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.root.Enabled(ctx, l)
}

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		out.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	if id := requestid.FromContext(ctx); id != "" {
		out.AddAttrs(slog.String("request_id", id))
	}
	attrs := make([]slog.Attr, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool { attrs = append(attrs, a); return true })
	for i := len(h.ops) - 1; i >= 0; i-- {
		if g := h.ops[i].group; g != "" {
			attrs = []slog.Attr{{Key: g, Value: slog.GroupValue(attrs...)}}
		} else {
			attrs = append(append([]slog.Attr{}, h.ops[i].attrs...), attrs...)
		}
	}
	out.AddAttrs(attrs...)
	return h.root.Handle(ctx, out)
}

func (h contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(h.ops) == 0 {
		return contextHandler{root: h.root.WithAttrs(attrs)}
	}
	return contextHandler{root: h.root, ops: append(h.ops[:len(h.ops):len(h.ops)], groupOrAttrs{attrs: attrs})}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return contextHandler{root: h.root, ops: append(h.ops[:len(h.ops):len(h.ops)], groupOrAttrs{group: name})}
}
