// Package localrun builds Slipway's five binaries and runs them together on
// one machine, on embedded defaults: SQLite files and identity keys in one
// state folder. `make run` uses it through tools/devstack, and so do tests
// that need the processes as users run them.
package localrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/tools/internal/devenv/vault"
)

// Component is one Slipway process.
type Component struct {
	Name      string // "registry", or "registry-2" for a second replica
	Service   string // "registry" for both replicas
	Package   string // Go package of its main
	Addr      string // gRPC address (REST for the gateway)
	AdminAddr string // /healthz, /readyz, /metrics
}

// Components returns the five processes with addresses from base: the
// gateway serves REST on base+80 and admin on base+1200; service i
// (clusters=1, registry=2, catalog=3, releases=4) serves gRPC on base+1100+i
// and admin on base+1200+i. The default base 8000 gives 8080, 9101...9104.
func Components(base int) []Component {
	addr := func(off int) string { return "127.0.0.1:" + strconv.Itoa(base+off) }
	const mod = "github.com/slipwayhq/slipway/"
	return []Component{
		{Name: "clusters", Service: "clusters", Package: mod + "services/clusters/cmd/slipway-clusters", Addr: addr(1101), AdminAddr: addr(1201)},
		{Name: "registry", Service: "registry", Package: mod + "services/registry/cmd/slipway-registry", Addr: addr(1102), AdminAddr: addr(1202)},
		{Name: "catalog", Service: "catalog", Package: mod + "services/catalog/cmd/slipway-catalog", Addr: addr(1103), AdminAddr: addr(1203)},
		{Name: "releases", Service: "releases", Package: mod + "services/releases/cmd/slipway-releases", Addr: addr(1104), AdminAddr: addr(1204)},
		{Name: "gateway", Service: "gateway", Package: mod + "gateway/cmd/slipway-gateway", Addr: addr(80), AdminAddr: addr(1200)},
	}
}

// maxReplicas is how many replicas of a service ReplicaComponents has room
// for: replica r (from 1) of service i serves gRPC on base+1100+50(r-1)+i
// and admin on base+1200+50(r-1)+i.
const maxReplicas = 2

// ReplicaComponents returns Components(base) with replicas processes of each
// service behind the gateway (clusters, registry, catalog, releases): the
// second is named "clusters-2" and listens 50 ports above the first. The
// gateway stays one process, last.
func ReplicaComponents(base, replicas int) ([]Component, error) {
	if replicas < 1 || replicas > maxReplicas {
		return nil, fmt.Errorf("localrun: %d replicas: want 1 to %d", replicas, maxReplicas)
	}
	addr := func(off int) string { return "127.0.0.1:" + strconv.Itoa(base+off) }
	var out []Component
	for i, c := range Components(base) {
		out = append(out, c)
		if c.Name == "gateway" {
			continue
		}
		for r := 2; r <= replicas; r++ {
			rc := c
			rc.Name = c.Name + "-" + strconv.Itoa(r)
			rc.Addr, rc.AdminAddr = addr(1100+50*(r-1)+i+1), addr(1200+50*(r-1)+i+1)
			out = append(out, rc)
		}
	}
	return out, nil
}

// Targets returns the gRPC target of each service: its replicas' addresses,
// comma-separated, as pkg/client dials them.
func Targets(comps []Component) map[string]string {
	t := map[string]string{}
	for _, c := range comps {
		if t[c.Service] != "" {
			t[c.Service] += ","
		}
		t[c.Service] += c.Addr
	}
	return t
}

// BootstrapOrg is the organization the gateway creates on first start.
const BootstrapOrg = "default"

