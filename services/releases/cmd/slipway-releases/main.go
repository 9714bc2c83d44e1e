// Command slipway-releases serves Slipway's releases and operations APIs:
// Helm releases on the organization's clusters, and the durable operations
// that install, upgrade, roll back and uninstall them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"

	"github.com/slipwayhq/slipway/pkg/client"
	"github.com/slipwayhq/slipway/pkg/clusteraccess"
	"github.com/slipwayhq/slipway/pkg/outbound"
	"github.com/slipwayhq/slipway/pkg/server"
	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
	"github.com/slipwayhq/slipway/services/releases/internal/helmexec"
	"github.com/slipwayhq/slipway/services/releases/internal/ops"
	"github.com/slipwayhq/slipway/services/releases/internal/releases"
	"github.com/slipwayhq/slipway/services/releases/internal/status"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// watchOrg names the identity of the credential change stream.
const watchOrg = "slipway-releases"

func main() {
	var (
		dsn, clustersAddr, catalogAddr, registryAddr string
		oc                                           outbound.Config
		wo                                           releases.WorkerOptions
		so                                           releases.SweeperOptions
		do                                           releases.DriftCheckOptions
		instOpts                                     releases.InstanceOptions
	)
	err := server.Service{
		Name:      "releases",
		Summary:   "slipway-releases serves the releases and operations APIs of Slipway.",
		Version:   version,
		GRPCAddr:  "127.0.0.1:9104",
		AdminAddr: "127.0.0.1:9204",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&dsn, "database", "sqlite:slipway-releases.db", "database `DSN`: sqlite:PATH (embedded) or postgres://... (several replicas)")
			fs.StringVar(&clustersAddr, "clusters-addr", "", "gRPC `address` of slipway-clusters, which holds the clusters' credentials (required)")
			fs.StringVar(&catalogAddr, "catalog-addr", "", "gRPC `address` of slipway-catalog, which holds the charts and applications (required)")
			fs.StringVar(&registryAddr, "registry-addr", "", "gRPC `address` of slipway-registry, which holds the images applications deploy (required)")
			fs.IntVar(&wo.Workers, "workers", 16, "operations run at once by this replica")
			fs.DurationVar(&wo.Lease, "operation-lease", time.Minute, "how long a replica holds an operation without a heartbeat before another may take it over")
			fs.DurationVar(&so.Every, "sweep-interval", time.Minute, "how often the clusters are looked at for releases Helm left pending with no writer")
			fs.DurationVar(&so.StuckAfter, "stuck-after", 5*time.Minute, "how long a revision must have been pending, with no Slipway operation on its release, before it is recovered (Helm's default timeout is 5m)")
			fs.DurationVar(&do.Every, "drift-interval", 10*time.Minute, "how often every deployed release is compared with its cluster for drift; 0 turns the periodic check off")
			fs.BoolVar(&do.Correct, "drift-correct", false, "queue a correct-drift operation for each release the periodic check finds drifted")
			fs.DurationVar(&instOpts.MinTTL, "instance-min-ttl", releases.DefaultInstanceMinTTL, "the shortest TTL an instance may be launched or kept alive with (at most 1h)")
			fs.IntVar(&instOpts.PerOrg, "instances-per-org", releases.DefaultInstancesOrg, "how many instances not yet deleted an organization may have")
			fs.DurationVar(&instOpts.CullEvery, "instance-cull-interval", time.Minute, "how often expired instances are looked for and deleted")
			oc.RegisterFlags(fs)
		},
		Setup: func(ctx context.Context, p *server.Process) ([]server.Check, func() error, error) {
			switch {
			case clustersAddr == "":
				return nil, nil, errors.New("--clusters-addr is required: releases reach clusters with their credentials")
			case catalogAddr == "":
				return nil, nil, errors.New("--catalog-addr is required: releases deploy the catalog's charts")
			case registryAddr == "":
				return nil, nil, errors.New("--registry-addr is required: applications deploy the registry's images")
			case p.Caller == nil:
				return nil, nil, errors.New("--service-key is required: operations run on the releases service's own behalf")
			}
			policy, err := outbound.New(oc)
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
			catalogConn, err := dial(catalogAddr)
			if err != nil {
				return nil, nil, errors.Join(err, cleanup())
			}
			registryConn, err := dial(registryAddr)
			if err != nil {
				return nil, nil, errors.Join(err, cleanup())
			}
			store, err := ops.Open(ctx, dsn)
			if err != nil {
				return nil, nil, errors.Join(err, cleanup())
			}
			closers = append(closers, store.Close)
			ledger, err := releases.OpenLedger(ctx, dsn)
			if err != nil {
				return nil, nil, errors.Join(err, cleanup())
			}
			closers = append(closers, ledger.Close)

			access := clusteraccess.New(clustersConn, p.Caller, clusteraccess.WatchOrg(watchOrg), clusteraccess.Logger(p.Log), clusteraccess.CallTimeout(5*time.Second))
			exec := helmexec.New(helmexec.Options{Dial: policy.DialContext(&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}), Log: p.Log})
			wo.TracerProvider = p.Telemetry.TracerProvider
			worker := releases.NewWorker(store, ledger, exec, access, releases.NewCatalogCharts(catalogConn), p.Caller, wo, p.Log)
			runCtx, stop := context.WithCancel(ctx)
			p.Group.Add(func() error { return access.Watch(runCtx) }, func(error) { stop() })
			p.Group.Add(func() error { return worker.Run(runCtx) }, func(error) { stop() })
			sweeper := releases.NewSweeper(store, ledger, exec, access, p.Caller, so, worker.Wake, p.Log)
			p.Group.Add(func() error { return sweeper.Run(runCtx) }, func(error) { stop() })
			if do.Every > 0 {
				checker := releases.NewDriftChecker(store, ledger, exec, access, p.Caller, do, worker.Wake, p.Log)
				p.Group.Add(func() error { return checker.Run(runCtx) }, func(error) { stop() })
			}

			svc := releases.NewService(store, ledger, access, releases.NewCatalogApplications(catalogConn), releases.NewRegistryImages(registryConn), p.Caller, worker.Wake, p.Log)
			instances, err := releases.NewInstances(worker, releases.NewCatalogApplications(catalogConn), releases.NewRegistryImages(registryConn), instOpts, worker.Wake, p.Log)
			if err != nil {
				return nil, nil, errors.Join(err, cleanup())
			}
			p.Group.Add(func() error { return instances.Run(runCtx) }, func(error) { stop() })
			// Live status: informers per cluster namespace, on the executor's clients.
			statusCache := status.New(status.Options{Clients: exec.Clientset, Log: p.Log})
			p.Group.Add(func() error { return statusCache.Run(runCtx) }, func(error) { stop() })
			srv := releases.NewGRPCServer(svc, p.Log).ServeStatus(releases.NewStatusService(svc, access, statusCache)).
				ServeLogs(releases.NewLogService(svc, access, statusCache, exec.Clientset, releases.LogLimits{}, p.Log)).
				ServePlans(releases.NewPlanner(worker)).
				ServeDrift(releases.NewDriftService(svc, ledger, access, exec)).
				ServeHealth(releases.NewHealthService(svc, access, statusCache, releases.NewCatalogApplications(catalogConn), exec.Metrics, exec.HTTP))
			srv.ServeInstances(instances)
			releasesv1.RegisterReleasesServiceServer(p.GRPC, srv)
			releasesv1.RegisterOperationsServiceServer(p.GRPC, srv)
			return []server.Check{store.Ping, ledger.Ping}, cleanup, nil
		},
	}.Main(context.Background(), os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "slipway-releases:", err)
		os.Exit(1)
	}
}
