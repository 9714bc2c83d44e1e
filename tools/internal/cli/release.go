package cli

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	catalogv1 "github.com/slipwayhq/slipway/proto/slipway/catalog/v1"
	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

// deployFlags are helm's install/upgrade/rollback flags.
type deployFlags struct {
	wait, atomic, createNamespace, dryRun, reuseValues, resetValues, noQueue bool
	timeout                                                                  time.Duration
	description                                                              string
}

// add adds the flags that apply to kind: install, upgrade, deploy or
// rollback.
func (d *deployFlags) add(cmd *cobra.Command, kind string) {
	f := cmd.Flags()
	f.BoolVar(&d.wait, "wait", false, "wait until the release's workloads are ready before the operation succeeds")
	f.DurationVar(&d.timeout, "timeout", 0, "longest time for each Kubernetes step (hooks, --wait); default 5m, at most 1h")
	f.BoolVar(&d.dryRun, "dry-run", false, "render and validate against the cluster without changing anything")
	f.StringVar(&d.description, "description", "", "description recorded on the revision")
	f.BoolVar(&d.noQueue, "no-queue", false, "fail (409) instead of queueing behind another operation on the release")
	if kind != "rollback" {
		f.BoolVar(&d.atomic, "atomic", false, "on failure roll back (upgrade) or uninstall (install); implies --wait")
	}
	if kind == "install" || kind == "deploy" {
		f.BoolVar(&d.createNamespace, "create-namespace", false, "create the namespace if it does not exist")
	}
	if kind == "upgrade" {
		f.BoolVar(&d.reuseValues, "reuse-values", false, "merge the new values over the current revision's")
		f.BoolVar(&d.resetValues, "reset-values", false, "start from the chart's defaults (the default)")
	}
}

func (d *deployFlags) options() *releasesv1.DeploymentOptions {
	o := &releasesv1.DeploymentOptions{Wait: d.wait, Atomic: d.atomic, CreateNamespace: d.createNamespace, DryRun: d.dryRun,
		ReuseValues: d.reuseValues, ResetValues: d.resetValues, Description: d.description}
	if d.timeout > 0 {
		o.Timeout = durationpb.New(d.timeout)
	}
	return o
}

// releaseFlags name a release: its cluster and namespace.
type releaseFlags struct {
	cluster   string
	namespace string
}

func (r *releaseFlags) add(cmd *cobra.Command, a *app) {
	cmd.Flags().StringVarP(&r.cluster, "cluster", "c", "", "cluster of the release (id or name; env SLIPWAY_CLUSTER)")
	cmd.Flags().StringVarP(&r.namespace, "namespace", "n", "", "namespace of the release (default: wherever the name is; install: default)")
	_ = cmd.RegisterFlagCompletionFunc("cluster", a.completeClusters)
}

func (a *app) clusterOf(r *releaseFlags) (string, error) {
	c := first(r.cluster, a.env.Getenv("SLIPWAY_CLUSTER"))
	if c == "" {
		return "", usagef("which cluster? Give --cluster (or set SLIPWAY_CLUSTER)")
	}
	return c, nil
}

// releaseClient is the client, org and cluster a release command works
// with.
func (a *app) releaseClient(r *releaseFlags) (*client, string, string, error) {
	cluster, err := a.clusterOf(r)
	if err != nil {
		return nil, "", "", err
	}
	c, org, err := a.orgClient()
	return c, org, cluster, err
}

// chartSource reads a chart argument: REPO/CHART of the catalog (with
// --version), an oci:// reference, or a local packaged chart (.tgz).
func chartSource(arg, version string) (*releasesv1.ChartSource, error) {
	switch {
	case strings.HasPrefix(arg, "oci://"):
		if version != "" && !strings.Contains(arg[len("oci://"):], ":") {
			arg += ":" + version
		}
		return &releasesv1.ChartSource{Source: &releasesv1.ChartSource_OciReference{OciReference: arg}}, nil
	case strings.HasSuffix(arg, ".tgz") || strings.HasSuffix(arg, ".tar.gz") || strings.HasPrefix(arg, "./") || strings.HasPrefix(arg, "/"):
		b, err := os.ReadFile(arg)
		if err != nil {
			return nil, fmt.Errorf("read chart archive: %w", err)
		}
		return &releasesv1.ChartSource{Source: &releasesv1.ChartSource_Archive{Archive: b}}, nil
	}
	repo, chart, err := splitChart(arg)
	if err != nil {
		return nil, usagef("chart %q: give REPO/CHART, oci://... or a .tgz file", arg)
	}
	return &releasesv1.ChartSource{Source: &releasesv1.ChartSource_Catalog{Catalog: &catalogv1.ChartReference{Repository: repo, Chart: chart, Version: version}}}, nil
}

