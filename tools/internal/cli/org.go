package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	gatewayv1 "github.com/slipwayhq/slipway/proto/slipway/gateway/v1"
)

// orgClient returns a client and the organization commands act on.
func (a *app) orgClient() (*client, string, error) {
	c, err := a.client()
	if err != nil {
		return nil, "", err
	}
	org, err := c.orgName()
	if err != nil {
		return nil, "", err
	}
	return c, org, nil
}

func (a *app) orgCmd() *cobra.Command {
	var lf listFlags
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the organizations you belong to",
		Aliases: []string{"ls"},
		Example: `  slipway org list`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			raw, err := a.list(cmd.Context(), c, request{op: "OrganizationsService_ListOrganizations"}, "organizations", &lf)
			if err != nil {
				return err
			}
			return a.show(raw, func() (*table, error) {
				resp := &gatewayv1.ListOrganizationsResponse{}
				if err := unmarshalOpts.Unmarshal(raw, resp); err != nil {
					return nil, err
				}
				t := newTable("CURRENT", "NAME", "DISPLAY NAME", "AGE")
				for _, o := range resp.GetOrganizations() {
					cur := ""
					if o.GetName() == c.org {
						cur = "*"
					}
					t.row(cur, o.GetName(), orDash(o.GetDisplayName()), a.age(o.GetCreateTime()))
				}
				return t, nil
			})
		},
	}
	lf.add(list)

	get := &cobra.Command{
		Use:     "get [NAME]",
		Short:   "Show an organization (the current one by default)",
		Example: `  slipway org get acme -o yaml`,
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			name := c.org
			if len(args) == 1 {
				name = args[0]
			}
			if name == "" {
				return usagef("which organization? Give its name, or choose one with 'slipway org use NAME'")
			}
			resp, err := c.do(cmd.Context(), request{op: "OrganizationsService_GetOrganization", params: []string{name}})
			if err != nil {
				return err
			}
			return a.show(resp.body, func() (*table, error) { return orgTable(a, resp) })
		},
	}

	var display string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an organization; you become its owner",
		Long: `Create an organization. Its name is its {org} in every URL and never
changes; --display-name is free text.`,
		Example: `  slipway org create acme --display-name "ACME Corp."`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "OrganizationsService_CreateOrganization",
				body: &gatewayv1.Organization{Name: args[0], DisplayName: display}})
			if err != nil {
				return err
			}
			return a.show(resp.body, func() (*table, error) { return orgTable(a, resp) })
		},
	}
	create.Flags().StringVar(&display, "display-name", "", "display name")

	var newDisplay string
	update := &cobra.Command{
		Use:     "update NAME --display-name TEXT",
		Short:   "Change an organization's display name",
		Example: `  slipway org update acme --display-name "ACME Corporation"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "OrganizationsService_UpdateOrganization", params: []string{args[0]},
				body: &gatewayv1.UpdateOrganizationRequest{DisplayName: newDisplay}})
			if err != nil {
				return err
			}
			return a.show(resp.body, func() (*table, error) { return orgTable(a, resp) })
		},
	}
	update.Flags().StringVar(&newDisplay, "display-name", "", "new display name")
	_ = update.MarkFlagRequired("display-name")

	rm := &cobra.Command{
		Use:     "rm NAME",
		Short:   "Delete an organization (owners; refused while it has clusters or releases)",
		Aliases: []string{"delete"},
		Example: `  slipway org rm old-team`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if _, err := c.do(cmd.Context(), request{op: "OrganizationsService_DeleteOrganization", params: []string{args[0]}}); err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "Deleted organization %s.\n", args[0])
			return nil
		},
	}

	use := &cobra.Command{
		Use:   "use NAME",
		Short: "Make commands act on organization NAME (saved in the current context)",
		Example: `  slipway org use acme
  slipway --context acme-prod org use acme`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := a.target()
			if err != nil {
				return err
			}
			if t.context == "" {
				return fmt.Errorf("no context to save the organization in: run 'slipway login' first")
			}
			if _, err := a.newClient(t).do(cmd.Context(), request{op: "OrganizationsService_GetOrganization", params: []string{args[0]}}); err != nil {
				return fmt.Errorf("organization %s: %w", args[0], err)
			}
			cfg, path, err := a.config()
			if err != nil {
				return err
			}
			cfg.Context(t.context).Org = args[0]
			if err := cfg.Save(path); err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "Context %q now uses organization %s.\n", t.context, args[0])
			return nil
		},
	}
	return group("org", "Manage organizations and choose the one commands act on", `  slipway org list
  slipway org use acme`, []string{"orgs", "organization"}, list, get, create, update, rm, use)
}

func orgTable(a *app, resp *response) (*table, error) {
	// Get, create and update all answer {"organization": {...}}.
	got := &gatewayv1.GetOrganizationResponse{}
	if err := resp.decode(got); err != nil {
		return nil, err
	}
	o := got.GetOrganization()
	t := newTable("NAME", "DISPLAY NAME", "AGE")
	t.row(o.GetName(), orDash(o.GetDisplayName()), a.age(o.GetCreateTime()))
	return t, nil
}
