// Command slipway-catalog serves Slipway's catalog API: chart
// repositories, the charts in them, and applications (chart + image +
// deploy targets).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/slipwayhq/slipway/pkg/cli"
	"github.com/slipwayhq/slipway/pkg/server"
	catalogv1 "github.com/slipwayhq/slipway/proto/slipway/catalog/v1"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "slipway-catalog:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("slipway-catalog", flag.ContinueOnError)
	common := server.RegisterFlags(fs, "127.0.0.1:9103", "127.0.0.1:9203")
	if err := cli.Parse(fs, args, "SLIPWAY_CATALOG", "slipway-catalog serves the catalog API of Slipway."); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	p, err := server.NewProcess(ctx, "catalog", version, common)
	if err != nil {
		return err
	}
	// The API answers Unimplemented until the catalog service is built.
	catalogv1.RegisterCatalogServiceServer(p.GRPC, catalogv1.UnimplementedCatalogServiceServer{})
	return p.Run(ctx)
}
