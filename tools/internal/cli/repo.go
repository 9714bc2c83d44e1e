package cli

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	catalogv1 "github.com/slipwayhq/slipway/proto/slipway/catalog/v1"
)

func (a *app) repoCmd() *cobra.Command {
	var credential string
	var ociCharts []string
	var interval time.Duration
	var addAsync bool
	add := &cobra.Command{
		Use:   "add NAME URL",
		Short: "Add a chart repository and wait for its first sync (admins)",
		Long: `Add a Helm chart repository: an https:// URL holding index.yaml, or an
oci:// registry path under which each chart is a repository (name them
with --oci-chart when the registry does not list its repositories). The
command waits for the first sync unless --async.`,
		Example: `  slipway repo add bitnami https://charts.bitnami.com/bitnami
  slipway repo add internal oci://ghcr.io/acme/charts --oci-chart web --oci-chart worker --credential ghcr`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := &catalogv1.Repository{Name: args[0], Url: args[1], CredentialId: credential, OciCharts: ociCharts}
			if interval > 0 {
				body.SyncInterval = durationpb.New(interval)
			}
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "CatalogService_CreateRepository", params: []string{org}, body: body})
			if err != nil {
				return err
			}
			return a.afterSync(cmd.Context(), c, org, resp, addAsync, true)
		},
	}
	add.Flags().StringVar(&credential, "credential", "", "helm-repository or registry credential (id or name) to fetch with")
	add.Flags().StringArrayVar(&ociCharts, "oci-chart", nil, "oci:// repositories: a chart to track under the URL (may be repeated)")
	add.Flags().DurationVar(&interval, "sync-interval", 0, "how often to sync in the background (default 10m, at least 1m)")
	add.Flags().BoolVar(&addAsync, "async", false, "return at once instead of waiting for the first sync")

	var syncAsync bool
	sync := &cobra.Command{
		Use:               "sync NAME",
		Short:             "Sync a repository's index now and wait for it (deployers)",
		Example:           `  slipway repo sync bitnami`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeRepos,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "CatalogService_SyncRepository", params: []string{org, args[0]}, raw: []byte("{}")})
			if err != nil {
				return err
			}
			return a.afterSync(cmd.Context(), c, org, resp, syncAsync, false)
		},
	}
	sync.Flags().BoolVar(&syncAsync, "async", false, "return at once instead of waiting for the sync")

	var lf listFlags
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the organization's chart repositories with their sync status",
		Aliases: []string{"ls"},
		Example: `  slipway repo list`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			raw, err := a.list(cmd.Context(), c, request{op: "CatalogService_ListRepositories", params: []string{org}}, "repositories", &lf)
			if err != nil {
				return err
			}
			return a.show(raw, func() (*table, error) {
				resp := &catalogv1.ListRepositoriesResponse{}
				if err := unmarshalOpts.Unmarshal(raw, resp); err != nil {
					return nil, err
				}
				t := repoTable()
				for _, r := range resp.GetRepositories() {
					repoRow(a, t, r)
				}
				return t, nil
			})
		},
	}
	lf.add(list)

	get := &cobra.Command{
		Use:               "get NAME",
		Short:             "Show a repository and its sync status",
		Example:           `  slipway repo get bitnami -o yaml`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeRepos,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "CatalogService_GetRepository", params: []string{org, args[0]}})
			if err != nil {
				return err
			}
			return a.show(resp.body, func() (*table, error) { return oneRepo(a, resp) })
		},
	}

	var clf listFlags
	charts := &cobra.Command{
		Use:               "charts NAME",
		Short:             "List the charts of one repository",
		Example:           `  slipway repo charts bitnami`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeRepos,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			raw, err := a.list(cmd.Context(), c, request{op: "CatalogService_ListCharts", params: []string{org, args[0]}}, "charts", &clf)
			if err != nil {
				return err
			}
			return a.show(raw, func() (*table, error) { return chartsTable(a, raw) })
		},
	}
	clf.add(charts)

	rm := &cobra.Command{
		Use:               "rm NAME",
		Short:             "Remove a repository (admins; refused while an application uses it)",
		Aliases:           []string{"delete"},
		Example:           `  slipway repo rm old-charts`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeRepos,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			if _, err := c.do(cmd.Context(), request{op: "CatalogService_DeleteRepository", params: []string{org, args[0]}}); err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "Removed repository %s.\n", args[0])
			return nil
		},
	}
	return group("repo", "Manage chart repositories", `  slipway repo add bitnami https://charts.bitnami.com/bitnami
  slipway repo list`, []string{"repos", "repository"}, add, sync, list, get, charts, rm)
}