func (a *app) releaseCmd() *cobra.Command {
	cmd := group("release", "Install, upgrade, roll back and read Helm releases", `  slipway release install web local/hello --cluster prod -n web --create-namespace
  slipway release history web --cluster prod -n web`, []string{"releases", "rel"},
		a.releaseInstallCmd(), a.releaseUpgradeCmd(), a.releaseRollbackCmd(), a.releaseUninstallCmd(), a.releaseRecoverCmd(),
		a.releaseListCmd(), a.releaseGetCmd(), a.releaseHistoryCmd(), a.releaseValuesCmd(), a.releaseManifestCmd(), a.releaseNotesCmd(), a.releaseStatusCmd(),
		a.releaseResourcesCmd(), a.releaseEventsCmd(), a.releaseLogsCmd(), a.releasePlanCmd(), a.releaseApplyCmd(), a.releaseDriftCmd(),
		a.releaseHealthCmd(), a.releaseMetricsCmd())
	// TODO(issue 9): health and metrics, when the service serves them:
	// each one small release_<verb>.go with its route added to routes.go.
	return cmd
}

func (a *app) releaseInstallCmd() *cobra.Command {
	var rf releaseFlags
	var vals valuesFlags
	var df deployFlags
	var of opFlags
	var version string
	cmd := &cobra.Command{
		Use:   "install NAME CHART --cluster C [-n NS] [--version V] [-f values.yaml] [--set k=v]",
		Short: "Install a chart as a new release and wait for it (deployers)",
		Long: `Install a chart as release NAME: a catalog chart REPO/CHART (--version may be
a constraint), an oci:// reference, or a packaged chart file. Values come
from -f files and --set, merged as helm merges them. Waits for the
operation, showing its progress, unless --async.`,
		Example: `  slipway release install web local/hello --cluster prod -n web --create-namespace --version '~0.2' --set replicaCount=2
  slipway release install web oci://ghcr.io/acme/charts/web:1.4.2 -c prod -n web -f prod.yaml --wait --atomic`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cluster, err := a.clusterOf(&rf)
			if err != nil {
				return err
			}
			src, err := chartSource(args[1], version)
			if err != nil {
				return err
			}
			vy, err := vals.yaml(a.env.Stdin)
			if err != nil {
				return err
			}
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			body := &releasesv1.CreateDeploymentRequest{Name: args[0], Namespace: rf.namespace, Chart: src, ValuesYaml: vy, Options: df.options(), NoQueue: df.noQueue}
			return a.submit(cmd.Context(), c, request{op: "ReleasesService_CreateDeployment", params: []string{org, cluster}, body: body}, &of)
		},
	}
	rf.add(cmd, a)
	vals.add(cmd)
	df.add(cmd, "install")
	of.add(cmd)
	cmd.Flags().StringVar(&version, "version", "", "chart version or constraint (catalog charts), or tag (oci://)")
	return cmd
}

