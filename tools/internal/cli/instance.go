package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

// instancePoll is how often --wait reads the instance.
const instancePoll = time.Second

func (a *app) instanceCmd() *cobra.Command {
	var (
		vals                 valuesFlags
		target, version, key string
		ttl, waitFor         time.Duration
		wait                 bool
	)
	launch := &cobra.Command{
		Use:   "launch APP --target T [--ttl D] [-f values.yaml] [--set k=v] [--wait]",
		Short: "Launch a short-lived instance of an application (deployers)",
		Long: `Launch an instance of an application: its chart, values and image
(--version, the newest by default) installed on a target's cluster as a
release of its own, in a namespace of its own. The server answers at once
with the instance's id; its location (its Ingress's host, its load
balancer's address or its Service's in-cluster address) appears once it
runs. Unless kept alive, it is deleted when its TTL (1h by default) runs
out. With --wait, this waits until it runs, and fails if its launch fails.`,
		Example: `  slipway instance launch hello --target dev --wait
  slipway instance launch hello --target dev --ttl 2h --set message=preview -o json`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeApps,
		RunE: func(cmd *cobra.Command, args []string) error {
			if target == "" {
				return usagef("--target is required: the application's target whose cluster the instance runs on")
			}
			vy, err := vals.yaml(a.env.Stdin)
			if err != nil {
				return err
			}
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			body := &releasesv1.LaunchInstanceRequest{Target: target, Version: version, ValuesYaml: vy}
			if ttl != 0 {
				body.Ttl = durationpb.New(ttl)
			}
			resp, err := c.do(cmd.Context(), request{op: "ReleasesService_LaunchInstance", params: []string{org, args[0]}, body: body,
				idempotencyKey: first(key, newIdempotencyKey())})
			if err != nil {
				return err
			}
			got := &releasesv1.LaunchInstanceResponse{}
			if err := resp.decode(got); err != nil {
				return err
			}
			if !wait {
				if !a.structured() {
					fmt.Fprintf(a.env.Stderr, "Instance %s launching (operation %s); see where it is with: slipway instance get %s %s\n",
						got.GetInstance().GetId(), got.GetOperation().GetId(), args[0], got.GetInstance().GetId())
				}
				return a.showDetails(resp.body, func(d *details) error { instanceDetails(a, d, got.GetInstance()); return nil })
			}
			return a.awaitInstance(cmd.Context(), c, org, args[0], got.GetInstance().GetId(), waitFor)
		},
	}
	vals.add(launch)
	f := launch.Flags()
	f.StringVarP(&target, "target", "t", "", "the application's target to launch on (required)")
	f.StringVar(&version, "version", "", "image version to run (default: the newest recorded)")
	f.DurationVar(&ttl, "ttl", 0, "inactivity after which it is deleted (default 1h, at most 24h)")
	f.BoolVar(&wait, "wait", false, "wait until it runs (or its launch fails)")
	f.DurationVar(&waitFor, "wait-timeout", 10*time.Minute, "how long --wait waits")
	f.StringVar(&key, "idempotency-key", "", "Idempotency-Key of the request, so a rerun gets the same instance (default: a new random key)")

	get := &cobra.Command{
		Use:               "get APP ID",
		Short:             "Show an instance: its state and location",
		Example:           `  slipway instance get hello inst_01JF3Q8ZK2X5N7R4T6V8W0Y2A4`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: a.completeApps,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "ReleasesService_GetInstance", params: []string{org, args[0], args[1]}})
			if err != nil {
				return err
			}
			return a.showInstance(resp)
		},
	}

	var lf listFlags
	var ltarget, lstate string
	list := &cobra.Command{
		Use:               "list APP",
		Short:             "List an application's instances, newest first (deleted ones for 7 days)",
		Aliases:           []string{"ls"},
		Example:           `  slipway instance list hello --state running`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeApps,
		RunE: func(cmd *cobra.Command, args []string) error {
			q := map[string][]string{}
			if ltarget != "" {
				q["target"] = []string{ltarget}
			}
			if lstate != "" {
				n, err := parseEnum(releasesv1.InstanceState(0).Descriptor(), lstate)
				if err != nil {
					return err
				}
				q["state"] = []string{releasesv1.InstanceState(n).String()}
			}
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			raw, err := a.list(cmd.Context(), c, request{op: "ReleasesService_ListInstances", params: []string{org, args[0]}, query: q}, "instances", &lf)
			if err != nil {
				return err
			}
			return a.show(raw, func() (*table, error) {
				resp := &releasesv1.ListInstancesResponse{}
				if err := unmarshalOpts.Unmarshal(raw, resp); err != nil {
					return nil, err
				}
				t := newTable("ID", "TARGET", "STATE", "LOCATION", "EXPIRES", "AGE")
				for _, i := range resp.GetInstances() {
					t.row(i.GetId(), i.GetTarget(), enum(i.GetState()), orDash(i.GetLocation()), a.expires(i), a.age(i.GetCreateTime()))
				}
				return t, nil
			})
		},
	}
	lf.add(list)
	list.Flags().StringVar(&ltarget, "target", "", "only instances on this target")
	list.Flags().StringVar(&lstate, "state", "", "only instances in this state: launching, running, failed, deleting or deleted")
	_ = list.RegisterFlagCompletionFunc("state", cobra.FixedCompletions([]string{"launching", "running", "failed", "deleting", "deleted"}, cobra.ShellCompDirectiveNoFileComp))

	var kttl time.Duration
	keepalive := &cobra.Command{
		Use:   "keepalive APP ID [--ttl D]",
		Short: "Push an instance's deletion back by its TTL, or by a new one (deployers)",
		Example: `  slipway instance keepalive hello inst_01JF3Q8ZK2X5N7R4T6V8W0Y2A4
  slipway instance keepalive hello inst_01JF3Q8ZK2X5N7R4T6V8W0Y2A4 --ttl 4h`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: a.completeApps,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			body := &releasesv1.KeepAliveInstanceRequest{}
			if kttl != 0 {
				body.Ttl = durationpb.New(kttl)
			}
			resp, err := c.do(cmd.Context(), request{op: "ReleasesService_KeepAliveInstance", params: []string{org, args[0], args[1]}, body: body})
			if err != nil {
				return err
			}
			return a.showInstance(resp)
		},
	}
	keepalive.Flags().DurationVar(&kttl, "ttl", 0, "a new TTL (default: the instance's own)")

	var rop opFlags
	rm := &cobra.Command{
		Use:               "rm APP ID",
		Short:             "Delete an instance now: uninstall it and delete its namespace (deployers)",
		Aliases:           []string{"delete"},
		Example:           `  slipway instance rm hello inst_01JF3Q8ZK2X5N7R4T6V8W0Y2A4`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: a.completeApps,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			return a.submit(cmd.Context(), c, request{op: "ReleasesService_DeleteInstance", params: []string{org, args[0], args[1]}}, &rop)
		},
	}
	rop.add(rm)

	return group("instance", "Launch short-lived application instances, culled when not kept alive", `  slipway instance launch hello --target dev --wait
  slipway instance list hello`, []string{"instances", "inst"}, launch, get, list, keepalive, rm)
}

