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
	var diff bool
	cmd := &cobra.Command{
		Use:   "drift NAME --cluster C [-n NS] [--diff]",
		Short: "Show the objects of a release that differ from its manifest",
		Long: `Compare the release's objects in the cluster with its latest revision's
manifest and list those that differ or are missing; --diff prints each
one's diff. Prints "no drift" when there is none.`,
		Example: `  slipway release drift web -c prod -n web
  slipway release drift web -c prod -n web --diff`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, cluster, err := a.releaseClient(&rf)
			if err != nil {
				return err
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
	cmd.Flags().BoolVar(&diff, "diff", false, "print each drifted object's diff")
	return cmd
}

func (a *app) printDrift(d *releasesv1.GetDeploymentDriftResponse, diff bool) error {
	if len(d.GetResources()) == 0 {
		_, err := fmt.Fprintf(a.env.Stdout, "no drift from revision %d\n", d.GetRevision())
		return err
	}
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