// BootstrapToken returns the owner API token of BootstrapOrg.
func (s *Stack) BootstrapToken() (string, error) {
	b, err := os.ReadFile(s.BootstrapTokenFile)
	if err != nil {
		return "", fmt.Errorf("read bootstrap token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Options configure a local run.
type Options struct {
	State    string // state folder: bin/, data/, keys/, logs
	BasePort int    // see Components; 0 means 8000
	// Replicas is how many processes of each service run (see
	// ReplicaComponents); 0 means 1. Replicas of a service share its
	// database, keys and environment: more than one wants PostgreSQL
	// (Databases).
	Replicas int
	Output   io.Writer // where the processes' logs go
	// Env is added to every process's environment ("SLIPWAY_GATEWAY_RATE_PER_CALLER=0").
	Env []string
	// ProcessEnv adds variables to one process's environment
	// ("clusters" -> SLIPWAY_CLUSTERS_VAULT_ADDR=...): a service's name
	// applies to all its replicas, a replica's ("clusters-2") to that one.
	ProcessEnv map[string][]string
	// Databases overrides a service's embedded SQLite database with a DSN
	// ("registry" -> "postgres://..."), for runs on PostgreSQL; its
	// replicas share it.
	Databases map[string]string
	// Environment is the devstack's env (devenv.Stack.Env, testenv.Get):
	// the clusters service logs in to its Vault with its own AppRole and may
	// reach the environment's loopback addresses. Required: every secret
	// lives in Vault.
	Environment map[string]string
}

// Stack is a running set of Slipway processes.
type Stack struct {
	Components []Component
	// IdentityKey signs identities the services accept (the gateway's key).
	IdentityKey string
	// BootstrapTokenFile holds the owner API token of the first org.
	BootstrapTokenFile string
	exited             chan error
	running            sync.WaitGroup
	stopOnce           sync.Once

	mu      sync.Mutex
	procs   []*process // in Components order
	stopped bool
}

// KeyPaths returns the identity key pair paths in a state folder.
func KeyPaths(state string) (priv, pub string) {
	return filepath.Join(state, "keys", "identity.pem"), filepath.Join(state, "keys", "identity.pub.pem")
}

// ServiceKeyPaths returns the paths of the key pair service signs its own
// identities with.
func ServiceKeyPaths(state, service string) (priv, pub string) {
	return filepath.Join(state, "keys", service+".pem"), filepath.Join(state, "keys", service+".pub.pem")
}

// actingServices mint identities of their own, for the internal RPCs of the
// clusters service and for work no user request carries.
var actingServices = []string{"registry", "catalog", "releases"}

// Build compiles the five binaries into state/bin.
func Build(ctx context.Context, state string, out io.Writer) error {
	bin := filepath.Join(state, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", bin, err)
	}
	args := []string{"build", "-o", bin + string(filepath.Separator)}
	for _, c := range Components(8000) {
		args = append(args, c.Package)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build slipway binaries: %w", err)
	}
	return nil
}

// Start builds and starts every process, and returns once all are ready
// (each /readyz answers 200), or with an error after stopping what started.
func Start(ctx context.Context, o Options) (*Stack, error) {
	if o.BasePort == 0 {
		o.BasePort = 8000
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	comps, err := ReplicaComponents(o.BasePort, o.Replicas)
	if err != nil {
		return nil, err
	}
	targets := Targets(comps)
	if o.Output == nil {
		o.Output = os.Stderr
	}
	state, err := filepath.Abs(o.State)
	if err != nil {
		return nil, err
	}
	if err := Build(ctx, state, o.Output); err != nil {
		return nil, err
	}
	priv, pub := KeyPaths(state)
	if _, err := identity.LoadOrCreateKeyPair(priv, pub); err != nil {
		return nil, err
	}
	var trusted []string
	for _, svc := range actingServices {
		spriv, spub := ServiceKeyPaths(state, svc)
		if _, err := identity.LoadOrCreateKeyPair(spriv, spub); err != nil {
			return nil, err
		}
		trusted = append(trusted, svc+"="+spub)
	}
	vaultEnv, err := clustersEnv(o.Environment)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(state, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", data, err)
	}
	s := &Stack{
		Components:         comps,
		IdentityKey:        priv,
		BootstrapTokenFile: filepath.Join(state, "bootstrap-token"),
		exited:             make(chan error, len(comps)),
	}
	for _, c := range s.Components {
		args := []string{"--listen-admin", c.AdminAddr}
		if c.Name == "gateway" {
			args = append(args, "--listen-http", c.Addr, "--identity-private-key", priv,
				"--bootstrap-org", BootstrapOrg, "--bootstrap-token-file", s.BootstrapTokenFile)
			for _, svc := range []string{"clusters", "registry", "catalog", "releases"} {
				args = append(args, "--"+svc+"-addr", targets[svc])
			}
		} else {
			args = append(args, "--listen-grpc", c.Addr, "--identity-public-keys", pub,
				"--identity-service-keys", strings.Join(trusted, ","))
			if slices.Contains(actingServices, c.Service) {
				spriv, _ := ServiceKeyPaths(state, c.Service)
				args = append(args, "--service-key", spriv)
			}
		}
		switch c.Service {
		case "clusters":
			args = append(args, "--releases-addr", targets["releases"], "--catalog-addr", targets["catalog"])
		case "registry":
			args = append(args, "--clusters-addr", targets["clusters"], "--releases-addr", targets["releases"])
		case "releases":
			args = append(args, "--clusters-addr", targets["clusters"], "--catalog-addr", targets["catalog"], "--registry-addr", targets["registry"])
		case "catalog":
			// The environment's chart repository serves plain HTTP on loopback.
			args = append(args, "--clusters-addr", targets["clusters"], "--registry-addr", targets["registry"],
				"--releases-addr", targets["releases"], "--allow-http-repositories")
		}
		// Every service has a database of its own, shared by its replicas.
		dsn := "sqlite:" + filepath.Join(data, c.Service+".db")
		if d, ok := o.Databases[c.Service]; ok {
			dsn = d
		}
		args = append(args, "--database", dsn)
		env := append(append(os.Environ(), o.Env...), o.ProcessEnv[c.Service]...)
		if c.Name != c.Service {
			env = append(env, o.ProcessEnv[c.Name]...)
		}
		switch c.Service {
		case "clusters":
			env = append(env, vaultEnv...)
		case "registry":
			// It resolves digests in the environment's registry, on 127.0.0.1.
			env = append(env, "SLIPWAY_REGISTRY_OUTBOUND_ALLOW_CIDRS="+loopbackCIDRs)
		case "catalog":
			// It syncs the environment's chart repository and OCI registry.
			env = append(env, "SLIPWAY_CATALOG_OUTBOUND_ALLOW_CIDRS="+loopbackCIDRs)
		case "releases":
			// It deploys to the environment's clusters.
			env = append(env, "SLIPWAY_RELEASES_OUTBOUND_ALLOW_CIDRS="+loopbackCIDRs)
		}
		p := &process{name: c.Name, path: filepath.Join(state, "bin", "slipway-"+c.Service), args: args, env: env, out: o.Output}
		s.mu.Lock()
		s.procs = append(s.procs, p)
		err := s.launch(p)
		s.mu.Unlock()
		if err != nil {
			s.Stop()
			return nil, err
		}
	}
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// loopbackCIDRs exempts the environment's addresses from the outbound
// policy, which denies loopback by default.
const loopbackCIDRs = "127.0.0.0/8,::1/128"

// clustersEnv is the clusters service's share of the environment: its own
// AppRole, nothing else's, and leave to dial the environment's loopback
// addresses (the outbound policy denies loopback by default).
func clustersEnv(env map[string]string) ([]string, error) {
	if env[vault.AddrEnv] == "" {
		return nil, errors.New("localrun: the environment has no Vault (the clusters service keeps every secret there): start it with devstack up, or testenv.Get(t, \"vault\")")
	}
	return []string{
		"SLIPWAY_CLUSTERS_VAULT_ADDR=" + env[vault.AddrEnv],
		"SLIPWAY_CLUSTERS_VAULT_ROLE_ID=" + env[vault.RoleIDEnv("clusters")],
		"SLIPWAY_CLUSTERS_VAULT_SECRET_ID=" + env[vault.SecretIDEnv("clusters")],
		"SLIPWAY_CLUSTERS_OUTBOUND_ALLOW_CIDRS=" + loopbackCIDRs,
	}, nil
}

func (s *Stack) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	hc := &http.Client{Timeout: time.Second}
	for _, c := range s.Components {
		for {
			resp, err := hc.Get("http://" + c.AdminAddr + "/readyz")
			if err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case err := <-s.exited:
				return err
			case <-ctx.Done():
				return fmt.Errorf("slipway-%s not ready on %s: %w", c.Name, c.AdminAddr, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// Exited returns a channel that receives when any process exits on its own.
func (s *Stack) Exited() <-chan error { return s.exited }

// Stop sends SIGTERM to every process and waits for them to exit, killing
// any still running after 20 seconds.
func (s *Stack) Stop() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.stopped = true
		cmds := make([]*exec.Cmd, 0, len(s.procs))
		for _, p := range s.procs {
			if p.cur != nil {
				cmds = append(cmds, p.cur.cmd)
			}
		}
		s.mu.Unlock()
		for _, c := range cmds {
			_ = c.Process.Signal(syscall.SIGTERM) // fails only for one already gone
		}
		done := make(chan struct{})
		go func() { s.running.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			for _, c := range cmds {
				_ = c.Process.Kill()
			}
			<-done
		}
	})
}

// FreeBasePort finds a base port whose ten addresses are all free, for tests.
// Bases lie in [10000, 18800), below devenv.PortBand and so below the
// kernel's ephemeral range: no outgoing connection, and no single port another
// test picks, can take one of the addresses between this check and the bind
// (the cause of "address already in use" when tests ran side by side).
func FreeBasePort() (int, error) {
	const lo, hi = 10000, 20000 - 1300 // the highest offset is base+1254
	for try := 0; try < 200; try++ {
		base := lo + rand.IntN((hi-lo)/100)*100
		if portsFree(base) {
			return base, nil
		}
	}
	return 0, errors.New("no free port range")
}

// portsFree reports whether every address of ReplicaComponents(base,
// maxReplicas) can be bound: a stack of any replica count fits.
func portsFree(base int) bool {
	comps, _ := ReplicaComponents(base, maxReplicas)
	for _, c := range comps {
		for _, a := range []string{c.Addr, c.AdminAddr} {
			l, err := net.Listen("tcp", a)
			if err != nil {
				return false
			}
			_ = l.Close()
		}
	}
	return true
}
