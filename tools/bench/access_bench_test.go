package bench

import (
	"context"
	"fmt"
	"io"
	"testing"

	"go.opentelemetry.io/otel/trace/noop"

	"github.com/slipwayhq/slipway/pkg/client"
	"github.com/slipwayhq/slipway/pkg/clusteraccess"
	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/testenv"
	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
	"github.com/slipwayhq/slipway/tools/internal/localrun"
)

// BenchmarkClusterAccess measures how the releases service resolves a
// cluster's credentials from the real clusters service and Vault: cold
// (every call reaches the clusters service, which reads the database and
// Vault) and warm (pkg/clusteraccess answers from its cache), from 1 and 8
// callers, as p50/p99.
func BenchmarkClusterAccess(b *testing.B) {
	ctx := context.Background()
	env := testenv.Get(b, "vault", "kube", "registry")
	base, err := localrun.FreeBasePort()
	if err != nil {
		b.Fatal(err)
	}
	state := b.TempDir()
	s, err := localrun.Start(ctx, localrun.Options{
		State: state, BasePort: base, Output: io.Discard, Environment: env,
		Env: []string{"SLIPWAY_GATEWAY_RATE_PER_CALLER=0", "SLIPWAY_GATEWAY_RATE_PER_IP=0", "SLIPWAY_CLUSTERS_LOG_LEVEL=warn"},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Stop()
	if err := s.RegisterCluster(ctx, "local", env["KUBECONFIG_C1"]); err != nil {
		b.Fatal(err)
	}
	priv, _ := localrun.ServiceKeyPaths(state, "releases")
	key, err := identity.LoadPrivateKey(priv)
	if err != nil {
		b.Fatal(err)
	}
	signer, err := identity.NewServiceSigner("releases", key, 0)
	if err != nil {
		b.Fatal(err)
	}
	caller, err := identity.NewServiceCaller(signer)
	if err != nil {
		b.Fatal(err)
	}
	var addr string
	for _, c := range s.Components {
		if c.Name == "clusters" {
			addr = c.Addr
		}
	}
	conn, err := client.Dial(addr, client.Config{TracerProvider: noop.NewTracerProvider()})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()

	direct := clustersv1.NewAccessServiceClient(conn)
	cold := func() error {
		cctx, err := caller.Context(ctx, localrun.BootstrapOrg)
		if err != nil {
			return err
		}
		resp, err := direct.GetClusterAccess(cctx, &clustersv1.GetClusterAccessRequest{Org: localrun.BootstrapOrg, Cluster: "local"})
		if err == nil && resp.GetAccess().GetServer() == "" {
			err = fmt.Errorf("no server in %v", resp)
		}
		return err
	}
	cached := clusteraccess.New(conn, caller)
	warm := func() error {
		a, err := cached.ClusterAccess(ctx, localrun.BootstrapOrg, "local")
		if err == nil && a.GetServer() == "" {
			err = fmt.Errorf("no server in %v", a)
		}
		return err
	}
	for _, callers := range []int{1, 8} {
		b.Run(fmt.Sprintf("cold/callers=%d", callers), func(b *testing.B) { measure(b, callers, cold) })
		b.Run(fmt.Sprintf("warm/callers=%d", callers), func(b *testing.B) { measure(b, callers, warm) })
	}
}
