package e2e

import (
	"context"
	"errors"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/slipwayhq/slipway/pkg/testenv"
	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
	"github.com/slipwayhq/slipway/tools/internal/devenv"
	"github.com/slipwayhq/slipway/tools/internal/devenv/chartrepo"
	"github.com/slipwayhq/slipway/tools/internal/devenv/devenvtest"
	"github.com/slipwayhq/slipway/tools/internal/devenv/kube"
	"github.com/slipwayhq/slipway/tools/internal/devenv/postgres"
	"github.com/slipwayhq/slipway/tools/internal/localrun"
)

// The faults of docs/faults.md: each dependency taken away from a running
// stack, what callers see meanwhile, and that everything comes back by
// itself once the dependency does.

// services are the Slipway processes with a database each.
var services = []string{"gateway", "clusters", "registry", "catalog", "releases"}

// unavailable fails the test unless a is a 503 with Retry-After and the
// stable code "unavailable"; it returns the problem's detail.
func unavailable(t *testing.T, a answer, what string) string {
	t.Helper()
	var p struct{ Code, Detail string }
	if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" {
		t.Errorf("%s: %d (Retry-After %q) %s; want 503 with Retry-After", what, a.status, a.header.Get("Retry-After"), a.body)
		return ""
	}
	a.decode(t, &p)
	if p.Code != "unavailable" {
		t.Errorf("%s: code %q, want unavailable: %s", what, p.Code, a.body)
	}
	return p.Detail
}

// timed runs call and returns its answer and how long it took.
func timed(call func() answer) (answer, time.Duration) {
	start := time.Now()
	a := call()
	return a, time.Since(start)
}

// pgServer is a PostgreSQL of the test's own that the test can shut down
// (fast shutdown, as a restart does) and start again on the same data
// folder and port.
type pgServer struct {
	argv []string // the server's command line (pgrun first when root)
	dir  string   // its working folder
	data string   // its data folder
	addr string
	pid  int       // the running server's recorded pid, 0 while down
	cmd  *exec.Cmd // the server this test restarted, if any
}

// onPostgres is env with the test's own PostgreSQL (pgEnv) in place of
// the shared one.
func onPostgres(env, pgEnv map[string]string) testenv.Env {
	out := testenv.Env{}
	for k, v := range env {
		if !strings.HasPrefix(k, "POSTGRES") {
			out[k] = v
		}
	}
	maps.Copy(out, pgEnv)
	return out
}

// ownPostgres starts a PostgreSQL with a fresh database per service and
// returns it with the services' DSNs.
func ownPostgres(t *testing.T) (*pgServer, map[string]string, map[string]string) {
	t.Helper()
	ps := devenvtest.Start(t, postgres.Postgres{Databases: services})
	env := ps.Env()
	dbs := map[string]string{}
	for _, svc := range services {
		dbs[svc] = env[postgres.DSNEnv(svc)]
	}
	procs, err := devenv.Status(ps.State)
	if err != nil {
		t.Fatal(err)
	}
	p := &pgServer{addr: env[postgres.AddrEnv]}
	for _, pr := range procs {
		if pr.Name == "postgres" && pr.Running {
			p.pid = pr.PID
		}
	}
	if p.pid == 0 {
		t.Fatalf("no running postgres in %+v", procs)
	}
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	p.argv = strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	if p.dir, err = os.Readlink("/proc/" + strconv.Itoa(p.pid) + "/cwd"); err != nil {
		t.Fatal(err)
	}
	for i, a := range p.argv {
		if a == "-D" && i+1 < len(p.argv) {
			p.data = p.argv[i+1]
		}
	}
	if p.data == "" {
		t.Fatalf("no -D in postgres's command line %q", p.argv)
	}
	// Registered before the stack's, so it runs after the stack stopped.
	t.Cleanup(func() {
		if p.cmd != nil {
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
			_ = p.cmd.Wait()
		}
	})
	return p, env, dbs
}

// stop shuts the server down (SIGTERM: pgrun makes it postgres's fast
// shutdown, which ends every session with admin_shutdown) and waits until
// it is gone and its port refuses connections.
func (p *pgServer) stop(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(p.pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "postgres shut down", func() bool {
		_, err := os.Stat(filepath.Join(p.data, "postmaster.pid"))
		return errors.Is(err, os.ErrNotExist) && !devenv.Alive(p.pid) && refuses(p.addr)
	})
	p.pid = 0
}

