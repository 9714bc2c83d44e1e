package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/logging"
	"github.com/slipwayhq/slipway/pkg/requestid"
)

// probeService is a stand-in for a generated Slipway service.
const (
	probeService       = "slipway.test.v1.ProbeService"
	requestIDMethod    = "/" + probeService + "/RequestID"
	panicMethod        = "/" + probeService + "/Panic"
	streamRequestIDMtd = "/" + probeService + "/StreamRequestID"
	panicStreamMethod  = "/" + probeService + "/PanicStream"
)

func unary(name string, h func(ctx context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error)) grpc.MethodDesc {
	return grpc.MethodDesc{
		MethodName: name,
		Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			next := func(ctx context.Context, req any) (any, error) { return h(ctx, req.(*wrapperspb.StringValue)) }
			return icpt(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/" + probeService + "/" + name}, next)
		},
	}
}

var probeDesc = grpc.ServiceDesc{
	ServiceName: probeService,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{
		unary("RequestID", func(ctx context.Context, _ *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
			return wrapperspb.String(requestid.FromContext(ctx)), nil
		}),
		unary("Panic", func(context.Context, *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
			panic("secret detail: /var/lib/slipway/db password=hunter2")
		}),
	},
	Streams: []grpc.StreamDesc{
		{StreamName: "StreamRequestID", ServerStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
			if err := ss.RecvMsg(new(wrapperspb.StringValue)); err != nil {
				return err
			}
			return ss.SendMsg(wrapperspb.String(requestid.FromContext(ss.Context())))
		}},
		{StreamName: "PanicStream", ServerStreams: true, Handler: func(any, grpc.ServerStream) error {
			panic("secret detail")
		}},
	},
}

// syncBuffer collects log output written by server goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns the JSON log records written so far.
func (b *syncBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	dec := json.NewDecoder(bytes.NewReader(b.buf.Bytes()))
	for {
		var rec map[string]any
		if err := dec.Decode(&rec); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("decode log: %v", err)
		}
		out = append(out, rec)
	}
}

type grpcFixture struct {
	conn  *grpc.ClientConn
	reg   *prometheus.Registry
	logs  *syncBuffer
	token string // a valid identity for acme
}

// startGRPC serves NewGRPC with the probe service on a loopback port.
func startGRPC(t *testing.T) *grpcFixture {
	t.Helper()
	key, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	v, err := identity.NewVerifier(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := identity.NewSigner(key, 0).Sign(identity.Identity{Subject: "user:alice", Org: "acme", Role: identity.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	f := &grpcFixture{reg: prometheus.NewRegistry(), logs: &syncBuffer{}, token: tok}
	s := NewGRPC(GRPCConfig{
		Logger:         logging.New(f.logs, slog.LevelDebug, "test"),
		Registry:       f.reg,
		TracerProvider: noop.NewTracerProvider(),
		Verifier:       v,
	})
	s.RegisterService(&probeDesc, struct{}{})
	s.Ready()

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(lis) }()
	t.Cleanup(func() {
		s.Stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	f.conn, err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.conn.Close() })
	return f
}

func (f *grpcFixture) authed(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, identity.MetadataKey, f.token)
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestGRPCHealth(t *testing.T) {
	f := startGRPC(t)
	hc := healthpb.NewHealthClient(f.conn)
	tests := []struct {
		name     string
		service  string
		want     healthpb.HealthCheckResponse_ServingStatus
		wantCode codes.Code
	}{
		{name: "server", service: "", want: healthpb.HealthCheckResponse_SERVING},
		{name: "registered service", service: probeService, want: healthpb.HealthCheckResponse_SERVING},
		{name: "health itself", service: healthpb.Health_ServiceDesc.ServiceName, want: healthpb.HealthCheckResponse_SERVING},
		{name: "unknown service", service: "slipway.nope.v1.Nope", wantCode: codes.NotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// No identity: probes come from the kubelet, not the gateway.
			resp, err := hc.Check(testContext(t), &healthpb.HealthCheckRequest{Service: tc.service})
			if got := status.Code(err); got != tc.wantCode {
				t.Fatalf("Check(%q) = %v (%v), want %v", tc.service, got, err, tc.wantCode)
			}
			if err == nil && resp.GetStatus() != tc.want {
				t.Errorf("Check(%q) = %v, want %v", tc.service, resp.GetStatus(), tc.want)
			}
		})
	}
}

func TestGRPCRequiresIdentity(t *testing.T) {
	f := startGRPC(t)
	tests := []struct {
		name     string
		ctx      context.Context
		wantCode codes.Code
	}{
		{name: "no identity", ctx: testContext(t), wantCode: codes.Unauthenticated},
		{name: "forged identity", ctx: metadata.AppendToOutgoingContext(testContext(t), identity.MetadataKey, "forged"), wantCode: codes.Unauthenticated},
		{name: "valid identity", ctx: f.authed(testContext(t)), wantCode: codes.OK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := f.conn.Invoke(tc.ctx, requestIDMethod, new(wrapperspb.StringValue), new(wrapperspb.StringValue))
			if got := status.Code(err); got != tc.wantCode {
				t.Fatalf("RequestID = %v (%v), want %v", got, err, tc.wantCode)
			}
		})
	}
}

