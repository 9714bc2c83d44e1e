package identity

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The test service stands in for a generated one: its requests are proto
// messages with a GetOrg method, like every org-scoped Slipway request.
const (
	tenantService = "slipway.test.v1.TenantService"
	whoamiMethod  = "/" + tenantService + "/Whoami"
	echoMethod    = "/" + tenantService + "/Echo"
)

// orgRequest is a StringValue whose value is the org.
type orgRequest struct{ *wrapperspb.StringValue }

func (r orgRequest) GetOrg() string { return r.GetValue() }

type tenantServer struct {
	calls atomic.Int32
	// relay, when set, is what Whoami does with its context instead of answering.
	relay func(ctx context.Context) (string, error)
}

func describe(id Identity) string { return id.Subject + "|" + id.Org + "|" + string(id.Role) }

func (s *tenantServer) whoami(ctx context.Context, _ orgRequest) (*wrapperspb.StringValue, error) {
	s.calls.Add(1)
	if s.relay != nil {
		out, err := s.relay(ctx)
		return wrapperspb.String(out), err
	}
	id, ok := FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.FailedPrecondition, "handler saw no identity")
	}
	return wrapperspb.String(describe(id)), nil
}

func (s *tenantServer) echo(ss grpc.ServerStream) error {
	s.calls.Add(1)
	id, ok := FromContext(ss.Context())
	if !ok {
		return status.Error(codes.FailedPrecondition, "handler saw no identity")
	}
	for {
		m := orgRequest{new(wrapperspb.StringValue)}
		if err := ss.RecvMsg(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if err := ss.SendMsg(wrapperspb.String(id.Subject + "@" + m.GetOrg())); err != nil {
			return err
		}
	}
}

var tenantDesc = grpc.ServiceDesc{
	ServiceName: tenantService,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Whoami",
		Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			s := srv.(*tenantServer)
			h := func(ctx context.Context, req any) (any, error) { return s.whoami(ctx, req.(orgRequest)) }
			if icpt == nil {
				return h(ctx, orgRequest{in})
			}
			return icpt(ctx, orgRequest{in}, &grpc.UnaryServerInfo{Server: srv, FullMethod: whoamiMethod}, h)
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Echo",
		Handler:       func(srv any, ss grpc.ServerStream) error { return srv.(*tenantServer).echo(ss) },
		ServerStreams: true,
		ClientStreams: true,
	}},
}

