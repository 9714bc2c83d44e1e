package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	gatewayv1 "github.com/slipwayhq/slipway/proto/slipway/gateway/v1"
)

func (a *app) loginCmd() *cobra.Command {
	var name string
	var tokenStdin bool
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Save a server, token and organization as a context, and make it current",
		Long: `Log in to a Slipway server with an API token (created with 'slipway token
create', or printed by the gateway's bootstrap). The token is checked
against the server, then saved with the server and organization as a
context of the configuration file (mode 0600), which becomes current.

The token comes from --token, --token-stdin, SLIPWAY_TOKEN or, on a
terminal, a prompt. Without --org, the organization is the token's when it
belongs to exactly one.`,
		Example: `  slipway login --server http://127.0.0.1:8080 --token-stdin < .state/bootstrap-token
  SLIPWAY_TOKEN=slp_... slipway login --server https://slipway.example.com --org acme --name acme-prod`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			t := target{server: first(a.opts.server, a.env.Getenv("SLIPWAY_SERVER")), org: first(a.opts.org, a.env.Getenv("SLIPWAY_ORG"))}
			if t.server == "" {
				return usagef("login needs --server URL (or SLIPWAY_SERVER)")
			}
			u, err := url.Parse(t.server)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return usagef("--server %q is not an http:// or https:// URL", t.server)
			}
			t.server = strings.TrimRight(t.server, "/")
			switch {
			case tokenStdin:
				b, err := io.ReadAll(io.LimitReader(a.env.Stdin, 64<<10))
				if err != nil {
					return fmt.Errorf("read the token: %w", err)
				}
				t.token = strings.TrimSpace(string(b))
			default:
				t.token = first(a.opts.token, a.env.Getenv("SLIPWAY_TOKEN"))
			}
			if t.token == "" {
				if t.token, err = a.promptToken(); err != nil {
					return err
				}
			}
			c := a.newClient(t)
			resp, err := c.do(ctx, request{op: "OrganizationsService_ListOrganizations"})
			if err != nil {
				return fmt.Errorf("log in to %s: %w", t.server, err)
			}
			orgs := &gatewayv1.ListOrganizationsResponse{}
			if err := resp.decode(orgs); err != nil {
				return err
			}
			if t.org == "" && len(orgs.GetOrganizations()) == 1 {
				t.org = orgs.GetOrganizations()[0].GetName()
			}
			if t.org != "" {
				if _, err := c.do(ctx, request{op: "OrganizationsService_GetOrganization", params: []string{t.org}}); err != nil {
					return fmt.Errorf("organization %s: %w", t.org, err)
				}
			}
			cfg, path, err := a.config()
			if err != nil {
				return err
			}
			if name == "" {
				name = u.Host
			}
			cfg.Upsert(Context{Name: name, Server: t.server, Token: t.token, Org: t.org})
			cfg.CurrentContext = name
			if err := cfg.Save(path); err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "Logged in to %s as context %q", t.server, name)
			if t.org != "" {
				fmt.Fprintf(a.env.Stdout, ", organization %s", t.org)
			}
			fmt.Fprintln(a.env.Stdout, ".")
			if t.org == "" {
				var names []string
				for _, o := range orgs.GetOrganizations() {
					names = append(names, o.GetName())
				}
				fmt.Fprintf(a.env.Stderr, "Choose an organization with 'slipway org use NAME' (yours: %s).\n", orDash(strings.Join(names, ", ")))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "name of the context (default: the server's host:port)")
	cmd.Flags().BoolVar(&tokenStdin, "token-stdin", false, "read the token from standard input")
	return cmd
}

// promptToken asks for the token on a terminal, without echoing it.
func (a *app) promptToken() (string, error) {
	f, ok := a.env.Stdin.(*os.File)
	if !ok || !a.env.IsTerminal(a.env.Stdin) {
		return "", usagef("no token: pass --token, --token-stdin or set SLIPWAY_TOKEN")
	}
	fmt.Fprint(a.env.Stderr, "API token: ")
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(a.env.Stderr)
	if err != nil {
		// Not a real terminal after all: read a line.
		line, rerr := bufio.NewReader(f).ReadString('\n')
		if rerr != nil && line == "" {
			return "", fmt.Errorf("read the token: %w", err)
		}
		b = []byte(line)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", usagef("no token given")
	}
	return tok, nil
}

func (a *app) logoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout [CONTEXT]",
		Short: "Forget the token of a context (the current one by default)",
		Example: `  slipway logout
  slipway logout acme-prod`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: a.completeContexts,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, path, err := a.config()
			if err != nil {
				return err
			}
			name := cfg.CurrentContext
			if len(args) == 1 {
				name = args[0]
			}
			c := cfg.Context(name)
			if c == nil {
				return fmt.Errorf("no context %q", name)
			}
			c.Token = ""
			if err := cfg.Save(path); err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "Logged out of context %q (the token stays valid on the server until revoked: slipway token revoke).\n", name)
			return nil
		},
	}
}

func (a *app) contextCmd() *cobra.Command {
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the contexts of the configuration",
		Aliases: []string{"ls"},
		Example: `  slipway context list`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := a.config()
			if err != nil {
				return err
			}
			t := newTable("CURRENT", "NAME", "SERVER", "ORG", "TOKEN")
			for _, c := range cfg.Contexts {
				cur := ""
				if c.Name == cfg.CurrentContext {
					cur = "*"
				}
				tok := "-"
				if c.Token != "" {
					tok = "set"
				}
				t.row(cur, c.Name, c.Server, orDash(c.Org), tok)
			}
			if a.structured() {
				// Never print tokens, even for scripts.
				safe := Config{CurrentContext: cfg.CurrentContext}
				for _, c := range cfg.Contexts {
					c.Token = ""
					safe.Contexts = append(safe.Contexts, c)
				}
				b, err := json.Marshal(safe)
				if err != nil {
					return err
				}
				return a.show(b, nil)
			}
			return t.write(a.env.Stdout, !a.opts.noHeaders, false)
		},
	}
	use := &cobra.Command{
		Use:               "use NAME",
		Short:             "Make a context current",
		Example:           `  slipway context use acme-prod`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeContexts,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, path, err := a.config()
			if err != nil {
				return err
			}
			if cfg.Context(args[0]) == nil {
				return fmt.Errorf("no context %q (slipway context list)", args[0])
			}
			cfg.CurrentContext = args[0]
			if err := cfg.Save(path); err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "Switched to context %q.\n", args[0])
			return nil
		},
	}
	rm := &cobra.Command{
		Use:               "rm NAME",
		Short:             "Delete a context from the configuration",
		Aliases:           []string{"delete"},
		Example:           `  slipway context rm old-server`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeContexts,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, path, err := a.config()
			if err != nil {
				return err
			}
			if !cfg.Remove(args[0]) {
				return fmt.Errorf("no context %q", args[0])
			}
			if err := cfg.Save(path); err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "Deleted context %q.\n", args[0])
			return nil
		},
	}
	current := &cobra.Command{
		Use:     "current",
		Short:   "Print the server and organization commands use now",
		Example: `  SLIPWAY_ORG=acme slipway context current`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := a.target()
			if err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "context: %s\nserver:  %s\norg:     %s\n", orDash(t.context), t.server, orDash(t.org))
			return nil
		},
	}
	return group("context", "Manage the contexts of the configuration file", `  slipway context list
  slipway context use acme-prod`, []string{"ctx"}, list, use, rm, current)
}

func (a *app) completeContexts(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	cfg, _, err := a.config()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for _, c := range cfg.Contexts {
		names = append(names, c.Name)
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
