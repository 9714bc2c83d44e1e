package cli

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	catalogv1 "github.com/slipwayhq/slipway/proto/slipway/catalog/v1"
	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

// readApplication reads an application file (YAML or JSON, the API's
// field names) strictly: an unknown field is an error here, not a
// surprise later.
func (a *app) readApplication(file string) (*catalogv1.Application, error) {
	b, err := a.readInput(file)
	if err != nil {
		return nil, err
	}
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return nil, fmt.Errorf("read application %s: %w", file, err)
	}
	app := &catalogv1.Application{}
	if err := (protojson.UnmarshalOptions{}).Unmarshal(j, app); err != nil {
		return nil, fmt.Errorf("read application %s: %w", file, err)
	}
	return app, nil
}

func (a *app) appCmd() *cobra.Command {
	var file string
	create := &cobra.Command{
		Use:   "create -f app.yaml",
		Short: "Create an application from a file (admins)",
		Long: `Create an application: a chart of the catalog, an image of the registry,
values and named targets (cluster, namespace, values), written as YAML or
JSON with the API's field names. It is checked against the clusters, the
image and the chart's values schema; every failure is listed.`,
		Example: `  cat > app.yaml <<'YAML'
  name: hello
  chart: {repository: local, chart: hello, version: "~0.2"}
  image: hello
  targets:
  - {name: dev, cluster: local, namespace: hello-dev}
  - {name: prod, cluster: local, namespace: hello, values: {replicaCount: 2}}
  YAML
  slipway app create -f app.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			app, err := a.readApplication(file)
			if err != nil {
				return err
			}
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "CatalogService_CreateApplication", params: []string{org}, body: app})
			if err != nil {
				return err
			}
			return a.show(resp.body, func() (*table, error) { return oneApp(a, resp) })
		},
	}
	create.Flags().StringVarP(&file, "filename", "f", "", "application file, YAML or JSON ('-' for standard input)")
	_ = create.MarkFlagRequired("filename")
	_ = create.MarkFlagFilename("filename", "yaml", "yml", "json")

	var ufile string
	update := &cobra.Command{
		Use:   "update -f app.yaml",
		Short: "Replace an application with the one in a file (admins)",
		Long: `Replace an application completely with the file's (nothing is merged).
With an etag in the file (as 'app get -o yaml' prints it), a concurrent
change is refused instead of lost.`,
		Example: `  slipway app get hello -o yaml > app.yaml && $EDITOR app.yaml && slipway app update -f app.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			app, err := a.readApplication(ufile)
			if err != nil {
				return err
			}
			if app.GetName() == "" {
				return usagef("the application file names no application (name)")
			}
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "CatalogService_UpdateApplication", params: []string{org, app.GetName()}, body: app})
			if err != nil {
				return err
			}
			return a.show(resp.body, func() (*table, error) { return oneApp(a, resp) })
		},
	}
	update.Flags().StringVarP(&ufile, "filename", "f", "", "application file, YAML or JSON ('-' for standard input)")
	_ = update.MarkFlagRequired("filename")

	get := &cobra.Command{
		Use:               "get APP",
		Short:             "Show an application and where each target stands",
		Example:           `  slipway app get hello`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeApps,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "CatalogService_GetApplication", params: []string{org, args[0]}})
			if err != nil {
				return err
			}
			return a.show(resp.body, func() (*table, error) {
				got := &catalogv1.GetApplicationResponse{}
				if err := resp.decode(got); err != nil {
					return nil, err
				}
				app := got.GetApplication()
				ch := app.GetChart()
				fmt.Fprintf(a.env.Stdout, "Application %s: chart %s/%s %s, image %s\n\n", app.GetName(), ch.GetRepository(), ch.GetChart(),
					orDash(ch.GetVersion()), orDash(app.GetImage()))
				t := newTable("TARGET", "CLUSTER", "NAMESPACE", "CHART VERSION", "DEPLOYED", "UPGRADE", "ERROR")
				for _, tg := range app.GetTargets() {
					s := tg.GetStatus()
					up := "-"
					if s.GetUpgradeAvailable() {
						up = "available"
					}
					t.row(tg.GetName(), tg.GetCluster(), tg.GetNamespace(), orDash(s.GetChartVersion()), orDash(s.GetDeployedChartVersion()), up, orDash(s.GetError()))
				}
				return t, nil
			})
		},
	}

	var lf listFlags
	var chart, image string
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the organization's applications",
		Aliases: []string{"ls"},
		Example: `  slipway app list --chart local/hello`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := map[string][]string{}
			if chart != "" {
				q["chart"] = []string{chart}
			}
			if image != "" {
				q["image"] = []string{image}
			}
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			raw, err := a.list(cmd.Context(), c, request{op: "CatalogService_ListApplications", params: []string{org}, query: q}, "applications", &lf)
			if err != nil {
				return err
			}
			return a.show(raw, func() (*table, error) {
				resp := &catalogv1.ListApplicationsResponse{}
				if err := unmarshalOpts.Unmarshal(raw, resp); err != nil {
					return nil, err
				}
				t := appTable()
				for _, app := range resp.GetApplications() {
					appRow(a, t, app)
				}
				return t, nil
			})
		},
	}
	lf.add(list)
	list.Flags().StringVar(&chart, "chart", "", "only applications of this chart (REPO/CHART or CHART)")
	list.Flags().StringVar(&image, "image", "", "only applications of this image")

	rm := &cobra.Command{
		Use:               "rm APP",
		Short:             "Delete an application (admins; refused while a target is deployed)",
		Aliases:           []string{"delete"},
		Example:           `  slipway app rm hello`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeApps,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			if _, err := c.do(cmd.Context(), request{op: "CatalogService_DeleteApplication", params: []string{org, args[0]}}); err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "Deleted application %s.\n", args[0])
			return nil
		},
	}

	var dvals valuesFlags
	var dopts deployFlags
	var dop opFlags
	var version string
	deploy := &cobra.Command{
		Use:   "deploy APP TARGET [--version V] [-f values.yaml] [--set k=v]",
		Short: "Deploy an application to one of its targets and wait for it (deployers)",
		Long: `Deploy an application to a target: helm upgrade --install --reset-values of
release APP-TARGET with the application's chart, its values, the target's
values, these values (-f, --set) and the image version (the newest by
default) set by digest. Waits for the operation unless --async.`,
		Example: `  slipway app deploy hello dev
  slipway app deploy hello prod --version 1.4.2 --set replicaCount=3 --wait --timeout 5m`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: a.completeApps,
		RunE: func(cmd *cobra.Command, args []string) error {
			vy, err := dvals.yaml(a.env.Stdin)
			if err != nil {
				return err
			}
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			body := &releasesv1.DeployApplicationRequest{Version: version, Options: dopts.options(), ValuesYaml: vy, NoQueue: dopts.noQueue}
			return a.submit(cmd.Context(), c, request{op: "ReleasesService_DeployApplication", params: []string{org, args[0], args[1]}, body: body}, &dop)
		},
	}
	dvals.add(deploy)
	dopts.add(deploy, "deploy")
	dop.add(deploy)
	deploy.Flags().StringVar(&version, "version", "", "image version to deploy (default: the newest recorded)")

	var ropts deployFlags
	var rop opFlags
	var revision int32
	rollback := &cobra.Command{
		Use:               "rollback APP TARGET [--revision N]",
		Short:             "Roll an application's release on a target back (deployers)",
		Example:           `  slipway app rollback hello prod --revision 3`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: a.completeApps,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			body := &releasesv1.RollbackApplicationRequest{Revision: revision, Options: ropts.options(), NoQueue: ropts.noQueue}
			return a.submit(cmd.Context(), c, request{op: "ReleasesService_RollbackApplication", params: []string{org, args[0], args[1]}, body: body}, &rop)
		},
	}
	ropts.add(rollback, "rollback")
	rop.add(rollback)
	rollback.Flags().Int32Var(&revision, "revision", 0, "revision to roll back to (default: the one before the current)")

	var rlf listFlags
	releases := &cobra.Command{
		Use:               "releases APP TARGET",
		Short:             "List the revisions of an application's release on a target, newest first",
		Example:           `  slipway app releases hello prod`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: a.completeApps,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			raw, err := a.list(cmd.Context(), c, request{op: "ReleasesService_ListApplicationReleases", params: []string{org, args[0], args[1]}}, "releases", &rlf)
			if err != nil {
				return err
			}
			return a.show(raw, func() (*table, error) { return revisionsTable(a, raw) })
		},
	}
	rlf.add(releases)

	return group("app", "Manage applications and deploy them to their targets", `  slipway app create -f app.yaml
  slipway app deploy hello dev`, []string{"apps", "application"}, create, update, get, list, rm, deploy, rollback, releases)
}

func appTable() *table {
	return newTable("NAME", "CHART", "VERSION", "IMAGE", "TARGETS", "AGE")
}

func appRow(a *app, t *table, app *catalogv1.Application) {
	ch := app.GetChart()
	t.row(app.GetName(), ch.GetRepository()+"/"+ch.GetChart(), orDash(ch.GetVersion()), orDash(app.GetImage()),
		strconv.Itoa(len(app.GetTargets())), a.age(app.GetCreateTime()))
}

func oneApp(a *app, resp *response) (*table, error) {
	got := &catalogv1.GetApplicationResponse{}
	if err := resp.decode(got); err != nil {
		return nil, err
	}
	t := appTable()
	appRow(a, t, got.GetApplication())
	return t, nil
}

func (a *app) completeApps(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, org, err := a.orgClient()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	resp, err := c.do(cmd.Context(), request{op: "CatalogService_ListApplications", params: []string{org}, query: map[string][]string{"page_size": {"500"}}})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	got := &catalogv1.ListApplicationsResponse{}
	if resp.decode(got) != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for _, app := range got.GetApplications() {
		names = append(names, app.GetName())
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
