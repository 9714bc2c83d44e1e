// Command slipway-releases serves Slipway's releases and operations APIs:
// Helm releases on the organization's clusters, and the durable operations
// that install, upgrade, roll back and uninstall them.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/slipwayhq/slipway/pkg/server"
	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	err := server.Service{
		Name:      "releases",
		Summary:   "slipway-releases serves the releases and operations APIs of Slipway.",
		Version:   version,
		GRPCAddr:  "127.0.0.1:9104",
		AdminAddr: "127.0.0.1:9204",
		Setup: func(_ context.Context, p *server.Process) ([]server.Check, func() error, error) {
			// The APIs answer Unimplemented until the releases service is built.
			releasesv1.RegisterReleasesServiceServer(p.GRPC, releasesv1.UnimplementedReleasesServiceServer{})
			releasesv1.RegisterOperationsServiceServer(p.GRPC, releasesv1.UnimplementedOperationsServiceServer{})
			return nil, nil, nil
		},
	}.Main(context.Background(), os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "slipway-releases:", err)
		os.Exit(1)
	}
}
