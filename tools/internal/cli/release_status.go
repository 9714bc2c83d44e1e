package cli

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

func (a *app) releaseStatusCmd() *cobra.Command {
	var rf releaseFlags
	var watch bool
	cmd := &cobra.Command{
		Use:   "status NAME --cluster C [-n NS] [--watch]",
		Short: "Show whether a release is running as intended, with its workloads",
		Long: `Show a release's status as the cluster has it: its latest revision, a
verdict (ready, progressing, degraded or failed: the worst of the release's
and its workloads') with why, and each workload's replicas. With --watch,
print it again at each change until Ctrl-C (-o json: one object a line).`,
		Example: `  slipway release status web -c prod -n web
  slipway release status web -c prod -n web -o json | jq -r .status.verdict
  slipway release status web -c prod -n web --watch`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, cluster, err := a.releaseClient(&rf)
			if err != nil {
				return err
			}
			if watch {
				return a.watchStatus(cmd.Context(), c, org, cluster, args[0], rf.namespace)
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
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "print the status again at each change until Ctrl-C")
	return cmd
}

// watchStatus prints each status the server sends until the stream ends
// or ctx is done (Ctrl-C), which is not an error.
func (a *app) watchStatus(ctx context.Context, c *client, org, cluster, name, ns string) error {
	resp, err := c.openStream(ctx, "ReleasesService_WatchDeploymentStatus", []string{org, cluster, name}, nsQuery(ns, 0), true)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer resp.Body.Close()
	var cbErr error
	n := 0
	err = readEvents(resp.Body, func(event string, data []byte) bool {
		if event == "error" {
			cbErr = problemFrom(http.StatusInternalServerError, http.Header{"Content-Type": {"application/problem+json"}}, data)
			return false
		}
		msg := &releasesv1.WatchDeploymentStatusResponse{}
		if err := unmarshalOpts.Unmarshal(unwrapResult(data), msg); err != nil {
			cbErr = fmt.Errorf("read the status events: %w", err)
			return false
		}
		if a.structured() {
			b, err := marshalOpts.Marshal(msg)
			if err == nil {
				_, err = fmt.Fprintf(a.env.Stdout, "%s\n", b)
			}
			cbErr = err
			return err == nil
		}
		if n > 0 {
			fmt.Fprintln(a.env.Stdout)
		}
		n++
		cbErr = a.printStatus(msg.GetStatus())
		return cbErr == nil
	})
	if cbErr != nil {
		return cbErr
	}
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("read the status events: %w", err)
	}
	return nil
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
