package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

func (a *app) opCmd() *cobra.Command {
	var lf listFlags
	var state, kind, cluster, namespace, release, application string
	list := &cobra.Command{
		Use:     "list",
		Short:   "List operations, newest first",
		Aliases: []string{"ls"},
		Example: `  slipway op list --state running
  slipway op list --release web --kind upgrade -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := map[string][]string{}
			if state != "" {
				n, err := parseEnum(releasesv1.OperationState(0).Descriptor(), state)
				if err != nil {
					return err
				}
				q["state"] = []string{releasesv1.OperationState(n).String()}
			}
			if kind != "" {
				n, err := parseEnum(releasesv1.OperationKind(0).Descriptor(), kind)
				if err != nil {
					return err
				}
				q["kind"] = []string{releasesv1.OperationKind(n).String()}
			}
			for k, v := range map[string]string{"cluster": cluster, "namespace": namespace, "release": release, "application": application} {
				if v != "" {
					q[k] = []string{v}
				}
			}
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			raw, err := a.list(cmd.Context(), c, request{op: "OperationsService_ListOperations", params: []string{org}, query: q}, "operations", &lf)
			if err != nil {
				return err
			}
			return a.show(raw, func() (*table, error) {
				resp := &releasesv1.ListOperationsResponse{}
				if err := unmarshalOpts.Unmarshal(raw, resp); err != nil {
					return nil, err
				}
				t := opTable()
				for _, op := range resp.GetOperations() {
					opRow(a, t, op)
				}
				return t, nil
			})
		},
	}
	lf.add(list)
	f := list.Flags()
	f.StringVar(&state, "state", "", "only operations in this state (queued, running, succeeded, failed, cancelled)")
	f.StringVar(&kind, "kind", "", "only operations of this kind (install, upgrade, rollback, uninstall, deploy-application, ...)")
	f.StringVarP(&cluster, "cluster", "c", "", "only operations on this cluster")
	f.StringVarP(&namespace, "namespace", "n", "", "only operations in this namespace")
	f.StringVar(&release, "release", "", "only operations on releases of this name")
	f.StringVar(&application, "application", "", "only operations of this application")

	get := &cobra.Command{
		Use:     "get ID",
		Short:   "Show an operation with its progress events",
		Example: `  slipway op get op_01JABCDEF0123456789XYZ`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "OperationsService_GetOperation", params: []string{org, args[0]}})
			if err != nil {
				return err
			}
			if a.structured() {
				return a.show(resp.body, nil)
			}
			got := &releasesv1.GetOperationResponse{}
			if err := resp.decode(got); err != nil {
				return err
			}
			return a.printOperation(got.GetOperation())
		},
	}

	watch := &cobra.Command{
		Use:   "watch ID",
		Short: "Follow an operation until it ends; exits non-zero when it fails",
		Example: `  slipway op watch op_01JABCDEF0123456789XYZ
  slipway release upgrade web -c prod -n web --async | xargs slipway op watch`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			id := strings.TrimSpace(args[0])
			resp, err := c.do(cmd.Context(), request{op: "OperationsService_GetOperation", params: []string{org, id}})
			if err != nil {
				return err
			}
			got := &releasesv1.GetOperationResponse{}
			if err := resp.decode(got); err != nil {
				return err
			}
			return a.follow(cmd.Context(), c, got.GetOperation())
		},
	}

	cancel := &cobra.Command{
		Use:   "cancel ID",
		Short: "Ask an operation to stop (deployers)",
		Long: `Cancel an operation: a queued one at once, a running one at its next safe
point (rolled back when atomic, else left as Helm left it).`,
		Example: `  slipway op cancel op_01JABCDEF0123456789XYZ`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "OperationsService_CancelOperation", params: []string{org, args[0]}, raw: []byte("{}")})
			if err != nil {
				return err
			}
			return a.show(resp.body, func() (*table, error) {
				got := &releasesv1.CancelOperationResponse{}
				if err := resp.decode(got); err != nil {
					return nil, err
				}
				t := opTable()
				opRow(a, t, got.GetOperation())
				return t, nil
			})
		},
	}
	return group("op", "Read, follow and cancel operations (the jobs behind release changes)", `  slipway op list
  slipway op watch op_01JABCDEF0123456789XYZ`, []string{"ops", "operation"}, list, get, watch, cancel)
}

func opTable() *table {
	return newTable("ID", "KIND", "STATE", "CLUSTER", "NAMESPACE", "RELEASE", "CREATOR", "AGE").colour(2)
}

func opRow(a *app, t *table, op *releasesv1.Operation) {
	tg := op.GetTarget()
	t.row(op.GetId(), enum(op.GetKind()), enum(op.GetState()), orDash(tg.GetCluster()), orDash(tg.GetNamespace()), orDash(tg.GetRelease()),
		orDash(op.GetCreator()), a.age(op.GetCreateTime()))
}

// printOperation prints an operation in full: what, where, its outcome
// and its events.
func (a *app) printOperation(op *releasesv1.Operation) error {
	d := &details{}
	tg := op.GetTarget()
	d.add("ID", op.GetId())
	d.add("Kind", enum(op.GetKind()))
	d.add("State", enum(op.GetState()))
	d.add("Release", fmt.Sprintf("%s in %s on %s", orDash(tg.GetRelease()), orDash(tg.GetNamespace()), orDash(tg.GetCluster())))
	if tg.GetApplication() != "" {
		d.add("Application", tg.GetApplication()+" / "+tg.GetApplicationTarget())
	}
	d.add("Creator", orDash(op.GetCreator()))
	d.add("Created", stamp(op.GetCreateTime()))
	d.add("Started", stamp(op.GetStartTime()))
	d.add("Ended", stamp(op.GetEndTime()))
	if op.GetDryRun() {
		d.add("Dry run", "true")
	}
	if op.GetCancelRequested() {
		d.add("Cancel requested", "true")
	}
	if r := op.GetResult().GetRelease(); r != nil {
		d.add("Result", fmt.Sprintf("revision %d, %s, %s %s", r.GetRevision(), enum(r.GetStatus()), r.GetChart(), r.GetChartVersion()))
	}
	if e := op.GetError(); e != nil {
		d.add("Error", e.GetCode()+": "+e.GetMessage())
	}
	if err := d.table().write(a.env.Stdout, false, false); err != nil {
		return err
	}
	if len(op.GetEvents()) == 0 {
		return nil
	}
	fmt.Fprintln(a.env.Stdout)
	t := newTable("TIME", "PHASE", "MESSAGE")
	if n := op.GetDroppedEventCount(); n > 0 {
		t.row("...", "", fmt.Sprintf("(%d earlier events dropped)", n))
	}
	for _, ev := range op.GetEvents() {
		t.row(stamp(ev.GetTime()), ev.GetPhase(), ev.GetMessage())
	}
	return t.write(a.env.Stdout, !a.opts.noHeaders, false)
}
