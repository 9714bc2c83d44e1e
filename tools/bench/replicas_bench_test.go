package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	vegeta "github.com/tsenart/vegeta/v12/lib"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/slipwayhq/slipway/pkg/testenv"
	"github.com/slipwayhq/slipway/tools/internal/devenv/kube"
	"github.com/slipwayhq/slipway/tools/internal/devenv/postgres"
	"github.com/slipwayhq/slipway/tools/internal/localrun"
)

// replicaKills is which replica of each service the benchmark kills, in
// order: both first and second replicas, so neither is special.
var replicaKills = []string{"clusters-2", "registry", "catalog-2", "releases"}

// killSlack is how long after a kill a request may still meet the dead
// replica: the time the client takes to see the connection gone.
const killSlack = time.Second

// killWindow is when one replica was killed.
type killWindow struct {
	name       string
	start, end time.Time // before the SIGKILL, once it had exited
}

// failedResult is an answer neither 2xx nor 429.
type failedResult struct {
	route      string
	start, end time.Time
	what       string
}

// BenchmarkReplicasUnderLoad runs two replicas of every service, each
// service on a PostgreSQL database of its own, behind one gateway that
// dials both addresses, and the mixed load of BenchmarkMixedLoad through
// it for SLIPWAY_LOAD_DURATION (2 minutes when unset). During the load it
// SIGKILLs one replica of each service at spread moments and starts it
// again 10 s later. It fails when a request failed (not 429) without
// being in flight at a kill, when an accepted upgrade does not end, when
// an ended operation changes afterwards (a second terminal transition),
// when the ledger shows an operation making other revisions than its
// result (a duplicate execution), or when a Helm record is left pending-*.
func BenchmarkReplicasUnderLoad(b *testing.B) {
	duration := loadDuration(b, 2*time.Minute)
	env := testenv.Get(b, "vault", "kube", "registry", "chartrepo", "kubelogs", "postgres")
	dbs := benchDatabases(b, env[postgres.DSNEnv("gateway")], "gateway", "clusters", "registry", "catalog", "releases")
	var logs io.Writer // the processes' logs, to SLIPWAY_BENCH_LOG when set
	if path := os.Getenv("SLIPWAY_BENCH_LOG"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = f.Close() })
		logs = f
	}
	s, api, token := benchStackWith(b, env, localrun.Options{Replicas: 2, Databases: dbs, Output: logs,
		// A killed replica's operations are taken over once their lease
		// runs out: short leases keep the run short.
		Env: []string{"SLIPWAY_RELEASES_OPERATION_LEASE=10s", "SLIPWAY_RELEASES_SWEEP_INTERVAL=2s"}}, "c1")
	ml := prepareMixedLoad(b, s, env, api, token)

	var (
		mu     sync.Mutex
		failed []failedResult
		kills  []killWindow
		wg     sync.WaitGroup
	)
	onResult := func(res *vegeta.Result) {
		if res.Code/100 == 2 || res.Code == http.StatusTooManyRequests {
			return
		}
		f := failedResult{route: routeOf(res), start: res.Timestamp, end: res.End(),
			what: fmt.Sprintf("%d %s %.200s", res.Code, res.Error, strings.TrimSpace(string(res.Body)))}
		mu.Lock()
		failed = append(failed, f)
		mu.Unlock()
	}
	stopKills := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, name := range replicaKills {
			select {
			case <-stopKills:
				return
			case <-time.After(duration / time.Duration(len(replicaKills)+1)):
			}
			w := killWindow{name: name, start: time.Now()}
			if err := s.Kill(name); err != nil {
				b.Errorf("kill %s: %v", name, err)
				return
			}
			w.end = time.Now()
			mu.Lock()
			kills = append(kills, w)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(10 * time.Second)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := s.Restart(ctx, name); err != nil {
					b.Errorf("restart %s: %v", name, err)
				}
			}()
		}
	}()
	b.ResetTimer()
	run := ml.attack(duration, onResult)
	b.StopTimer()
	close(stopKills)
	wg.Wait()

	comps := make([]string, 0, len(s.Components))
	for _, c := range s.Components {
		comps = append(comps, c.Name)
	}
	run.report(b, s, comps)
	if len(kills) != len(replicaKills) {
		b.Errorf("killed %d replicas, want %d (the load ended first?)", len(kills), len(replicaKills))
	}
	var inFlight int
	for _, f := range failed {
		at := slices.IndexFunc(kills, func(k killWindow) bool {
			return f.start.Before(k.end.Add(killSlack)) && f.end.After(k.start)
		})
		if at >= 0 {
			inFlight++
			continue
		}
		b.Errorf("%s failed outside every kill (%s to %s): %s", f.route, f.start.Format("15:04:05.000"), f.end.Format("15:04:05.000"), f.what)
	}
	for _, k := range kills {
		b.Logf("killed %s at %s", k.name, k.start.Format("15:04:05.000"))
	}
	b.Logf("%d failures, %d of them in flight at a kill", len(failed), inFlight)
	b.ReportMetric(float64(inFlight), "failed-in-flight-at-kill")

	// Every accepted upgrade ends; what it ended as never changes after.
	first := map[string]endedOp{}
	states := map[string]int{}
	for _, id := range run.accepted {
		st := awaitOp(b, api, token, id, 10*time.Minute)
		first[id] = readEnded(b, api, token, id)
		states[st]++
		if !strings.HasPrefix(st, "OPERATION_STATE_") {
			b.Errorf("upgrade %s: %s", id, st)
		}
	}
	b.Logf("%d upgrades accepted: %v", len(run.accepted), states)

	// The ledger: an operation completed exactly the revision its result
	// names, or none when it failed; no Helm record left pending-*. An
	// attempt killed while Helm was applying leaves a revision of its own,
	// which the retry's recovery marks failed ("... interrupted: marked
	// failed by Slipway's recovery") before acting again: those are counted
	// apart, as they are no second run of a completed action.
	cs := kubeClient(b, env[kube.EnvKubeconfig("c1")])
	made := map[string][]int{}      // operation id -> revisions it completed, any release
	var interrupted int             // revisions cut short by a kill
	madeAs := map[string][]string{} // the same revisions' status and description
	for i := range loadReleases {
		name := fmt.Sprintf("load-%d", i)
		var hist struct {
			Releases []struct {
				Revision    int
				Operation   string
				Status      string
				Description string
			}
		}
		if code := restCall(b, http.MethodGet, api+"/clusters/c1/deployments/"+name+"/history?page_size=1000&namespace="+ml.ns, token, nil, &hist); code != http.StatusOK {
			b.Fatalf("history of %s: HTTP %d", name, code)
		}
		for _, h := range hist.Releases {
			if h.Status == "RELEASE_STATUS_FAILED" && strings.HasSuffix(h.Description, " interrupted: marked failed by Slipway's recovery") {
				interrupted++
				continue
			}
			made[h.Operation] = append(made[h.Operation], h.Revision)
			madeAs[h.Operation] = append(madeAs[h.Operation], fmt.Sprintf("%s %d %s %q", name, h.Revision, h.Status, h.Description))
		}
		list, err := cs.CoreV1().Secrets(ml.ns).List(context.Background(), metav1.ListOptions{LabelSelector: "owner=helm,name=" + name})
		if err != nil {
			b.Fatal(err)
		}
		for _, sec := range list.Items {
			if st := sec.Labels["status"]; strings.HasPrefix(st, "pending") {
				b.Errorf("%s: helm record %s is left %s", name, sec.Labels["version"], st)
			}
		}
	}
	var failedMade int
	for id, e := range first {
		if again := readEnded(b, api, token, id); again != e {
			b.Errorf("operation %s ended as %+v, later reads %+v", id, e, again)
		}
		switch revs := made[id]; {
		case e.State == "OPERATION_STATE_SUCCEEDED" && !slices.Equal(revs, []int{e.Revision}):
			b.Errorf("upgrade %s made revisions %v (%s); its result says %d", id, revs, strings.Join(madeAs[id], "; "), e.Revision)
		case e.State != "OPERATION_STATE_SUCCEEDED" && len(revs) > 0:
			failedMade++ // a failed Helm upgrade records a failed revision
		}
	}
	b.Logf("%d upgrades that did not succeed made a revision; %d revisions were cut short by a kill and settled by the retry", failedMade, interrupted)
	// go test cuts a benchmark's log short: the counts are metrics too.
	b.ReportMetric(float64(len(first)), "upgrades")
	b.ReportMetric(float64(interrupted), "revisions-cut-short")
}

