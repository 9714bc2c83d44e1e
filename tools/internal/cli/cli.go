// Package cli is the `slipway` command-line client. It speaks only the
// public REST API of the gateway (/api/v1/...), never the services' gRPC:
// request and response bodies are the protos' JSON (proto field names),
// built and read with the generated message types.
//
// Commands are grouped by resource, one file each (cluster.go,
// release.go, ...); each adds its cobra commands in a newXxxCmd function
// that root wires. A new REST capability is one small file: its route in
// routes.go, its commands, its table.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Env is everything a command reads from or writes to the outside world,
// so tests can run commands in process.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Now is the clock tables measure ages with.
	Now func() time.Time
	// IsTerminal reports whether a stream is an interactive terminal
	// (colour, live progress, prompts).
	IsTerminal func(any) bool
	// Version is the client's version (ldflags or build info).
	Version string
}

// Exit codes.
const (
	ExitOK        = 0
	ExitError     = 1 // the API refused, an operation failed, a file was unreadable
	ExitUsage     = 2 // bad flags or arguments
	ExitInterrupt = 130
)

// usageError marks errors in how the command was called.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// Run runs the slipway command line args and returns the process's exit
// code. Errors are printed to env.Stderr.
func Run(ctx context.Context, env Env, args []string) int {
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if env.IsTerminal == nil {
		env.IsTerminal = func(any) bool { return false }
	}
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	a := &app{env: env}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	printError(env.Stderr, err)
	var ue usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintln(env.Stderr, "Run 'slipway --help' (or the command with --help) for usage.")
		return ExitUsage
	case errors.Is(err, context.Canceled):
		return ExitInterrupt
	}
	return ExitError
}

// app holds what every command shares: the environment, the global flags,
// and the configuration once loaded.
type app struct {
	env  Env
	opts globalOptions
	cfg  *Config
}

type globalOptions struct {
	configPath string
	context    string
	server     string
	token      string
	org        string
	output     string
	noHeaders  bool
	noColor    bool
	timeout    time.Duration
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "slipway",
		Short: "Deploy Helm charts to your organization's clusters through Slipway",
		Long: `slipway is the command-line client of Slipway's REST API.

It keeps the servers, tokens and organizations you use as contexts in
$XDG_CONFIG_HOME/slipway/config.yaml (~/.config/slipway/config.yaml);
SLIPWAY_SERVER, SLIPWAY_TOKEN and SLIPWAY_ORG override the current context,
and --server, --token and --org override those.

Output is a table for people; -o json or -o yaml prints the API's objects
as the server sent them, for scripts. Commands that change a release wait
for its operation and show its progress; --async returns at once.`,
		Example: `  slipway login --server https://slipway.example.com --token-stdin < token.txt
  slipway cluster add prod --kubeconfig ~/.kube/config --context prod
  slipway release install web local/hello --cluster prod -n web --set replicaCount=2
  slipway release history web --cluster prod -n web -o yaml`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		DisableAutoGenTag: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			switch a.opts.output {
			case "", "table", "json", "yaml":
			default:
				return usagef("unknown output format %q: use table, json or yaml", a.opts.output)
			}
			return nil
		},
	}
	f := root.PersistentFlags()
	f.StringVar(&a.opts.configPath, "config", "", "configuration file (default $XDG_CONFIG_HOME/slipway/config.yaml; env SLIPWAY_CONFIG)")
	f.StringVar(&a.opts.context, "context", "", "context of the configuration to use (env SLIPWAY_CONTEXT)")
	f.StringVar(&a.opts.server, "server", "", "Slipway server URL (env SLIPWAY_SERVER)")
	f.StringVar(&a.opts.token, "token", "", "API token (env SLIPWAY_TOKEN)")
	f.StringVar(&a.opts.org, "org", "", "organization (env SLIPWAY_ORG)")
	f.StringVarP(&a.opts.output, "output", "o", "table", "output format: table, json or yaml")
	f.BoolVar(&a.opts.noHeaders, "no-headers", false, "print tables without their header row")
	f.BoolVar(&a.opts.noColor, "no-color", false, "never colour output (also NO_COLOR)")
	f.DurationVar(&a.opts.timeout, "request-timeout", 30*time.Second, "time limit of each API request (waiting for an operation has none)")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	_ = root.RegisterFlagCompletionFunc("context", a.completeContexts)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	root.AddGroup(&cobra.Group{ID: "setup", Title: "Connecting:"},
		&cobra.Group{ID: "org", Title: "Organization and access:"},
		&cobra.Group{ID: "infra", Title: "Clusters, credentials and images:"},
		&cobra.Group{ID: "catalog", Title: "Catalog:"},
		&cobra.Group{ID: "deploy", Title: "Deploying:"})
	add := func(group string, cmds ...*cobra.Command) {
		for _, c := range cmds {
			c.GroupID = group
			root.AddCommand(c)
		}
	}
	add("setup", a.loginCmd(), a.logoutCmd(), a.contextCmd(), a.versionCmd())
	add("org", a.orgCmd(), a.memberCmd(), a.tokenCmd(), a.auditCmd())
	add("infra", a.clusterCmd(), a.credentialCmd(), a.imageCmd())
	add("catalog", a.repoCmd(), a.chartCmd(), a.appCmd())
	add("deploy", a.releaseCmd(), a.instanceCmd(), a.opCmd())
	root.SetHelpCommandGroupID("setup")
	root.SetCompletionCommandGroupID("setup")
	withUsageErrors(root)
	return root
}

// withUsageErrors makes argument-count errors of every command usage
// errors (exit code 2).
func withUsageErrors(c *cobra.Command) {
	if c.Args != nil {
		args := c.Args
		c.Args = func(cmd *cobra.Command, a []string) error {
			if err := args(cmd, a); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		withUsageErrors(sub)
	}
}

// group returns a command that only holds subcommands.
func group(use, short, example string, aliases []string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short, Example: example, Aliases: aliases, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() }}
	c.AddCommand(subs...)
	return c
}
