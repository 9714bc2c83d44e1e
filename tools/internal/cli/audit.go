package cli

import (
	"strconv"
	"time"

	"github.com/spf13/cobra"

	gatewayv1 "github.com/slipwayhq/slipway/proto/slipway/gateway/v1"
)

func (a *app) auditCmd() *cobra.Command {
	var lf listFlags
	var actor, action, since string
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read the organization's audit log (admins)",
		Long: `List the organization's audit log, newest first: every mutating call (who,
token, action, path, HTTP result, request id, time) and every kubeconfig
download. --since takes a duration (24h) or an RFC 3339 time.`,
		Example: `  slipway audit --since 24h
  slipway audit --actor ana@example.com --action ClustersService_DeleteCluster -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			q := map[string][]string{}
			if actor != "" {
				q["actor"] = []string{actor}
			}
			if action != "" {
				q["action"] = []string{action}
			}
			if since != "" {
				t, err := parseSince(since, a.env.Now())
				if err != nil {
					return err
				}
				q["since"] = []string{t.UTC().Format(time.RFC3339Nano)}
			}
			raw, err := a.list(cmd.Context(), c, request{op: "AuditService_ListAuditEvents", params: []string{org}, query: q}, "events", &lf)
			if err != nil {
				return err
			}
			return a.show(raw, func() (*table, error) {
				resp := &gatewayv1.ListAuditEventsResponse{}
				if err := unmarshalOpts.Unmarshal(raw, resp); err != nil {
					return nil, err
				}
				t := newTable("TIME", "ACTOR", "ACTION", "TARGET", "RESULT", "REQUEST ID")
				for _, e := range resp.GetEvents() {
					t.row(stamp(e.GetTime()), e.GetActor(), e.GetAction(), e.GetTarget(), strconv.Itoa(int(e.GetResult())), orDash(e.GetRequestId()))
				}
				return t, nil
			})
		},
	}
	cmd.Flags().StringVar(&actor, "actor", "", "only events of this actor")
	cmd.Flags().StringVar(&action, "action", "", "only events of this action (an operation id such as ClustersService_DeleteCluster)")
	cmd.Flags().StringVar(&since, "since", "", "only events since then: a duration (24h) or an RFC 3339 time")
	lf.add(cmd)
	return cmd
}

// parseSince reads a duration back from now, or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usagef("--since %q: neither a duration (24h) nor an RFC 3339 time", s)
	}
	return t, nil
}