// start starts the server again, on the same data folder and port, and
// waits until it accepts connections.
func (p *pgServer) start(t *testing.T) {
	t.Helper()
	log, err := os.OpenFile(filepath.Join(p.dir, "restarted.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd, p.pid = cmd, cmd.Process.Pid
}

// refuses reports whether nothing accepts connections at addr.
func refuses(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return true
	}
	_ = c.Close()
	return false
}

// TestPostgresRestart: every service on one PostgreSQL, which is shut down
// and started again on the same data and port. While it is down every call
// answers 503 unavailable with Retry-After at once (never a 500, never a
// hang), the services' own gRPC answers are UNAVAILABLE; once it is back
// everything answers again without a restart of Slipway, what was written
// before is all there, and the operation in flight when it went down ends.
func TestPostgresRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real stack")
	}
	pg, pgEnv, dbs := ownPostgres(t)
	env := onPostgres(testenv.Get(t, "vault", "kube", "registry", "chartrepo"), pgEnv)
	s := startStackWith(t, env, localrun.Options{Databases: dbs},
		"SLIPWAY_CATALOG_SYNC_POLL=500ms", "SLIPWAY_GATEWAY_RATE_PER_IP=0", "SLIPWAY_GATEWAY_RATE_PER_CALLER=0",
		// An operation whose worker lost the database is taken over once
		// its lease runs out: a short lease keeps the run short.
		"SLIPWAY_RELEASES_OPERATION_LEASE=10s", "SLIPWAY_RELEASES_SWEEP_INTERVAL=2s")
	owner := s.owner()
	org := "/orgs/" + localrun.BootstrapOrg

	// Writes before: a cluster, a repository, a token, a release.
	s.seedLocal(t, "c1", env[kube.EnvKubeconfig("c1")])
	deployer := s.token(localrun.BootstrapOrg, owner, "DEPLOYER")
	ns := "e2e-pg-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	deployments := org + "/clusters/c1/deployments"
	chart := helloChart
	submit := func(method, path string, body map[string]any) operationJSON {
		t.Helper()
		return s.submit(t, deployer, method, path, body)
	}
	installed := s.awaitOperation(t, deployer, submit(http.MethodPost, deployments, map[string]any{"name": "web", "namespace": ns, "chart": chart("0.1.0"),
		"options": map[string]any{"create_namespace": true, "wait": true, "timeout": "120s"}}).ID)
	if !strings.HasSuffix(installed.State, "SUCCEEDED") {
		t.Fatalf("install: %+v", installed)
	}
	// Accepted just before the database goes: it runs while it is down.
	inFlight := submit(http.MethodPut, deployments+"/web", map[string]any{"namespace": ns, "chart": chart("0.2.0"),
		"options": map[string]any{"wait": true, "timeout": "120s"}})

	pg.stop(t)
	down := time.Now()
	reads := map[string]string{
		"list clusters":   org + "/clusters",
		"get repository":  org + "/repositories/local",
		"get operation":   org + "/operations/" + installed.ID,
		"get deployment":  deployments + "/web?namespace=" + ns,
		"list operations": org + "/operations",
	}
	// Down for a few seconds, asked all along, so that the worker running
	// the upgrade meets it too.
	for round := 0; round == 0 || time.Since(down) < 3*time.Second; round++ {
		for what, path := range reads {
			a, took := timed(func() answer { return s.do(http.MethodGet, path, deployer, nil) })
			if round == 0 {
				t.Logf("postgres down: %s answered %d in %s", what, a.status, took)
			}
			unavailable(t, a, what+" with postgres down")
			if took >= 5*time.Second {
				t.Errorf("%s with postgres down took %s, want under 5 s", what, took)
			}
		}
		if t.Failed() {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	a, took := timed(func() answer {
		return s.do(http.MethodPost, org+"/repositories", owner, map[string]any{"name": "later", "url": env[chartrepo.URLEnv]})
	})
	t.Logf("postgres down: add repository answered %d in %s", a.status, took)
	unavailable(t, a, "add repository with postgres down")
	if took >= 5*time.Second {
		t.Errorf("add repository with postgres down took %s, want under 5 s", took)
	}
	// Behind the gateway, a service's own answer: UNAVAILABLE too.
	access := s.accessClient(t)
	actx, acancel := context.WithTimeout(access.ctx(t, localrun.BootstrapOrg), 10*time.Second)
	_, err := access.conn.GetClusterAccess(actx, &clustersv1.GetClusterAccessRequest{Org: localrun.BootstrapOrg, Cluster: "c1"})
	acancel()
	if status.Code(err) != codes.Unavailable {
		t.Errorf("clusters' GetClusterAccess with postgres down: %v, want UNAVAILABLE", err)
	} else {
		t.Logf("postgres down: clusters' GetClusterAccess: %v", err)
	}

	pg.start(t)
	back := time.Now()
	t.Logf("postgres down for %s, restarted", back.Sub(down).Round(time.Millisecond))
	// While it starts up ("the database system is starting up") the
	// answer is still 503 unavailable, never a 500.
	eventually(t, time.Minute, "the API answers after postgres is back", func() bool {
		a := s.do(http.MethodGet, org+"/clusters", deployer, nil)
		if a.status != http.StatusOK {
			unavailable(t, a, "list clusters while postgres starts")
		}
		return a.status == http.StatusOK
	})
	t.Logf("postgres back: the API answered 200 after %s", time.Since(back).Round(time.Millisecond))
	for what, path := range reads {
		eventually(t, 30*time.Second, what+" after postgres is back", func() bool {
			return s.do(http.MethodGet, path, deployer, nil).status == http.StatusOK
		})
	}
	t.Logf("postgres back: every read answered 200 after %s", time.Since(back).Round(time.Millisecond))

	// Nothing lost: the cluster, the repository, the token, the release
	// and its operation.
	var c struct{ Cluster clusterJSON }
	s.expect(s.do(http.MethodGet, org+"/clusters/c1", deployer, nil), http.StatusOK, "cluster after restart").decode(t, &c)
	if c.Cluster.Name != "c1" {
		t.Errorf("cluster after restart: %+v", c.Cluster)
	}
	var r struct{ Repository repositoryJSON }
	s.expect(s.do(http.MethodGet, org+"/repositories/local", owner, nil), http.StatusOK, "repository after restart").decode(t, &r)
	if r.Repository.Sync.ChartCount == 0 {
		t.Errorf("repository after restart: %+v", r.Repository)
	}
	var op struct{ Operation operationJSON }
	s.expect(s.do(http.MethodGet, org+"/operations/"+installed.ID, deployer, nil), http.StatusOK, "install operation after restart").decode(t, &op)
	if op.Operation.State != installed.State {
		t.Errorf("install operation after restart: %+v, was %+v", op.Operation, installed)
	}
	// The operation in flight ends, and as it should.
	ended := s.awaitOperation(t, deployer, inFlight.ID)
	t.Logf("the upgrade accepted before the outage ended %s %+v, %s after postgres was back", ended.State, ended.Error, time.Since(back).Round(time.Millisecond))
	for _, e := range ended.Events {
		t.Logf("  upgrade event %s: %s", e.Phase, e.Message)
	}
	if !strings.HasSuffix(ended.State, "SUCCEEDED") || ended.Result.Release.Revision != 2 {
		t.Errorf("the upgrade in flight during the outage: %+v", ended)
	}
	var rel struct {
		Release struct {
			Revision     int
			ChartVersion string `json:"chart_version"`
		}
	}
	s.expect(s.do(http.MethodGet, deployments+"/web?namespace="+ns, deployer, nil), http.StatusOK, "release after restart").decode(t, &rel)
	if rel.Release.Revision != 2 || rel.Release.ChartVersion != "0.2.0" {
		t.Errorf("release after restart: %+v", rel.Release)
	}
	// And writes work again.
	s.expect(s.do(http.MethodPost, org+"/repositories", owner, map[string]any{"name": "later", "url": env[chartrepo.URLEnv]}), http.StatusOK, "add repository after restart")
}

// ownCluster starts a Kubernetes cluster of the test's own (its apiserver
// is stopped and resumed, which the shared devstack's tests must not see)
// and returns the environment with it as KUBECONFIG_<id>, with the shared
// Vault, registry and chart repository, and its apiserver's pid.
func ownCluster(t *testing.T, id string) (testenv.Env, int) {
	t.Helper()
	ks := devenvtest.Start(t, &kube.Cluster{ID: id, Nodes: 1})
	env := testenv.Env{}
	for k, v := range testenv.Get(t, "vault", "registry", "chartrepo") {
		if !strings.HasPrefix(k, "KUBE") {
			env[k] = v
		}
	}
	maps.Copy(env, ks.Env())
	procs, err := devenv.Status(ks.State)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if p.Name == "kube-"+id+"-apiserver" && p.Running {
			return env, p.PID
		}
	}
	t.Fatalf("no running apiserver in %+v", procs)
	return nil, 0
}

