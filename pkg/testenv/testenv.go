// Package testenv gives integration tests of any module the real
// environment of tools/devstack: Kubernetes clusters with simulated nodes,
// Vault, PostgreSQL, an OCI registry and a chart repository.
//
// A test asks for the parts it needs with Get. When a devstack already runs
// (its env file is found, see StateEnv) and has those parts, its endpoints
// are used as they are; otherwise the parts are started once per test
// binary with `go run ./tools/devstack up --detach` and stopped by Main when
// the tests end. Under CI=true a part that cannot start fails the test; it
// never skips.
package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
)

// StateEnv names the variable that points at a running devstack's state
// folder; unset, <repository>/.state/devstack is tried.
const StateEnv = "SLIPWAY_DEVSTACK_STATE"

// Parts and the variable each publishes (what tells a running devstack has it).
var marker = map[string]string{
	"postgres":  "POSTGRES_ADDR",
	"vault":     "VAULT_ADDR",
	"registry":  "OCI_REGISTRY",
	"chartrepo": "CHART_REPO_URL",
	"kube":      "KUBECONFIG_C1",
	// A second, independent cluster besides the first (implies "kube").
	"kube2": "KUBECONFIG_C2",
	// The first cluster's kwok serves container logs (implies "kube"):
	// a devstack started before it did lacks the variable, so a new one
	// starts.
	"kubelogs": "KUBE_C1_LOGS",
	// The first cluster's pods have host-local IPs, so the apiserver's pod
	// and service proxies reach a server the test runs on 0.0.0.0 (implies
	// "kube"; an older devstack lacks the variable).
	"podnet": "KUBE_C1_POD_CIDR",
	// The first cluster serves metrics.k8s.io through metrics-server
	// (implies "kube"; a second cluster, "kube2", never does).
	"kubemetrics": "KUBE_C1_METRICS_SERVER",
}

// Env is the environment's variables (the devstack env file).
type Env map[string]string

type started struct {
	state string
	env   Env
	err   error
}

type harness struct {
	mu      sync.Mutex
	byParts map[string]*started
}

// h is per test binary: one environment per set of parts, stopped by Main.
var h = &harness{byParts: map[string]*started{}}

// Main runs the package's tests, then stops whatever Get started.
func Main(m *testing.M) { os.Exit(Run(m.Run)) }

// Run calls run (m.Run, or another harness's run such as sqltest.Run),
// stops whatever Get started, and returns run's exit code.
func Run(run func() int) int {
	code := run()
	h.mu.Lock()
	for _, s := range h.byParts {
		if s.state != "" {
			_ = devstack(s.state, "down")
			_ = os.RemoveAll(s.state)
		}
	}
	h.mu.Unlock()
	return code
}

// Get returns an environment with at least parts ("postgres", "vault",
// "registry", "chartrepo", "kube", "kube2" for two clusters, "kubelogs" for
// container logs, "podnet" for pod IPs reachable through the apiserver's
// proxies, "kubemetrics" for metrics.k8s.io on the first cluster).
func Get(t testing.TB, parts ...string) Env {
	t.Helper()
	for _, p := range parts {
		if _, ok := marker[p]; !ok {
			t.Fatalf("testenv: unknown part %q", p)
		}
	}
	if env, ok := running(parts); ok {
		return env
	}
	sort.Strings(parts)
	key := strings.Join(parts, ",")
	h.mu.Lock()
	s, ok := h.byParts[key]
	if !ok {
		s = start(parts)
		h.byParts[key] = s
	}
	h.mu.Unlock()
	if s.err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("testenv: %s could not start (CI=true, so this fails instead of skipping): %v", key, s.err)
		}
		t.Skipf("testenv: %s could not start: %v", key, s.err)
	}
	return s.env
}

// running returns the env of a devstack that already runs with parts.
func running(parts []string) (Env, bool) {
	state := os.Getenv(StateEnv)
	if state == "" {
		root, err := repoRoot()
		if err != nil {
			return nil, false
		}
		state = filepath.Join(root, ".state", "devstack")
	}
	env, err := readEnv(filepath.Join(state, "devstack.env"))
	if err != nil {
		return nil, false
	}
	for _, p := range parts {
		if env[marker[p]] == "" {
			return nil, false
		}
	}
	return env, true
}

func start(parts []string) *started {
	state, err := os.MkdirTemp("", "slipway-testenv-")
	if err != nil {
		return &started{err: err}
	}
	args := []string{"--detach"}
	var with []string
	for _, p := range parts {
		if p == "kube2" {
			args = append(args, "--clusters", "2")
			p = "kube"
		}
		if p == "kubelogs" || p == "podnet" || p == "kubemetrics" {
			p = "kube"
		}
		if !slices.Contains(with, p) {
			with = append(with, p)
		}
	}
	if err := devstack(state, "up", append(args, "--with", strings.Join(with, ","))...); err != nil {
		_ = devstack(state, "down")
		return &started{state: state, err: err}
	}
	env, err := readEnv(filepath.Join(state, "devstack.env"))
	return &started{state: state, env: env, err: err}
}

// devstack runs `go run ./tools/devstack CMD --state STATE ARGS...` from the
// repository root.
func devstack(state, cmd string, args ...string) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	c := exec.Command("go", append([]string{"run", "./tools/devstack", cmd, "--state", state}, args...)...)
	c.Dir = root
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Run(); err != nil {
		return fmt.Errorf("devstack %s: %w\n%s", cmd, err, lastLines(out.String(), 20))
	}
	return nil
}

// repoRoot is the nearest folder above the working folder holding go.work.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.work above the working folder: run from a Slipway checkout")
		}
		dir = parent
	}
}

func readEnv(path string) (Env, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	env := Env{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && k != "" {
			env[k] = v
		}
	}
	return env, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
