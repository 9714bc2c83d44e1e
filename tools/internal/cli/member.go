package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	gatewayv1 "github.com/slipwayhq/slipway/proto/slipway/gateway/v1"
)

func parseRole(s string) (gatewayv1.Role, error) {
	n, err := parseEnum(gatewayv1.Role(0).Descriptor(), s)
	return gatewayv1.Role(n), err
}

func (a *app) memberCmd() *cobra.Command {
	var lf listFlags
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the organization's members",
		Aliases: []string{"ls"},
		Example: `  slipway member list`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			raw, err := a.list(cmd.Context(), c, request{op: "MembersService_ListMembers", params: []string{org}}, "members", &lf)
			if err != nil {
				return err
			}
			return a.show(raw, func() (*table, error) {
				resp := &gatewayv1.ListMembersResponse{}
				if err := unmarshalOpts.Unmarshal(raw, resp); err != nil {
					return nil, err
				}
				t := newTable("ID", "EMAIL", "SUBJECT", "ROLE", "AGE")
				for _, m := range resp.GetMembers() {
					t.row(m.GetId(), orDash(m.GetEmail()), orDash(m.GetSubject()), enum(m.GetRole()), a.age(m.GetCreateTime()))
				}
				return t, nil
			})
		},
	}
	lf.add(list)

	var email, subject, role string
	add := &cobra.Command{
		Use:   "add (--email EMAIL | --subject SUB) --role ROLE",
		Short: "Invite a member by email, or add one by OIDC subject",
		Long: `Add a member with a role: viewer, deployer, admin or owner (never above your
own). A member invited by email is bound to the OIDC user who first signs
in with that (verified) email.`,
		Example: `  slipway member add --email ana@example.com --role deployer`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := parseRole(role)
			if err != nil {
				return err
			}
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "MembersService_AddMember", params: []string{org},
				body: &gatewayv1.AddMemberRequest{Email: email, Subject: subject, Role: r}})
			if err != nil {
				return err
			}
			return a.show(resp.body, func() (*table, error) { return memberTable(a, resp) })
		},
	}
	add.Flags().StringVar(&email, "email", "", "email address to invite")
	add.Flags().StringVar(&subject, "subject", "", "OIDC subject (sub claim)")
	add.Flags().StringVar(&role, "role", "viewer", "role: viewer, deployer, admin or owner")
	add.MarkFlagsOneRequired("email", "subject")
	_ = add.RegisterFlagCompletionFunc("role", roleCompletion)

	var newRole string
	update := &cobra.Command{
		Use:     "update MEMBER --role ROLE",
		Short:   "Change a member's role",
		Example: `  slipway member update mem_01J... --role admin`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := parseRole(newRole)
			if err != nil {
				return err
			}
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "MembersService_UpdateMember", params: []string{org, args[0]},
				body: &gatewayv1.UpdateMemberRequest{Role: r}})
			if err != nil {
				return err
			}
			return a.show(resp.body, func() (*table, error) { return memberTable(a, resp) })
		},
	}
	update.Flags().StringVar(&newRole, "role", "", "new role")
	_ = update.MarkFlagRequired("role")
	_ = update.RegisterFlagCompletionFunc("role", roleCompletion)

	rm := &cobra.Command{
		Use:     "rm MEMBER",
		Short:   "Remove a member (their tokens stop working)",
		Aliases: []string{"remove"},
		Example: `  slipway member rm mem_01J...`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			if _, err := c.do(cmd.Context(), request{op: "MembersService_RemoveMember", params: []string{org, args[0]}}); err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "Removed member %s.\n", args[0])
			return nil
		},
	}
	return group("member", "Manage the organization's members and their roles", `  slipway member list
  slipway member add --email ana@example.com --role deployer`, []string{"members"}, list, add, update, rm)
}

func roleCompletion(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return []string{"viewer", "deployer", "admin", "owner"}, cobra.ShellCompDirectiveNoFileComp
}

func memberTable(a *app, resp *response) (*table, error) {
	got := &gatewayv1.AddMemberResponse{}
	if err := resp.decode(got); err != nil {
		return nil, err
	}
	m := got.GetMember()
	t := newTable("ID", "EMAIL", "SUBJECT", "ROLE", "AGE")
	t.row(m.GetId(), orDash(m.GetEmail()), orDash(m.GetSubject()), enum(m.GetRole()), a.age(m.GetCreateTime()))
	return t, nil
}
