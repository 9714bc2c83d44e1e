// Command slipway-gateway is Slipway's REST edge: it authenticates callers,
// authorizes them in the organization a request names, and forwards the
// request over gRPC to the service that owns it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/slipwayhq/slipway/gateway/internal/edge"
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

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("slipway-gateway", flag.ContinueOnError)
	httpAddr := fs.String("listen-http", "127.0.0.1:8080", "`address` to serve the REST API on")
	adminAddr := fs.String("listen-admin", "127.0.0.1:9200", "`address` to serve /healthz, /readyz and /metrics on")
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn or error")
	keyFile := fs.String("identity-private-key", "", "PEM `file` of the key that signs internal identities (required)")
	addrs := map[string]*string{
		"clusters": fs.String("clusters-addr", "127.0.0.1:9101", "gRPC `target` of the clusters service"),
		"registry": fs.String("registry-addr", "127.0.0.1:9102", "gRPC `target` of the registry service"),
		"catalog":  fs.String("catalog-addr", "127.0.0.1:9103", "gRPC `target` of the catalog service"),
		"releases": fs.String("releases-addr", "127.0.0.1:9104", "gRPC `target` of the releases service"),
	}
	if err := cli.Parse(fs, args, "SLIPWAY_GATEWAY", "slipway-gateway serves Slipway's organization-scoped REST API."); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	level, err := logging.ParseLevel(*logLevel)
	if err != nil {
		return err
	}
	log := logging.New(os.Stderr, level, "gateway")
	if *keyFile == "" {
		return errors.New("--identity-private-key is required")
	}
	key, err := identity.LoadPrivateKey(*keyFile)
	if err != nil {
		return err
	}
	tel, err := telemetry.Setup(ctx, "slipway-gateway", version)
	if err != nil {
		return err
	}

	conns := map[string]*grpc.ClientConn{}
	for name, addr := range addrs {
		c, err := client.Dial(*addr, client.Config{TracerProvider: tel.TracerProvider})
		if err != nil {
			return err
		}
		defer c.Close()
		conns[name] = c
	}
	h, err := edge.NewHandler(ctx, edge.Config{
		Log:    log,
		Signer: identity.NewSigner(key, identity.DefaultTTL),
		Conns: edge.Conns{
			Clusters: conns["clusters"], Registry: conns["registry"],
			Catalog: conns["catalog"], Releases: conns["releases"],
		},
	})
	if err != nil {
		return err
	}

	g := server.NewGroup(log)
	if _, err := g.ServeHTTP("rest", *httpAddr, h); err != nil {
		return err
	}
	var checks []server.Check
	for _, c := range conns {
		checks = append(checks, serving(c))
	}
	if _, err := g.ServeHTTP("admin", *adminAddr, server.AdminHandler(tel.Registry, checks...)); err != nil {
		return err
	}
	log.Info("started", "version", version)
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
