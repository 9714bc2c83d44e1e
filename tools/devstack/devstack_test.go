package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayhq/slipway/tools/internal/devenv"
	"github.com/slipwayhq/slipway/tools/internal/devenv/devenvtest"
)

// TestUpDetachedThenDown runs the devstack command as a user does: `up
// --detach` with every part and two clusters, `status`, `env`, then `down`
// from a separate process — after which none of the processes up started
// may still run.
func TestUpDetachedThenDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole environment")
	}
	bin := filepath.Join(t.TempDir(), "devstack")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build devstack: %v\n%s", err, out)
	}
	state := t.TempDir()
	run := func(args ...string) (string, error) {
		out, err := exec.Command(bin, append(args, "--state", state)...).CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { _, _ = devenv.Down(state) })
	out, err := run("up", "--detach", "--clusters", "2")
	devenvtest.Require(t, err, "devstack up: "+lastLines(out))

	procs, err := devenv.Status(state)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, p := range procs {
		names[p.Name] = p.Running
	}
	for _, want := range []string{"postgres", "vault", "registry", "chartrepo", "kube-c1-apiserver", "kube-c2-apiserver", "kube-c2-kwok", "kube-c1-podroute", "kube-c2-podroute", "kube-c1-metrics-server"} {
		if !names[want] {
			t.Errorf("%s not running after up; status %+v", want, procs)
		}
	}
	env, err := run("env")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"KUBECONFIG_C1=", "KUBECONFIG_C2=", "KUBE_C1_POD_CIDR=", "KUBE_C2_POD_CIDR=", "KUBE_C1_METRICS_SERVER=", "VAULT_ADDR=", "VAULT_ROLE_ID_CLUSTERS=", "POSTGRES_DSN_REGISTRY=", "OCI_REGISTRY=", "CHART_REPO_URL="} {
		if !strings.Contains(env, key) {
			t.Errorf("env lacks %s", key)
		}
	}
	if names["kube-c2-metrics-server"] || strings.Contains(env, "KUBE_C2_METRICS_SERVER=") {
		t.Error("c2 runs a metrics-server: only c1 serves metrics.k8s.io")
	}
	if strings.Contains(env, "ROOT_TOKEN") {
		t.Error("env publishes Vault's root token")
	}
	// A second up on the same state refuses rather than doubling everything.
	if out, err := run("up", "--detach", "--with", "postgres"); err == nil {
		t.Errorf("second up succeeded: %s", out)
	}

	if out, err := run("down"); err != nil {
		t.Fatalf("down: %v\n%s", err, out)
	}
	for _, p := range procs {
		if devenv.Alive(p.PID) {
			t.Errorf("%s (pid %d) still runs after down", p.Name, p.PID)
		}
	}
	if _, err := os.Stat(filepath.Join(state, devenv.EnvFile)); !os.IsNotExist(err) {
		t.Error("env file left after down")
	}
}

func lastLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}
