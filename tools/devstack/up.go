package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/slipwayhq/slipway/tools/internal/devenv"
	"github.com/slipwayhq/slipway/tools/internal/devenv/chartrepo"
	"github.com/slipwayhq/slipway/tools/internal/devenv/kube"
	"github.com/slipwayhq/slipway/tools/internal/devenv/ociregistry"
	"github.com/slipwayhq/slipway/tools/internal/devenv/postgres"
	"github.com/slipwayhq/slipway/tools/internal/devenv/vault"
)

// allParts is every part `up` can start, in start order.
var allParts = []string{"postgres", "vault", "registry", "chartrepo", "kube"}

const defaultEnvState = ".state/devstack"

func components(parts []string, clusters, nodes int, notify string, repoAuth bool) ([]devenv.Component, error) {
	var out []devenv.Component
	for _, p := range parts {
		switch p {
		case "postgres":
			out = append(out, postgres.Postgres{Databases: []string{"gateway", "clusters", "registry", "catalog", "releases"}})
		case "vault":
			out = append(out, vault.Vault{})
		case "registry":
			out = append(out, ociregistry.Registry{Notify: notify})
		case "chartrepo":
			out = append(out, chartrepo.Repo{BasicAuth: repoAuth})
		case "kube":
			for i := 1; i <= clusters; i++ {
				// Only the first serves metrics.k8s.io: the others show
				// clients a cluster without it.
				out = append(out, &kube.Cluster{ID: fmt.Sprintf("c%d", i), Nodes: nodes, Metrics: i == 1})
			}
		default:
			return nil, fmt.Errorf("unknown part %q (want some of %s)", p, strings.Join(allParts, ","))
		}
	}
	return out, nil
}

func upCmd(args []string) error {
	fs := flag.NewFlagSet("devstack up", flag.ContinueOnError)
	state := fs.String("state", defaultEnvState, "state `folder`: logs, pids, data and the env file")
	with := fs.String("with", strings.Join(allParts, ","), "comma-separated `parts` to start")
	clusters := fs.Int("clusters", 1, "number of independent Kubernetes clusters")
	nodes := fs.Int("nodes", 3, "simulated nodes per cluster")
	notify := fs.String("registry-notify", "", "`URL` the OCI registry sends push notifications to")
	repoAuth := fs.Bool("chartrepo-auth", false, "protect the chart repository with basic auth")
	detach := fs.Bool("detach", false, "return once everything is ready, leaving it running (stop with `devstack down`)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	comps, err := components(splitComma(*with), *clusters, *nodes, *notify, *repoAuth)
	if err != nil {
		return err
	}
	if st, _ := devenv.Status(*state); anyRunning(st) {
		return fmt.Errorf("a devstack already runs in %s: `devstack down --state %s` first", *state, *state)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := devenv.NewStack(*state, os.Stderr)
	if err != nil {
		return err
	}
	start := time.Now()
	for _, c := range comps {
		t0 := time.Now()
		if err := c.Start(ctx, s); err != nil {
			s.Stop()
			return fmt.Errorf("%s: %w (logs in %s/logs)", c.Name(), err, s.State)
		}
		fmt.Fprintf(os.Stderr, "%s ready in %s\n", c.Name(), time.Since(t0).Round(time.Millisecond))
	}
	envFile, err := s.WriteEnv()
	if err != nil {
		s.Stop()
		return err
	}
	fmt.Fprintf(os.Stderr, "all ready in %s; env file %s\n", time.Since(start).Round(time.Millisecond), envFile)
	printEnv(s.Env())
	if *detach {
		return nil
	}
	fmt.Fprintln(os.Stderr, "Ctrl-C stops everything.")
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "stopping...")
	s.Stop()
	return nil
}

// buildCmd fills the cache with every part's binaries (Kubernetes, kwok,
// Vault, the OCI registry), so that tests and `up` only start them. Builds
// run one after another: each alone already uses both cores.
func buildCmd(args []string) error {
	fs := flag.NewFlagSet("devstack build", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	steps := []struct {
		name  string
		build func(context.Context) error
	}{
		{"kubernetes " + kube.KubernetesVersion + " + kwok " + kube.KwokVersion + " + metrics-server " + kube.MetricsServerVersion, kube.Build},
		{"vault " + vault.Version, func(ctx context.Context) error { _, err := vault.Binary(ctx, os.Stderr); return err }},
		{"oci registry", func(ctx context.Context) error { _, err := ociregistry.Binary(ctx); return err }},
	}
	for _, st := range steps {
		t0 := time.Now()
		fmt.Fprintf(os.Stderr, "building %s (cached in %s)...\n", st.name, devenv.CacheRoot())
		if err := st.build(ctx); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%s ready in %s\n", st.name, time.Since(t0).Round(time.Second))
	}
	return nil
}

func downCmd(args []string) error {
	fs := flag.NewFlagSet("devstack down", flag.ContinueOnError)
	state := fs.String("state", defaultEnvState, "state `folder` of the devstack to stop")
	if err := fs.Parse(args); err != nil {
		return err
	}
	stopped, err := devenv.Down(*state)
	fmt.Fprintf(os.Stderr, "stopped %d processes: %s\n", len(stopped), strings.Join(stopped, ", "))
	return err
}

func statusCmd(args []string) error {
	fs := flag.NewFlagSet("devstack status", flag.ContinueOnError)
	state := fs.String("state", defaultEnvState, "state `folder` of the devstack")
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, err := devenv.Status(*state)
	if err != nil {
		return err
	}
	if len(st) == 0 {
		fmt.Println("nothing recorded in", *state)
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS\tPID\tSTATE")
	for _, p := range st {
		state := "running"
		if !p.Running {
			state = "gone"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", p.Name, p.PID, state)
	}
	return tw.Flush()
}

func envCmd(args []string) error {
	fs := flag.NewFlagSet("devstack env", flag.ContinueOnError)
	state := fs.String("state", defaultEnvState, "state `folder` of the devstack")
	if err := fs.Parse(args); err != nil {
		return err
	}
	env, err := devenv.ReadEnv(*state)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no devstack runs in %s (start one with `devstack up`)", *state)
	}
	if err != nil {
		return err
	}
	printEnv(env)
	return nil
}

func printEnv(env map[string]string) {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("%s=%s\n", k, env[k])
	}
}

func anyRunning(st []devenv.ProcStatus) bool {
	for _, p := range st {
		if p.Running {
			return true
		}
	}
	return false
}

func splitComma(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
