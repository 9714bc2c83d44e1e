package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	registryv1 "github.com/slipwayhq/slipway/proto/slipway/registry/v1"
)

func (a *app) imageCmd() *cobra.Command {
	record := &cobra.Command{
		Use:   "push-record NAME VERSION REFERENCE",
		Short: "Record a pushed image version (immutable; deployers)",
		Long: `Record that image NAME at VERSION is REFERENCE, typically right after
pushing it in CI. The digest is resolved in the image's registry (with the
organization's registry credential); deploys use the image by that
digest. Versions are immutable: recording one again is refused
(already_exists), and a reference that resolves to nothing is refused
(unprocessable).`,
		Aliases: []string{"record"},
		Example: `  docker push ghcr.io/acme/api:1.4.2
  slipway image push-record api 1.4.2 ghcr.io/acme/api:1.4.2`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "RegistryService_CreateImage", params: []string{org},
				body: &registryv1.Image{Name: args[0], Version: args[1], Reference: args[2]}})
			if err != nil {
				return err
			}
			return a.show(resp.body, func() (*table, error) { return oneImage(a, resp) })
		},
	}

	var lf listFlags
	var name, version string
	list := &cobra.Command{
		Use:     "list [NAME]",
		Short:   "List recorded images, newest first",
		Aliases: []string{"ls"},
		Example: `  slipway image list
  slipway image list api`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := map[string][]string{}
			if len(args) == 1 {
				name = args[0]
			}
			if name != "" {
				q["name"] = []string{name}
			}
			if version != "" {
				q["version"] = []string{version}
			}
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			raw, err := a.list(cmd.Context(), c, request{op: "RegistryService_ListImages", params: []string{org}, query: q}, "images", &lf)
			if err != nil {
				return err
			}
			return a.show(raw, func() (*table, error) {
				resp := &registryv1.ListImagesResponse{}
				if err := unmarshalOpts.Unmarshal(raw, resp); err != nil {
					return nil, err
				}
				t := imageTable()
				for _, im := range resp.GetImages() {
					imageRow(a, t, im)
				}
				return t, nil
			})
		},
	}
	lf.add(list)
	list.Flags().StringVar(&version, "version", "", "only this version")

	get := &cobra.Command{
		Use:     "get NAME VERSION",
		Short:   "Show one image version",
		Example: `  slipway image get api 1.4.2 -o json`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "RegistryService_GetImage", params: []string{org, args[0], args[1]}})
			if err != nil {
				return err
			}
			return a.show(resp.body, func() (*table, error) { return oneImage(a, resp) })
		},
	}

	var wlf listFlags
	where := &cobra.Command{
		Use:   "where (NAME VERSION | sha256:DIGEST)",
		Short: "List the releases running an image version or digest",
		Example: `  slipway image where api 1.4.2
  slipway image where sha256:0f3c...`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			req := request{op: "RegistryService_ListImageDeployments", params: []string{org}}
			switch {
			case len(args) == 1 && strings.HasPrefix(args[0], "sha256:"):
				req.op = "RegistryService_ListDigestDeployments"
				req.params = append(req.params, args[0])
			case len(args) == 2:
				req.params = append(req.params, args[0], args[1])
			default:
				return usagef("give an image NAME and VERSION, or a sha256: digest")
			}
			raw, err := a.list(cmd.Context(), c, req, "deployments", &wlf)
			if err != nil {
				return err
			}
			return a.show(raw, func() (*table, error) {
				resp := &registryv1.ListImageDeploymentsResponse{}
				if err := unmarshalOpts.Unmarshal(raw, resp); err != nil {
					return nil, err
				}
				t := newTable("CLUSTER", "NAMESPACE", "RELEASE", "REVISION", "DIGEST")
				for _, d := range resp.GetDeployments() {
					t.row(d.GetCluster(), d.GetNamespace(), d.GetRelease(), strconv.Itoa(int(d.GetRevision())), d.GetDigest())
				}
				return t, nil
			})
		},
	}
	wlf.add(where)

	rm := &cobra.Command{
		Use:     "rm NAME VERSION",
		Short:   "Delete an image version (refused while a release runs it)",
		Aliases: []string{"delete"},
		Example: `  slipway image rm api 1.0.0`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			if _, err := c.do(cmd.Context(), request{op: "RegistryService_DeleteImage", params: []string{org, args[0], args[1]}}); err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "Deleted image %s %s.\n", args[0], args[1])
			return nil
		},
	}

	var prefix, naming string
	pushRule := &cobra.Command{
		Use:   "push-rule [--repository-prefix P --naming last-segment|path]",
		Short: "Show, or set (admins), how registry push webhooks name images",
		Example: `  slipway image push-rule
  slipway image push-rule --repository-prefix team/ --naming path`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			req := request{op: "RegistryService_GetPushRule", params: []string{org}}
			if cmd.Flags().Changed("repository-prefix") || cmd.Flags().Changed("naming") {
				rule := &registryv1.PushRule{RepositoryPrefix: prefix}
				if naming != "" {
					n, err := parseEnum(registryv1.PushNaming(0).Descriptor(), naming)
					if err != nil {
						return err
					}
					rule.Naming = registryv1.PushNaming(n)
				}
				req = request{op: "RegistryService_UpdatePushRule", params: []string{org}, body: rule}
			}
			resp, err := c.do(cmd.Context(), req)
			if err != nil {
				return err
			}
			return a.show(resp.body, func() (*table, error) {
				got := &registryv1.GetPushRuleResponse{}
				if err := resp.decode(got); err != nil {
					return nil, err
				}
				t := newTable("REPOSITORY PREFIX", "NAMING")
				n := enum(got.GetRule().GetNaming())
				if n == "-" {
					n = "last-segment"
				}
				t.row(orDash(got.GetRule().GetRepositoryPrefix()), n)
				return t, nil
			})
		},
	}
	pushRule.Flags().StringVar(&prefix, "repository-prefix", "", "only repositories under this prefix record images (removed from names)")
	pushRule.Flags().StringVar(&naming, "naming", "", "how the repository names the image: last-segment or path")

	return group("image", "Record and find immutable container image versions", `  slipway image push-record api 1.4.2 ghcr.io/acme/api:1.4.2
  slipway image where api 1.4.2`, []string{"images"}, record, list, get, where, rm, pushRule)
}

func imageTable() *table {
	return newTable("NAME", "VERSION", "REFERENCE", "DIGEST", "AGE")
}

func imageRow(a *app, t *table, im *registryv1.Image) {
	t.row(im.GetName(), im.GetVersion(), im.GetReference(), shortDigest(im.GetDigest()), a.age(im.GetCreateTime()))
}

func oneImage(a *app, resp *response) (*table, error) {
	got := &registryv1.GetImageResponse{}
	if err := resp.decode(got); err != nil {
		return nil, err
	}
	t := imageTable()
	imageRow(a, t, got.GetImage())
	return t, nil
}

// shortDigest prints sha256:0123456789ab (12 hex digits), as docker does.
func shortDigest(d string) string {
	if d == "" {
		return "-"
	}
	algo, hex, ok := strings.Cut(d, ":")
	if ok && len(hex) > 12 {
		return algo + ":" + hex[:12]
	}
	return d
}