// serve runs a gRPC server on a loopback port for the test and returns a
// connection to it.
func serve(t *testing.T, register func(*grpc.Server), opts ...grpc.ServerOption) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	register(s)
	done := make(chan error, 1)
	go func() { done <- s.Serve(lis) }()
	t.Cleanup(func() {
		s.Stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return dial(t, lis.Addr().String())
}

func dial(t *testing.T, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// guarded is a server with the identity interceptors, the test service and health.
func guarded(t *testing.T, v *Verifier, srv *tenantServer) *grpc.ClientConn {
	t.Helper()
	return serve(t, func(s *grpc.Server) {
		s.RegisterService(&tenantDesc, srv)
		hs := health.NewServer()
		hs.SetServingStatus(tenantService, healthpb.HealthCheckResponse_SERVING)
		healthpb.RegisterHealthServer(s, hs)
	}, grpc.UnaryInterceptor(UnaryServerInterceptor(v)), grpc.StreamInterceptor(StreamServerInterceptor(v)))
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func withToken(ctx context.Context, toks ...string) context.Context {
	for _, tok := range toks {
		ctx = metadata.AppendToOutgoingContext(ctx, MetadataKey, tok)
	}
	return ctx
}

func TestUnaryServerInterceptor(t *testing.T) {
	key := newKey(t)
	s := NewSigner(key, 0)
	srv := &tenantServer{}
	conn := guarded(t, newVerifier(t, key), srv)
	tok := sign(t, s, alice)
	expired := NewSigner(key, time.Minute)
	expired.now = func() time.Time { return time.Now().Add(-time.Hour) }

	tests := []struct {
		name     string
		tokens   []string
		org      string
		wantCode codes.Code
		wantMsg  string // checked when set: rejections must not say why a token failed
	}{
		{name: "match", tokens: []string{tok}, org: "acme", wantCode: codes.OK},
		{name: "missing identity", org: "acme", wantCode: codes.Unauthenticated, wantMsg: "missing caller identity"},
		{name: "empty token", tokens: []string{""}, org: "acme", wantCode: codes.Unauthenticated, wantMsg: "missing caller identity"},
		{name: "two tokens", tokens: []string{tok, tok}, org: "acme", wantCode: codes.Unauthenticated},
		{name: "garbage token", tokens: []string{"garbage"}, org: "acme", wantCode: codes.Unauthenticated, wantMsg: "invalid caller identity"},
		{name: "expired token", tokens: []string{sign(t, expired, alice)}, org: "acme", wantCode: codes.Unauthenticated, wantMsg: "invalid caller identity"},
		{name: "other key", tokens: []string{sign(t, NewSigner(newKey(t), 0), alice)}, org: "acme", wantCode: codes.Unauthenticated, wantMsg: "invalid caller identity"},
		{name: "other org", tokens: []string{tok}, org: "globex", wantCode: codes.NotFound},
		{name: "empty org", tokens: []string{tok}, org: "", wantCode: codes.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.calls.Load()
			out := new(wrapperspb.StringValue)
			err := conn.Invoke(withToken(testContext(t), tc.tokens...), whoamiMethod, wrapperspb.String(tc.org), out)
			if got := status.Code(err); got != tc.wantCode {
				t.Fatalf("Whoami = %v (%v), want %v", got, err, tc.wantCode)
			}
			if tc.wantMsg != "" {
				if got := status.Convert(err).Message(); got != tc.wantMsg {
					t.Errorf("message = %q, want %q", got, tc.wantMsg)
				}
			}
			called := srv.calls.Load() != before
			if tc.wantCode != codes.OK {
				if called {
					t.Error("handler ran for a rejected call")
				}
				return
			}
			if want := describe(alice); out.GetValue() != want {
				t.Errorf("handler saw %q, want %q", out.GetValue(), want)
			}
		})
	}
}

// A request for another org must be indistinguishable from one for an org
// that does not exist.
func TestUnaryServerInterceptorNoOrgEnumeration(t *testing.T) {
	key := newKey(t)
	conn := guarded(t, newVerifier(t, key), &tenantServer{})
	ctx := withToken(testContext(t), sign(t, NewSigner(key, 0), alice))
	answer := func(org string) string {
		err := conn.Invoke(ctx, whoamiMethod, wrapperspb.String(org), new(wrapperspb.StringValue))
		s := status.Convert(err)
		return s.Code().String() + ": " + strings.ReplaceAll(s.Message(), org, "ORG")
	}
	if existing, missing := answer("globex"), answer("no-such-org"); existing != missing {
		t.Fatalf("other org answers %q, missing org %q", existing, missing)
	}
}

func TestHealthNeedsNoIdentity(t *testing.T) {
	conn := guarded(t, newVerifier(t, newKey(t)), &tenantServer{})
	ctx := testContext(t)
	hc := healthpb.NewHealthClient(conn)
	for _, svc := range []string{"", tenantService} {
		t.Run("check "+svc, func(t *testing.T) {
			resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
			if err != nil {
				t.Fatalf("Check(%q) without identity: %v", svc, err)
			}
			if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Errorf("Check(%q) = %v, want SERVING", svc, resp.GetStatus())
			}
		})
	}
	t.Run("watch", func(t *testing.T) {
		w, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: tenantService})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := w.Recv()
		if err != nil {
			t.Fatalf("Watch without identity: %v", err)
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("Watch = %v, want SERVING", resp.GetStatus())
		}
	})
}

