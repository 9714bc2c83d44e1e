package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/slipwayhq/slipway/pkg/testenv"
	"github.com/slipwayhq/slipway/tools/internal/localrun"
)

// Shape of the mixed load.
const (
	loadClients  = 200
	loadReleases = 10
	// loadDurationEnv shortens or lengthens the run ("30s"); 5 minutes
	// when unset.
	loadDurationEnv = "SLIPWAY_LOAD_DURATION"
)

// routeOf names the route of a result by its method and URL.
func routeOf(res *vegeta.Result) string {
	path, _, _ := strings.Cut(res.URL, "?")
	switch {
	case res.Method == http.MethodPut:
		return "upgrade"
	case strings.HasSuffix(path, "/deployments"):
		return "list deployments"
	case loadDeploymentPath.MatchString(path) && strings.HasSuffix(path, "/history"):
		return "history"
	case strings.HasSuffix(path, "/status"):
		return "status"
	case strings.HasSuffix(path, "/logs"):
		return "logs"
	case loadDeploymentPath.MatchString(path):
		return "get deployment"
	case strings.HasSuffix(path, "/images"):
		return "list images"
	case strings.HasSuffix(path, "/charts"):
		return "search charts"
	}
	return "other"
}

// loadRoute is one kind of request of the mix, with its share of the
// requests.
type loadRoute struct {
	name   string
	weight int
	target func(t *vegeta.Target, rel string, n uint64)
}

// loadDeploymentPath matches the routes of the load's releases.
var loadDeploymentPath = regexp.MustCompile(`/deployments/load-\d+`)

// BenchmarkMixedLoad runs 200 concurrent clients (closed loop: each sends
// its next request when the last is answered) for 5 minutes against the
// gateway of a real stack on the devstack, through vegeta: reads (lists,
// one release, its history, images, chart search), status, logs (tails)
// and deploys (upgrades of ten releases, queued behind each other). It
// reports each route's p50/p99, the error rate (any answer but 2xx, 429
// counted apart: the goal is 0 others), the requests/s, and each
// service's peak RSS; then checks every accepted upgrade ends succeeded.
// make e2e-load runs it; SLIPWAY_LOAD_DURATION=30s for a shorter run.
func BenchmarkMixedLoad(b *testing.B) {
	duration := loadDuration(b, 5*time.Minute)
	env := testenv.Get(b, "vault", "kube", "registry", "chartrepo", "kubelogs")
	s, api, token := benchStack(b, env, "c1")
	ml := prepareMixedLoad(b, s, env, api, token)
	b.ResetTimer()
	run := ml.attack(duration, nil)
	b.StopTimer()
	run.report(b, s, []string{"gateway", "clusters", "registry", "catalog", "releases"})
	for _, f := range run.failures {
		b.Errorf("failed: %s", f)
	}

	// Every accepted upgrade runs to its end, succeeded: queued ones too.
	var failed int
	for _, id := range run.accepted {
		if st := awaitOp(b, api, token, id, 10*time.Minute); st != "OPERATION_STATE_SUCCEEDED" {
			failed++
			if failed <= 5 {
				b.Errorf("upgrade %s ended %s", id, st)
			}
		}
	}
	b.Logf("%d upgrades accepted, %d did not succeed", len(run.accepted), failed)
}

// loadDuration is SLIPWAY_LOAD_DURATION, or def when unset.
func loadDuration(b *testing.B, def time.Duration) time.Duration {
	b.Helper()
	v := os.Getenv(loadDurationEnv)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		b.Fatalf("%s: %v", loadDurationEnv, err)
	}
	return d
}

// mixedLoad is the mixed workload, ready to run against one stack.
type mixedLoad struct {
	api, token, ns string
	targeter       vegeta.Targeter
}

