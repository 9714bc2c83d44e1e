// Command slipway-gateway is Slipway's REST edge: it authenticates callers,
// authorizes them in the organization a request names, and forwards the
// request over gRPC to the service that owns it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/slipwayhq/slipway/gateway/internal/authn"
	"github.com/slipwayhq/slipway/gateway/internal/edge"
	"github.com/slipwayhq/slipway/gateway/internal/oidc"
	"github.com/slipwayhq/slipway/gateway/internal/orgs"
	"github.com/slipwayhq/slipway/gateway/internal/store"
	"github.com/slipwayhq/slipway/pkg/cli"
	"github.com/slipwayhq/slipway/pkg/client"
	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/logging"
	"github.com/slipwayhq/slipway/pkg/server"
	"github.com/slipwayhq/slipway/pkg/telemetry"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "slipway-gateway:", err)
		os.Exit(1)
	}
}

type flags struct {
	httpAddr, adminAddr, logLevel, keyFile, dsn string
	oidcIssuer, oidcAudience                    string
	bootstrapOrg, bootstrapToken, bootstrapFile string
	corsOrigins                                 string
	limits                                      edge.Limits
	addrs                                       map[string]*string
}

func parse(args []string) (*flags, error) {
	f := &flags{}
	fs := flag.NewFlagSet("slipway-gateway", flag.ContinueOnError)
	fs.StringVar(&f.httpAddr, "listen-http", "127.0.0.1:8080", "`address` to serve the REST API on")
	fs.StringVar(&f.adminAddr, "listen-admin", "127.0.0.1:9200", "`address` to serve /healthz, /readyz and /metrics on")
	fs.StringVar(&f.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.StringVar(&f.keyFile, "identity-private-key", "", "PEM `file` of the key that signs internal identities (required)")
	fs.StringVar(&f.dsn, "database", "sqlite:slipway-gateway.db", "database `DSN` of organizations, members, tokens and audit: sqlite:PATH or postgres://...")
	fs.StringVar(&f.oidcIssuer, "oidc-issuer", "", "OIDC issuer `URL` whose bearer JWTs are accepted (empty: API tokens only)")
	fs.StringVar(&f.oidcAudience, "oidc-audience", "slipway", "`audience` (client id) OIDC tokens must be issued for")
	fs.StringVar(&f.bootstrapOrg, "bootstrap-org", "default", "`name` of the organization created on first start")
	fs.StringVar(&f.bootstrapToken, "bootstrap-token", "", "owner API `token` (slp_...) to create on first start instead of a generated one")
	fs.StringVar(&f.bootstrapFile, "bootstrap-token-file", "", "`file` holding the bootstrap token: read when it exists, else the generated token is written there (0600)")
	fs.StringVar(&f.corsOrigins, "cors-origins", "", "comma-separated browser `origins` allowed to call the API (empty: no CORS)")
	fs.Float64Var(&f.limits.PerIP, "rate-per-ip", 100, "requests per second per client IP (0: unlimited)")
	fs.IntVar(&f.limits.PerIPBurst, "rate-per-ip-burst", 200, "burst of requests per client IP")
	fs.Float64Var(&f.limits.PerCaller, "rate-per-caller", 50, "requests per second per token or user (0: unlimited)")
	fs.IntVar(&f.limits.PerCallerBurst, "rate-per-caller-burst", 100, "burst of requests per token or user")
	fs.BoolVar(&f.limits.TrustForwardedFor, "trust-forwarded-for", false, "take the client IP from the rightmost X-Forwarded-For address (only behind a proxy that appends it)")
	f.addrs = map[string]*string{
		"clusters": fs.String("clusters-addr", "127.0.0.1:9101", "gRPC `target` of the clusters service"),
		"registry": fs.String("registry-addr", "127.0.0.1:9102", "gRPC `target` of the registry service"),
		"catalog":  fs.String("catalog-addr", "127.0.0.1:9103", "gRPC `target` of the catalog service"),
		"releases": fs.String("releases-addr", "127.0.0.1:9104", "gRPC `target` of the releases service"),
	}
	if err := cli.Parse(fs, args, "SLIPWAY_GATEWAY", "slipway-gateway serves Slipway's organization-scoped REST API."); err != nil {
		return nil, err
	}
	if f.keyFile == "" {
		return nil, errors.New("--identity-private-key is required")
	}
	return f, nil
}

func run(ctx context.Context, args []string) error {
	f, err := parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	level, err := logging.ParseLevel(f.logLevel)
	if err != nil {
		return err
	}
	log := logging.New(os.Stderr, level, "gateway")
	key, err := identity.LoadPrivateKey(f.keyFile)
	if err != nil {
		return err
	}
	tel, err := telemetry.Setup(ctx, "slipway-gateway", version)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, f.dsn)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Warn("close database failed", "error", err)
		}
	}()

	conns := map[string]*grpc.ClientConn{}
	for name, addr := range f.addrs {
		c, err := client.Dial(*addr, client.Config{TracerProvider: tel.TracerProvider})
		if err != nil {
			return err
		}
		defer c.Close()
		conns[name] = c
	}

	var verifier authn.OIDCVerifier
	if f.oidcIssuer != "" {
		v, err := oidc.New(ctx, oidc.Config{IssuerURL: f.oidcIssuer, Audience: f.oidcAudience})
		if err != nil {
			return err
		}
		verifier = v
	}
	svc := orgs.New(st, orgs.NewServiceDependents(conns["clusters"], conns["releases"]))
	if err := bootstrap(ctx, log, svc, f); err != nil {
		return err
	}
	h, err := edge.NewHandler(ctx, edge.Config{
		Log:    log,
		Signer: identity.NewSigner(key, identity.DefaultTTL),
		Authn:  authn.New(st, verifier, log),
		Audit:  st,
		Conns: edge.Conns{
			Clusters: conns["clusters"], Registry: conns["registry"],
			Catalog: conns["catalog"], Releases: conns["releases"],
		},
		InProcess:   []edge.Register{orgs.NewServer(svc, log).Register},
		Limits:      f.limits,
		CORSOrigins: splitList(f.corsOrigins),
		Metrics:     tel.Registry,
	})
	if err != nil {
		return err
	}

	g := server.NewGroup(log)
	if _, err := g.ServeHTTP("rest", f.httpAddr, h); err != nil {
		return err
	}
	checks := []server.Check{st.Ping}
	for _, c := range conns {
		checks = append(checks, serving(c))
	}
	if _, err := g.ServeHTTP("admin", f.adminAddr, server.AdminHandler(tel.Registry, checks...)); err != nil {
		return err
	}
	log.Info("started", "version", version, "oidc", f.oidcIssuer != "")
	err = g.Run(ctx)
	if serr := tel.Shutdown(context.WithoutCancel(ctx)); serr != nil {
		log.Warn("telemetry shutdown failed", "error", serr)
	}
	if err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// bootstrap creates the first org and owner token on an empty store. The