func TestPublicMethod(t *testing.T) {
	tests := []struct {
		method string
		want   bool
	}{
		{method: "/grpc.health.v1.Health/Check", want: true},
		{method: "/grpc.health.v1.Health/Watch", want: true},
		{method: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", want: true},
		{method: "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", want: true},
		{method: whoamiMethod, want: false},
		{method: "/grpc.healthz.v1.Health/Check", want: false},
		{method: "/evil.grpc.health.v1.Health/Check", want: false},
		{method: "/slipway.releases.v1.ReleasesService/grpc.health.v1.", want: false},
		{method: "", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.method, func(t *testing.T) {
			if got := publicMethod(tc.method); got != tc.want {
				t.Errorf("publicMethod(%q) = %v, want %v", tc.method, got, tc.want)
			}
		})
	}
}

func TestStreamServerInterceptor(t *testing.T) {
	key := newKey(t)
	srv := &tenantServer{}
	conn := guarded(t, newVerifier(t, key), srv)
	tok := sign(t, NewSigner(key, 0), alice)
	desc := &grpc.StreamDesc{StreamName: "Echo", ServerStreams: true, ClientStreams: true}

	tests := []struct {
		name     string
		tokens   []string
		orgs     []string // sent in order; each accepted one is echoed
		wantEcho int      // how many are echoed before the stream fails
		wantCode codes.Code
	}{
		{name: "all match", tokens: []string{tok}, orgs: []string{"acme", "acme", "acme"}, wantEcho: 3, wantCode: codes.OK},
		{name: "missing identity", orgs: []string{"acme"}, wantCode: codes.Unauthenticated},
		{name: "invalid identity", tokens: []string{"garbage"}, orgs: []string{"acme"}, wantCode: codes.Unauthenticated},
		{name: "first message other org", tokens: []string{tok}, orgs: []string{"globex"}, wantCode: codes.NotFound},
		{name: "later message other org", tokens: []string{tok}, orgs: []string{"acme", "acme", "globex"}, wantEcho: 2, wantCode: codes.NotFound},
		{name: "later message empty org", tokens: []string{tok}, orgs: []string{"acme", ""}, wantEcho: 1, wantCode: codes.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.calls.Load()
			cs, err := conn.NewStream(withToken(testContext(t), tc.tokens...), desc, echoMethod)
			if err != nil {
				t.Fatal(err)
			}
			echoed := 0
			var streamErr error
			for _, org := range tc.orgs {
				if err := cs.SendMsg(wrapperspb.String(org)); err != nil {
					break // the server ended the stream; RecvMsg reports why
				}
				out := new(wrapperspb.StringValue)
				if streamErr = cs.RecvMsg(out); streamErr != nil {
					break
				}
				if want := alice.Subject + "@" + org; out.GetValue() != want {
					t.Errorf("echo = %q, want %q", out.GetValue(), want)
				}
				echoed++
			}
			if streamErr == nil {
				if err := cs.CloseSend(); err != nil {
					t.Fatal(err)
				}
				streamErr = cs.RecvMsg(new(wrapperspb.StringValue))
				if errors.Is(streamErr, io.EOF) {
					streamErr = nil
				}
			}
			if got := status.Code(streamErr); got != tc.wantCode {
				t.Fatalf("stream ended with %v (%v), want %v", got, streamErr, tc.wantCode)
			}
			if echoed != tc.wantEcho {
				t.Errorf("echoed %d messages, want %d", echoed, tc.wantEcho)
			}
			if tc.wantCode == codes.Unauthenticated && srv.calls.Load() != before {
				t.Error("handler ran for an unauthenticated stream")
			}
		})
	}
}

// recorder is a server that answers every method and records the identity
// metadata it was called with.
type recorder struct {
	mu   sync.Mutex
	seen [][]string
}

func (r *recorder) handle(_ any, ss grpc.ServerStream) error {
	md, _ := metadata.FromIncomingContext(ss.Context())
	r.mu.Lock()
	r.seen = append(r.seen, md.Get(MetadataKey))
	r.mu.Unlock()
	if err := ss.RecvMsg(new(wrapperspb.StringValue)); err != nil {
		return err
	}
	return ss.SendMsg(new(wrapperspb.StringValue))
}

func (r *recorder) last(t *testing.T) []string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seen) == 0 {
		t.Fatal("recorder saw no call")
	}
	return r.seen[len(r.seen)-1]
}

