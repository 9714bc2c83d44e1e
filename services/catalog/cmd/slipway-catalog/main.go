// Command slipway-catalog serves Slipway's catalog API: chart repositories,
// the charts in them, and applications (chart + image + deploy targets).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/slipwayhq/slipway/pkg/server"
	catalogv1 "github.com/slipwayhq/slipway/proto/slipway/catalog/v1"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	err := server.Service{
		Name:      "catalog",
		Summary:   "slipway-catalog serves the catalog API of Slipway.",
		Version:   version,
		GRPCAddr:  "127.0.0.1:9103",
		AdminAddr: "127.0.0.1:9203",
		Setup: func(_ context.Context, p *server.Process) ([]server.Check, func() error, error) {
			// The API answers Unimplemented until the catalog service is built.
			catalogv1.RegisterCatalogServiceServer(p.GRPC, catalogv1.UnimplementedCatalogServiceServer{})
			return nil, nil, nil
		},
	}.Main(context.Background(), os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "slipway-catalog:", err)
		os.Exit(1)
	}
}