func (a *app) releaseUpgradeCmd() *cobra.Command {
	var rf releaseFlags
	var vals valuesFlags
	var df deployFlags
	var of opFlags
	var version string
	cmd := &cobra.Command{
		Use:   "upgrade NAME [CHART] --cluster C [-n NS] [--version V] [-f values.yaml] [--set k=v]",
		Short: "Upgrade a release to a new chart version or new values, and wait for it (deployers)",
		Long: `Upgrade release NAME: to CHART (as install takes it) or, without it, its
current chart (at --version when given); with the values of -f and --set,
from the chart's defaults (--reset-values, the default) or over the current
ones (--reuse-values). Waits for the operation unless --async.`,
		Example: `  slipway release upgrade web local/hello --version 0.2.0 -c prod -n web
  slipway release upgrade web -c prod -n web --reuse-values --set image.tag=1.4.3`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cluster, err := a.clusterOf(&rf)
			if err != nil {
				return err
			}
			body := &releasesv1.UpdateDeploymentRequest{Namespace: rf.namespace, Options: df.options(), NoQueue: df.noQueue}
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			switch {
			case len(args) == 2:
				if body.Chart, err = chartSource(args[1], version); err != nil {
					return err
				}
			case version != "":
				// The current chart at another version: read which chart
				// the release runs.
				if body.Chart, err = a.currentChart(cmd.Context(), c, org, cluster, args[0], rf.namespace, version); err != nil {
					return err
				}
			}
			if body.ValuesYaml, err = vals.yaml(a.env.Stdin); err != nil {
				return err
			}
			return a.submit(cmd.Context(), c, request{op: "ReleasesService_UpdateDeployment", params: []string{org, cluster, args[0]}, body: body}, &of)
		},
	}
	rf.add(cmd, a)
	vals.add(cmd)
	df.add(cmd, "upgrade")
	of.add(cmd)
	cmd.Flags().StringVar(&version, "version", "", "chart version or constraint")
	return cmd
}

// currentChart returns the catalog chart release name runs, at version
// (its current version when empty).
func (a *app) currentChart(ctx context.Context, c *client, org, cluster, name, ns, version string) (*releasesv1.ChartSource, error) {
	resp, err := c.do(ctx, request{op: "ReleasesService_GetDeployment", params: []string{org, cluster, name}, query: nsQuery(ns, 0)})
	if err != nil {
		return nil, err
	}
	got := &releasesv1.GetDeploymentResponse{}
	if err := resp.decode(got); err != nil {
		return nil, err
	}
	// The service records a catalog chart as "catalog:REPO/CHART@VERSION".
	src, _, _ := strings.Cut(strings.TrimPrefix(got.GetRelease().GetChartSource(), "catalog:"), "@")
	if strings.HasPrefix(src, "oci://") || strings.HasPrefix(src, "upload:") || !strings.Contains(src, "/") {
		return nil, usagef("release %s runs %s, not a catalog chart: name the chart to upgrade to", name, orDash(src))
	}
	return chartSource(src, first(version, got.GetRelease().GetChartVersion()))
}

// nsQuery is the namespace (and revision) query of release reads.
func nsQuery(ns string, revision int32) map[string][]string {
	q := map[string][]string{}
	if ns != "" {
		q["namespace"] = []string{ns}
	}
	if revision > 0 {
		q["revision"] = []string{strconv.Itoa(int(revision))}
	}
	return q
}

func (a *app) releaseRollbackCmd() *cobra.Command {
	var rf releaseFlags
	var df deployFlags
	var of opFlags
	cmd := &cobra.Command{
		Use:   "rollback NAME [REVISION] --cluster C [-n NS]",
		Short: "Roll a release back to an earlier revision (the previous one by default) (deployers)",
		Example: `  slipway release rollback web -c prod -n web
  slipway release rollback web 3 -c prod -n web --wait`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cluster, err := a.clusterOf(&rf)
			if err != nil {
				return err
			}
			body := &releasesv1.RollbackDeploymentRequest{Namespace: rf.namespace, Options: df.options(), NoQueue: df.noQueue}
			if len(args) == 2 {
				n, err := strconv.ParseInt(args[1], 10, 32)
				if err != nil || n < 1 {
					return usagef("revision %q is not a positive number", args[1])
				}
				body.Revision = int32(n)
			}
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			return a.submit(cmd.Context(), c, request{op: "ReleasesService_RollbackDeployment", params: []string{org, cluster, args[0]}, body: body}, &of)
		},
	}
	rf.add(cmd, a)
	df.add(cmd, "rollback")
	of.add(cmd)
	return cmd
}

