package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

func objectName(o *releasesv1.ObjectReference) string {
	return strings.ToLower(o.GetKind()) + "/" + o.GetName()
}

func (a *app) releaseResourcesCmd() *cobra.Command {
	var rf releaseFlags
	cmd := &cobra.Command{
		Use:   "resources NAME --cluster C [-n NS]",
		Short: "List the Kubernetes objects of a release, with each one's verdict",
		Long: `List the objects the release's manifest made, as the cluster has them: each
one's owner, verdict and why; missing ones are marked.`,
		Example: `  slipway release resources web -c prod -n web
  slipway release resources web -c prod -n web -o json | jq -r '.resources[].object.name'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, cluster, err := a.releaseClient(&rf)
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "ReleasesService_ListDeploymentResources", params: []string{org, cluster, args[0]}, query: nsQuery(rf.namespace, 0)})
			if err != nil {
				return err
			}
			return a.show(resp.body, func() (*table, error) {
				got := &releasesv1.ListDeploymentResourcesResponse{}
				if err := resp.decode(got); err != nil {
					return nil, err
				}
				t := newTable("OBJECT", "NAMESPACE", "VERDICT", "AGE", "MESSAGE").colour(2)
				for _, r := range got.GetResources() {
					msg := r.GetMessage()
					if r.GetMissing() {
						msg = first(msg, "missing")
					}
					t.row(objectName(r.GetObject()), orDash(r.GetObject().GetNamespace()), enum(r.GetVerdict()), a.age(r.GetCreateTime()), orDash(truncate(msg, 60)))
				}
				return t, nil
			})
		},
	}
	rf.add(cmd, a)
	return cmd
}

func (a *app) releaseEventsCmd() *cobra.Command {
	var rf releaseFlags
	cmd := &cobra.Command{
		Use:   "events NAME --cluster C [-n NS]",
		Short: "List the Kubernetes events of a release's objects",
		Long:  `List the events the cluster recorded about the release's objects, newest last.`,
		Example: `  slipway release events web -c prod -n web
  slipway release events web -c prod -n web -o yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, cluster, err := a.releaseClient(&rf)
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "ReleasesService_ListDeploymentEvents", params: []string{org, cluster, args[0]}, query: nsQuery(rf.namespace, 0)})
			if err != nil {
				return err
			}
			return a.show(resp.body, func() (*table, error) {
				got := &releasesv1.ListDeploymentEventsResponse{}
				if err := resp.decode(got); err != nil {
					return nil, err
				}
				t := newTable("LAST SEEN", "TYPE", "REASON", "OBJECT", "COUNT", "MESSAGE")
				for _, e := range got.GetEvents() {
					t.row(a.age(e.GetLastTime()), e.GetType(), e.GetReason(), objectName(e.GetInvolvedObject()), strconv.Itoa(int(e.GetCount())), orDash(truncate(e.GetMessage(), 80)))
				}
				return t, nil
			})
		},
	}
	rf.add(cmd, a)
	return cmd
}

func (a *app) releaseDriftCmd() *cobra.Command {
	var rf releaseFlags
	var of opFlags
	var diff, correct bool
	cmd := &cobra.Command{
		Use:   "drift NAME --cluster C [-n NS] [--diff | --correct]",
		Short: "Show the objects of a release that differ from its manifest, or put them back",
		Long: `Compare the release's objects in the cluster with its latest revision's
manifest and list those that differ or are missing; --diff prints each
one's diff. Prints "no drift" when there is none, and when the service's
periodic check last ran, what it found.

--correct (deployers) starts an operation that puts the drifted objects
back to the manifest, without a new revision: the drifted fields are
patched to the manifest's values (replicas an autoscaler scales stay) and
missing objects are created again. It waits for the operation unless
--async.`,
		Example: `  slipway release drift web -c prod -n web
  slipway release drift web -c prod -n web --diff
  slipway release drift web -c prod -n web --correct`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, cluster, err := a.releaseClient(&rf)
			if err != nil {
				return err
			}
			if correct {
				body := &releasesv1.CorrectDeploymentDriftRequest{Namespace: rf.namespace}
				return a.submit(cmd.Context(), c, request{op: "ReleasesService_CorrectDeploymentDrift", params: []string{org, cluster, args[0]}, body: body}, &of)
			}
			resp, err := c.do(cmd.Context(), request{op: "ReleasesService_GetDeploymentDrift", params: []string{org, cluster, args[0]}, query: nsQuery(rf.namespace, 0)})
			if err != nil {
				return err
			}
			if a.structured() {
				return a.show(resp.body, nil)
			}
			got := &releasesv1.GetDeploymentDriftResponse{}
			if err := resp.decode(got); err != nil {
				return err
			}
			return a.printDrift(got, diff)
		},
	}
	rf.add(cmd, a)
	of.add(cmd)
	cmd.Flags().BoolVar(&diff, "diff", false, "print each drifted object's diff")
	cmd.Flags().BoolVar(&correct, "correct", false, "put the drifted objects back to the manifest (an operation; no new revision)")
	cmd.MarkFlagsMutuallyExclusive("diff", "correct")
	return cmd
}

func (a *app) printDrift(d *releasesv1.GetDeploymentDriftResponse, diff bool) error {
	if len(d.GetResources()) == 0 {
		_, err := fmt.Fprintf(a.env.Stdout, "no drift from revision %d\n", d.GetRevision())
		a.printLastCheck(d.GetLastCheck())
		return err
	}
	defer a.printLastCheck(d.GetLastCheck())
	t := newTable("OBJECT", "NAMESPACE", "STATE")
	for _, r := range d.GetResources() {
		t.row(objectName(r.GetObject()), orDash(r.GetObject().GetNamespace()), enum(r.GetState()))
	}
	if err := t.write(a.env.Stdout, !a.opts.noHeaders, a.colour()); err != nil {
		return err
	}
	if !diff {
		return nil
	}
	for _, r := range d.GetResources() {
		if r.GetDiff() == "" {
			continue
		}
		fmt.Fprintf(a.env.Stdout, "\n--- %s\n%s", objectName(r.GetObject()), withNewline(r.GetDiff()))
	}
	return nil
}

// printLastCheck says what the service's periodic drift check last found,
// under the live answer.
func (a *app) printLastCheck(c *releasesv1.DriftCheck) {
	if c == nil {
		return
	}
	found := "in sync"
	if n := c.GetDriftedCount(); n > 0 {
		found = fmt.Sprintf("%d drifted since %s ago", n, a.age(c.GetDriftedSince()))
	}
	if e := c.GetError(); e != "" {
		found += "; the last check failed: " + e
	}
	fmt.Fprintf(a.env.Stdout, "Last periodic check %s ago (revision %d): %s\n", a.age(c.GetCheckTime()), c.GetRevision(), found)
}
