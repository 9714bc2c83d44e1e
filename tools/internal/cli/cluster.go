package cli

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
)

// connFlags say how Slipway connects to a cluster: a kubeconfig and one of
// its contexts, or an API server URL with its CA and a token.
type connFlags struct {
	kubeconfig  string
	kubeContext string
	apiServer   string
	caFile      string
	tokenFile   string
}

func (f *connFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file to connect with ('-' for standard input)")
	cmd.Flags().StringVar(&f.kubeContext, "kube-context", "", "context of the kubeconfig to use (default: its current-context)")
	cmd.Flags().StringVar(&f.apiServer, "api-server", "", "API server URL (https://), instead of a kubeconfig")
	cmd.Flags().StringVar(&f.caFile, "ca-file", "", "with --api-server: PEM file of the CA that signs the API server's certificate")
	cmd.Flags().StringVar(&f.tokenFile, "bearer-token-file", "", "with --api-server: file holding a bearer (service account) token")
	_ = cmd.MarkFlagFilename("kubeconfig")
	_ = cmd.MarkFlagFilename("ca-file", "pem", "crt")
	cmd.MarkFlagsMutuallyExclusive("kubeconfig", "api-server")
}

func (a *app) readInput(name string) ([]byte, error) {
	if name == "-" {
		b, err := readAllLimited(a.env.Stdin)
		if err != nil {
			return nil, fmt.Errorf("read standard input: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return b, nil
}

// kubeconfig returns the kubeconfig secret the flags name, or nil.
func (a *app) kubeconfigSecret(f *connFlags) (*clustersv1.KubeconfigSecret, error) {
	if f.kubeconfig == "" {
		return nil, nil
	}
	b, err := a.readInput(f.kubeconfig)
	if err != nil {
		return nil, err
	}
	return &clustersv1.KubeconfigSecret{Kubeconfig: b, Context: f.kubeContext}, nil
}

func (a *app) serverSecret(f *connFlags) (*clustersv1.ServerConnectionSecret, error) {
	if f.apiServer == "" {
		return nil, nil
	}
	s := &clustersv1.ServerConnectionSecret{Server: f.apiServer}
	if f.caFile != "" {
		b, err := a.readInput(f.caFile)
		if err != nil {
			return nil, err
		}
		s.CertificateAuthorityPem = b
	}
	if f.tokenFile == "" {
		return nil, usagef("--api-server needs --bearer-token-file")
	}
	b, err := a.readInput(f.tokenFile)
	if err != nil {
		return nil, err
	}
	s.Auth = &clustersv1.ServerConnectionSecret_BearerToken{BearerToken: trimSpace(b)}
	return s, nil
}

func (a *app) clusterCmd() *cobra.Command {
	var conn connFlags
	var lbls map[string]string
	var credential string
	var allowUnreachable bool
	add := &cobra.Command{
		Use:   "add NAME (--kubeconfig FILE [--kube-context NAME] | --api-server URL --bearer-token-file FILE | --credential NAME)",
		Short: "Register a cluster (admins)",
		Long: `Register a cluster from a kubeconfig and one of its contexts, from an API
server URL with a token, or from an existing kubeconfig credential. The
connection is checked first; an unreachable cluster is refused unless
--allow-unreachable. The secret goes to Vault and is never shown again
but to admins (slipway cluster config). Kubeconfigs that run exec plugins
or read local files are refused: the server would have to run them.`,
		Example: `  slipway cluster add prod --kubeconfig ~/.kube/config --kube-context prod-admin --label env=prod
  kind get kubeconfig | slipway cluster add dev --kubeconfig -`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := &clustersv1.RegisterClusterRequest{Name: args[0], Labels: lbls, AllowUnreachable: allowUnreachable}
			kc, err := a.kubeconfigSecret(&conn)
			if err != nil {
				return err
			}
			sc, err := a.serverSecret(&conn)
			if err != nil {
				return err
			}
			switch {
			case kc != nil:
				body.Connection = &clustersv1.RegisterClusterRequest_Kubeconfig{Kubeconfig: kc}
			case sc != nil:
				body.Connection = &clustersv1.RegisterClusterRequest_ServerConnection{ServerConnection: sc}
			case credential != "":
				body.Connection = &clustersv1.RegisterClusterRequest_CredentialId{CredentialId: credential}
			default:
				return usagef("say how to connect: --kubeconfig, --api-server or --credential")
			}
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "ClustersService_RegisterCluster", params: []string{org}, body: body})
			if err != nil {
				return err
			}
			return a.show(resp.body, func() (*table, error) { return oneCluster(a, resp) })
		},
	}
	conn.add(add)
	add.Flags().StringToStringVarP(&lbls, "label", "l", nil, "label key=value (may be repeated)")
	add.Flags().StringVar(&credential, "credential", "", "an existing kubeconfig credential (id or name) to connect with")
	add.Flags().BoolVar(&allowUnreachable, "allow-unreachable", false, "register the cluster even when the first check fails")
	kubeContextAlias(add, &conn)

	get := &cobra.Command{
		Use:               "get NAME",
		Short:             "Show a cluster with its last known health",
		Example:           `  slipway cluster get prod -o yaml`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeClusters,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "ClustersService_GetCluster", params: []string{org, args[0]}})
			if err != nil {
				return err
			}
			return a.showDetails(resp.body, func(d *details) error {
				got := &clustersv1.GetClusterResponse{}
				if err := resp.decode(got); err != nil {
					return err
				}
				cl := got.GetCluster()
				h := cl.GetHealth()
				d.add("Name", cl.GetName())
				d.add("ID", cl.GetId())
				d.add("Server", cl.GetServer())
				d.add("Labels", labels(cl.GetLabels()))
				d.add("Health", enum(h.GetReachability()))
				d.add("Kubernetes", orDash(h.GetKubernetesVersion()))
				d.add("Nodes", strconv.Itoa(int(h.GetNodeCount())))
				d.add("Last check", stamp(h.GetLastCheckTime()))
				if h.GetMessage() != "" {
					d.add("Message", h.GetMessage())
				}
				d.add("Credential", cl.GetCredentialId())
				d.add("Creator", orDash(cl.GetCreator()))
				d.add("Created", stamp(cl.GetCreateTime()))
				return nil
			})
		},
	}

	var lf listFlags
	var selector string
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the organization's clusters",
		Aliases: []string{"ls"},
		Example: `  slipway cluster list
  slipway cluster list -l env=prod`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			q := map[string][]string{}
			if selector != "" {
				q["label_selector"] = []string{selector}
			}
			raw, err := a.list(cmd.Context(), c, request{op: "ClustersService_ListClusters", params: []string{org}, query: q}, "clusters", &lf)
			if err != nil {
				return err
			}
			return a.show(raw, func() (*table, error) {
				resp := &clustersv1.ListClustersResponse{}
				if err := unmarshalOpts.Unmarshal(raw, resp); err != nil {
					return nil, err
				}
				t := clusterTable()
				for _, cl := range resp.GetClusters() {
					clusterRow(a, t, cl)
				}
				return t, nil
			})
		},
	}
	lf.add(list)
	list.Flags().StringVarP(&selector, "selector", "l", "", "label selector (env=prod,team in (a,b))")

	var rconn connFlags
	rotate := &cobra.Command{
		Use:   "rotate NAME (--kubeconfig FILE [--kube-context NAME] | --api-server URL --bearer-token-file FILE)",
		Short: "Replace the credentials a cluster connects with (admins)",
		Long: `Replace a cluster's credentials. The new ones must reach the same API server
and pass a check before they replace the old ones; otherwise nothing
changes.`,
		Example:           `  slipway cluster rotate prod --kubeconfig new.kubeconfig --kube-context prod-admin`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeClusters,
		RunE: func(cmd *cobra.Command, args []string) error {
			body := &clustersv1.RotateClusterCredentialsRequest{}
			kc, err := a.kubeconfigSecret(&rconn)
			if err != nil {
				return err
			}
			sc, err := a.serverSecret(&rconn)
			if err != nil {
				return err
			}
			switch {
			case kc != nil:
				body.Connection = &clustersv1.RotateClusterCredentialsRequest_Kubeconfig{Kubeconfig: kc}
			case sc != nil:
				body.Connection = &clustersv1.RotateClusterCredentialsRequest_ServerConnection{ServerConnection: sc}
			default:
				return usagef("give the new credentials: --kubeconfig or --api-server")
			}
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "ClustersService_RotateClusterCredentials", params: []string{org, args[0]}, body: body})
			if err != nil {
				return err
			}
			return a.show(resp.body, func() (*table, error) { return oneCluster(a, resp) })
		},
	}
	rconn.add(rotate)
	kubeContextAlias(rotate, &rconn)

	config := &cobra.Command{
		Use:   "config NAME",
		Short: "Print the kubeconfig Slipway uses for a cluster (admins; audited)",
		Example: `  slipway cluster config prod > prod.kubeconfig
  kubectl --kubeconfig <(slipway cluster config prod) get nodes`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeClusters,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "ClustersService_GetClusterConfig", params: []string{org, args[0]}})
			if err != nil {
				return err
			}
			if a.structured() {
				return a.show(resp.body, nil)
			}
			got := &clustersv1.GetClusterConfigResponse{}
			if err := resp.decode(got); err != nil {
				return err
			}
			_, err = a.env.Stdout.Write(got.GetKubeconfig())
			return err
		},
	}

	var force bool
	rm := &cobra.Command{
		Use:   "rm NAME",
		Short: "Forget a cluster and its credential (admins; nothing is uninstalled)",
		Long: `Forget a cluster and delete the credential it owns. Refused while Slipway
tracks releases on it or has operations pending, unless --force (which
cancels queued operations and drops its releases from the ledger).
Nothing is ever uninstalled from the cluster itself.`,
		Aliases:           []string{"delete"},
		Example:           `  slipway cluster rm old-dev --force`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeClusters,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			q := map[string][]string{}
			if force {
				q["force"] = []string{"true"}
			}
			if _, err := c.do(cmd.Context(), request{op: "ClustersService_DeleteCluster", params: []string{org, args[0]}, query: q}); err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "Deleted cluster %s.\n", args[0])
			return nil
		},
	}
	rm.Flags().BoolVar(&force, "force", false, "delete even while releases are tracked or operations pending")

	check := &cobra.Command{
		Use:               "check NAME",
		Short:             "Contact a cluster now and record its health (admins)",
		Example:           `  slipway cluster check prod`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeClusters,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "ClustersService_CheckCluster", params: []string{org, args[0]}, raw: []byte("{}")})
			if err != nil {
				return err
			}
			return a.show(resp.body, func() (*table, error) {
				got := &clustersv1.CheckClusterResponse{}
				if err := resp.decode(got); err != nil {
					return nil, err
				}
				h := got.GetHealth()
				t := newTable("HEALTH", "VERSION", "NODES", "MESSAGE").colour(0)
				t.row(enum(h.GetReachability()), orDash(h.GetKubernetesVersion()), strconv.Itoa(int(h.GetNodeCount())), orDash(h.GetMessage()))
				return t, nil
			})
		},
	}

	var rename string
	var newLabels map[string]string
	update := &cobra.Command{
		Use:               "update NAME [--name NEW] [--label k=v ...]",
		Short:             "Rename a cluster or replace its labels (admins)",
		Example:           `  slipway cluster update dev --name staging --label env=staging`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeClusters,
		RunE: func(cmd *cobra.Command, args []string) error {
			body := &clustersv1.UpdateClusterRequest{UpdateMask: &fieldmaskpb.FieldMask{}}
			if cmd.Flags().Changed("name") {
				body.Name = rename
				body.UpdateMask.Paths = append(body.UpdateMask.Paths, "name")
			}
			if cmd.Flags().Changed("label") {
				body.Labels = newLabels
				body.UpdateMask.Paths = append(body.UpdateMask.Paths, "labels")
			}
			if len(body.UpdateMask.Paths) == 0 {
				return usagef("nothing to change: give --name or --label")
			}
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "ClustersService_UpdateCluster", params: []string{org, args[0]}, body: body})
			if err != nil {
				return err
			}
			return a.show(resp.body, func() (*table, error) { return oneCluster(a, resp) })
		},
	}
	update.Flags().StringVar(&rename, "name", "", "new name")
	update.Flags().StringToStringVarP(&newLabels, "label", "l", nil, "labels, replacing all old ones (may be repeated)")

	return group("cluster", "Register and manage Kubernetes clusters", `  slipway cluster add prod --kubeconfig ~/.kube/config --kube-context prod
  slipway cluster list`, []string{"clusters"}, add, get, list, rotate, config, rm, check, update)
}

