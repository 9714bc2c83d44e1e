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

// startStackWith is startStack with the stack's options (databases) set.
func startStackWith(t *testing.T, env map[string]string, o localrun.Options, processEnv ...string) *stack {
	t.Helper()
	base, err := localrun.FreeBasePort()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	state := t.TempDir()
	envSecrets(env)
	traces := newOTLPReceiver(t)
	o.State, o.BasePort, o.Output, o.Environment = state, base, logs, env
	o.Env = append(append(traces.env(), o.Env...), processEnv...)
	s, err := localrun.Start(context.Background(), o)
	if err != nil {
		t.Fatalf("start: %v\n%s", err, logs.String())
	}
	st := &stack{t: t, s: s, state: state, api: s.GatewayURL() + "/api/v1", logs: logs, env: env, traces: traces, orgs: map[string]string{}}
	if tok, err := s.BootstrapToken(); err == nil {
		secret("bootstrap owner token", tok)
	}
	t.Cleanup(func() {
		st.report(st.reachable())
		s.Stop()
		st.report(st.said())
		if t.Failed() {
			os.Stderr.WriteString(logs.String())
		}
	})
	return st
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
	env := testenv.Env{}
	for k, v := range testenv.Get(t, "vault", "kube", "registry", "chartrepo") {
		if !strings.HasPrefix(k, "POSTGRES") {
			env[k] = v
		}
	}
	maps.Copy(env, pgEnv)
	s := startStackWith(t, env, localrun.Options{Databases: dbs},
		"SLIPWAY_CATALOG_SYNC_POLL=500ms", "SLIPWAY_GATEWAY_RATE_PER_IP=0", "SLIPWAY_GATEWAY_RATE_PER_CALLER=0",
		// An operation whose worker lost the database is taken over once
		// its lease runs out: a short lease keeps the run short.
		"SLIPWAY_RELEASES_OPERATION_LEASE=10s", "SLIPWAY_RELEASES_SWEEP_INTERVAL=2s")
	owner := s.owner()
	org := "/orgs/" + localrun.BootstrapOrg
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Writes before: a cluster, a repository, a token, a release.
	if err := s.s.RegisterCluster(ctx, "c1", env[kube.EnvKubeconfig("c1")]); err != nil {
		t.Fatal(err)
	}
	if err := s.s.SeedCatalog(ctx, env); err != nil {
		t.Fatal(err)
	}
	deployer := s.token(localrun.BootstrapOrg, owner, "DEPLOYER")
	eventually(t, time.Minute, "the local repository synced", func() bool {
		var r struct{ Repository repositoryJSON }
		s.do(http.MethodGet, org+"/repositories/local", owner, nil).decode(t, &r)
		return r.Repository.Sync.ChartCount > 0
	})
	ns := "e2e-pg-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	deployments := org + "/clusters/c1/deployments"
	chart := func(version string) map[string]any {
		return map[string]any{"catalog": map[string]any{"repository": localrun.LocalRepository, "chart": "hello", "version": version}}
	}
	submit := func(method, path string, body map[string]any) operationJSON {
		t.Helper()
		var resp struct{ Operation operationJSON }
		a := s.do(method, path, deployer, body)
		if a.status != http.StatusOK && a.status != http.StatusAccepted {
			t.Fatalf("%s %s: %d %s", method, path, a.status, a.body)
		}
		a.decode(t, &resp)
		return resp.Operation
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
