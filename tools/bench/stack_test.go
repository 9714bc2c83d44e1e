package bench

import (
	"context"
	"io"
	"testing"

	"github.com/slipwayhq/slipway/tools/internal/devenv/kube"
	"github.com/slipwayhq/slipway/tools/internal/localrun"
)

// benchEnv is what every benchmark's stack runs with: no rate limits
// (they would measure themselves), warnings only in the logs, and the
// catalog polling its first sync every 500 ms.
var benchEnv = []string{"SLIPWAY_GATEWAY_RATE_PER_CALLER=0", "SLIPWAY_GATEWAY_RATE_PER_IP=0", "SLIPWAY_CATALOG_SYNC_POLL=500ms",
	"SLIPWAY_GATEWAY_LOG_LEVEL=warn", "SLIPWAY_RELEASES_LOG_LEVEL=warn", "SLIPWAY_CATALOG_LOG_LEVEL=warn",
	"SLIPWAY_CLUSTERS_LOG_LEVEL=warn", "SLIPWAY_REGISTRY_LOG_LEVEL=warn"}

// benchStack starts the five processes on env for b (stopped when b
// ends), registers each of clusters under its own name, and returns the
// stack, the bootstrap org's API root and its owner token.
func benchStack(b *testing.B, env map[string]string, clusters ...string) (s *localrun.Stack, api, token string) {
	b.Helper()
	return benchStackWith(b, env, localrun.Options{}, clusters...)
}

// benchStackWith is benchStack with o's Replicas, Databases, Env and
// Output (the processes' logs; none when nil).
func benchStackWith(b *testing.B, env map[string]string, o localrun.Options, clusters ...string) (s *localrun.Stack, api, token string) {
	b.Helper()
	ctx := context.Background()
	base, err := localrun.FreeBasePort()
	if err != nil {
		b.Fatal(err)
	}
	if o.Output == nil {
		o.Output = io.Discard
	}
	o.State, o.BasePort, o.Environment, o.Env = b.TempDir(), base, env, append(benchEnv, o.Env...)
	s, err = localrun.Start(ctx, o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Stop)
	for _, c := range clusters {
		if err := s.RegisterCluster(ctx, c, env[kube.EnvKubeconfig(c)]); err != nil {
			b.Fatal(err)
		}
	}
	if token, err = s.BootstrapToken(); err != nil {
		b.Fatal(err)
	}
	return s, s.GatewayURL() + "/api/v1/orgs/" + localrun.BootstrapOrg, token
}
