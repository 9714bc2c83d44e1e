package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

func (a *app) releaseStatusCmd() *cobra.Command {
	var rf releaseFlags
	cmd := &cobra.Command{
		Use:   "status NAME --cluster C [-n NS]",
		Short: "Show whether a release is running as intended, with its workloads",
		Long: `Show a release's status as the cluster has it: its latest revision, a
verdict (ready, progressing, degraded or failed: the worst of the release's
and its workloads') with why, and each workload's replicas.`,
		Example: `  slipway release status web -c prod -n web
  slipway release status web -c prod -n web -o json | jq -r .status.verdict`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, cluster, err := a.releaseClient(&rf)
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "ReleasesService_GetDeploymentStatus", params: []string{org, cluster, args[0]}, query: nsQuery(rf.namespace, 0)})
			if err != nil {
				return err
			}
			if a.structured() {
				return a.show(resp.body, nil)
			}
			got := &releasesv1.GetDeploymentStatusResponse{}
			if err := resp.decode(got); err != nil {
				return err
			}
			return a.printStatus(got.GetStatus())
		},
	}
	rf.add(cmd, a)
	return cmd
}

// printStatus prints a release's status: the release and its verdict,
// then a table of its workloads.
func (a *app) printStatus(s *releasesv1.DeploymentStatus) error {
	r := s.GetRelease()
	d := &details{}
	d.add("Release", fmt.Sprintf("%s in %s on %s", r.GetName(), r.GetNamespace(), r.GetCluster()))
	d.add("Revision", fmt.Sprintf("%d (%s, %s %s)", r.GetRevision(), enum(r.GetStatus()), r.GetChart(), r.GetChartVersion()))
	verdict := enum(s.GetVerdict())
	if a.colour() {
		verdict = paint(verdict)
	}
	d.add("Verdict", verdict)
	if s.GetMessage() != "" {
		d.add("Message", s.GetMessage())
	}
	if s.GetActiveOperation() != "" {
		d.add("Active operation", s.GetActiveOperation())
	}
	d.add("Observed", stamp(s.GetObserveTime()))
	if err := d.table().write(a.env.Stdout, false, false); err != nil {
		return err
	}
	if len(s.GetWorkloads()) == 0 {
		return nil
	}
	fmt.Fprintln(a.env.Stdout)
	t := newTable("WORKLOAD", "VERDICT", "READY", "UP-TO-DATE", "AVAILABLE", "MESSAGE").colour(1)
	for _, w := range s.GetWorkloads() {
		o := w.GetObject()
		t.row(strings.ToLower(o.GetKind())+"/"+o.GetName(), enum(w.GetVerdict()),
			fmt.Sprintf("%d/%d", w.GetReadyReplicas(), w.GetDesiredReplicas()),
			strconv.Itoa(int(w.GetUpdatedReplicas())), strconv.Itoa(int(w.GetAvailableReplicas())), orDash(truncate(w.GetMessage(), 60)))
	}
	if n := int(s.GetWorkloadCount()) - len(s.GetWorkloads()); n > 0 {
		t.row("...", "", "", "", "", fmt.Sprintf("(%d more not shown)", n))
	}
	return t.write(a.env.Stdout, !a.opts.noHeaders, a.colour())
}
