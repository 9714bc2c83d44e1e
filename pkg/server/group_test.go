package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// runGroup starts g.Run(ctx) and returns a function that waits for its result.
func runGroup(t *testing.T, g *Group, ctx context.Context) func() error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	return func() error {
		t.Helper()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("Group.Run did not return")
			return nil
		}
	}
}

// healthServer is a plain gRPC server with only health registered.
func healthServer() *grpc.Server {
	s := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	return s
}

func assertLoopback(t *testing.T, name string, addr net.Addr) {
	t.Helper()
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || !tcp.IP.IsLoopback() || tcp.Port == 0 {
		t.Fatalf("%s bound %v, want a loopback address with a real port", name, addr)
	}
}

func assertClosed(t *testing.T, name string, addr net.Addr) {
	t.Helper()
	if c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second); err == nil {
		_ = c.Close()
		t.Errorf("%s at %v still accepts connections after Run returned", name, addr)
	}
}

func TestGroupServesUntilCancelled(t *testing.T) {
	g := NewGroup(discardLogger())
	grpcAddr, err := g.ServeGRPC("grpc", "127.0.0.1:0", healthServer())
	if err != nil {
		t.Fatal(err)
	}
	httpAddr, err := g.ServeHTTP("admin", "127.0.0.1:0", AdminHandler(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	assertLoopback(t, "grpc", grpcAddr)
	assertLoopback(t, "admin", httpAddr)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wait := runGroup(t, g, ctx)

	// Both listeners serve while the group runs.
	req, err := http.NewRequestWithContext(testContext(t), http.MethodGet, "http://"+httpAddr.String()+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz = %d", resp.StatusCode)
	}
	conn, err := grpc.NewClient(grpcAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := healthpb.NewHealthClient(conn).Check(testContext(t), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("gRPC health check: %v", err)
	}

	cancel()
	if err := wait(); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	assertClosed(t, "grpc", grpcAddr)
	assertClosed(t, "admin", httpAddr)
}

func TestGroupRunAlreadyCancelled(t *testing.T) {
	g := NewGroup(discardLogger())
	addr, err := g.ServeHTTP("admin", "127.0.0.1:0", AdminHandler(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := runGroup(t, g, ctx)(); err != nil {
		t.Fatalf("Run(cancelled ctx) = %v, want nil", err)
	}
	assertClosed(t, "admin", addr)
}

func TestGroupStopsWhenAnActorFails(t *testing.T) {
	g := NewGroup(discardLogger())
	grpcAddr, err := g.ServeGRPC("grpc", "127.0.0.1:0", healthServer())
	if err != nil {
		t.Fatal(err)
	}
	httpAddr, err := g.ServeHTTP("admin", "127.0.0.1:0", AdminHandler(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	errWorker := errors.New("worker: queue closed")
	interrupted := make(chan error, 1)
	g.Add(func() error { return errWorker }, func(err error) { interrupted <- err })

	if err := runGroup(t, g, context.Background())(); !errors.Is(err, errWorker) {
		t.Fatalf("Run = %v, want the worker's error", err)
	}
	select {
	case err := <-interrupted:
		if !errors.Is(err, errWorker) {
			t.Errorf("actor interrupted with %v, want the worker's error", err)
		}
	default:
		t.Error("failing actor was not interrupted")
	}
	assertClosed(t, "grpc", grpcAddr)
	assertClosed(t, "admin", httpAddr)
}

func TestGroupTakenPort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = taken.Close() }()
	addr := taken.Addr().String()

	tests := []struct {
		name     string
		listener string
		serve    func(g *Group) (net.Addr, error)
	}{
		{name: "http", listener: "admin", serve: func(g *Group) (net.Addr, error) {
			return g.ServeHTTP("admin", addr, AdminHandler(prometheus.NewRegistry()))
		}},
		{name: "grpc", listener: "grpc", serve: func(g *Group) (net.Addr, error) { return g.ServeGRPC("grpc", addr, healthServer()) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.serve(NewGroup(discardLogger()))
			if err == nil {
				t.Fatalf("serving on a taken port bound %v, want an error", got)
			}
			if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), tc.listener) {
				t.Errorf("error %q does not name the listener %s and the address %s", err, tc.listener, addr)
			}
		})
	}
}
