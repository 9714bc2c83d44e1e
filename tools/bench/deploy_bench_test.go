package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/cli"

	"github.com/slipwayhq/slipway/pkg/testenv"
	"github.com/slipwayhq/slipway/tools/internal/devenv/chartrepo"
	"github.com/slipwayhq/slipway/tools/internal/devenv/kube"
	"github.com/slipwayhq/slipway/tools/internal/localrun"
)

// restCall sends one REST request and decodes the answer into out.
func restCall(b *testing.B, method, url, token string, body any, out any) int {
	b.Helper()
	var r io.Reader
	if body != nil {
		buf, _ := json.Marshal(body)
		r = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// BenchmarkDeploy compares, in one run against the same devstack cluster,
// an upgrade of a small chart (configmap-only, no wait) through Slipway's
// REST API, from the request to the operation's success, with the same
// upgrade made directly with the Helm SDK's action.Upgrade. It reports
// p50/p99 of each and of Slipway's acknowledgement (request to 202); the
// difference of the p50s is what Slipway adds (goal: at most 10% or 100 ms).
func BenchmarkDeploy(b *testing.B) {
	ctx := context.Background()
	env := testenv.Get(b, "vault", "kube", "registry", "chartrepo")
	s, api, token := benchStack(b, env, "c1")
	if err := s.SeedCatalog(ctx, env); err != nil {
		b.Fatal(err)
	}
	awaitSync(b, api, token)
	ns := fmt.Sprintf("bench-%d", time.Now().UnixNano()%1e6)
	chartRef := map[string]any{"catalog": map[string]any{"repository": localrun.LocalRepository, "chart": "configmap-only", "version": "1.0.0"}}
	await := func(id string) string {
		for {
			var op struct{ Operation struct{ State string } }
			restCall(b, http.MethodGet, api+"/operations/"+id, token, nil, &op)
			if st := op.Operation.State; strings.HasSuffix(st, "SUCCEEDED") || strings.HasSuffix(st, "FAILED") || strings.HasSuffix(st, "CANCELLED") {
				return st
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	var created struct{ Operation struct{ ID string } }
	restCall(b, http.MethodPost, api+"/clusters/c1/deployments", token, map[string]any{"name": "slipway", "namespace": ns, "chart": chartRef,
		"options": map[string]any{"create_namespace": true}}, &created)
	if st := await(created.Operation.ID); !strings.HasSuffix(st, "SUCCEEDED") {
		b.Fatalf("install: %s", st)
	}

	// The raw SDK baseline: its own release in the same namespace.
	settings := cli.New()
	settings.KubeConfig = env[kube.EnvKubeconfig("c1")]
	settings.SetNamespace(ns)
	settings.QPS, settings.BurstLimit = 500, 1000
	cfg := new(action.Configuration)
	if err := cfg.Init(settings.RESTClientGetter(), ns, "secret", func(string, ...any) {}); err != nil {
		b.Fatal(err)
	}
	ch, err := loader.LoadDir(filepath.Join(chartrepo.FixtureCharts(), "configmap-only"))
	if err != nil {
		b.Fatal(err)
	}
	inst := action.NewInstall(cfg)
	inst.ReleaseName, inst.Namespace = "sdk", ns
	if _, err := inst.Run(ch, nil); err != nil {
		b.Fatal(err)
	}

	b.Run("slipway", func(b *testing.B) {
		var took, acked []time.Duration
		for i := 0; b.Loop(); i++ {
			start := time.Now()
			var op struct{ Operation struct{ ID string } }
			code := restCall(b, http.MethodPut, api+"/clusters/c1/deployments/slipway", token, map[string]any{"namespace": ns, "chart": chartRef,
				"values_yaml": fmt.Sprintf("n: %d\n", i)}, &op)
			acked = append(acked, time.Since(start))
			if code != http.StatusAccepted {
				b.Fatalf("upgrade: HTTP %d", code)
			}
			if st := await(op.Operation.ID); !strings.HasSuffix(st, "SUCCEEDED") {
				b.Fatalf("upgrade: %s", st)
			}
			took = append(took, time.Since(start))
		}
		report(b, took, "")
		report(b, acked, "ack-")
	})
	b.Run("sdk", func(b *testing.B) {
		var took []time.Duration
		for i := 0; b.Loop(); i++ {
			start := time.Now()
			up := action.NewUpgrade(cfg)
			up.Namespace, up.MaxHistory = ns, 10
			if _, err := up.Run("sdk", ch, map[string]any{"n": i}); err != nil {
				b.Fatal(err)
			}
			took = append(took, time.Since(start))
		}
		report(b, took, "")
	})
}

func report(b *testing.B, took []time.Duration, prefix string) {
	slices.Sort(took)
	at := func(p float64) float64 { return float64(took[int(p*float64(len(took)-1))].Microseconds()) / 1000 }
	b.ReportMetric(at(0.50), prefix+"p50-ms")
	b.ReportMetric(at(0.99), prefix+"p99-ms")
}