// TestClusterAPIServerStopped: a cluster whose kube-apiserver stops
// (SIGSTOP: it accepts connections and never answers, the worst case).
// The reads that need the cluster answer 503 naming it within a bounded
// time, the ledger's reads still answer, a deploy meanwhile ends naming
// the cluster; once it is back everything works again by itself.
func TestClusterAPIServerStopped(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real stack")
	}
	env, apiserver := ownCluster(t, "fault")
	s := startStack(t, env, "SLIPWAY_CATALOG_SYNC_POLL=500ms", "SLIPWAY_CLUSTERS_HEALTH_INTERVAL=2s")
	owner := s.owner()
	deployer := s.token(localrun.BootstrapOrg, owner, "DEPLOYER")
	org := "/orgs/" + localrun.BootstrapOrg
	s.seedLocal(t, "edge", env[kube.EnvKubeconfig("fault")])
	const ns = "shop"
	dep := org + "/clusters/edge/deployments"
	chart := helloChart
	submit := func(method, path string, body map[string]any) operationJSON {
		t.Helper()
		return s.submit(t, deployer, method, path, body)
	}
	installed := s.awaitOperation(t, deployer, submit(http.MethodPost, dep, map[string]any{"name": "web", "namespace": ns, "chart": chart("0.1.0"),
		"options": map[string]any{"create_namespace": true, "wait": true, "timeout": "120s"}}).ID)
	if !strings.HasSuffix(installed.State, "SUCCEEDED") {
		t.Fatalf("install: %+v", installed)
	}
	q := "?namespace=" + ns

	freeze(t, apiserver, true)
	stopped := time.Now()
	// Reads from the cluster's watch cache: the first one starts the
	// namespace's informers and waits up to 10 s for their first list,
	// which a stopped API server never gives. Status then answers with
	// what it could not assess; the reads that need live objects (events,
	// logs, health) answer 503 naming the cluster.
	var st struct{ Status statusJSON }
	a, took := timed(func() answer { return s.do(http.MethodGet, dep+"/web/status"+q, deployer, nil) })
	t.Logf("apiserver stopped: status answered %d in %s", a.status, took)
	s.expect(a, http.StatusOK, "status with the apiserver stopped").decode(t, &st)
	if st.Status.Verdict != "VERDICT_UNSPECIFIED" || !strings.Contains(st.Status.Message, "not listed yet") {
		t.Errorf("status with the apiserver stopped: %s %q, want VERDICT_UNSPECIFIED saying what was not listed", st.Status.Verdict, st.Status.Message)
	}
	if took >= 15*time.Second {
		t.Errorf("status with the apiserver stopped took %s, want under 15 s", took)
	}
	live := map[string]string{"events": dep + "/web/events" + q, "logs": dep + "/web/logs" + q, "health": dep + "/web/health" + q}
	for what, path := range live {
		a, took := timed(func() answer { return s.do(http.MethodGet, path, deployer, nil) })
		detail := unavailable(t, a, what+" with the apiserver stopped")
		t.Logf("apiserver stopped: %s answered %d in %s: %s", what, a.status, took, detail)
		if !strings.Contains(detail, "cluster edge") {
			t.Errorf("%s with the apiserver stopped: %q does not name cluster edge", what, detail)
		}
		if took >= 15*time.Second {
			t.Errorf("%s with the apiserver stopped took %s, want under 15 s", what, took)
		}
	}
	// The ledger's reads do not touch the cluster.
	for what, path := range map[string]string{"get": dep + "/web" + q, "list": dep, "history": dep + "/web/history" + q, "values": dep + "/web/values" + q,
		"cluster": org + "/clusters/edge", "operation": org + "/operations/" + installed.ID} {
		a, took := timed(func() answer { return s.do(http.MethodGet, path, deployer, nil) })
		s.expect(a, http.StatusOK, what+" with the apiserver stopped")
		if took >= 2*time.Second {
			t.Errorf("%s with the apiserver stopped took %s, want under 2 s", what, took)
		}
	}
	// The clusters service's health check sees it.
	var c struct{ Cluster clusterJSON }
	eventually(t, 90*time.Second, "cluster edge shown unreachable", func() bool {
		s.expect(s.do(http.MethodGet, org+"/clusters/edge", deployer, nil), http.StatusOK, "get cluster").decode(t, &c)
		return c.Cluster.Health.Reachability == "CLUSTER_REACHABILITY_UNREACHABLE"
	})
	t.Logf("apiserver stopped: cluster edge unreachable after %s: %q", time.Since(stopped).Round(time.Millisecond), c.Cluster.Health.Message)
	// A deploy meanwhile fails, UNAVAILABLE, saying the cluster did not
	// answer.
	up := submit(http.MethodPut, dep+"/web", map[string]any{"namespace": ns, "chart": chart("0.2.0"), "options": map[string]any{"timeout": "20s"}})
	opStart := time.Now()
	ended := s.awaitOperation(t, deployer, up.ID)
	t.Logf("apiserver stopped: upgrade ended %s %s %q after %s", ended.State, ended.Error.Code, ended.Error.Message, time.Since(opStart).Round(time.Millisecond))
	if !strings.HasSuffix(ended.State, "FAILED") || ended.Error.Code != "UNAVAILABLE" || !strings.HasPrefix(ended.Error.Message, "cluster "+c.Cluster.ID+": ") ||
		!strings.Contains(ended.Error.Message, "Kubernetes cluster unreachable") {
		t.Errorf("upgrade with the apiserver stopped: %s %+v, want FAILED UNAVAILABLE saying cluster %s (edge) is unreachable", ended.State, ended.Error, c.Cluster.ID)
	}

	freeze(t, apiserver, false)
	resumed := time.Now()
	// The cache lists again: the workloads are assessed. (Whether they are
	// ready is the cluster's business: after a long freeze the node
	// controller may have marked the simulated nodes' pods unready.)
	eventually(t, 2*time.Minute, "status assessed after the apiserver is back", func() bool {
		s.expect(s.do(http.MethodGet, dep+"/web/status"+q, deployer, nil), http.StatusOK, "status").decode(t, &st)
		return st.Status.Verdict != "VERDICT_UNSPECIFIED" && len(st.Status.Workloads) == 1 && st.Status.Workloads[0].Verdict != "VERDICT_UNSPECIFIED"
	})
	t.Logf("apiserver back: status %s %q after %s", st.Status.Verdict, st.Status.Message, time.Since(resumed).Round(time.Millisecond))
	for what, path := range live {
		eventually(t, time.Minute, what+" after the apiserver is back", func() bool {
			return s.do(http.MethodGet, path, deployer, nil).status == http.StatusOK
		})
	}
	eventually(t, 30*time.Second, "cluster edge reachable again", func() bool {
		s.expect(s.do(http.MethodGet, org+"/clusters/edge", deployer, nil), http.StatusOK, "get cluster").decode(t, &c)
		return c.Cluster.Health.Reachability == "CLUSTER_REACHABILITY_REACHABLE"
	})
	t.Logf("apiserver back: every read answered and the cluster is reachable after %s", time.Since(resumed).Round(time.Millisecond))
	again := s.awaitOperation(t, deployer, submit(http.MethodPut, dep+"/web", map[string]any{"namespace": ns, "chart": chart("0.2.0"),
		"options": map[string]any{"timeout": "60s"}}).ID)
	if !strings.HasSuffix(again.State, "SUCCEEDED") || again.Result.Release.ChartVersion != "0.2.0" {
		t.Errorf("upgrade after the apiserver is back: %+v", again)
	}
}

