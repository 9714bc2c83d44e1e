// Command slipway-clusters serves Slipway's clusters and credentials APIs:
// the Kubernetes clusters an organization deploys to, and the credentials
// (kept in Vault) Slipway uses to reach clusters, registries and chart
// repositories.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/slipwayhq/slipway/pkg/server"
	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	err := server.Service{
		Name:      "clusters",
		Summary:   "slipway-clusters serves the clusters and credentials APIs of Slipway.",
		Version:   version,
		GRPCAddr:  "127.0.0.1:9101",
		AdminAddr: "127.0.0.1:9201",
		Setup: func(_ context.Context, p *server.Process) ([]server.Check, func() error, error) {
			// The APIs answer Unimplemented until the clusters service is built.
			clustersv1.RegisterClustersServiceServer(p.GRPC, clustersv1.UnimplementedClustersServiceServer{})
			clustersv1.RegisterCredentialsServiceServer(p.GRPC, clustersv1.UnimplementedCredentialsServiceServer{})
			return nil, nil, nil
		},
	}.Main(context.Background(), os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "slipway-clusters:", err)
		os.Exit(1)
	}
}
