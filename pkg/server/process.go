package server

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/logging"
	"github.com/slipwayhq/slipway/pkg/telemetry"
)

// Flags are the flags every Slipway service process shares.
type Flags struct {
	GRPCAddr     string
	AdminAddr    string
	LogLevel     string
	IdentityKeys string
}

// RegisterFlags adds the shared flags to fs with the given default addresses.
func RegisterFlags(fs *flag.FlagSet, grpcAddr, adminAddr string) *Flags {
	f := &Flags{}
	fs.StringVar(&f.GRPCAddr, "listen-grpc", grpcAddr, "`address` to serve the gRPC API on")
	fs.StringVar(&f.AdminAddr, "listen-admin", adminAddr, "`address` to serve /healthz, /readyz and /metrics on")
	fs.StringVar(&f.LogLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.StringVar(&f.IdentityKeys, "identity-public-keys", "", "comma-separated PEM `files` of the gateway's identity public keys (several while rotating; required)")
	return f
}

// Process is a running service process: its logger, telemetry, gRPC server
// and run group.
type Process struct {
	Name      string
	Log       *slog.Logger
	Telemetry *telemetry.Telemetry
	GRPC      *GRPC
	Group     *Group
	flags     *Flags
}

// NewProcess sets up logging, telemetry and the gRPC server of service
// name. Register the service implementations on p.GRPC, then call Run.
func NewProcess(ctx context.Context, name, version string, f *Flags) (*Process, error) {
	level, err := logging.ParseLevel(f.LogLevel)
	if err != nil {
		return nil, err
	}
	log := logging.New(os.Stderr, level, name)
	if f.IdentityKeys == "" {
		return nil, errors.New("--identity-public-keys is required: services serve only callers the gateway vouches for")
	}
	var paths []string
	for _, p := range strings.Split(f.IdentityKeys, ",") {
		if p = strings.TrimSpace(p); p != "" {
			paths = append(paths, p)
		}
	}
	keys, err := identity.LoadPublicKeys(paths...)
	if err != nil {
		return nil, err
	}
	verifier, err := identity.NewVerifier(keys...)
	if err != nil {
		return nil, err
	}
	tel, err := telemetry.Setup(ctx, "slipway-"+name, version)
	if err != nil {
		return nil, err
	}
	grpcSrv := NewGRPC(GRPCConfig{Logger: log, Registry: tel.Registry, TracerProvider: tel.TracerProvider, Verifier: verifier})
	return &Process{Name: name, Log: log, Telemetry: tel, GRPC: grpcSrv, Group: NewGroup(log), flags: f}, nil
}

// Run serves the gRPC API and the admin endpoints until SIGINT/SIGTERM or
// ctx ends, then shuts down cleanly. checks gate /readyz.
func (p *Process) Run(ctx context.Context, checks ...Check) error {
	p.GRPC.Ready()
	if _, err := p.Group.ServeGRPC("grpc", p.flags.GRPCAddr, p.GRPC.Server); err != nil {
		return err
	}
	if _, err := p.Group.ServeHTTP("admin", p.flags.AdminAddr, AdminHandler(p.Telemetry.Registry, checks...)); err != nil {
		return err
	}
	p.Log.Info("started", "version", p.Telemetry.Version())
	err := p.Group.Run(ctx)
	if serr := p.Telemetry.Shutdown(context.WithoutCancel(ctx)); serr != nil {
		p.Log.Warn("telemetry shutdown failed", "error", serr)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", p.Name, err)
	}
	p.Log.Info("stopped")
	return nil
}