func TestGRPCPanicRecovery(t *testing.T) {
	f := startGRPC(t)
	t.Run("unary", func(t *testing.T) {
		err := f.conn.Invoke(f.authed(testContext(t)), panicMethod, new(wrapperspb.StringValue), new(wrapperspb.StringValue))
		assertInternal(t, err)
	})
	t.Run("stream", func(t *testing.T) {
		cs, err := f.conn.NewStream(f.authed(testContext(t)), &grpc.StreamDesc{ServerStreams: true}, panicStreamMethod)
		if err != nil {
			t.Fatal(err)
		}
		if err := cs.SendMsg(new(wrapperspb.StringValue)); err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		assertInternal(t, cs.RecvMsg(new(wrapperspb.StringValue)))
	})
	t.Run("server keeps serving", func(t *testing.T) {
		resp, err := healthpb.NewHealthClient(f.conn).Check(testContext(t), &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Check after panic = %v, %v", resp.GetStatus(), err)
		}
		if err := f.conn.Invoke(f.authed(testContext(t)), requestIDMethod, new(wrapperspb.StringValue), new(wrapperspb.StringValue)); err != nil {
			t.Fatalf("call after panic: %v", err)
		}
	})
	t.Run("panic is logged", func(t *testing.T) {
		n := 0
		for _, rec := range f.logs.records(t) {
			if rec["msg"] == "panic serving request" {
				n++
				if rec["level"] != "ERROR" || rec["stack"] == nil {
					t.Errorf("panic record = %v, want level ERROR with a stack", rec)
				}
			}
		}
		if n != 2 {
			t.Errorf("logged %d panics, want 2", n)
		}
	})
}

func assertInternal(t *testing.T, err error) {
	t.Helper()
	s := status.Convert(err)
	if s.Code() != codes.Internal || s.Message() != "internal error" {
		t.Fatalf("panicking handler = %v %q, want Internal %q", s.Code(), s.Message(), "internal error")
	}
	if strings.Contains(s.Message(), "secret") || len(s.Details()) != 0 {
		t.Fatalf("status %v leaks the panic", s.Proto())
	}
}

func TestGRPCRequestID(t *testing.T) {
	f := startGRPC(t)
	tests := []struct {
		name string
		sent []string // x-request-id values the caller sends
		keep bool     // the server uses sent[0]; otherwise it makes a fresh id
	}{
		{name: "caller supplied", sent: []string{"req-0123456789"}, keep: true},
		{name: "absent"},
		{name: "empty", sent: []string{""}},
		// gRPC refuses to send control characters; a space is the
		// nearest a caller can get, and is not a usable id either.
		{name: "space", sent: []string{"req 1\" level=error"}},
		{name: "too long", sent: []string{strings.Repeat("r", 129)}},
		{name: "longest kept", sent: []string{strings.Repeat("r", 128)}, keep: true},
		{name: "first of two", sent: []string{"req-a", "req-b"}, keep: true},
	}
	calls := []struct {
		kind string
		do   func(ctx context.Context, hdr *metadata.MD) (string, error)
	}{
		{kind: "unary", do: func(ctx context.Context, hdr *metadata.MD) (string, error) {
			out := new(wrapperspb.StringValue)
			err := f.conn.Invoke(ctx, requestIDMethod, new(wrapperspb.StringValue), out, grpc.Header(hdr))
			return out.GetValue(), err
		}},
		{kind: "stream", do: func(ctx context.Context, hdr *metadata.MD) (string, error) {
			cs, err := f.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, streamRequestIDMtd)
			if err != nil {
				return "", err
			}
			if err := cs.SendMsg(new(wrapperspb.StringValue)); err != nil {
				return "", err
			}
			out := new(wrapperspb.StringValue)
			if err := cs.RecvMsg(out); err != nil {
				return "", err
			}
			*hdr, err = cs.Header()
			return out.GetValue(), err
		}},
	}
	for _, tc := range tests {
		for _, c := range calls {
			t.Run(tc.name+"/"+c.kind, func(t *testing.T) {
				ctx := f.authed(testContext(t))
				for _, id := range tc.sent {
					ctx = metadata.AppendToOutgoingContext(ctx, requestid.MetadataKey, id)
				}
				var hdr metadata.MD
				seen, err := c.do(ctx, &hdr)
				if err != nil {
					t.Fatal(err)
				}
				echoed := hdr.Get(requestid.MetadataKey)
				if len(echoed) != 1 {
					t.Fatalf("response header %s = %q, want one value", requestid.MetadataKey, echoed)
				}
				if seen != echoed[0] {
					t.Errorf("handler saw request id %q, header says %q", seen, echoed[0])
				}
				if tc.keep {
					if echoed[0] != tc.sent[0] {
						t.Errorf("request id = %q, want the caller's %q", echoed[0], tc.sent[0])
					}
					return
				}
				if len(echoed[0]) != 32 || strings.Trim(echoed[0], "0123456789abcdef") != "" {
					t.Errorf("request id = %q, want a fresh 32-hex-digit id", echoed[0])
				}
			})
		}
	}
}

