// Package bench measures Slipway end to end, against the real binaries.
package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace/noop"

	"github.com/slipwayhq/slipway/pkg/client"
	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/testenv"
	registryv1 "github.com/slipwayhq/slipway/proto/slipway/registry/v1"
	"github.com/slipwayhq/slipway/tools/internal/localrun"
)

// BenchmarkGatewayList compares, in one run, an authenticated REST GET of a
// small list (10 images) through the gateway with the same ListImages call
// made directly over gRPC. Each reports p50/p99 latency and requests/s with
// 16 concurrent callers; the difference is what the gateway adds
// (authentication, org resolution, identity minting, REST <-> gRPC).
func BenchmarkGatewayList(b *testing.B) {
	ctx := context.Background()
	env := testenv.Get(b, "vault", "kube", "registry")
	base, err := localrun.FreeBasePort()
	if err != nil {
		b.Fatal(err)
	}
	s, err := localrun.Start(ctx, localrun.Options{
		State: b.TempDir(), BasePort: base, Output: io.Discard, Environment: env,
		// Rate limits would measure themselves, not the gateway.
		Env: []string{"SLIPWAY_GATEWAY_RATE_PER_CALLER=0", "SLIPWAY_GATEWAY_RATE_PER_IP=0", "SLIPWAY_GATEWAY_LOG_LEVEL=warn",
			"SLIPWAY_REGISTRY_LOG_LEVEL=warn"},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Stop()
	token, err := s.BootstrapToken()
	if err != nil {
		b.Fatal(err)
	}
	addr := map[string]string{}
	for _, c := range s.Components {
		addr[c.Name] = c.Addr
	}
	key, err := identity.LoadPrivateKey(s.IdentityKey)
	if err != nil {
		b.Fatal(err)
	}
	signer := identity.NewSigner(key, time.Hour)
	idTok, err := signer.Sign(identity.Identity{Subject: "user:bench", Org: localrun.BootstrapOrg, Role: identity.RoleOwner})
	if err != nil {
		b.Fatal(err)
	}
	conn, err := client.Dial(addr["registry"], client.Config{TracerProvider: noop.NewTracerProvider()})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	reg := registryv1.NewRegistryServiceClient(conn)
	callCtx := identity.OutgoingContext(ctx, idTok)
	ref, err := s.SeedRegistry(ctx, env)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 10 {
		if _, err := reg.CreateImage(callCtx, &registryv1.CreateImageRequest{Org: localrun.BootstrapOrg, Image: &registryv1.Image{
			Name: "app", Version: fmt.Sprintf("1.0.%d", i), Reference: ref,
		}}); err != nil {
			b.Fatal(err)
		}
	}

	url := "http://" + addr["gateway"] + "/api/v1/orgs/" + localrun.BootstrapOrg + "/images"
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
	restGet := func() error {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	grpcList := func() error {
		resp, err := reg.ListImages(callCtx, &registryv1.ListImagesRequest{Org: localrun.BootstrapOrg})
		if err == nil && len(resp.GetImages()) != 10 {
			err = fmt.Errorf("%d images", len(resp.GetImages()))
		}
		return err
	}
	// One caller: the latency the gateway adds. Sixteen: the throughput.
	for _, callers := range []int{1, 16} {
		b.Run(fmt.Sprintf("rest-through-gateway/callers=%d", callers), func(b *testing.B) { measure(b, callers, restGet) })
		b.Run(fmt.Sprintf("grpc-direct/callers=%d", callers), func(b *testing.B) { measure(b, callers, grpcList) })
	}
}

// measure runs b.N calls from `callers` goroutines and reports latency
// percentiles and throughput as benchmark metrics.
func measure(b *testing.B, callers int, call func() error) {
	var mu sync.Mutex
	var all []time.Duration
	var next sync.WaitGroup
	work := make(chan struct{}, b.N)
	for range b.N {
		work <- struct{}{}
	}
	close(work)
	b.ResetTimer()
	start := time.Now()
	for range callers {
		next.Go(func() {
			var mine []time.Duration
			for range work {
				t0 := time.Now()
				if err := call(); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	next.Wait()
	elapsed := time.Since(start)
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(float64(len(all)-1)*p)].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
}

func TestMain(m *testing.M) { testenv.Main(m) }
