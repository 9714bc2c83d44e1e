// Command slipway-releases serves Slipway's releases and operations APIs:
// Helm releases on the organization's clusters, and the durable operations
// that install, upgrade, roll back and uninstall them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/slipwayhq/slipway/pkg/cli"
	"github.com/slipwayhq/slipway/pkg/server"
	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "slipway-releases:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("slipway-releases", flag.ContinueOnError)
	common := server.RegisterFlags(fs, "127.0.0.1:9104", "127.0.0.1:9204")
	if err := cli.Parse(fs, args, "SLIPWAY_RELEASES", "slipway-releases serves the releases and operations APIs of Slipway."); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	p, err := server.NewProcess(ctx, "releases", version, common)
	if err != nil {
		return err
	}
	// The APIs answer Unimplemented until the releases service is built.
	releasesv1.RegisterReleasesServiceServer(p.GRPC, releasesv1.UnimplementedReleasesServiceServer{})
	releasesv1.RegisterOperationsServiceServer(p.GRPC, releasesv1.UnimplementedOperationsServiceServer{})
	return p.Run(ctx)
}
