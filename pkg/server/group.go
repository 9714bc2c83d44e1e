package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/oklog/run"
	"google.golang.org/grpc"
)

// ShutdownTimeout is how long in-flight requests get to finish on shutdown.
const ShutdownTimeout = 15 * time.Second

// Group runs a process's actors (listeners, workers) until one stops or the
// process gets SIGINT/SIGTERM, then stops them all.
type Group struct {
	g   run.Group
	log *slog.Logger
}

// NewGroup returns an empty group.
func NewGroup(log *slog.Logger) *Group { return &Group{log: log} }

// Add adds an actor, as run.Group.Add.
func (g *Group) Add(execute func() error, interrupt func(error)) { g.g.Add(execute, interrupt) }

// ServeGRPC listens on addr now (so a taken port fails at start) and serves
// s when the group runs. It returns the bound address (useful with port 0).
func (g *Group) ServeGRPC(name, addr string, s *grpc.Server) (net.Addr, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s on %s: %w", name, addr, err)
	}
	g.log.Info("listening", "listener", name, "protocol", "grpc", "addr", lis.Addr().String())
	g.g.Add(func() error {
		return s.Serve(lis)
	}, func(error) {
		done := make(chan struct{})
		go func() { s.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(ShutdownTimeout):
			s.Stop()
		}
	})
	return lis.Addr(), nil
}

// ServeHTTP listens on addr now and serves h when the group runs.
func (g *Group) ServeHTTP(name, addr string, h http.Handler) (net.Addr, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s on %s: %w", name, addr, err)
	}
	g.log.Info("listening", "listener", name, "protocol", "http", "addr", lis.Addr().String())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	g.g.Add(func() error {
		if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}, func(error) {
		ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return lis.Addr(), nil
}

// Run runs every actor until the first returns, ctx ends, or the process
// receives SIGINT or SIGTERM. A signal or a cancelled ctx is a clean stop.
func (g *Group) Run(parent context.Context) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	g.g.Add(run.SignalHandler(ctx, syscall.SIGINT, syscall.SIGTERM))
	g.g.Add(func() error { <-ctx.Done(); return nil }, func(error) { cancel() })
	err := g.g.Run()
	var sig *run.SignalError
	switch {
	case errors.As(err, &sig):
		g.log.Info("shutting down", "signal", sig.Signal.String())
		return nil
	case errors.Is(err, context.Canceled) && parent.Err() != nil:
		return nil
	}
	return err
}
