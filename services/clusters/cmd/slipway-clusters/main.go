// Command slipway-clusters serves Slipway's clusters and credentials APIs:
// the Kubernetes clusters an organization deploys to, and the credentials
// (kept in Vault) Slipway uses to reach clusters, registries and chart
// repositories.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/slipwayhq/slipway/pkg/cli"
	"github.com/slipwayhq/slipway/pkg/server"
	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "slipway-clusters:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("slipway-clusters", flag.ContinueOnError)
	common := server.RegisterFlags(fs, "127.0.0.1:9101", "127.0.0.1:9201")
	if err := cli.Parse(fs, args, "SLIPWAY_CLUSTERS", "slipway-clusters serves the clusters and credentials APIs of Slipway."); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	p, err := server.NewProcess(ctx, "clusters", version, common)
	if err != nil {
		return err
	}
	// The APIs answer Unimplemented until the clusters service is built.
	clustersv1.RegisterClustersServiceServer(p.GRPC, clustersv1.UnimplementedClustersServiceServer{})
	clustersv1.RegisterCredentialsServiceServer(p.GRPC, clustersv1.UnimplementedCredentialsServiceServer{})
	return p.Run(ctx)
}