// showInstance prints an answer holding one instance.
func (a *app) showInstance(resp *response) error {
	got := &releasesv1.GetInstanceResponse{}
	if err := resp.decode(got); err != nil {
		return err
	}
	return a.showDetails(resp.body, func(d *details) error { instanceDetails(a, d, got.GetInstance()); return nil })
}

// awaitInstance reads an instance until it runs, failed or is deleted,
// showing its state on stderr when it changes, and then prints it.
func (a *app) awaitInstance(ctx context.Context, c *client, org, application, id string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	last := releasesv1.InstanceState_INSTANCE_STATE_UNSPECIFIED
	for {
		resp, err := c.do(ctx, request{op: "ReleasesService_GetInstance", params: []string{org, application, id}})
		if err != nil {
			return err
		}
		got := &releasesv1.GetInstanceResponse{}
		if err := resp.decode(got); err != nil {
			return err
		}
		i := got.GetInstance()
		if i.GetState() != last && !a.structured() {
			fmt.Fprintf(a.env.Stderr, "Instance %s %s\n", id, enum(i.GetState()))
			last = i.GetState()
		}
		switch i.GetState() {
		case releasesv1.InstanceState_INSTANCE_STATE_RUNNING:
			return a.showDetails(resp.body, func(d *details) error { instanceDetails(a, d, i); return nil })
		case releasesv1.InstanceState_INSTANCE_STATE_FAILED, releasesv1.InstanceState_INSTANCE_STATE_DELETING, releasesv1.InstanceState_INSTANCE_STATE_DELETED:
			if err := a.showDetails(resp.body, func(d *details) error { instanceDetails(a, d, i); return nil }); err != nil {
				return err
			}
			msg := fmt.Sprintf("instance %s is %s", id, enum(i.GetState()))
			if op, err := c.do(ctx, request{op: "OperationsService_GetOperation", params: []string{org, i.GetLaunchOperation()}}); err == nil {
				got := &releasesv1.GetOperationResponse{}
				if op.decode(got) == nil && got.GetOperation().GetError() != nil {
					msg += ": its launch failed: " + got.GetOperation().GetError().GetCode() + ": " + got.GetOperation().GetError().GetMessage()
				}
			}
			return fmt.Errorf("%s", msg)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("instance %s is still %s after %s; see it with: slipway instance get %s %s", id, enum(i.GetState()), within, application, id)
		case <-time.After(instancePoll):
		}
	}
}

// expires prints when an instance is culled: "in 42m", "due" once past,
// "-" for one deleting or deleted.
func (a *app) expires(i *releasesv1.Instance) string {
	switch i.GetState() {
	case releasesv1.InstanceState_INSTANCE_STATE_DELETING, releasesv1.InstanceState_INSTANCE_STATE_DELETED:
		return "-"
	}
	if i.GetExpireTime() == nil {
		return "-"
	}
	d := i.GetExpireTime().AsTime().Sub(a.env.Now())
	if d <= 0 {
		return "due"
	}
	return "in " + shortDuration(d)
}

func instanceDetails(a *app, d *details, i *releasesv1.Instance) {
	d.add("Instance", i.GetId())
	d.add("Application", i.GetApplication()+" (target "+i.GetTarget()+")")
	d.add("State", enum(i.GetState()))
	d.add("Location", orDash(i.GetLocation()))
	d.add("Cluster", i.GetCluster())
	d.add("Release", i.GetRelease()+" in namespace "+i.GetNamespace())
	d.add("TTL", i.GetTtl().AsDuration().String())
	d.add("Last activity", stamp(i.GetLastActivityTime()))
	d.add("Expires", stamp(i.GetExpireTime())+" ("+a.expires(i)+")")
	d.add("Launched by", orDash(i.GetLaunchOperation())+" ("+orDash(i.GetCreator())+")")
	if i.GetDeleteOperation() != "" {
		d.add("Deleted by", i.GetDeleteOperation())
	}
	if i.GetDeleteTime() != nil {
		d.add("Deleted", stamp(i.GetDeleteTime()))
	}
	d.add("Created", stamp(i.GetCreateTime()))
}
