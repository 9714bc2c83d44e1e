// Command slipway-catalog serves Slipway's catalog API: chart repositories,
// the charts in them, and applications (chart + image + deploy targets).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"

	"github.com/slipwayhq/slipway/pkg/client"
	"github.com/slipwayhq/slipway/pkg/clusteraccess"
	"github.com/slipwayhq/slipway/pkg/outbound"
	"github.com/slipwayhq/slipway/pkg/server"
	catalogv1 "github.com/slipwayhq/slipway/proto/slipway/catalog/v1"
	"github.com/slipwayhq/slipway/services/catalog/internal/catalog"
	"github.com/slipwayhq/slipway/services/catalog/internal/fetch"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// watchOrg names the identity of the credential change stream, which
// reports every organization's changes.
const watchOrg = "slipway-catalog"

func main() {
	var (
		dsn, clustersAddr, registryAddr, releasesAddr string
		oc                                            outbound.Config
		allowHTTP                                     bool
		maxIndexBytes                                 int64
		syncWorkers                                   int
		syncPoll                                      time.Duration
	)
	err := server.Service{
		Name:      "catalog",
		Summary:   "slipway-catalog serves the catalog API of Slipway.",
		Version:   version,
		GRPCAddr:  "127.0.0.1:9103",
		AdminAddr: "127.0.0.1:9203",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&dsn, "database", "sqlite:slipway-catalog.db", "database `DSN`: sqlite:PATH (embedded) or postgres://...")
			fs.StringVar(&clustersAddr, "clusters-addr", "", "gRPC `address` of slipway-clusters: repository logins and the organizations' clusters (required)")
			fs.StringVar(&registryAddr, "registry-addr", "", "gRPC `address` of slipway-registry, which checks the images applications name (required)")
			fs.StringVar(&releasesAddr, "releases-addr", "", "gRPC `address` of slipway-releases, asked what is deployed on application targets (empty: nothing is)")
			fs.BoolVar(&allowHTTP, "allow-http-repositories", false, "accept http:// repository URLs besides https:// and oci:// (local development only: logins would cross the network in the clear)")
			fs.Int64Var(&maxIndexBytes, "max-index-bytes", catalog.DefaultMaxIndexBytes, "largest index.yaml a repository may serve, in `bytes`; larger ones fail to sync")
			fs.IntVar(&syncWorkers, "sync-workers", 4, "repositories synced at once")
			fs.DurationVar(&syncPoll, "sync-poll", 5*time.Second, "how often due syncs are looked for (besides requests to this replica)")
			oc.RegisterFlags(fs)
		},
		Setup: func(ctx context.Context, p *server.Process) ([]server.Check, func() error, error) {
			switch {
			case clustersAddr == "":
				return nil, nil, errors.New("--clusters-addr is required: repositories fetch with the organizations' logins")
			case registryAddr == "":
				return nil, nil, errors.New("--registry-addr is required: applications name images of the registry")
			case p.Caller == nil:
				return nil, nil, errors.New("--service-key is required: the catalog asks the clusters service for logins as itself")
			case maxIndexBytes <= 0:
				return nil, nil, errors.New("--max-index-bytes must be positive")
			}
			policy, err := outbound.New(oc)
			if err != nil {
				return nil, nil, err
			}
			fetcher, err := fetch.New(fetch.Options{Policy: policy, AllowHTTP: allowHTTP, UserAgent: "slipway-catalog/" + version})
			if err != nil {
				return nil, nil, err
			}
			var closers []func() error
			cleanup := func() error {
				var errs []error
				for i := len(closers) - 1; i >= 0; i-- {
					errs = append(errs, closers[i]())
				}
				return errors.Join(errs...)
			}
			dial := func(addr string) (*grpc.ClientConn, error) {
				conn, err := client.Dial(addr, client.Config{TracerProvider: p.Telemetry.TracerProvider})
				if err == nil {
					closers = append(closers, conn.Close)
				}
				return conn, err
			}
			clustersConn, err := dial(clustersAddr)
			if err != nil {
				return nil, nil, err
			}
			registryConn, err := dial(registryAddr)
			if err != nil {
				return nil, nil, errors.Join(err, cleanup())
			}
			releases := catalog.NewRemoteReleases(nil)
			if releasesAddr != "" {
				conn, err := dial(releasesAddr)
				if err != nil {
					return nil, nil, errors.Join(err, cleanup())
				}
				releases = catalog.NewRemoteReleases(conn)
			}
			store, err := catalog.OpenStore(ctx, dsn)
			if err != nil {
				return nil, nil, errors.Join(err, cleanup())
			}
			closers = append(closers, store.Close)

			access := clusteraccess.New(clustersConn, p.Caller, clusteraccess.WatchOrg(watchOrg), clusteraccess.Logger(p.Log), clusteraccess.CallTimeout(5*time.Second))
			logins := catalog.AccessLogins{Client: access}
			limits := catalog.Limits{}
			limits.Index.MaxBytes = maxIndexBytes
			syncer := catalog.NewSyncer(store, fetcher, logins, catalog.SyncOptions{Poll: syncPoll, Workers: syncWorkers, Limits: limits}, p.Log, p.Telemetry.Registry)
			runCtx, stop := context.WithCancel(ctx)
			p.Group.Add(func() error { return access.Watch(runCtx) }, func(error) { stop() })
			p.Group.Add(func() error { return syncer.Run(runCtx) }, func(error) { stop() })

			svc := catalog.New(catalog.Deps{
				Store: store, Fetcher: fetcher, Logins: logins,
				Clusters: catalog.NewRemoteClusters(clustersConn), Images: catalog.NewRemoteImages(registryConn), Releases: releases,
				Wake: syncer.Wake,
			}, catalog.Options{Limits: limits}, p.Log, p.Telemetry.Registry)
			catalogv1.RegisterCatalogServiceServer(p.GRPC, catalog.NewGRPCServer(catalog.MakeEndpoints(svc), p.Log))
			return []server.Check{store.Ping}, cleanup, nil
		},
	}.Main(context.Background(), os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "slipway-catalog:", err)
		os.Exit(1)
	}
}
