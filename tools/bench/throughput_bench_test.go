package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/cli"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/slipwayhq/slipway/pkg/testenv"
	"github.com/slipwayhq/slipway/tools/internal/devenv/chartrepo"
	"github.com/slipwayhq/slipway/tools/internal/devenv/kube"
	"github.com/slipwayhq/slipway/tools/internal/localrun"
)

// throughputReleases is how many small installs each side makes, half on
// each of the two clusters, over throughputNamespaces namespaces each.
const (
	throughputReleases   = 1000
	throughputNamespaces = 10
	// throughputWorkers is the releases service's default --workers: the
	// SDK side runs as many installs at once.
	throughputWorkers = 16
)

// BenchmarkThroughput installs 1,000 small releases (configmap-only, no
// wait) across two devstack clusters, through Slipway's REST API (all
// submitted at once, run by the releases service's 16 workers) and with
// the Helm SDK's action.Install directly at the same concurrency, in one
// run against the same clusters. It reports each side's releases/s and the
// releases service's peak RSS (VmHWM). Goal: Slipway at least 0.9x the
// SDK's rate.
func BenchmarkThroughput(b *testing.B) {
	ctx := context.Background()
	env := testenv.Get(b, "vault", "kube", "kube2", "registry", "chartrepo")
	clusters := []string{"c1", "c2"}
	s, api, token := benchStack(b, env, clusters...)
	if err := s.SeedCatalog(ctx, env); err != nil {
		b.Fatal(err)
	}
	awaitSync(b, api, token)
	pid, err := s.Pid("releases")
	if err != nil {
		b.Fatal(err)
	}
	run := fmt.Sprintf("t%d", time.Now().UnixNano()%1e6)
	ns := func(side string, i int) string { return fmt.Sprintf("%s-%s-%d", run, side, i%throughputNamespaces) }
	chartRef := map[string]any{"catalog": map[string]any{"repository": localrun.LocalRepository, "chart": "configmap-only", "version": "1.0.0"}}
	ch, err := loader.LoadDir(filepath.Join(chartrepo.FixtureCharts(), "configmap-only"))
	if err != nil {
		b.Fatal(err)
	}
	// The namespaces exist before either side starts: neither pays for
	// creating them.
	for _, side := range []string{"s", "h"} {
		for _, c := range clusters {
			for i := range throughputNamespaces {
				if err := createNamespace(env[kube.EnvKubeconfig(c)], ns(side, i)); err != nil {
					b.Fatal(err)
				}
			}
		}
	}

	b.Run("slipway", func(b *testing.B) {
		for iter := 0; b.Loop(); iter++ {
			start := time.Now()
			ids := make([]string, throughputReleases)
			var wg sync.WaitGroup
			sem := make(chan struct{}, 32) // concurrent POSTs; the work queues
			for i := range ids {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer func() { <-sem; wg.Done() }()
					var op struct{ Operation struct{ ID string } }
					code := restCall(b, http.MethodPost, api+"/clusters/"+clusters[i%2]+"/deployments", token, map[string]any{
						"name": fmt.Sprintf("r%d-%d", iter, i), "namespace": ns("s", i/2), "chart": chartRef}, &op)
					if code != http.StatusAccepted {
						b.Errorf("install %d: HTTP %d", i, code)
					}
					ids[i] = op.Operation.ID
				}()
			}
			wg.Wait()
			if b.Failed() {
				b.FailNow()
			}
			for _, id := range ids {
				for {
					var op struct {
						Operation struct {
							State string
							Error struct{ Message string }
						}
					}
					restCall(b, http.MethodGet, api+"/operations/"+id, token, nil, &op)
					st := op.Operation.State
					if strings.HasSuffix(st, "SUCCEEDED") {
						break
					}
					if strings.HasSuffix(st, "FAILED") || strings.HasSuffix(st, "CANCELLED") {
						b.Fatalf("install %s: %s %s", id, st, op.Operation.Error.Message)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			b.ReportMetric(throughputReleases/time.Since(start).Seconds(), "releases/s")
		}
		if hwm, err := peakRSS(pid); err == nil {
			b.ReportMetric(float64(hwm)/(1<<20), "releases-peak-rss-MiB")
		} else {
			b.Logf("peak RSS: %v", err)
		}
	})

	b.Run("sdk", func(b *testing.B) {
		// One action.Configuration per cluster and namespace, shared by
		// the workers, as the releases service caches them.
		cfgs := map[string]*action.Configuration{}
		for _, c := range clusters {
			for i := range throughputNamespaces {
				settings := cli.New()
				settings.KubeConfig = env[kube.EnvKubeconfig(c)]
				settings.SetNamespace(ns("h", i))
				settings.QPS, settings.BurstLimit = 500, 1000
				cfg := new(action.Configuration)
				if err := cfg.Init(settings.RESTClientGetter(), ns("h", i), "secret", func(string, ...any) {}); err != nil {
					b.Fatal(err)
				}
				cfgs[c+"/"+strconv.Itoa(i)] = cfg
			}
		}
		for iter := 0; b.Loop(); iter++ {
			start := time.Now()
			var next atomic.Int64
			var wg sync.WaitGroup
			for range throughputWorkers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := int(next.Add(1)) - 1
						if i >= throughputReleases {
							return
						}
						inst := action.NewInstall(cfgs[clusters[i%2]+"/"+strconv.Itoa((i/2)%throughputNamespaces)])
						inst.ReleaseName, inst.Namespace = fmt.Sprintf("r%d-%d", iter, i), ns("h", i/2)
						if _, err := inst.Run(ch, nil); err != nil {
							b.Errorf("install %d: %v", i, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			if b.Failed() {
				b.FailNow()
			}
			b.ReportMetric(throughputReleases/time.Since(start).Seconds(), "releases/s")
		}
	})
}

// awaitSync waits for the catalog to hold the local repository's charts.
func awaitSync(b *testing.B, api, token string) {
	for deadline := time.Now().Add(time.Minute); ; {
		var r struct {
			Repository struct {
				Sync struct {
					ChartCount int `json:"chart_count"`
				}
			}
		}
		restCall(b, http.MethodGet, api+"/repositories/"+localrun.LocalRepository, token, nil, &r)
		if r.Repository.Sync.ChartCount > 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatal("the local repository did not sync")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// peakRSS is a process's peak resident set (VmHWM), in bytes.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// createNamespace creates a namespace on the cluster of kubeconfig.
func createNamespace(kubeconfig, name string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	_, err = cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	return err
}