func (a *app) releaseUninstallCmd() *cobra.Command {
	var rf releaseFlags
	var of opFlags
	var keepHistory, wait, noQueue bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:     "uninstall NAME --cluster C [-n NS]",
		Short:   "Uninstall a release and wait for it (deployers)",
		Aliases: []string{"rm", "delete"},
		Example: `  slipway release uninstall web -c prod -n web
  slipway release uninstall web -c prod -n web --keep-history`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cluster, err := a.clusterOf(&rf)
			if err != nil {
				return err
			}
			q := nsQuery(rf.namespace, 0)
			if keepHistory {
				q["keep_history"] = []string{"true"}
			}
			if wait {
				q["wait"] = []string{"true"}
			}
			if noQueue {
				q["no_queue"] = []string{"true"}
			}
			if timeout > 0 {
				q["timeout"] = []string{strconv.FormatFloat(timeout.Seconds(), 'f', -1, 64) + "s"}
			}
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			return a.submit(cmd.Context(), c, request{op: "ReleasesService_DeleteDeployment", params: []string{org, cluster, args[0]}, query: q}, &of)
		},
	}
	rf.add(cmd, a)
	of.add(cmd)
	cmd.Flags().BoolVar(&keepHistory, "keep-history", false, "keep the release's history, so it can be rolled back to")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the release's objects are gone")
	cmd.Flags().BoolVar(&noQueue, "no-queue", false, "fail (409) instead of queueing behind another operation on the release")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "longest time for hooks and --wait; default 5m")
	return cmd
}

func (a *app) releaseRecoverCmd() *cobra.Command {
	var rf releaseFlags
	var of opFlags
	cmd := &cobra.Command{
		Use:   "recover NAME --cluster C [-n NS]",
		Short: "Settle a release Helm left pending-install/upgrade/rollback (admins)",
		Long: `Settle a release left pending by a crash outside Slipway or an operation
that ran out of attempts: an upgrade or rollback is rolled back to the
last deployed revision, an install marked failed. A release that is not
pending is left as it is.`,
		Example: `  slipway release recover web -c prod -n web`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, cluster, err := a.releaseClient(&rf)
			if err != nil {
				return err
			}
			body := &releasesv1.RecoverDeploymentRequest{Namespace: rf.namespace}
			return a.submit(cmd.Context(), c, request{op: "ReleasesService_RecoverDeployment", params: []string{org, cluster, args[0]}, body: body}, &of)
		},
	}
	rf.add(cmd, a)
	of.add(cmd)
	return cmd
}

func (a *app) releaseListCmd() *cobra.Command {
	var rf releaseFlags
	var lf listFlags
	var status string
	var uninstalled bool
	cmd := &cobra.Command{
		Use:     "list [--cluster C] [-n NS]",
		Short:   "List releases at their latest revision (every cluster by default)",
		Aliases: []string{"ls"},
		Example: `  slipway release list
  slipway release list -c prod -n web --status failed`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cluster := first(rf.cluster, a.env.Getenv("SLIPWAY_CLUSTER"), "-")
			q := nsQuery(rf.namespace, 0)
			if status != "" {
				n, err := parseEnum(releasesv1.ReleaseStatus(0).Descriptor(), status)
				if err != nil {
					return err
				}
				q["status"] = []string{releasesv1.ReleaseStatus(n).String()}
			}
			if uninstalled {
				q["include_uninstalled"] = []string{"true"}
			}
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			raw, err := a.list(cmd.Context(), c, request{op: "ReleasesService_ListDeployments", params: []string{org, cluster}, query: q}, "releases", &lf)
			if err != nil {
				return err
			}
			return a.show(raw, func() (*table, error) {
				resp := &releasesv1.ListDeploymentsResponse{}
				if err := unmarshalOpts.Unmarshal(raw, resp); err != nil {
					return nil, err
				}
				t := newTable("NAME", "NAMESPACE", "CLUSTER", "REVISION", "STATUS", "CHART", "APP VERSION", "UPDATED").colour(4)
				for _, r := range resp.GetReleases() {
					t.row(r.GetName(), r.GetNamespace(), r.GetCluster(), strconv.Itoa(int(r.GetRevision())), enum(r.GetStatus()),
						r.GetChart()+"-"+r.GetChartVersion(), orDash(r.GetAppVersion()), a.age(r.GetUpdateTime()))
				}
				return t, nil
			})
		},
	}
	rf.add(cmd, a)
	lf.add(cmd)
	cmd.Flags().StringVar(&status, "status", "", "only releases whose latest revision has this status (deployed, failed, ...)")
	cmd.Flags().BoolVar(&uninstalled, "uninstalled", false, "also list releases uninstalled with their history kept")
	return cmd
}