// chartServer serves a packaged chart folder on a fixed loopback address
// that can be cut (listener and connections closed: connections refused)
// and served again on the same address.
type chartServer struct {
	t    *testing.T
	dir  string
	addr string
	srv  *http.Server
}

func newChartServer(t *testing.T) *chartServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &chartServer{t: t, dir: t.TempDir(), addr: l.Addr().String()}
	if _, err := chartrepo.Package(filepath.Join("testdata", "charts"), c.dir, c.url()); err != nil {
		t.Fatal(err)
	}
	c.serve(l)
	t.Cleanup(func() {
		if c.srv != nil {
			_ = c.srv.Close()
		}
	})
	return c
}

func (c *chartServer) url() string { return "http://" + c.addr }

func (c *chartServer) serve(l net.Listener) {
	c.srv = &http.Server{Handler: http.FileServer(http.Dir(c.dir)), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = c.srv.Serve(l) }()
}

// cut closes the listener and every connection.
func (c *chartServer) cut() {
	c.t.Helper()
	if err := c.srv.Close(); err != nil {
		c.t.Fatal(err)
	}
	c.srv = nil
	if !refuses(c.addr) {
		c.t.Fatalf("%s still accepts connections after the cut", c.addr)
	}
}

// restore listens on the same address again.
func (c *chartServer) restore() {
	c.t.Helper()
	var l net.Listener
	eventually(c.t, 10*time.Second, "listen on "+c.addr+" again", func() bool {
		var err error
		l, err = net.Listen("tcp", c.addr)
		return err == nil
	})
	c.serve(l)
}

