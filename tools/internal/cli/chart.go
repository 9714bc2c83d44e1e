package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	catalogv1 "github.com/slipwayhq/slipway/proto/slipway/catalog/v1"
)

// splitChart reads REPO/CHART.
func splitChart(s string) (repo, chart string, err error) {
	repo, chart, ok := strings.Cut(s, "/")
	if !ok || repo == "" || chart == "" || strings.Contains(chart, "/") {
		return "", "", usagef("%q is not REPOSITORY/CHART", s)
	}
	return repo, chart, nil
}

func (a *app) chartCmd() *cobra.Command {
	var lf listFlags
	var repo string
	var deprecated bool
	search := &cobra.Command{
		Use:   "search [QUERY]",
		Short: "Search the charts of every repository (names, descriptions, keywords)",
		Example: `  slipway chart search postgres
  slipway chart search --repo bitnami`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := map[string][]string{}
			if len(args) == 1 {
				q["q"] = []string{args[0]}
			}
			if repo != "" {
				q["repository"] = []string{repo}
			}
			if deprecated {
				q["include_deprecated"] = []string{"true"}
			}
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			raw, err := a.list(cmd.Context(), c, request{op: "CatalogService_SearchCharts", params: []string{org}, query: q}, "charts", &lf)
			if err != nil {
				return err
			}
			return a.show(raw, func() (*table, error) { return chartsTable(a, raw) })
		},
	}
	lf.add(search)
	search.Flags().StringVar(&repo, "repo", "", "only charts of this repository")
	search.Flags().BoolVar(&deprecated, "deprecated", false, "include deprecated charts")

	var version string
	show := &cobra.Command{
		Use:   "show REPO/CHART [--version V]",
		Short: "Show a chart and its versions, or one version's metadata",
		Example: `  slipway chart show local/hello
  slipway chart show local/hello --version 0.2.0 -o yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, ch, err := splitChart(args[0])
			if err != nil {
				return err
			}
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			if version != "" {
				resp, err := c.do(cmd.Context(), request{op: "CatalogService_GetChartVersion", params: []string{org, r, ch, version}})
				if err != nil {
					return err
				}
				return a.showDetails(resp.body, func(d *details) error {
					got := &catalogv1.GetChartVersionResponse{}
					if err := resp.decode(got); err != nil {
						return err
					}
					v := got.GetChartVersion()
					d.add("Chart", v.GetRepository()+"/"+v.GetChart())
					d.add("Version", v.GetVersion())
					d.add("App version", orDash(v.GetAppVersion()))
					d.add("Description", orDash(v.GetDescription()))
					d.add("Type", orDash(v.GetType()))
					d.add("Kubernetes", orDash(v.GetKubeVersion()))
					d.add("Home", orDash(v.GetHomeUrl()))
					d.add("Digest", orDash(v.GetDigest()))
					d.add("Created", stamp(v.GetCreateTime()))
					d.add("Deprecated", fmt.Sprint(v.GetDeprecated()))
					d.add("Schema", fmt.Sprint(got.GetValuesSchemaJson() != ""))
					for _, dep := range v.GetDependencies() {
						d.add("Dependency", dep.GetName()+" "+dep.GetVersion()+" "+dep.GetRepository())
					}
					return nil
				})
			}
			resp, err := c.do(cmd.Context(), request{op: "CatalogService_GetChart", params: []string{org, r, ch}})
			if err != nil {
				return err
			}
			return a.show(resp.body, func() (*table, error) {
				got := &catalogv1.GetChartResponse{}
				if err := resp.decode(got); err != nil {
					return nil, err
				}
				t := newTable("VERSION", "APP VERSION", "DESCRIPTION", "CREATED")
				for _, v := range got.GetVersions() {
					t.row(v.GetVersion(), orDash(v.GetAppVersion()), orDash(truncate(v.GetDescription(), 60)), a.age(v.GetCreateTime()))
				}
				return t, nil
			})
		},
	}
	show.Flags().StringVar(&version, "version", "", "exact version")

	var vversion string
	values := &cobra.Command{
		Use:   "values REPO/CHART [--version V]",
		Short: "Print a chart version's default values.yaml (the latest version by default)",
		Example: `  slipway chart values local/hello > values.yaml
  slipway chart values local/hello --version 0.1.0`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.chartFile(cmd.Context(), args[0], vversion, func(r *catalogv1.GetChartVersionResponse) string { return r.GetValuesYaml() })
		},
	}
	values.Flags().StringVar(&vversion, "version", "", "exact version")

	var rversion string
	readme := &cobra.Command{
		Use:     "readme REPO/CHART [--version V]",
		Short:   "Print a chart version's README",
		Example: `  slipway chart readme local/hello | less`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.chartFile(cmd.Context(), args[0], rversion, func(r *catalogv1.GetChartVersionResponse) string { return r.GetReadme() })
		},
	}
	readme.Flags().StringVar(&rversion, "version", "", "exact version")

	return group("chart", "Search the catalog's charts and read their values", `  slipway chart search hello
  slipway chart values local/hello`, []string{"charts"}, search, show, values, readme)
}

// chartFile prints one file of a chart version (the latest when version
// is empty): as text, or the whole answer with -o json|yaml.
func (a *app) chartFile(ctx context.Context, ref, version string, file func(*catalogv1.GetChartVersionResponse) string) error {
	r, ch, err := splitChart(ref)
	if err != nil {
		return err
	}
	c, org, err := a.orgClient()
	if err != nil {
		return err
	}
	if version == "" {
		resp, err := c.do(ctx, request{op: "CatalogService_GetChart", params: []string{org, r, ch}, query: map[string][]string{"page_size": {"1"}}})
		if err != nil {
			return err
		}
		got := &catalogv1.GetChartResponse{}
		if err := resp.decode(got); err != nil {
			return err
		}
		version = got.GetChart().GetLatestVersion()
	}
	resp, err := c.do(ctx, request{op: "CatalogService_GetChartVersion", params: []string{org, r, ch, version}})
	if err != nil {
		return err
	}
	if a.structured() {
		return a.show(resp.body, nil)
	}
	got := &catalogv1.GetChartVersionResponse{}
	if err := resp.decode(got); err != nil {
		return err
	}
	out := file(got)
	if out != "" && !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	_, err = fmt.Fprint(a.env.Stdout, out)
	return err
}

func chartsTable(a *app, raw []byte) (*table, error) {
	resp := &catalogv1.SearchChartsResponse{}
	if err := unmarshalOpts.Unmarshal(raw, resp); err != nil {
		return nil, err
	}
	t := newTable("CHART", "VERSION", "APP VERSION", "DESCRIPTION")
	for _, ch := range resp.GetCharts() {
		name := ch.GetRepository() + "/" + ch.GetName()
		if ch.GetDeprecated() {
			name += " (deprecated)"
		}
		t.row(name, ch.GetLatestVersion(), orDash(ch.GetAppVersion()), orDash(truncate(ch.GetDescription(), 60)))
	}
	return t, nil
}
