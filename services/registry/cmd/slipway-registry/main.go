// Command slipway-registry serves Slipway's registry API: immutable,
// digest-pinned container images per organization.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/slipwayhq/slipway/pkg/cli"
	"github.com/slipwayhq/slipway/pkg/server"
	registryv1 "github.com/slipwayhq/slipway/proto/slipway/registry/v1"
	"github.com/slipwayhq/slipway/services/registry/internal/registry"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "slipway-registry:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("slipway-registry", flag.ContinueOnError)
	common := server.RegisterFlags(fs, "127.0.0.1:9102", "127.0.0.1:9202")
	dsn := fs.String("database", "sqlite:slipway-registry.db", "database `DSN`: sqlite:PATH (embedded) or postgres://...")
	if err := cli.Parse(fs, args, "SLIPWAY_REGISTRY", "slipway-registry serves the image registry API of Slipway."); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	p, err := server.NewProcess(ctx, "registry", version, common)
	if err != nil {
		return err
	}
	store, err := registry.OpenStore(ctx, *dsn)
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			p.Log.Warn("close database failed", "error", err)
		}
	}()
	svc := registry.New(store, p.Log, p.Telemetry.Registry)
	registryv1.RegisterRegistryServiceServer(p.GRPC, registry.NewGRPCServer(registry.MakeEndpoints(svc), p.Log))
	return p.Run(ctx, store.Ping)
}
