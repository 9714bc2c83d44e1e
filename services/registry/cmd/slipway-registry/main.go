// Command slipway-registry serves Slipway's registry API: immutable,
// digest-pinned container images per organization.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/slipwayhq/slipway/pkg/server"
	registryv1 "github.com/slipwayhq/slipway/proto/slipway/registry/v1"
	"github.com/slipwayhq/slipway/services/registry/internal/registry"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	var dsn string
	err := server.Service{
		Name:      "registry",
		Summary:   "slipway-registry serves the image registry API of Slipway.",
		Version:   version,
		GRPCAddr:  "127.0.0.1:9102",
		AdminAddr: "127.0.0.1:9202",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&dsn, "database", "sqlite:slipway-registry.db", "database `DSN`: sqlite:PATH (embedded) or postgres://...")
		},
		Setup: func(ctx context.Context, p *server.Process) ([]server.Check, func() error, error) {
			store, err := registry.OpenStore(ctx, dsn)
			if err != nil {
				return nil, nil, err
			}
			svc := registry.New(store, p.Log, p.Telemetry.Registry)
			registryv1.RegisterRegistryServiceServer(p.GRPC, registry.NewGRPCServer(registry.MakeEndpoints(svc), p.Log))
			return []server.Check{store.Ping}, store.Close, nil
		},
	}.Main(context.Background(), os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "slipway-registry:", err)
		os.Exit(1)
	}
}
