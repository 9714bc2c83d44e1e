package server

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/slipwayhq/slipway/pkg/cli"
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
	// ServiceKeys trusts the identities other services mint for
	// themselves: "releases=/keys/releases.pub,catalog=/keys/catalog.pub".
	ServiceKeys string
	// ServiceKey is this service's own signing key, for acting on its own
	// behalf (optional: only services that call internal RPCs need one).
	ServiceKey string
}

// RegisterFlags adds the shared flags to fs with the given default addresses.
func RegisterFlags(fs *flag.FlagSet, grpcAddr, adminAddr string) *Flags {
	f := &Flags{}
	fs.StringVar(&f.GRPCAddr, "listen-grpc", grpcAddr, "`address` to serve the gRPC API on")
	fs.StringVar(&f.AdminAddr, "listen-admin", adminAddr, "`address` to serve /healthz, /readyz and /metrics on")
	fs.StringVar(&f.LogLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.StringVar(&f.IdentityKeys, "identity-public-keys", "", "comma-separated PEM `files` of the gateway's identity public keys (several while rotating; required)")
	fs.StringVar(&f.ServiceKeys, "identity-service-keys", "", "comma-separated `service=file` pairs: public keys of the services whose own identities this one accepts (a service may appear more than once while rotating)")
	fs.StringVar(&f.ServiceKey, "service-key", "", "PEM `file` of this service's own identity signing key, for calls it makes on its own behalf")
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
	// Caller mints this service's own identity (nil without --service-key).
	Caller *identity.ServiceCaller
	flags  *Flags
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
	if err := trustServices(verifier, f.ServiceKeys); err != nil {
		return nil, err
	}
	var caller *identity.ServiceCaller
	if f.ServiceKey != "" {
		key, err := identity.LoadPrivateKey(f.ServiceKey)
		if err != nil {
			return nil, err
		}
		signer, err := identity.NewServiceSigner(name, key, 0)
		if err != nil {
			return nil, err
		}
		if caller, err = identity.NewServiceCaller(signer); err != nil {
			return nil, err
		}
	}
	tel, err := telemetry.Setup(ctx, "slipway-"+name, version)
	if err != nil {
		return nil, err
	}
	grpcSrv := NewGRPC(GRPCConfig{Logger: log, Registry: tel.Registry, TracerProvider: tel.TracerProvider, Verifier: verifier})
	return &Process{Name: name, Log: log, Telemetry: tel, GRPC: grpcSrv, Group: NewGroup(log), Caller: caller, flags: f}, nil
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

// Service describes a service binary for Main.
type Service struct {
	Name      string // "registry": logs, metrics, env prefix SLIPWAY_REGISTRY_
	Summary   string // first line of --help
	Version   string
	GRPCAddr  string // default --listen-grpc
	AdminAddr string // default --listen-admin
	// Flags adds the service's own flags (optional).
	Flags func(fs *flag.FlagSet)
	// Setup builds the service and registers its APIs on p.GRPC. It returns
	// the readiness checks and a cleanup run after shutdown (may be nil).
	Setup func(ctx context.Context, p *Process) (ready []Check, cleanup func() error, err error)
}

// Main parses args (flags with environment fallbacks), sets up the process,
// calls Setup, and serves until SIGINT/SIGTERM. --help prints the flags and
// returns nil.
func (s Service) Main(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("slipway-"+s.Name, flag.ContinueOnError)
	common := RegisterFlags(fs, s.GRPCAddr, s.AdminAddr)
	if s.Flags != nil {
		s.Flags(fs)
	}
	if err := cli.Parse(fs, args, "SLIPWAY_"+strings.ToUpper(s.Name), s.Summary); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	p, err := NewProcess(ctx, s.Name, s.Version, common)
	if err != nil {
		return err
	}
	ready, cleanup, err := s.Setup(ctx, p)
	if err != nil {
		return err
	}
	if cleanup != nil {
		defer func() {
			if err := cleanup(); err != nil {
				p.Log.Warn("cleanup failed", "error", err)
			}
		}()
	}
	return p.Run(ctx, ready...)
}

// trustServices adds the "service=file,..." keys of spec to v.
func trustServices(v *identity.Verifier, spec string) error {
	byService := map[string][]string{}
	var order []string
	for _, pair := range strings.Split(spec, ",") {
		if pair = strings.TrimSpace(pair); pair == "" {
			continue
		}
		svc, path, ok := strings.Cut(pair, "=")
		if !ok || svc == "" || path == "" {
			return fmt.Errorf("--identity-service-keys: %q is not service=file", pair)
		}
		if _, seen := byService[svc]; !seen {
			order = append(order, svc)
		}
		byService[svc] = append(byService[svc], path)
	}
	for _, svc := range order {
		keys, err := identity.LoadPublicKeys(byService[svc]...)
		if err != nil {
			return err
		}
		if err := v.TrustService(svc, keys...); err != nil {
			return fmt.Errorf("--identity-service-keys: %w", err)
		}
	}
	return nil
}
