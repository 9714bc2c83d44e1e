package cli

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
)

// secretFlags give a credential's secret; its type follows from them.
type secretFlags struct {
	typ           string
	username      string
	passwordStdin bool
	passwordFile  string
	bearerFile    string
	caFile        string
	conn          connFlags
}

func (f *secretFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.typ, "type", "", "kind of secret: registry, helm-repository or kubeconfig")
	fl.StringVar(&f.username, "username", "", "registry or repository user name")
	fl.BoolVar(&f.passwordStdin, "password-stdin", false, "read the password (or token) from standard input")
	fl.StringVar(&f.passwordFile, "password-file", "", "read the password (or token) from a file")
	fl.StringVar(&f.bearerFile, "bearer-token-file", "", "helm-repository: file holding a bearer token")
	fl.StringVar(&f.caFile, "ca-file", "", "helm-repository: PEM file of the repository's CA")
	fl.StringVar(&f.conn.kubeconfig, "kubeconfig", "", "kubeconfig: the kubeconfig file")
	fl.StringVar(&f.conn.kubeContext, "context", "", "kubeconfig: its context to use")
	_ = cmd.RegisterFlagCompletionFunc("type", cobra.FixedCompletions([]string{"registry", "helm-repository", "kubeconfig"}, cobra.ShellCompDirectiveNoFileComp))
}

func (a *app) password(f *secretFlags) (string, error) {
	switch {
	case f.passwordStdin:
		b, err := a.readInput("-")
		return trimSpace(b), err
	case f.passwordFile != "":
		b, err := a.readInput(f.passwordFile)
		return trimSpace(b), err
	}
	return "", nil
}

// secret builds the secret of a create or update request; set receives
// the oneof (kubeconfig, registry or helm repository).
func (a *app) secret(f *secretFlags) (kc *clustersv1.KubeconfigSecret, reg *clustersv1.RegistrySecret, helm *clustersv1.HelmRepositorySecret, err error) {
	pw, err := a.password(f)
	if err != nil {
		return nil, nil, nil, err
	}
	switch f.typ {
	case "registry":
		if f.username == "" || pw == "" {
			return nil, nil, nil, usagef("a registry credential needs --username and --password-stdin (or --password-file)")
		}
		return nil, &clustersv1.RegistrySecret{Username: f.username, Password: pw}, nil, nil
	case "helm-repository":
		h := &clustersv1.HelmRepositorySecret{}
		switch {
		case f.bearerFile != "":
			b, err := a.readInput(f.bearerFile)
			if err != nil {
				return nil, nil, nil, err
			}
			h.Auth = &clustersv1.HelmRepositorySecret_BearerToken{BearerToken: trimSpace(b)}
		case f.username != "":
			h.Auth = &clustersv1.HelmRepositorySecret_BasicAuth{BasicAuth: &clustersv1.BasicAuthSecret{Username: f.username, Password: pw}}
		default:
			return nil, nil, nil, usagef("a helm-repository credential needs --username with a password, or --bearer-token-file")
		}
		if f.caFile != "" {
			b, err := a.readInput(f.caFile)
			if err != nil {
				return nil, nil, nil, err
			}
			h.CertificateAuthorityPem = b
		}
		return nil, nil, h, nil
	case "kubeconfig":
		kc, err := a.kubeconfigSecret(&f.conn)
		if err == nil && kc == nil {
			err = usagef("a kubeconfig credential needs --kubeconfig FILE")
		}
		return kc, nil, nil, err
	case "":
		return nil, nil, nil, nil
	}
	return nil, nil, nil, usagef("unknown --type %q: registry, helm-repository or kubeconfig", f.typ)
}