// afterSync prints a repository whose sync was started, after waiting
// for that sync to end unless async.
func (a *app) afterSync(ctx context.Context, c *client, org string, resp *response, async, added bool) error {
	got := &catalogv1.GetRepositoryResponse{}
	if err := resp.decode(got); err != nil {
		return err
	}
	if async {
		return a.show(resp.body, func() (*table, error) { return oneRepo(a, resp) })
	}
	if s := got.GetRepository().GetSync(); added && s.GetLastSyncTime() != nil && syncEnded(s.GetState()) {
		// A new repository shares the source of any other with its URL
		// and login (of any org, when anonymous) and answers with that
		// source's last sync: the next comes only at the source's
		// interval, so this one is its first.
		if err := a.show(resp.body, func() (*table, error) { return oneRepo(a, resp) }); err != nil {
			return err
		}
		if s.GetState() == catalogv1.RepositorySyncState_REPOSITORY_SYNC_STATE_FAILED {
			return fmt.Errorf("sync of repository %s failed: %s", got.GetRepository().GetName(), s.GetLastError())
		}
		return nil
	}
	name := got.GetRepository().GetName()
	before := got.GetRepository().GetSync().GetLastSyncTime().AsTime()
	live := a.env.IsTerminal(a.env.Stderr)
	if !live {
		fmt.Fprintf(a.env.Stderr, "Syncing repository %s...\n", name)
	}
	start := a.env.Now()
	for {
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		if live {
			fmt.Fprintf(a.env.Stderr, "\r\x1b[2KSyncing repository %s... %s", name, shortDuration(a.env.Now().Sub(start)))
		}
		cur, err := c.do(ctx, request{op: "CatalogService_GetRepository", params: []string{org, name}})
		if err != nil {
			return err
		}
		r := &catalogv1.GetRepositoryResponse{}
		if err := cur.decode(r); err != nil {
			return err
		}
		s := r.GetRepository().GetSync()
		if !syncEnded(s.GetState()) {
			continue
		}
		if s.GetLastSyncTime() == nil || !s.GetLastSyncTime().AsTime().After(before) {
			continue
		}
		if live {
			fmt.Fprint(a.env.Stderr, "\r\x1b[2K")
		}
		if err := a.show(cur.body, func() (*table, error) { return oneRepo(a, cur) }); err != nil {
			return err
		}
		if s.GetState() == catalogv1.RepositorySyncState_REPOSITORY_SYNC_STATE_FAILED {
			return fmt.Errorf("sync of repository %s failed: %s", name, s.GetLastError())
		}
		return nil
	}
}

func syncEnded(s catalogv1.RepositorySyncState) bool {
	return s == catalogv1.RepositorySyncState_REPOSITORY_SYNC_STATE_SYNCED || s == catalogv1.RepositorySyncState_REPOSITORY_SYNC_STATE_FAILED
}

func repoTable() *table {
	return newTable("NAME", "URL", "SYNC", "CHARTS", "LAST SYNC", "ERROR", "AGE").colour(2)
}

func repoRow(a *app, t *table, r *catalogv1.Repository) {
	s := r.GetSync()
	t.row(r.GetName(), r.GetUrl(), enum(s.GetState()), strconv.Itoa(int(s.GetChartCount())), a.age(s.GetLastSyncTime()),
		orDash(truncate(s.GetLastError(), 60)), a.age(r.GetCreateTime()))
}

func oneRepo(a *app, resp *response) (*table, error) {
	got := &catalogv1.GetRepositoryResponse{}
	if err := resp.decode(got); err != nil {
		return nil, err
	}
	t := repoTable()
	repoRow(a, t, got.GetRepository())
	return t, nil
}

func (a *app) completeRepos(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, org, err := a.orgClient()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	resp, err := c.do(cmd.Context(), request{op: "CatalogService_ListRepositories", params: []string{org}, query: map[string][]string{"page_size": {"500"}}})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	got := &catalogv1.ListRepositoriesResponse{}
	if resp.decode(got) != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for _, r := range got.GetRepositories() {
		names = append(names, r.GetName())
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
