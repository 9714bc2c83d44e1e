// Command devstack runs Slipway, and the real environment it works against,
// on one machine for development and tests.
//
//	devstack up [--with PARTS] [--clusters N] [--detach]   Kubernetes, Vault, PostgreSQL, OCI registry, chart repo
//	devstack build                                         fill the component cache (Kubernetes, Vault, ...)
//	devstack down | status | env                           stop, list or print what `up` started
//	devstack run [--state DIR] [--base-port N]             build and run all five Slipway processes until Ctrl-C
//	devstack token --org ORG [--role ROLE]                 print an internal identity token for direct gRPC calls
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/tools/internal/devenv"
	"github.com/slipwayhq/slipway/tools/internal/devenv/kube"
	"github.com/slipwayhq/slipway/tools/internal/devenv/postgres"
	"github.com/slipwayhq/slipway/tools/internal/localrun"
)

const usage = `devstack runs Slipway on one machine.

Commands:
  up      build (once, cached) and start the real environment: Kubernetes with simulated
          nodes, Vault, PostgreSQL, an OCI registry, a chart repository; writes an env file
  build   build every part's binaries into the cache (done by up as needed)
  down    stop what a detached up started, and only that
  status  list the processes up started
  env     print the env file of a running up
  run     build and run all five Slipway processes on embedded defaults until Ctrl-C
  token   print an internal identity token (what the gateway mints) for direct gRPC calls

Run "devstack COMMAND --help" for a command's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "up":
		err = upCmd(os.Args[2:])
	case "build":
		err = buildCmd(os.Args[2:])
	case "down":
		err = downCmd(os.Args[2:])
	case "status":
		err = statusCmd(os.Args[2:])
	case "env":
		err = envCmd(os.Args[2:])
	case "run":
		err = runCmd(os.Args[2:])
	case "token":
		err = tokenCmd(os.Args[2:])
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		err = fmt.Errorf("unknown command %q\n\n%s", os.Args[1], usage)
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

// localCluster is the name the environment's first Kubernetes cluster is
// registered under in the bootstrap organization.
const localCluster = "local"

func runCmd(args []string) error {
	fs := flag.NewFlagSet("devstack run", flag.ContinueOnError)
	state := fs.String("state", ".state", "state `folder` for binaries, SQLite files and keys")
	base := fs.Int("base-port", 8000, "base `port`: REST on base+80, services' gRPC on base+1101..1104")
	storeDefault := os.Getenv("SLIPWAY_STORE")
	if storeDefault == "" {
		storeDefault = "sqlite"
	}
	store := fs.String("store", storeDefault, "`store` of the processes that own data: sqlite (embedded files) or postgres (the environment's); env SLIPWAY_STORE")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *store != "sqlite" && *store != "postgres" {
		return fmt.Errorf("--store %q: want sqlite or postgres", *store)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := os.MkdirAll(*state, 0o755); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "starting the environment (first run builds Kubernetes and Vault: minutes)...")
	envState := filepath.Join(*state, "devstack")
	if st, _ := devenv.Status(envState); anyRunning(st) {
		return fmt.Errorf("a devstack already runs in %s: `devstack down --state %s` first", envState, envState)
	}
	es, err := devenv.NewStack(envState, io.Discard)
	if err != nil {
		return err
	}
	defer es.Stop()
	comps, err := components(allParts, 1, 3, "", false)
	if err != nil {
		return err
	}
	for _, c := range comps {
		if err := c.Start(ctx, es); err != nil {
			return fmt.Errorf("%s: %w (logs in %s/logs)", c.Name(), err, es.State)
		}
	}
	envFile, err := es.WriteEnv()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "environment ready; endpoints in %s\n", envFile)
	env := es.Env()
	var dbs map[string]string
	if *store == "postgres" {
		dbs = map[string]string{}
		for _, svc := range []string{"gateway", "clusters", "registry", "catalog", "releases"} {
			dbs[svc] = env[postgres.DSNEnv(svc)]
		}
	}
	fmt.Fprintf(os.Stderr, "building and starting Slipway (store: %s)...\n", *store)
	logs, err := os.OpenFile(filepath.Join(*state, "slipway.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logs.Close()
	s, err := localrun.Start(ctx, localrun.Options{State: *state, BasePort: *base, Output: logs, Databases: dbs, Environment: env})
	if err != nil {
		return fmt.Errorf("%w (logs: %s)", err, logs.Name())
	}
	defer s.Stop()
	if kc := env[kube.EnvKubeconfig("c1")]; kc != "" {
		if err := s.RegisterCluster(ctx, localCluster, kc); err != nil {
			return fmt.Errorf("%w (logs: %s)", err, logs.Name())
		}
	}
	demo, err := s.SeedRegistry(ctx, env)
	if err != nil {
		return fmt.Errorf("%w (logs: %s)", err, logs.Name())
	}
	if err := s.SeedCatalog(ctx, env); err != nil {
		return fmt.Errorf("%w (logs: %s)", err, logs.Name())
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS\tLISTENS ON\tADMIN (/healthz /readyz /metrics)")
	for _, c := range s.Components {
		proto := "grpc"
		if c.Name == "gateway" {
			proto = "http"
		}
		fmt.Fprintf(tw, "slipway-%s\t%s://%s\thttp://%s\n", c.Name, proto, c.Addr, c.AdminAddr)
	}
	_ = tw.Flush()
	tok, err := s.BootstrapToken()
	if err != nil {
		return err
	}
	gw := s.Components[len(s.Components)-1].Addr
	fmt.Printf("\norganization %q, owner API token (also in %s):\n  %s\ntry: curl -H \"Authorization: Bearer %s\" http://%s/api/v1/orgs/%s/clusters/%s\n",
		localrun.BootstrapOrg, s.BootstrapTokenFile, tok, tok, gw, localrun.BootstrapOrg, localCluster)
	fmt.Printf("the environment's registry holds %s (its login is the credential local-registry)\n", demo)
	fmt.Printf("its chart repository is the repository %q: curl -H \"Authorization: Bearer %s\" http://%s/api/v1/orgs/%s/charts?q=hello\n",
		localrun.LocalRepository, tok, gw, localrun.BootstrapOrg)
	fmt.Printf("\nlogs: %s\nAPI docs: http://%s/api/v1/docs\nCtrl-C stops everything.\n", logs.Name(), gw)
	select {
	case <-ctx.Done():
		fmt.Fprintln(os.Stderr, "\nstopping Slipway...")
		s.Stop()
		return nil
	case err := <-s.Exited():
		s.Stop()
		return fmt.Errorf("%w (logs: %s)", err, logs.Name())
	}
}

func tokenCmd(args []string) error {
	fs := flag.NewFlagSet("devstack token", flag.ContinueOnError)
	state := fs.String("state", ".state", "state `folder` of a running devstack")
	org := fs.String("org", "", "organization to act in (required)")
	role := fs.String("role", "owner", "`role` in the organization: viewer, deployer, admin or owner")
	subject := fs.String("subject", "user:dev", "`subject` the token names")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *org == "" {
		return errors.New("--org is required")
	}
	r, err := identity.ParseRole(*role)
	if err != nil {
		return err
	}
	priv, _ := localrun.KeyPaths(*state)
	key, err := identity.LoadPrivateKey(priv)
	if err != nil {
		return fmt.Errorf("%w (start Slipway with `make run` first)", err)
	}
	tok, err := identity.NewSigner(key, identity.DefaultTTL).Sign(identity.Identity{Subject: *subject, Org: *org, Role: r})
	if err != nil {
		return err
	}
	fmt.Println(tok)
	return nil
}