// TestChartRepoCut: the network to a chart repository is cut. A sync
// fails, its last_error naming the host; the catalog's own reads (from the
// stored index) still answer; what needs the chart's archive answers 503
// unavailable with Retry-After naming the host; once the repository serves
// again on the same address, the next sync and deploy work by themselves.
func TestChartRepoCut(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real stack")
	}
	env := testenv.Get(t, "vault", "kube", "registry")
	s := startStack(t, env, "SLIPWAY_CATALOG_SYNC_POLL=500ms")
	owner := s.owner()
	deployer := s.token(localrun.BootstrapOrg, owner, "DEPLOYER")
	org := "/orgs/" + localrun.BootstrapOrg
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.s.RegisterCluster(ctx, "c1", env[kube.EnvKubeconfig("c1")]); err != nil {
		t.Fatal(err)
	}
	repo := newChartServer(t)
	s.expect(s.do(http.MethodPost, org+"/repositories", owner, map[string]any{"name": "cut", "url": repo.url()}), http.StatusOK, "add the repository")
	var r struct{ Repository repositoryJSON }
	eventually(t, time.Minute, "the repository synced", func() bool {
		s.do(http.MethodGet, org+"/repositories/cut", owner, nil).decode(t, &r)
		return r.Repository.Sync.ChartCount > 0
	})
	syncedOK := r.Repository.Sync.State

	repo.cut()
	cutAt := time.Now()
	// A sync fails, naming the repository's host.
	s.expect(s.do(http.MethodPost, org+"/repositories/cut:sync", deployer, map[string]any{}), http.StatusOK, "sync with the network cut")
	eventually(t, 30*time.Second, "the sync fails", func() bool {
		s.do(http.MethodGet, org+"/repositories/cut", owner, nil).decode(t, &r)
		return r.Repository.Sync.LastError != ""
	})
	t.Logf("network cut: sync %s after %s: %q", r.Repository.Sync.State, time.Since(cutAt).Round(time.Millisecond), r.Repository.Sync.LastError)
	if !strings.Contains(r.Repository.Sync.LastError, repo.addr) {
		t.Errorf("last_error %q does not name the repository's host %s", r.Repository.Sync.LastError, repo.addr)
	}
	if r.Repository.Sync.ChartCount == 0 {
		t.Errorf("the failed sync lost the stored index: %+v", r.Repository.Sync)
	}
	// The stored index still answers.
	s.expect(s.do(http.MethodGet, org+"/charts/cut/preview", deployer, nil), http.StatusOK, "chart from the stored index")
	s.expect(s.do(http.MethodGet, org+"/repositories/cut/charts", deployer, nil), http.StatusOK, "charts of the repository")
	s.expect(s.do(http.MethodGet, org+"/charts?q=preview", deployer, nil), http.StatusOK, "search")
	// A version's files need the archive, never fetched yet.
	a, took := timed(func() answer { return s.do(http.MethodGet, org+"/charts/cut/preview/versions/1.0.0", deployer, nil) })
	detail := unavailable(t, a, "a version's files with the network cut")
	t.Logf("network cut: a version's files answered %d in %s: %q", a.status, took, detail)
	if !strings.Contains(detail, "repository cut") || !strings.Contains(detail, repo.addr) {
		t.Errorf("a version's files with the network cut: %q does not name repository cut and its host %s", detail, repo.addr)
	}
	// A deploy of it.
	ns := "e2e-cut-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	install := map[string]any{"name": "web", "namespace": ns, "values_yaml": "domain: cut.example.test\n",
		"chart":   map[string]any{"catalog": map[string]any{"repository": "cut", "chart": "preview", "version": "1.0.0"}},
		"options": map[string]any{"create_namespace": true, "timeout": "60s"}}
	dep := org + "/clusters/c1/deployments"
	a = s.do(http.MethodPost, dep, deployer, install)
	switch a.status {
	case http.StatusOK, http.StatusAccepted:
		var resp struct{ Operation operationJSON }
		a.decode(t, &resp)
		ended := s.awaitOperation(t, deployer, resp.Operation.ID)
		t.Logf("network cut: install ended %s %s %q", ended.State, ended.Error.Code, ended.Error.Message)
		if !strings.HasSuffix(ended.State, "FAILED") || ended.Error.Code != "UNAVAILABLE" || !strings.Contains(ended.Error.Message, "repository cut") || !strings.Contains(ended.Error.Message, repo.addr) {
			t.Errorf("install with the network cut: %s %+v, want FAILED UNAVAILABLE naming repository cut and %s", ended.State, ended.Error, repo.addr)
		}
	default:
		detail := unavailable(t, a, "install with the network cut")
		t.Logf("network cut: install answered %d: %q", a.status, detail)
		if !strings.Contains(detail, "repository cut") || !strings.Contains(detail, repo.addr) {
			t.Errorf("install with the network cut: %q does not name repository cut and its host %s", detail, repo.addr)
		}
	}

	repo.restore()
	back := time.Now()
	s.expect(s.do(http.MethodPost, org+"/repositories/cut:sync", deployer, map[string]any{}), http.StatusOK, "sync after the network is back")
	eventually(t, 30*time.Second, "the sync succeeds again", func() bool {
		s.do(http.MethodGet, org+"/repositories/cut", owner, nil).decode(t, &r)
		return r.Repository.Sync.LastError == "" && r.Repository.Sync.State == syncedOK
	})
	t.Logf("network back: sync %s after %s", r.Repository.Sync.State, time.Since(back).Round(time.Millisecond))
	eventually(t, 30*time.Second, "a version's files after the network is back", func() bool {
		return s.do(http.MethodGet, org+"/charts/cut/preview/versions/1.0.0", deployer, nil).status == http.StatusOK
	})
	var resp struct{ Operation operationJSON }
	a = s.do(http.MethodPost, dep, deployer, install)
	if a.status == http.StatusConflict {
		// The failed install left a release: upgrade it instead.
		delete(install, "name")
		a = s.do(http.MethodPut, dep+"/web", deployer, install)
	}
	if a.status != http.StatusOK && a.status != http.StatusAccepted {
		t.Fatalf("install after the network is back: %d %s", a.status, a.body)
	}
	a.decode(t, &resp)
	ended := s.awaitOperation(t, deployer, resp.Operation.ID)
	t.Logf("network back: install ended %s after %s", ended.State, time.Since(back).Round(time.Millisecond))
	if !strings.HasSuffix(ended.State, "SUCCEEDED") {
		t.Errorf("install after the network is back: %+v", ended)
	}
}

