package client

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/requestid"
)

// recorder answers every method and records the metadata of each call.
type recorder struct {
	mu   sync.Mutex
	seen []metadata.MD
}

func (r *recorder) handle(_ any, ss grpc.ServerStream) error {
	md, _ := metadata.FromIncomingContext(ss.Context())
	r.mu.Lock()
	r.seen = append(r.seen, md)
	r.mu.Unlock()
	if err := ss.RecvMsg(new(wrapperspb.StringValue)); err != nil {
		return err
	}
	return ss.SendMsg(new(wrapperspb.StringValue))
}

func (r *recorder) last(t *testing.T) metadata.MD {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seen) == 0 {
		t.Fatal("server saw no call")
	}
	return r.seen[len(r.seen)-1]
}

// start serves rec on a loopback port and returns a Dial-ed connection to it.
func start(t *testing.T, rec *recorder) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.UnknownServiceHandler(rec.handle))
	done := make(chan error, 1)
	go func() { done <- s.Serve(lis) }()
	t.Cleanup(func() {
		s.Stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	conn, err := Dial(lis.Addr().String(), Config{TracerProvider: noop.NewTracerProvider()})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func TestDialForwardsMetadata(t *testing.T) {
	rec := &recorder{}
	conn := start(t, rec)
	alice := identity.Identity{Subject: "user:alice", Org: "acme", Role: identity.RoleViewer}
	caller := identity.NewContext(requestid.NewContext(context.Background(), "req-1"), alice, "tok-alice")

	tests := []struct {
		name      string
		ctx       context.Context
		wantReqID []string
		wantToken []string
	}{
		{name: "request id and identity", ctx: caller, wantReqID: []string{"req-1"}, wantToken: []string{"tok-alice"}},
		{name: "request id only", ctx: requestid.NewContext(context.Background(), "req-2"), wantReqID: []string{"req-2"}},
		{name: "identity only", ctx: identity.NewContext(context.Background(), alice, "tok-alice"), wantToken: []string{"tok-alice"}},
		{name: "neither", ctx: context.Background()},
		{
			name:      "explicit metadata is kept",
			ctx:       metadata.AppendToOutgoingContext(caller, requestid.MetadataKey, "req-explicit", identity.MetadataKey, "tok-minted"),
			wantReqID: []string{"req-explicit"},
			wantToken: []string{"tok-minted"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(tc.ctx, 10*time.Second)
			defer cancel()
			check := func(t *testing.T) {
				t.Helper()
				md := rec.last(t)
				if got := md.Get(requestid.MetadataKey); !slices.Equal(got, tc.wantReqID) {
					t.Errorf("server saw %s = %q, want %q", requestid.MetadataKey, got, tc.wantReqID)
				}
				if got := md.Get(identity.MetadataKey); !slices.Equal(got, tc.wantToken) {
					t.Errorf("server saw %s = %q, want %q", identity.MetadataKey, got, tc.wantToken)
				}
			}
			t.Run("unary", func(t *testing.T) {
				if err := conn.Invoke(ctx, "/slipway.test.v1.Test/Get", new(wrapperspb.StringValue), new(wrapperspb.StringValue)); err != nil {
					t.Fatal(err)
				}
				check(t)
			})
			t.Run("stream", func(t *testing.T) {
				cs, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, "/slipway.test.v1.Test/Watch")
				if err != nil {
					t.Fatal(err)
				}
				if err := cs.SendMsg(new(wrapperspb.StringValue)); err != nil {
					t.Fatal(err)
				}
				if err := cs.RecvMsg(new(wrapperspb.StringValue)); err != nil {
					t.Fatal(err)
				}
				check(t)
			})
		})
	}
}

// closedAddr is a loopback address nothing listens on (for now).
func closedAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	return addr
}

func TestDialIsLazy(t *testing.T) {
	// Nothing listens on this address; Dial must not wait for it.
	addr := closedAddr(t)
	conn, err := Dial(addr, Config{TracerProvider: noop.NewTracerProvider()})
	if err != nil {
		t.Fatalf("Dial(%s) = %v, want a lazy connection", addr, err)
	}
	_ = conn.Close()
}

// serve starts a server answering every method on a loopback port.
func serve(t *testing.T, rec *recorder) (addr string, stop func()) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.UnknownServiceHandler(rec.handle))
	go func() { _ = s.Serve(lis) }()
	var once sync.Once
	stop = func() { once.Do(s.Stop) }
	t.Cleanup(stop)
	return lis.Addr().String(), stop
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func TestDialAddressListBalancesAndFailsOver(t *testing.T) {
	var a, b recorder
	addrA, stopA := serve(t, &a)
	addrB, _ := serve(t, &b)
	conn, err := Dial(addrA+", "+addrB, Config{TracerProvider: noop.NewTracerProvider()})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	call := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return conn.Invoke(ctx, "/slipway.test.v1.Test/Get", new(wrapperspb.StringValue), new(wrapperspb.StringValue))
	}
	// round_robin picks ready addresses in turn; the second may become ready
	// a little after the first, so call until both were reached (bounded).
	for i := 0; i < 500 && (a.count() == 0 || b.count() == 0); i++ {
		if err := call(); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if a.count() == 0 || b.count() == 0 {
		t.Fatalf("calls per replica = %d, %d; want both > 0", a.count(), b.count())
	}

	stopA()
	before := b.count()
	for i := 0; i < 10; i++ {
		if err := call(); err != nil {
			t.Fatalf("call %d after stopping one replica: %v", i, err)
		}
	}
	if got := b.count() - before; got != 10 {
		t.Errorf("remaining replica served %d of 10 calls", got)
	}
}

func TestDialAddressListRejectsEmptyEntry(t *testing.T) {
	if _, err := Dial("127.0.0.1:1,,127.0.0.1:2", Config{TracerProvider: noop.NewTracerProvider()}); err == nil {
		t.Fatal("Dial accepted an empty address in the list")
	}
}

// A server that starts well after its callers began calling (every process
// of a stack starts at once; a crashed replica comes back) is reached
// within about a second of listening, not after gRPC's default backoff,
// which by then waits five seconds and more between attempts.
func TestDialReconnectsSoonAfterALateStart(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 11 s for the default backoff to have grown")
	}
	addr := closedAddr(t)
	conn, err := Dial(addr, Config{TracerProvider: noop.NewTracerProvider()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	call := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		return conn.Invoke(ctx, "/slipway.test.v1.Test/Get", new(wrapperspb.StringValue), new(wrapperspb.StringValue))
	}
	for until := time.Now().Add(11 * time.Second); time.Now().Before(until); time.Sleep(100 * time.Millisecond) {
		if err := call(); err == nil {
			t.Fatal("a call succeeded with nothing listening")
		}
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	var rec recorder
	s := grpc.NewServer(grpc.UnknownServiceHandler(rec.handle))
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	up := time.Now()
	for call() != nil {
		if time.Since(up) > 3*time.Second {
			t.Fatalf("no call succeeded within 3 s of the server listening (the reconnect backoff is too long)")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("reached %s after it listened", time.Since(up).Round(time.Millisecond))
}