// kubeContextAlias makes --context the kubeconfig's context on the
// commands that take a kubeconfig, as kubectl users expect; it shadows the
// global --context there (SLIPWAY_CONTEXT still chooses the slipway
// context).
func kubeContextAlias(cmd *cobra.Command, f *connFlags) {
	cmd.Flags().StringVar(&f.kubeContext, "context", "", "context of the kubeconfig to use (same as --kube-context)")
}

func readAllLimited(r io.Reader) ([]byte, error) { return io.ReadAll(io.LimitReader(r, 16<<20)) }

func trimSpace(b []byte) string { return strings.TrimSpace(string(b)) }

func clusterTable() *table {
	return newTable("NAME", "ID", "SERVER", "HEALTH", "VERSION", "NODES", "LABELS", "AGE").colour(3)
}

func clusterRow(a *app, t *table, cl *clustersv1.Cluster) {
	h := cl.GetHealth()
	t.row(cl.GetName(), cl.GetId(), cl.GetServer(), enum(h.GetReachability()), orDash(h.GetKubernetesVersion()),
		strconv.Itoa(int(h.GetNodeCount())), labels(cl.GetLabels()), a.age(cl.GetCreateTime()))
}

// oneCluster tables an answer {"cluster": {...}}.
func oneCluster(a *app, resp *response) (*table, error) {
	got := &clustersv1.GetClusterResponse{}
	if err := resp.decode(got); err != nil {
		return nil, err
	}
	t := clusterTable()
	clusterRow(a, t, got.GetCluster())
	return t, nil
}

func (a *app) completeClusters(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, org, err := a.orgClient()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	resp, err := c.do(cmd.Context(), request{op: "ClustersService_ListClusters", params: []string{org}, query: map[string][]string{"page_size": {"500"}}})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	got := &clustersv1.ListClustersResponse{}
	if resp.decode(got) != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for _, cl := range got.GetClusters() {
		names = append(names, cl.GetName())
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