// secret is printed once to stdout (never logged), or written to the token
// file, or taken from it or from --bootstrap-token.
func bootstrap(ctx context.Context, log *slog.Logger, svc *orgs.Service, f *flags) error {
	secret := f.bootstrapToken
	fromFile := false
	if secret == "" && f.bootstrapFile != "" {
		b, err := os.ReadFile(f.bootstrapFile)
		switch {
		case err == nil:
			secret, fromFile = strings.TrimSpace(string(b)), true
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("read bootstrap token file: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	got, created, err := svc.Bootstrap(ctx, f.bootstrapOrg, secret)
	if err != nil || !created {
		return err
	}
	log.Info("bootstrapped", "org", f.bootstrapOrg)
	switch {
	case f.bootstrapToken != "" || fromFile:
		// The operator supplied it: nothing to show.
	case f.bootstrapFile != "":
		if err := os.WriteFile(f.bootstrapFile, []byte(got+"\n"), 0o600); err != nil {
			return fmt.Errorf("write bootstrap token file: %w", err)
		}
		log.Info("bootstrap owner token written", "file", f.bootstrapFile)
	default:
		fmt.Printf("\nSlipway bootstrap: organization %q created.\nOwner API token (shown once, store it now):\n\n  %s\n\n", f.bootstrapOrg, got)
	}
	return nil
}

// serving is ready when the service behind conn reports SERVING.
func serving(conn *grpc.ClientConn) server.Check {
	hc := healthpb.NewHealthClient(conn)
	return func(ctx context.Context) error {
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("%s is %s", conn.Target(), resp.GetStatus())
		}
		return nil
	}
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