func (a *app) releaseGetCmd() *cobra.Command {
	var rf releaseFlags
	cmd := &cobra.Command{
		Use:     "get NAME --cluster C [-n NS]",
		Short:   "Show a release at its latest revision",
		Example: `  slipway release get web -c prod -n web -o yaml`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, cluster, err := a.releaseClient(&rf)
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "ReleasesService_GetDeployment", params: []string{org, cluster, args[0]}, query: nsQuery(rf.namespace, 0)})
			if err != nil {
				return err
			}
			return a.showDetails(resp.body, func(d *details) error {
				got := &releasesv1.GetDeploymentResponse{}
				if err := resp.decode(got); err != nil {
					return err
				}
				r := got.GetRelease()
				d.add("Name", r.GetName())
				d.add("Namespace", r.GetNamespace())
				d.add("Cluster", r.GetCluster())
				d.add("Revision", strconv.Itoa(int(r.GetRevision())))
				d.add("Status", enum(r.GetStatus()))
				d.add("Chart", r.GetChart()+" "+r.GetChartVersion()+" ("+orDash(r.GetChartSource())+")")
				d.add("App version", orDash(r.GetAppVersion()))
				if r.GetApplication() != "" {
					d.add("Application", r.GetApplication()+" / "+r.GetApplicationTarget())
				}
				for _, im := range r.GetImages() {
					d.add("Image", im.GetReference()+" "+orDash(im.GetDigest()))
				}
				d.add("Description", orDash(r.GetDescription()))
				d.add("Operation", orDash(r.GetOperation()))
				if got.GetActiveOperation() != "" {
					d.add("Active operation", got.GetActiveOperation())
				}
				d.add("Creator", orDash(r.GetCreator()))
				d.add("Updated", stamp(r.GetUpdateTime()))
				return nil
			})
		},
	}
	rf.add(cmd, a)
	return cmd
}

func (a *app) releaseHistoryCmd() *cobra.Command {
	var rf releaseFlags
	var lf listFlags
	cmd := &cobra.Command{
		Use:     "history NAME --cluster C [-n NS]",
		Short:   "List a release's revisions, newest first",
		Example: `  slipway release history web -c prod -n web`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, cluster, err := a.releaseClient(&rf)
			if err != nil {
				return err
			}
			raw, err := a.list(cmd.Context(), c, request{op: "ReleasesService_GetDeploymentHistory", params: []string{org, cluster, args[0]}, query: nsQuery(rf.namespace, 0)}, "releases", &lf)
			if err != nil {
				return err
			}
			return a.show(raw, func() (*table, error) { return revisionsTable(a, raw) })
		},
	}
	rf.add(cmd, a)
	lf.add(cmd)
	return cmd
}

// revisionsTable tables an answer {"releases": [...]} of revisions.
func revisionsTable(a *app, raw []byte) (*table, error) {
	resp := &releasesv1.GetDeploymentHistoryResponse{}
	if err := unmarshalOpts.Unmarshal(raw, resp); err != nil {
		return nil, err
	}
	t := newTable("REVISION", "UPDATED", "STATUS", "CHART", "APP VERSION", "DESCRIPTION").colour(2)
	for _, r := range resp.GetReleases() {
		t.row(strconv.Itoa(int(r.GetRevision())), a.age(r.GetUpdateTime()), enum(r.GetStatus()), r.GetChart()+"-"+r.GetChartVersion(),
			orDash(r.GetAppVersion()), orDash(truncate(r.GetDescription(), 60)))
	}
	return t, nil
}

