// Command slipway-clusters serves Slipway's clusters and credentials APIs:
// the Kubernetes clusters an organization deploys to, and the credentials
// (kept in Vault) Slipway uses to reach clusters, registries and chart
// repositories; and the internal AccessService through which the other
// services get those secrets.
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
	"github.com/slipwayhq/slipway/pkg/outbound"
	"github.com/slipwayhq/slipway/pkg/server"
	"github.com/slipwayhq/slipway/services/clusters/internal/clusters"
	"github.com/slipwayhq/slipway/services/clusters/internal/secrets"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	var (
		dsn                    string
		vc                     secrets.Config
		oc                     outbound.Config
		releasesAddr, catAddr  string
		healthEvery, pollEvery time.Duration
	)
	err := server.Service{
		Name:      "clusters",
		Summary:   "slipway-clusters serves the clusters and credentials APIs of Slipway.",
		Version:   version,
		GRPCAddr:  "127.0.0.1:9101",
		AdminAddr: "127.0.0.1:9201",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&dsn, "database", "sqlite:slipway-clusters.db", "database `DSN`: sqlite:PATH (embedded) or postgres://...")
			vc.RegisterFlags(fs)
			oc.RegisterFlags(fs)
			fs.StringVar(&releasesAddr, "releases-addr", "", "gRPC `address` of slipway-releases, asked for a cluster's releases before it is deleted (empty: not deployed)")
			fs.StringVar(&catAddr, "catalog-addr", "", "gRPC `address` of slipway-catalog, asked for the repositories using a credential before it is deleted (empty: not deployed)")
			fs.DurationVar(&healthEvery, "health-interval", time.Minute, "how often each cluster's health is checked")
			fs.DurationVar(&pollEvery, "changes-poll-interval", 2*time.Second, "how often other replicas' credential changes are read from the database")
		},
		Setup: func(ctx context.Context, p *server.Process) ([]server.Check, func() error, error) {
			if vc.Addr == "" {
				return nil, nil, errors.New("--vault-addr is required: every secret lives in Vault")
			}
			policy, err := outbound.New(oc)
			if err != nil {
				return nil, nil, err
			}
			store, err := clusters.OpenStore(ctx, dsn)
			if err != nil {
				return nil, nil, err
			}
			vault, err := secrets.Open(ctx, vc, p.Log)
			if err != nil {
				return nil, nil, errors.Join(err, store.Close())
			}
			var conns []*grpc.ClientConn
			dial := func(addr string) (grpc.ClientConnInterface, error) {
				if addr == "" {
					return nil, nil
				}
				c, err := client.Dial(addr, client.Config{TracerProvider: p.Telemetry.TracerProvider})
				if err == nil {
					conns = append(conns, c)
				}
				return c, err
			}
			rel, err := dial(releasesAddr)
			if err != nil {
				return nil, nil, err
			}
			cat, err := dial(catAddr)
			if err != nil {
				return nil, nil, err
			}
			changes := clusters.NewChanges(store, p.Log)
			svc, inner := clusters.New(store, vault, clusters.NewPolicyChecker(policy), clusters.NewRemoteDependents(rel, cat), changes, p.Log, p.Telemetry.Registry)
			clusters.NewGRPCServer(clusters.MakeEndpoints(svc), changes, p.Log).Register(p.GRPC)

			runCtx, stop := context.WithCancel(ctx)
			p.Group.Add(func() error { return vault.KeepLoggedIn(runCtx) }, func(error) { stop() })
			p.Group.Add(func() error { return changes.Run(runCtx, pollEvery) }, func(error) { stop() })
			p.Group.Add(func() error { return clusters.NewMonitor(inner, p.Log, healthEvery).Run(runCtx) }, func(error) { stop() })

			// Readiness is the database only: with Vault down, the calls
			// that need no secret keep working, and the others answer
			// UNAVAILABLE on their own.
			cleanup := func() error {
				var errs []error
				for _, c := range conns {
					errs = append(errs, c.Close())
				}
				return errors.Join(append(errs, store.Close())...)
			}
			return []server.Check{store.Ping}, cleanup, nil
		},
	}.Main(context.Background(), os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "slipway-clusters:", err)
		os.Exit(1)
	}
}