// prepareMixedLoad seeds the stack's registry and catalog, installs the
// releases the load reads and upgrades, and returns the load.
func prepareMixedLoad(b *testing.B, s *localrun.Stack, env map[string]string, api, token string) *mixedLoad {
	b.Helper()
	ctx := context.Background()
	if _, err := s.SeedRegistry(ctx, env); err != nil {
		b.Fatal(err)
	}
	if err := s.SeedCatalog(ctx, env); err != nil {
		b.Fatal(err)
	}
	awaitSync(b, api, token)

	// The releases the load reads and upgrades: the demo chart, one pod
	// each, installed and waited for.
	ns := fmt.Sprintf("load-%d", time.Now().UnixNano()%1e6)
	chartRef := map[string]any{"catalog": map[string]any{"repository": localrun.LocalRepository, "chart": "hello", "version": "0.2.0"}}
	var installs []string
	for i := range loadReleases {
		var op struct{ Operation struct{ ID string } }
		if code := restCall(b, http.MethodPost, api+"/clusters/c1/deployments", token, map[string]any{"name": fmt.Sprintf("load-%d", i),
			"namespace": ns, "chart": chartRef, "options": map[string]any{"create_namespace": true, "wait": true}}, &op); code != http.StatusAccepted {
			b.Fatalf("install load-%d: HTTP %d", i, code)
		}
		installs = append(installs, op.Operation.ID)
	}
	for _, id := range installs {
		if st := awaitOp(b, api, token, id, 5*time.Minute); st != "OPERATION_STATE_SUCCEEDED" {
			b.Fatalf("install %s: %s", id, st)
		}
	}

	q := "?namespace=" + ns
	get := func(path string) func(*vegeta.Target, string, uint64) {
		return func(t *vegeta.Target, rel string, _ uint64) {
			t.Method, t.URL = http.MethodGet, api+strings.ReplaceAll(path, "{rel}", rel)
		}
	}
	routes := []loadRoute{
		{"list deployments", 10, get("/clusters/c1/deployments" + q)},
		{"get deployment", 15, get("/clusters/c1/deployments/{rel}" + q)},
		{"history", 10, get("/clusters/c1/deployments/{rel}/history" + q)},
		{"list images", 5, get("/images")},
		{"search charts", 5, get("/charts?q=hello")},
		{"status", 25, get("/clusters/c1/deployments/{rel}/status" + q)},
		{"logs", 20, get("/clusters/c1/deployments/{rel}/logs" + q + "&tail_lines=10")},
		// One request in a hundred: some 8 upgrades a second at the rate
		// the reads allow, about what ten releases (one writer each) take;
		// more only queues up without end.
		{"upgrade", 1, func(t *vegeta.Target, rel string, n uint64) {
			body, _ := json.Marshal(map[string]any{"namespace": ns, "chart": chartRef, "values_yaml": fmt.Sprintf("load: %d\n", n)})
			t.Method, t.URL, t.Body = http.MethodPut, api+"/clusters/c1/deployments/"+rel, body
		}},
	}
	var total int
	for _, r := range routes {
		total += r.weight
	}
	hdr := http.Header{"Authorization": {"Bearer " + token}, "Content-Type": {"application/json"}}
	var n atomic.Uint64
	targeter := func(t *vegeta.Target) error {
		pick := rand.IntN(total)
		r := routes[0]
		for _, c := range routes {
			if pick < c.weight {
				r = c
				break
			}
			pick -= c.weight
		}
		t.Header, t.Body = hdr, nil
		r.target(t, fmt.Sprintf("load-%d", rand.IntN(loadReleases)), n.Add(1))
		return nil
	}
	return &mixedLoad{api: api, token: token, ns: ns, targeter: targeter}
}

// loadRun is what one run of the load measured.
type loadRun struct {
	metrics  map[string]*vegeta.Metrics
	statuses map[string]map[uint16]int
	all      vegeta.Metrics
	accepted []string // ids of the operations of accepted upgrades
	failures []string // the first ten answers neither 2xx nor 429
	took     time.Duration
}