func (a *app) releaseValuesCmd() *cobra.Command {
	var rf releaseFlags
	var all bool
	var revision int32
	cmd := &cobra.Command{
		Use:   "values NAME --cluster C [-n NS] [--all] [--revision N]",
		Short: "Print the values of a revision (deployers: values may hold secrets)",
		Example: `  slipway release values web -c prod -n web
  slipway release values web -c prod -n web --all --revision 2`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cluster, err := a.clusterOf(&rf)
			if err != nil {
				return err
			}
			q := nsQuery(rf.namespace, revision)
			if all {
				q["all"] = []string{"true"}
			}
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "ReleasesService_GetDeploymentValues", params: []string{org, cluster, args[0]}, query: q})
			if err != nil {
				return err
			}
			if a.structured() {
				return a.show(resp.body, nil)
			}
			got := &releasesv1.GetDeploymentValuesResponse{}
			if err := resp.decode(got); err != nil {
				return err
			}
			return printText(a, got.GetValuesYaml())
		},
	}
	rf.add(cmd, a)
	cmd.Flags().BoolVarP(&all, "all", "a", false, "the computed values (chart defaults merged with the supplied ones)")
	cmd.Flags().Int32Var(&revision, "revision", 0, "revision (default: the latest)")
	return cmd
}

func (a *app) releaseManifestCmd() *cobra.Command {
	var rf releaseFlags
	var lf listFlags
	var revision int32
	cmd := &cobra.Command{
		Use:   "manifest NAME --cluster C [-n NS] [--revision N]",
		Short: "Print the rendered manifest of a revision (Secret data redacted)",
		Example: `  slipway release manifest web -c prod -n web
  slipway release manifest web -c prod -n web --revision 1 | kubectl diff -f -`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, cluster, err := a.releaseClient(&rf)
			if err != nil {
				return err
			}
			raw, err := a.list(cmd.Context(), c, request{op: "ReleasesService_GetDeploymentManifest", params: []string{org, cluster, args[0]}, query: nsQuery(rf.namespace, revision)}, "documents", &lf)
			if err != nil {
				return err
			}
			if a.structured() {
				return a.show(raw, nil)
			}
			got := &releasesv1.GetDeploymentManifestResponse{}
			if err := unmarshalOpts.Unmarshal(raw, got); err != nil {
				return err
			}
			var b strings.Builder
			for _, d := range got.GetDocuments() {
				b.WriteString("---\n")
				if d.GetSource() != "" {
					fmt.Fprintf(&b, "# Source: %s\n", d.GetSource())
				}
				b.WriteString(strings.TrimSuffix(d.GetYaml(), "\n"))
				b.WriteString("\n")
			}
			return printText(a, b.String())
		},
	}
	rf.add(cmd, a)
	lf.add(cmd)
	cmd.Flags().Int32Var(&revision, "revision", 0, "revision (default: the latest)")
	return cmd
}

func (a *app) releaseNotesCmd() *cobra.Command {
	var rf releaseFlags
	var revision int32
	cmd := &cobra.Command{
		Use:     "notes NAME --cluster C [-n NS] [--revision N]",
		Short:   "Print the rendered NOTES.txt of a revision",
		Example: `  slipway release notes web -c prod -n web`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, cluster, err := a.releaseClient(&rf)
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "ReleasesService_GetDeploymentNotes", params: []string{org, cluster, args[0]}, query: nsQuery(rf.namespace, revision)})
			if err != nil {
				return err
			}
			if a.structured() {
				return a.show(resp.body, nil)
			}
			got := &releasesv1.GetDeploymentNotesResponse{}
			if err := resp.decode(got); err != nil {
				return err
			}
			return printText(a, got.GetNotes())
		},
	}
	rf.add(cmd, a)
	cmd.Flags().Int32Var(&revision, "revision", 0, "revision (default: the latest)")
	return cmd
}

// printText prints text ending in one newline (nothing for "").
func printText(a *app, s string) error {
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	_, err := fmt.Fprint(a.env.Stdout, s)
	return err
}