// endedOp is what an ended operation says of its end.
type endedOp struct {
	State    string
	EndTime  string
	Revision int
}

// readEnded reads an operation's final state, end time and revision.
func readEnded(b *testing.B, api, token, id string) (e endedOp) {
	b.Helper()
	var op struct {
		Operation struct {
			State   string
			EndTime string `json:"end_time"`
			Result  struct{ Release struct{ Revision int } }
		}
	}
	if code := restCall(b, http.MethodGet, api+"/operations/"+id, token, nil, &op); code != http.StatusOK {
		b.Fatalf("get operation %s: HTTP %d", id, code)
	}
	e.State, e.EndTime, e.Revision = op.Operation.State, op.Operation.EndTime, op.Operation.Result.Release.Revision
	return e
}

// benchDatabases creates a fresh database per service on the devstack's
// PostgreSQL (admin is a DSN of its superuser role), dropped when b ends,
// and returns each service's DSN.
func benchDatabases(b *testing.B, admin string, services ...string) map[string]string {
	b.Helper()
	ctx := context.Background()
	u, err := url.Parse(admin)
	if err != nil {
		b.Fatalf("postgres DSN: %v", err)
	}
	c, err := pgx.Connect(ctx, admin)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close(ctx) })
	prefix := fmt.Sprintf("bench_%d_", time.Now().UnixNano()%1e9)
	dsns := map[string]string{}
	for _, svc := range services {
		name := prefix + svc
		if _, err := c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			b.Fatalf("create database %s: %v", name, err)
		}
		// Runs after the stack stops (cleanups run last-registered first).
		b.Cleanup(func() {
			if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
				b.Logf("drop database %s: %v", name, err)
			}
		})
		d := *u
		d.Path = "/" + name
		dsns[svc] = d.String()
	}
	return dsns
}

// kubeClient is a client of the cluster whose admin kubeconfig is at path.
func kubeClient(b *testing.B, path string) kubernetes.Interface {
	b.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		b.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return cs
}
