// Command slipway-registry serves Slipway's registry API: immutable,
// digest-pinned container images per organization.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/slipwayhq/slipway/pkg/client"
	"github.com/slipwayhq/slipway/pkg/clusteraccess"
	"github.com/slipwayhq/slipway/pkg/outbound"
	"github.com/slipwayhq/slipway/pkg/server"
	registryv1 "github.com/slipwayhq/slipway/proto/slipway/registry/v1"
	"github.com/slipwayhq/slipway/services/registry/internal/registry"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// watchOrg names the identity of the credential change stream, which
// reports every organization's changes.
const watchOrg = "slipway-registry"

func main() {
	var (
		dsn, clustersAddr, releasesAddr string
		oc                              outbound.Config
		opts                            registry.Options
	)
	err := server.Service{
		Name:      "registry",
		Summary:   "slipway-registry serves the image registry API of Slipway.",
		Version:   version,
		GRPCAddr:  "127.0.0.1:9102",
		AdminAddr: "127.0.0.1:9202",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&dsn, "database", "sqlite:slipway-registry.db", "database `DSN`: sqlite:PATH (embedded) or postgres://...")
			fs.StringVar(&clustersAddr, "clusters-addr", "", "gRPC `address` of slipway-clusters, which holds the organizations' registry logins (required)")
			fs.StringVar(&releasesAddr, "releases-addr", "", "gRPC `address` of slipway-releases, asked where images run and before one is deleted (empty: not deployed)")
			fs.BoolVar(&opts.AcceptUnresolved, "accept-unresolved", false, "record images whose reference cannot be resolved to a digest (air-gapped registries) instead of refusing them")
			oc.RegisterFlags(fs)
		},
		Setup: func(ctx context.Context, p *server.Process) ([]server.Check, func() error, error) {
			if clustersAddr == "" {
				return nil, nil, errors.New("--clusters-addr is required: images resolve with the organization's registry logins")
			}
			if p.Caller == nil {
				return nil, nil, errors.New("--service-key is required: the registry asks the clusters service for logins as itself")
			}
			policy, err := outbound.New(oc)
			if err != nil {
				return nil, nil, err
			}
			conn, err := client.Dial(clustersAddr, client.Config{TracerProvider: p.Telemetry.TracerProvider})
			if err != nil {
				return nil, nil, err
			}
			store, err := registry.OpenStore(ctx, dsn)
			if err != nil {
				return nil, nil, errors.Join(err, conn.Close())
			}
			// A create waits at most 5 s for the clusters service.
			access := clusteraccess.New(conn, p.Caller, clusteraccess.WatchOrg(watchOrg), clusteraccess.Logger(p.Log), clusteraccess.CallTimeout(5*time.Second))
			watchCtx, stop := context.WithCancel(ctx)
			p.Group.Add(func() error { return access.Watch(watchCtx) }, func(error) { stop() })

			closers := []func() error{store.Close, conn.Close}
			deployments := registry.NewRemoteDeployments(nil)
			if releasesAddr != "" {
				rc, err := client.Dial(releasesAddr, client.Config{TracerProvider: p.Telemetry.TracerProvider})
				if err != nil {
					return nil, nil, errors.Join(err, store.Close(), conn.Close())
				}
				closers = append(closers, rc.Close)
				deployments = registry.NewRemoteDeployments(rc)
			}
			resolver := registry.NewRemoteResolver(registry.AccessLogins{Client: access}, policy)
			svc := registry.New(store, resolver, deployments, opts, p.Log, p.Telemetry.Registry)
			registryv1.RegisterRegistryServiceServer(p.GRPC, registry.NewGRPCServer(registry.MakeEndpoints(svc), p.Log))
			cleanup := func() error {
				var errs []error
				for _, c := range closers {
					errs = append(errs, c())
				}
				return errors.Join(errs...)
			}
			return []server.Check{store.Ping}, cleanup, nil
		},
	}.Main(context.Background(), os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "slipway-registry:", err)
		os.Exit(1)
	}
}