func TestClientInterceptors(t *testing.T) {
	rec := &recorder{}
	backend := serve(t, func(*grpc.Server) {}, grpc.UnknownServiceHandler(rec.handle))
	conn := dial(t, backend.Target(),
		grpc.WithUnaryInterceptor(UnaryClientInterceptor()),
		grpc.WithStreamInterceptor(StreamClientInterceptor()))

	verified := NewContext(context.Background(), alice, "tok-alice")
	tests := []struct {
		name string
		ctx  context.Context
		want []string
	}{
		{name: "verified identity is forwarded", ctx: verified, want: []string{"tok-alice"}},
		{name: "explicit token is kept", ctx: OutgoingContext(verified, "tok-minted"), want: []string{"tok-minted"}},
		{name: "explicit token without identity", ctx: OutgoingContext(context.Background(), "tok-minted"), want: []string{"tok-minted"}},
		{name: "no identity", ctx: context.Background(), want: nil},
		{name: "identity without token", ctx: NewContext(context.Background(), alice, ""), want: nil},
		// Unverified incoming metadata is never relayed.
		{name: "unverified incoming token", ctx: metadata.NewIncomingContext(context.Background(), metadata.Pairs(MetadataKey, "tok-forged")), want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(tc.ctx, 10*time.Second)
			defer cancel()
			t.Run("unary", func(t *testing.T) {
				if err := conn.Invoke(ctx, "/slipway.test.v1.Backend/Get", new(wrapperspb.StringValue), new(wrapperspb.StringValue)); err != nil {
					t.Fatal(err)
				}
				if got := rec.last(t); !slices.Equal(got, tc.want) {
					t.Errorf("backend saw %q, want %q", got, tc.want)
				}
			})
			t.Run("stream", func(t *testing.T) {
				cs, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, "/slipway.test.v1.Backend/Watch")
				if err != nil {
					t.Fatal(err)
				}
				if err := cs.SendMsg(new(wrapperspb.StringValue)); err != nil {
					t.Fatal(err)
				}
				if err := cs.RecvMsg(new(wrapperspb.StringValue)); err != nil {
					t.Fatal(err)
				}
				if got := rec.last(t); !slices.Equal(got, tc.want) {
					t.Errorf("backend saw %q, want %q", got, tc.want)
				}
			})
		})
	}
}

// TestForwardingEndToEnd runs gateway -> service A -> service B: A verifies
// the gateway's token and calls B as the same caller; B verifies it again.
func TestForwardingEndToEnd(t *testing.T) {
	key := newKey(t)
	v := newVerifier(t, key)
	b := guarded(t, v, &tenantServer{})
	toB := dial(t, b.Target(), grpc.WithUnaryInterceptor(UnaryClientInterceptor()))
	a := guarded(t, v, &tenantServer{relay: func(ctx context.Context) (string, error) {
		out := new(wrapperspb.StringValue)
		if err := toB.Invoke(ctx, whoamiMethod, wrapperspb.String("acme"), out); err != nil {
			return "", fmt.Errorf("call B: %w", err)
		}
		return out.GetValue(), nil
	}})

	out := new(wrapperspb.StringValue)
	ctx := withToken(testContext(t), sign(t, NewSigner(key, 0), alice))
	if err := a.Invoke(ctx, whoamiMethod, wrapperspb.String("acme"), out); err != nil {
		t.Fatalf("A -> B: %v", err)
	}
	if want := describe(alice); out.GetValue() != want {
		t.Errorf("B saw %q, want %q", out.GetValue(), want)
	}
}

func TestContextAccessors(t *testing.T) {
	if _, ok := FromContext(context.Background()); ok {
		t.Error("FromContext(empty) reported an identity")
	}
	if _, ok := TokenFromContext(context.Background()); ok {
		t.Error("TokenFromContext(empty) reported a token")
	}
	ctx := NewContext(context.Background(), alice, "tok")
	if id, ok := FromContext(ctx); !ok || id != alice {
		t.Errorf("FromContext = %+v, %v", id, ok)
	}
	if tok, ok := TokenFromContext(ctx); !ok || tok != "tok" {
		t.Errorf("TokenFromContext = %q, %v", tok, ok)
	}
}