// attack runs the load's clients for duration; each result goes to
// onResult too, when set.
func (ml *mixedLoad) attack(duration time.Duration, onResult func(*vegeta.Result)) *loadRun {
	atk := vegeta.NewAttacker(vegeta.Workers(loadClients), vegeta.MaxWorkers(loadClients), vegeta.Connections(loadClients),
		vegeta.KeepAlive(true), vegeta.Timeout(30*time.Second))
	metrics := map[string]*vegeta.Metrics{}
	var all vegeta.Metrics
	statuses := map[string]map[uint16]int{}
	var accepted []string
	var failures []string
	start := time.Now()
	for res := range atk.Attack(ml.targeter, vegeta.Rate{Freq: 0}, duration, "mixed") {
		if onResult != nil {
			onResult(res)
		}
		name := routeOf(res)
		m := metrics[name]
		if m == nil {
			m = &vegeta.Metrics{}
			metrics[name] = m
			statuses[name] = map[uint16]int{}
		}
		m.Add(res)
		all.Add(res)
		statuses[name][res.Code]++
		switch {
		case name == "upgrade" && res.Code == http.StatusAccepted:
			var op struct{ Operation struct{ ID string } }
			if err := json.Unmarshal(res.Body, &op); err == nil {
				accepted = append(accepted, op.Operation.ID)
			}
		case res.Code/100 != 2 && res.Code != http.StatusTooManyRequests && len(failures) < 10:
			failures = append(failures, fmt.Sprintf("%s %s: %d %s %s", name, loadDeploymentPath.ReplaceAllString(res.URL, "/deployments/load-N"),
				res.Code, res.Error, strings.TrimSpace(string(res.Body))))
		}
	}
	all.Close()
	for _, m := range metrics {
		m.Close()
	}
	return &loadRun{metrics: metrics, statuses: statuses, all: all, accepted: accepted, failures: failures, took: time.Since(start)}
}

// report logs and reports the run's figures and the peak RSS of procs;
// it returns the count of answers neither 2xx nor 429.
func (r *loadRun) report(b *testing.B, s *localrun.Stack, procs []string) int {
	b.Helper()
	metrics, statuses, all, took := r.metrics, r.statuses, &r.all, r.took
	// Peak RSS of every process, now that the load is over.
	var rss []string
	for _, p := range procs {
		pid, err := s.Pid(p)
		if err != nil {
			b.Fatal(err)
		}
		hwm, err := peakRSS(pid)
		if err != nil {
			b.Fatal(err)
		}
		rss = append(rss, fmt.Sprintf("%s %.0f MiB", p, float64(hwm)/(1<<20)))
		b.ReportMetric(float64(hwm)/(1<<20), p+"-peak-MiB")
	}

	var errs, limited int
	names := make([]string, 0, len(metrics))
	for name := range metrics {
		names = append(names, name)
		for code, n := range statuses[name] {
			switch {
			case code == http.StatusTooManyRequests:
				limited += n
			case code/100 != 2:
				errs += n
			}
		}
	}
	sort.Strings(names)
	b.Logf("%d clients for %s: %d requests, %.0f/s; %d errors (not 429), %d answered 429; peak RSS: %s",
		loadClients, took.Round(time.Second), all.Requests, float64(all.Requests)/took.Seconds(), errs, limited, strings.Join(rss, ", "))
	for _, name := range names {
		m := metrics[name]
		codes := make([]string, 0, len(statuses[name]))
		for code, n := range statuses[name] {
			codes = append(codes, fmt.Sprintf("%d×%d", n, code))
		}
		slices.Sort(codes)
		b.Logf("  %-17s %7d requests  p50 %8s  p99 %8s  max %8s  [%s]", name, m.Requests,
			m.Latencies.P50.Round(10*time.Microsecond), m.Latencies.P99.Round(10*time.Microsecond), m.Latencies.Max.Round(time.Millisecond),
			strings.Join(codes, " "))
		b.ReportMetric(float64(m.Latencies.P99.Microseconds())/1000, strings.ReplaceAll(name, " ", "-")+"-p99-ms")
	}
	b.ReportMetric(float64(all.Requests)/took.Seconds(), "requests/s")
	b.ReportMetric(float64(errs), "errors")
	return errs
}

// awaitOp polls an operation until it ends and returns its final state.
func awaitOp(b *testing.B, api, token, id string, within time.Duration) string {
	b.Helper()
	for deadline := time.Now().Add(within); ; {
		var op struct{ Operation struct{ State string } }
		restCall(b, http.MethodGet, api+"/operations/"+id, token, nil, &op)
		switch st := op.Operation.State; st {
		case "OPERATION_STATE_SUCCEEDED", "OPERATION_STATE_FAILED", "OPERATION_STATE_CANCELLED":
			return st
		}
		if time.Now().After(deadline) {
			return "still running after " + within.String()
		}
		time.Sleep(100 * time.Millisecond)
	}
}
