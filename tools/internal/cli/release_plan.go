package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

func (a *app) releasePlanCmd() *cobra.Command {
	var rf releaseFlags
	var vals valuesFlags
	var df deployFlags
	var version string
	cmd := &cobra.Command{
		Use:   "plan NAME [CHART] --cluster C [-n NS] [--version V] [-f values.yaml] [--set k=v]",
		Short: "Show what an upgrade would change, without changing anything",
		Long: `Plan an upgrade of release NAME, taking what release upgrade takes (no
CHART: its current catalog chart, at --version or its version): print
the values diff, each object it would create, update, replace or delete,
and the plan's id, which release apply --plan deploys exactly (until the
plan expires or the release changes).`,
		Example: `  slipway release plan web -c prod -n web --reuse-values --set image.tag=1.4.3
  id=$(slipway release plan web local/hello --version 0.2.0 -c prod -n web -o json | jq -r .plan_id)`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cluster, err := a.clusterOf(&rf)
			if err != nil {
				return err
			}
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			body := &releasesv1.PlanDeploymentRequest{Namespace: rf.namespace, Options: df.options(), ReuseValues: df.reuseValues, ResetValues: df.resetValues}
			switch {
			case len(args) == 2:
				if body.Chart, err = chartSource(args[1], version); err != nil {
					return err
				}
			default:
				// The service plans a chart, not "the current one": name
				// the release's, at --version or its current version.
				if body.Chart, err = a.currentChart(cmd.Context(), c, org, cluster, args[0], rf.namespace, version); err != nil {
					return err
				}
			}
			if body.ValuesYaml, err = vals.yaml(a.env.Stdin); err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "ReleasesService_PlanDeployment", params: []string{org, cluster, args[0]}, body: body})
			if err != nil {
				return err
			}
			if a.structured() {
				return a.show(resp.body, nil)
			}
			got := &releasesv1.PlanDeploymentResponse{}
			if err := resp.decode(got); err != nil {
				return err
			}
			return a.printPlan(args[0], got)
		},
	}
	rf.add(cmd, a)
	vals.add(cmd)
	df.add(cmd, "upgrade")
	cmd.Flags().StringVar(&version, "version", "", "chart version or constraint")
	return cmd
}

// printPlan prints a plan: its summary, the values diff, a table of the
// object changes with their diffs, and how to apply it.
func (a *app) printPlan(name string, p *releasesv1.PlanDeploymentResponse) error {
	w := a.env.Stdout
	d := &details{}
	d.add("Plan", p.GetPlanId())
	d.add("From", fmt.Sprintf("revision %d (%s)", p.GetCurrentRevision(), orDash(p.GetCurrentChartVersion())))
	d.add("Chart version", orDash(p.GetPlannedChartVersion()))
	d.add("Expires", stamp(p.GetExpireTime()))
	if err := d.table().write(w, false, false); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if p.GetValuesDiff() == "" {
		fmt.Fprintln(w, "Values: unchanged")
	} else {
		fmt.Fprintf(w, "Values:\n%s", withNewline(p.GetValuesDiff()))
	}
	fmt.Fprintln(w)
	if len(p.GetChanges()) == 0 {
		fmt.Fprintf(w, "Objects: none changed (%d unchanged)\n", p.GetUnchangedCount())
	} else {
		t := newTable("OBJECT", "NAMESPACE", "ACTION")
		for _, c := range p.GetChanges() {
			t.row(objectName(c.GetObject()), orDash(c.GetObject().GetNamespace()), enum(c.GetAction()))
		}
		if p.GetTruncated() {
			t.row("...", "", "(more not shown)")
		}
		if err := t.write(w, !a.opts.noHeaders, a.colour()); err != nil {
			return err
		}
		fmt.Fprintf(w, "%s unchanged\n", strconv.Itoa(int(p.GetUnchangedCount())))
		for _, c := range p.GetChanges() {
			if c.GetDiff() != "" {
				fmt.Fprintf(w, "\n--- %s (%s)\n%s", objectName(c.GetObject()), enum(c.GetAction()), withNewline(c.GetDiff()))
			}
		}
	}
	_, err := fmt.Fprintf(w, "\nApply it with: slipway release apply %s --plan %s\n", name, p.GetPlanId())
	return err
}

func withNewline(s string) string {
	if s == "" || strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}

func (a *app) releaseApplyCmd() *cobra.Command {
	var rf releaseFlags
	var of opFlags
	var plan string
	cmd := &cobra.Command{
		Use:   "apply NAME --plan ID --cluster C [-n NS]",
		Short: "Deploy exactly what a plan planned, and wait for it (deployers)",
		Long: `Upgrade release NAME to what plan ID (from release plan) planned: the same
chart, by digest, and values. Fails (409) when the release changed since
the plan or the plan expired. Waits for the operation unless --async.`,
		Example: `  slipway release apply web --plan pl_01abc -c prod -n web
  slipway release apply web --plan "$id" -c prod -n web --async`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if plan == "" {
				return usagef("which plan? Give --plan ID (from slipway release plan)")
			}
			c, org, cluster, err := a.releaseClient(&rf)
			if err != nil {
				return err
			}
			body := &releasesv1.ApplyDeploymentPlanRequest{Namespace: rf.namespace, PlanId: plan}
			return a.submit(cmd.Context(), c, request{op: "ReleasesService_ApplyDeploymentPlan", params: []string{org, cluster, args[0]}, body: body}, &of)
		},
	}
	rf.add(cmd, a)
	of.add(cmd)
	cmd.Flags().StringVar(&plan, "plan", "", "id of the plan to apply (required)")
	return cmd
}
