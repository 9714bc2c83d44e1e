package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	gatewayv1 "github.com/slipwayhq/slipway/proto/slipway/gateway/v1"
)

func (a *app) tokenCmd() *cobra.Command {
	var lf listFlags
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the organization's API tokens (never their secrets)",
		Aliases: []string{"ls"},
		Example: `  slipway token list`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			raw, err := a.list(cmd.Context(), c, request{op: "TokensService_ListTokens", params: []string{org}}, "tokens", &lf)
			if err != nil {
				return err
			}
			return a.show(raw, func() (*table, error) {
				resp := &gatewayv1.ListTokensResponse{}
				if err := unmarshalOpts.Unmarshal(raw, resp); err != nil {
					return nil, err
				}
				t := newTable("ID", "NAME", "ROLE", "CREATOR", "LAST USED", "EXPIRES", "REVOKED", "AGE")
				for _, tk := range resp.GetTokens() {
					t.row(tk.GetId(), tk.GetName(), enum(tk.GetRole()), orDash(tk.GetCreator()), a.age(tk.GetLastUsedTime()),
						stamp(tk.GetExpireTime()), stamp(tk.GetRevokeTime()), a.age(tk.GetCreateTime()))
				}
				return t, nil
			})
		},
	}
	lf.add(list)

	var role string
	var expires time.Duration
	create := &cobra.Command{
		Use:   "create NAME --role ROLE [--expires DURATION]",
		Short: "Create an API token; its secret is printed once",
		Long: `Create an API token acting for you with a role (at most yours). The secret
is printed once, on standard output alone, so it can be captured:
TOKEN=$(slipway token create ci --role deployer). It stops working when
revoked, when it expires, or when you leave the organization.`,
		Example: `  slipway token create ci --role deployer --expires 720h
  slipway token create ci --role deployer -o json | jq -r .secret`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := parseRole(role)
			if err != nil {
				return err
			}
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			body := &gatewayv1.CreateTokenRequest{Name: args[0], Role: r}
			if expires > 0 {
				body.ExpireTime = timestamppb.New(a.env.Now().Add(expires))
			}
			resp, err := c.do(cmd.Context(), request{op: "TokensService_CreateToken", params: []string{org}, body: body})
			if err != nil {
				return err
			}
			if a.structured() {
				return a.show(resp.body, nil)
			}
			got := &gatewayv1.CreateTokenResponse{}
			if err := resp.decode(got); err != nil {
				return err
			}
			fmt.Fprintln(a.env.Stdout, got.GetSecret())
			fmt.Fprintf(a.env.Stderr, "Token %s (%s, role %s) created. Its secret, above, is not shown again.\n",
				got.GetToken().GetId(), got.GetToken().GetName(), enum(got.GetToken().GetRole()))
			return nil
		},
	}
	create.Flags().StringVar(&role, "role", "viewer", "role: viewer, deployer, admin or owner")
	create.Flags().DurationVar(&expires, "expires", 0, "expire after this long (e.g. 720h); never by default")
	_ = create.RegisterFlagCompletionFunc("role", roleCompletion)

	revoke := &cobra.Command{
		Use:     "revoke ID",
		Short:   "Revoke an API token; it stops working at once",
		Aliases: []string{"rm"},
		Example: `  slipway token revoke tok_01J...`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			if _, err := c.do(cmd.Context(), request{op: "TokensService_RevokeToken", params: []string{org, args[0]}}); err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "Revoked token %s.\n", args[0])
			return nil
		},
	}
	return group("token", "Manage the organization's API tokens", `  slipway token create ci --role deployer
  slipway token list`, []string{"tokens"}, list, create, revoke)
}