func (a *app) credentialCmd() *cobra.Command {
	var sf secretFlags
	var endpoint string
	create := &cobra.Command{
		Use:   "create NAME --type TYPE [--endpoint E] ...",
		Short: "Store a credential (admins); its secret goes to Vault and is never shown",
		Long: `Store a typed secret: a container registry login (--type registry, endpoint
the registry host), a Helm repository login (--type helm-repository,
endpoint the repository URL prefix) or a kubeconfig (--type kubeconfig).
A credential is only ever sent to its endpoint. Secrets are read from
files or standard input, never from the command line.`,
		Example: `  echo "$REGISTRY_PASSWORD" | slipway credential create ghcr --type registry --endpoint ghcr.io --username bot --password-stdin
  slipway credential create charts --type helm-repository --endpoint https://charts.example.com/ --bearer-token-file token.txt`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if sf.typ == "" {
				return usagef("--type is required: registry, helm-repository or kubeconfig")
			}
			kc, reg, helm, err := a.secret(&sf)
			if err != nil {
				return err
			}
			body := &clustersv1.CreateCredentialRequest{Name: args[0], Endpoint: endpoint}
			switch {
			case kc != nil:
				body.Secret = &clustersv1.CreateCredentialRequest_Kubeconfig{Kubeconfig: kc}
			case reg != nil:
				body.Secret = &clustersv1.CreateCredentialRequest_Registry{Registry: reg}
			case helm != nil:
				body.Secret = &clustersv1.CreateCredentialRequest_HelmRepository{HelmRepository: helm}
			}
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "CredentialsService_CreateCredential", params: []string{org}, body: body})
			if err != nil {
				return err
			}
			return a.show(resp.body, func() (*table, error) { return oneCredential(a, resp) })
		},
	}
	sf.add(create)
	create.Flags().StringVar(&endpoint, "endpoint", "", "where the credential may be sent: a registry host, or a repository URL prefix")

	var usf secretFlags
	var rename, newEndpoint string
	update := &cobra.Command{
		Use:   "update NAME [--name NEW] [--endpoint E --type TYPE ...]",
		Short: "Rename a credential, or rotate its secret (admins)",
		Long: `Rename a credential, or rotate its secret (a new version; give --type with
the new secret, of the credential's type). Changing the endpoint needs a
new secret in the same call, so a secret can never be redirected.`,
		Example: `  slipway credential update ghcr --type registry --username bot --password-file new.txt`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kc, reg, helm, err := a.secret(&usf)
			if err != nil {
				return err
			}
			body := &clustersv1.UpdateCredentialRequest{UpdateMask: &fieldmaskpb.FieldMask{}}
			if cmd.Flags().Changed("name") {
				body.Name = rename
				body.UpdateMask.Paths = append(body.UpdateMask.Paths, "name")
			}
			if cmd.Flags().Changed("endpoint") {
				body.Endpoint = newEndpoint
				body.UpdateMask.Paths = append(body.UpdateMask.Paths, "endpoint")
			}
			switch {
			case kc != nil:
				body.Secret = &clustersv1.UpdateCredentialRequest_Kubeconfig{Kubeconfig: kc}
			case reg != nil:
				body.Secret = &clustersv1.UpdateCredentialRequest_Registry{Registry: reg}
			case helm != nil:
				body.Secret = &clustersv1.UpdateCredentialRequest_HelmRepository{HelmRepository: helm}
			}
			if len(body.UpdateMask.Paths) == 0 && body.Secret == nil {
				return usagef("nothing to change: give --name, --endpoint or a new secret")
			}
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "CredentialsService_UpdateCredential", params: []string{org, args[0]}, body: body})
			if err != nil {
				return err
			}
			return a.show(resp.body, func() (*table, error) { return oneCredential(a, resp) })
		},
	}
	usf.add(update)
	update.Flags().StringVar(&rename, "name", "", "new name")
	update.Flags().StringVar(&newEndpoint, "endpoint", "", "new endpoint (needs a new secret too)")

	get := &cobra.Command{
		Use:     "get NAME",
		Short:   "Show a credential's metadata (never its secret)",
		Example: `  slipway credential get ghcr`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			resp, err := c.do(cmd.Context(), request{op: "CredentialsService_GetCredential", params: []string{org, args[0]}})
			if err != nil {
				return err
			}
			return a.show(resp.body, func() (*table, error) { return oneCredential(a, resp) })
		},
	}

	var lf listFlags
	var typ string
	list := &cobra.Command{
		Use:     "list [--type TYPE]",
		Short:   "List the organization's credentials",
		Aliases: []string{"ls"},
		Example: `  slipway credential list --type registry`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := map[string][]string{}
			if typ != "" {
				n, err := parseEnum(clustersv1.CredentialType(0).Descriptor(), typ)
				if err != nil {
					return err
				}
				q["type"] = []string{clustersv1.CredentialType(n).String()}
			}
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			raw, err := a.list(cmd.Context(), c, request{op: "CredentialsService_ListCredentials", params: []string{org}, query: q}, "credentials", &lf)
			if err != nil {
				return err
			}
			return a.show(raw, func() (*table, error) {
				resp := &clustersv1.ListCredentialsResponse{}
				if err := unmarshalOpts.Unmarshal(raw, resp); err != nil {
					return nil, err
				}
				t := credentialTable()
				for _, cr := range resp.GetCredentials() {
					credentialRow(a, t, cr)
				}
				return t, nil
			})
		},
	}
	lf.add(list)
	list.Flags().StringVar(&typ, "type", "", "only credentials of this type")

	rm := &cobra.Command{
		Use:     "rm NAME",
		Short:   "Delete a credential and every version of its secret (admins)",
		Aliases: []string{"delete"},
		Example: `  slipway credential rm old-registry`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, org, err := a.orgClient()
			if err != nil {
				return err
			}
			if _, err := c.do(cmd.Context(), request{op: "CredentialsService_DeleteCredential", params: []string{org, args[0]}}); err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "Deleted credential %s.\n", args[0])
			return nil
		},
	}
	return group("credential", "Manage registry, repository and kubeconfig credentials (kept in Vault)", `  slipway credential list
  slipway credential create ghcr --type registry --endpoint ghcr.io --username bot --password-stdin`,
		[]string{"credentials", "cred"}, create, get, list, update, rm)
}

func credentialTable() *table {
	return newTable("NAME", "ID", "TYPE", "ENDPOINT", "VERSION", "CLUSTER", "AGE")
}

func credentialRow(a *app, t *table, cr *clustersv1.Credential) {
	t.row(cr.GetName(), cr.GetId(), enum(cr.GetType()), orDash(cr.GetEndpoint()), strconv.FormatInt(cr.GetVersion(), 10),
		orDash(cr.GetOwnerClusterId()), a.age(cr.GetCreateTime()))
}

func oneCredential(a *app, resp *response) (*table, error) {
	got := &clustersv1.GetCredentialResponse{}
	if err := resp.decode(got); err != nil {
		return nil, err
	}
	t := credentialTable()
	credentialRow(a, t, got.GetCredential())
	return t, nil
}