// freezeTree stops (SIGSTOP) or resumes pid and all its descendants: a
// PostgreSQL server's backends lead sessions of their own, so its process
// group is not enough.
func freezeTree(t *testing.T, pid int, stop bool) {
	t.Helper()
	pids := descendants(pid)
	sig := syscall.SIGCONT
	if stop {
		sig = syscall.SIGSTOP
		t.Cleanup(func() {
			for _, p := range pids {
				_ = syscall.Kill(p, syscall.SIGCONT)
			}
		})
	}
	for _, p := range pids {
		if err := syscall.Kill(p, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Fatal(err)
		}
	}
	if stop {
		eventually(t, 5*time.Second, "postgres stopped", func() bool {
			for _, p := range pids {
				if devenv.Alive(p) && !testenv.Stopped(p) {
					return false
				}
			}
			return true
		})
	}
}

// descendants is pid with its children, theirs, and so on.
func descendants(pid int) []int {
	children := map[int][]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		p, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		children[ppid] = append(children[ppid], p)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// TestPostgresFrozen: every service on one PostgreSQL that hangs (SIGSTOP
// of the server and its backends: connections accepted, nothing answered,
// as behind a network that drops packets). Calls answer 503 unavailable
// with Retry-After within a bound rather than hang, and everything answers
// again once it resumes.
func TestPostgresFrozen(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real stack")
	}
	pg, pgEnv, dbs := ownPostgres(t)
	env := onPostgres(testenv.Get(t, "vault", "kube", "registry"), pgEnv)
	s := startStackWith(t, env, localrun.Options{Databases: dbs})
	owner := s.owner()
	org := "/orgs/" + localrun.BootstrapOrg
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.s.RegisterCluster(ctx, "c1", env[kube.EnvKubeconfig("c1")]); err != nil {
		t.Fatal(err)
	}
	s.expect(s.do(http.MethodGet, org+"/clusters", owner, nil), http.StatusOK, "list clusters")

	freezeTree(t, pg.pid, true)
	frozen := time.Now()
	client := &http.Client{Timeout: 30 * time.Second}
	for _, path := range []string{org + "/clusters", org + "/clusters/c1", org + "/operations"} {
		req, err := http.NewRequest(http.MethodGet, s.api+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+owner)
		start := time.Now()
		resp, err := client.Do(req)
		took := time.Since(start)
		if err != nil {
			t.Errorf("GET %s with postgres frozen: %v after %s", path, err, took)
			continue
		}
		resp.Body.Close()
		t.Logf("postgres frozen: GET %s answered %d (Retry-After %q) in %s", path, resp.StatusCode, resp.Header.Get("Retry-After"), took)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("GET %s with postgres frozen: %d, want 503 with Retry-After", path, resp.StatusCode)
		}
		if took >= 15*time.Second {
			t.Errorf("GET %s with postgres frozen took %s, want under 15 s", path, took)
		}
	}
	// Behind the gateway a service's own call waits on its database as long
	// as its caller lets it: here 5 s, then DEADLINE_EXCEEDED.
	access := s.accessClient(t)
	actx, acancel := context.WithTimeout(access.ctx(t, localrun.BootstrapOrg), 5*time.Second)
	start := time.Now()
	_, err := access.conn.GetClusterAccess(actx, &clustersv1.GetClusterAccessRequest{Org: localrun.BootstrapOrg, Cluster: "c1"})
	acancel()
	t.Logf("postgres frozen: clusters' GetClusterAccess with a 5 s deadline: %v after %s", status.Code(err), time.Since(start).Round(time.Millisecond))
	if c := status.Code(err); c != codes.DeadlineExceeded && c != codes.Unavailable {
		t.Errorf("clusters' GetClusterAccess with postgres frozen: %v, want DEADLINE_EXCEEDED or UNAVAILABLE", err)
	}
	freezeTree(t, pg.pid, false)
	resumed := time.Now()
	t.Logf("postgres frozen for %s", resumed.Sub(frozen).Round(time.Millisecond))
	eventually(t, time.Minute, "the API answers after postgres resumes", func() bool {
		return s.do(http.MethodGet, org+"/clusters/c1", owner, nil).status == http.StatusOK
	})
	t.Logf("postgres resumed: the API answered 200 after %s", time.Since(resumed).Round(time.Millisecond))
}