func TestGRPCRequestIDOnPublicMethods(t *testing.T) {
	f := startGRPC(t)
	var hdr metadata.MD
	ctx := metadata.AppendToOutgoingContext(testContext(t), requestid.MetadataKey, "probe-1")
	if _, err := healthpb.NewHealthClient(f.conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&hdr)); err != nil {
		t.Fatal(err)
	}
	if got := hdr.Get(requestid.MetadataKey); len(got) != 1 || got[0] != "probe-1" {
		t.Fatalf("health check header %s = %q, want [probe-1]", requestid.MetadataKey, got)
	}
}

func TestGRPCMetrics(t *testing.T) {
	f := startGRPC(t)
	if _, err := healthpb.NewHealthClient(f.conn).Check(testContext(t), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	// Rejected calls are counted too: metrics run before identity.
	_ = f.conn.Invoke(testContext(t), requestIDMethod, new(wrapperspb.StringValue), new(wrapperspb.StringValue))
	// A handler's panic is counted as the Internal error the caller got.
	_ = f.conn.Invoke(f.authed(testContext(t)), panicMethod, new(wrapperspb.StringValue), new(wrapperspb.StringValue))

	families, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	handled := map[string]float64{}
	var histogram bool
	for _, mf := range families {
		switch mf.GetName() {
		case "grpc_server_handled_total":
			for _, m := range mf.GetMetric() {
				l := labels(m)
				handled[l["grpc_service"]+"/"+l["grpc_method"]+" "+l["grpc_code"]] = m.GetCounter().GetValue()
			}
		case "grpc_server_handling_seconds":
			histogram = true
		}
	}
	tests := []struct {
		series string
		want   float64
	}{
		{series: "grpc.health.v1.Health/Check OK", want: 1},
		{series: probeService + "/RequestID Unauthenticated", want: 1},
		// Ready initialises every registered method at zero.
		{series: probeService + "/Panic OK", want: 0},
		{series: probeService + "/Panic Internal", want: 1},
	}
	for _, tc := range tests {
		t.Run(tc.series, func(t *testing.T) {
			got, ok := handled[tc.series]
			if !ok {
				t.Fatalf("no grpc_server_handled_total series %q", tc.series)
			}
			if got != tc.want {
				t.Errorf("grpc_server_handled_total{%s} = %v, want %v", tc.series, got, tc.want)
			}
		})
	}
	if !histogram {
		t.Error("grpc_server_handling_seconds not registered")
	}
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

func TestGRPCLogsCaller(t *testing.T) {
	f := startGRPC(t)
	ctx := metadata.AppendToOutgoingContext(f.authed(testContext(t)), requestid.MetadataKey, "req-log")
	if err := f.conn.Invoke(ctx, requestIDMethod, new(wrapperspb.StringValue), new(wrapperspb.StringValue)); err != nil {
		t.Fatal(err)
	}
	for _, rec := range f.logs.records(t) {
		if rec["msg"] != "finished call" || rec["grpc.method"] != "RequestID" {
			continue
		}
		for k, want := range map[string]string{"org": "acme", "subject": "user:alice", "request_id": "req-log", "grpc.code": "OK", "service": "test"} {
			if rec[k] != want {
				t.Errorf("finished call %s = %v, want %q (record %v)", k, rec[k], want, rec)
			}
		}
		return
	}
	t.Fatalf("no finished call record for RequestID in %v", f.logs.records(t))
}
