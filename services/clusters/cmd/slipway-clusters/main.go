// Command slipway-clusters serves Slipway's clusters and credentials APIs:
// the Kubernetes clusters an organization deploys to, and the credentials
// (kept in Vault) Slipway uses to reach clusters, registries and chart
// repositories.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/slipwayhq/slipway/pkg/server"
	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
	"github.com/slipwayhq/slipway/services/clusters/internal/secrets"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	var vc secrets.Config
	err := server.Service{
		Name:      "clusters",
		Summary:   "slipway-clusters serves the clusters and credentials APIs of Slipway.",
		Version:   version,
		GRPCAddr:  "127.0.0.1:9101",
		AdminAddr: "127.0.0.1:9201",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&vc.Addr, "vault-addr", "", "Vault `URL` holding the organizations' secrets (empty: no Vault yet)")
			fs.StringVar(&vc.RoleID, "vault-role-id", "", "AppRole role `id` of this service")
			fs.StringVar(&vc.SecretID, "vault-secret-id", "", "AppRole secret `id` of this service")
		},
		Setup: func(ctx context.Context, p *server.Process) ([]server.Check, func() error, error) {
			var ready []server.Check
			if vc.Addr != "" {
				v, err := secrets.Open(ctx, vc, p.Log)
				if err != nil {
					return nil, nil, err
				}
				loginCtx, stop := context.WithCancel(ctx)
				p.Group.Add(func() error { return v.KeepLoggedIn(loginCtx) }, func(error) { stop() })
				ready = append(ready, v.Ping)
				p.Log.Info("vault connected", "addr", vc.Addr)
			}
			// The APIs answer Unimplemented until the clusters service is built.
			clustersv1.RegisterClustersServiceServer(p.GRPC, clustersv1.UnimplementedClustersServiceServer{})
			clustersv1.RegisterCredentialsServiceServer(p.GRPC, clustersv1.UnimplementedCredentialsServiceServer{})
			return ready, nil, nil
		},
	}.Main(context.Background(), os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "slipway-clusters:", err)
		os.Exit(1)
	}
}
