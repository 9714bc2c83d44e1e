package clusters

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/paging"
	"github.com/slipwayhq/slipway/pkg/validate"
	"github.com/slipwayhq/slipway/services/clusters/internal/kube"
)

// CredentialType is the kind of secret a credential holds.
type CredentialType string

// Credential types.
const (
	TypeKubeconfig     CredentialType = "kubeconfig"
	TypeRegistry       CredentialType = "registry"
	TypeHelmRepository CredentialType = "helm-repository"
)

// Credential is the metadata of a secret kept in Vault. It never carries
// the secret.
type Credential struct {
	ID             string
	Org            string
	Name           string
	Type           CredentialType
	Endpoint       string
	Version        int64
	OwnerClusterID string
	VaultPath      string
	Creator        string
	Created        time.Time
	Updated        time.Time
}

// Secret is the write-only material of a credential: exactly one field set.
type Secret struct {
	Kubeconfig *Connection // Kubeconfig + KubeconfigContext only
	Registry   *RegistryLogin
	Repository *RepositoryLogin
}

// RegistryLogin is a container registry login.
type RegistryLogin struct {
	Username, Password string
}

// RepositoryLogin is a chart repository login: basic, bearer, or client
// certificate, with an optional CA.
type RepositoryLogin struct {
	Username, Password string
	BearerToken        string
	CertPEM, KeyPEM    []byte
	CAPEM              []byte
}

// typ is the type the secret is of, "" unless exactly one field is set.
func (s Secret) typ() CredentialType {
	switch {
	case s.Kubeconfig != nil && s.Registry == nil && s.Repository == nil:
		return TypeKubeconfig
	case s.Registry != nil && s.Kubeconfig == nil && s.Repository == nil:
		return TypeRegistry
	case s.Repository != nil && s.Kubeconfig == nil && s.Registry == nil:
		return TypeHelmRepository
	}
	return ""
}

// NewCredential is what a caller supplies to store a credential.
type NewCredential struct {
	Name     string
	Endpoint string
	Secret   Secret
}

// CredentialUpdate renames, re-points or rotates a credential.
type CredentialUpdate struct {
	Name     *string
	Endpoint *string
	Secret   *Secret
}

// CredentialPage is one page of credentials, by name.
type CredentialPage struct {
	Credentials   []Credential
	NextPageToken string
}

func (s *service) CreateCredential(ctx context.Context, in NewCredential) (Credential, error) {
	caller, err := callerWith(ctx, identity.RoleAdmin)
	if err != nil {
		return Credential{}, err
	}
	if err := validate.DNSLabel("name", in.Name); err != nil {
		return Credential{}, err
	}
	typ, data, endpoint, err := s.encodeSecret(in.Secret, in.Endpoint)
	if err != nil {
		return Credential{}, err
	}
	if _, err := s.store.GetCredential(ctx, caller.Org, in.Name); err == nil {
		return Credential{}, fmt.Errorf("%w: %s", ErrCredentialExists, in.Name)
	}
	if err := s.uniqueRegistry(ctx, caller.Org, typ, endpoint, ""); err != nil {
		return Credential{}, err
	}
	now := s.stamp()
	id := newID("cred_")
	c := Credential{ID: id, Org: caller.Org, Name: in.Name, Type: typ, Endpoint: endpoint,
		VaultPath: credentialPath(caller.Org, id), Creator: caller.Subject, Created: now, Updated: now}
	if c.Version, err = s.putSecret(ctx, c.VaultPath, data, 0); err != nil {
		return Credential{}, err
	}
	if err := s.store.InsertCredential(ctx, c); err != nil {
		s.destroy(ctx, c.VaultPath)
		if errors.Is(err, ErrCredentialExists) {
			return Credential{}, fmt.Errorf("%w: %s", ErrCredentialExists, in.Name)
		}
		return Credential{}, fmt.Errorf("record credential: %w", err)
	}
	// Callers may have cached "no login for this host": a new one must
	// reach them now, not when that answer expires.
	s.changes.Publish(ctx, Change{Org: c.Org, CredentialID: c.ID, Version: c.Version})
	return c, nil
}

func (s *service) GetCredential(ctx context.Context, ref string) (Credential, error) {
	caller, err := callerWith(ctx, identity.RoleViewer)
	if err != nil {
		return Credential{}, err
	}
	return s.credential(ctx, caller.Org, ref)
}

func (s *service) ListCredentials(ctx context.Context, typ CredentialType, p PageRequest) (CredentialPage, error) {
	caller, err := callerWith(ctx, identity.RoleViewer)
	if err != nil {
		return CredentialPage{}, err
	}
	size, err := paging.Size(p.Size)
	if err != nil {
		return CredentialPage{}, err
	}
	fp := paging.Fingerprint(caller.Org, string(typ))
	after, err := paging.Decode(p.Token, fp)
	if err != nil {
		return CredentialPage{}, err
	}
	creds, err := s.store.ListCredentials(ctx, caller.Org, typ, after, size+1)
	if err != nil {
		return CredentialPage{}, fmt.Errorf("list credentials: %w", err)
	}
	page := CredentialPage{Credentials: creds}
	if len(creds) > size {
		page.Credentials = creds[:size]
		page.NextPageToken = paging.Encode(creds[size-1].Name, fp)
	}
	return page, nil
}

func (s *service) UpdateCredential(ctx context.Context, ref string, u CredentialUpdate) (Credential, error) {
	caller, err := callerWith(ctx, identity.RoleAdmin)
	if err != nil {
		return Credential{}, err
	}
	if u.Name == nil && u.Endpoint == nil && u.Secret == nil {
		return Credential{}, validate.Field("update_mask", "nothing to change: give name, endpoint or a secret")
	}
	c, err := s.credential(ctx, caller.Org, ref)
	if err != nil {
		return Credential{}, err
	}
	if c.OwnerClusterID != "" && u.Secret != nil {
		return Credential{}, fmt.Errorf("%w: credential %s belongs to cluster %s; rotate it with the cluster's rotateCredentials", ErrInUse, c.Name, c.OwnerClusterID)
	}
	if u.Endpoint != nil && u.Secret == nil {
		// An existing secret is never re-pointed at another host.
		return Credential{}, validate.Field("endpoint", "changing the endpoint needs a new secret in the same request")
	}
	if u.Name != nil {
		if err := validate.DNSLabel("name", *u.Name); err != nil {
			return Credential{}, err
		}
		c.Name = *u.Name
	}
	var version int64
	if u.Secret != nil {
		endpoint := c.Endpoint
		if u.Endpoint != nil {
			endpoint = *u.Endpoint
		}
		if typ := u.Secret.typ(); typ != "" && typ != c.Type {
			return Credential{}, fmt.Errorf("%w: credential %s is %s, the new secret is %s", ErrWrongCredentialType, c.Name, c.Type, typ)
		}
		typ, data, ep, err := s.encodeSecret(*u.Secret, endpointFor(c.Type, endpoint))
		if err != nil {
			return Credential{}, err
		}
		if err := s.uniqueRegistry(ctx, c.Org, typ, ep, c.ID); err != nil {
			return Credential{}, err
		}
		if version, err = s.putSecret(ctx, c.VaultPath, data, c.Version); err != nil {
			return Credential{}, err
		}
		c.Endpoint = ep
	}
	prev := c.Version
	if version != 0 {
		c.Version = version
	}
	c.Updated = s.stamp()
	if err := s.store.UpdateCredential(ctx, c, prev); err != nil {
		if errors.Is(err, ErrCredentialExists) {
			return Credential{}, fmt.Errorf("%w: %s", ErrCredentialExists, c.Name)
		}
		return Credential{}, err
	}
	if version != 0 {
		s.changes.Publish(ctx, Change{Org: c.Org, CredentialID: c.ID, Version: version})
	}
	return c, nil
}

func (s *service) DeleteCredential(ctx context.Context, ref string) error {
	caller, err := callerWith(ctx, identity.RoleAdmin)
	if err != nil {
		return err
	}
	c, err := s.credential(ctx, caller.Org, ref)
	if err != nil {
		return err
	}
	if c.OwnerClusterID != "" {
		return fmt.Errorf("%w: credential %s belongs to cluster %s and goes with it", ErrInUse, c.Name, c.OwnerClusterID)
	}
	users, err := s.store.ClustersUsing(ctx, c.Org, c.ID, 5)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return fmt.Errorf("%w: credential %s is used by clusters %s", ErrInUse, c.Name, strings.Join(users, ", "))
	}
	if c.Type == TypeHelmRepository {
		repos, err := s.deps.CredentialRepositories(ctx, c.Org, c.ID)
		if err != nil {
			return fmt.Errorf("%w: repositories using credential %s: %v", ErrDependentsUnknown, c.Name, err)
		}
		if len(repos) > 0 {
			return fmt.Errorf("%w: credential %s is used by repositories %s", ErrInUse, c.Name, strings.Join(repos, ", "))
		}
	}
	if err := s.store.DeleteCredential(ctx, c, s.stamp()); err != nil {
		return err
	}
	s.changes.Publish(ctx, Change{Org: c.Org, CredentialID: c.ID})
	s.destroyQueued(ctx, c.VaultPath)
	return nil
}

// credential resolves an id ("cred_...") or a name in org.
func (s *service) credential(ctx context.Context, org, ref string) (Credential, error) {
	if ref == "" {
		return Credential{}, validate.Field("credential", "required")
	}
	c, err := s.store.GetCredential(ctx, org, ref)
	if errors.Is(err, ErrCredentialNotFound) {
		return Credential{}, fmt.Errorf("%w: %s", ErrCredentialNotFound, ref)
	}
	return c, err
}

// uniqueRegistry refuses a second registry credential for one host: which
// one to send would be a guess.
func (s *service) uniqueRegistry(ctx context.Context, org string, typ CredentialType, endpoint, except string) error {
	if typ != TypeRegistry {
		return nil
	}
	other, err := s.store.CredentialForEndpoint(ctx, org, TypeRegistry, endpoint)
	switch {
	case errors.Is(err, ErrCredentialNotFound):
		return nil
	case err != nil:
		return err
	case other.ID != except:
		return fmt.Errorf("%w: credential %s already holds the login for %s", ErrCredentialExists, other.Name, endpoint)
	}
	return nil
}

// encodeSecret validates a secret with its endpoint and returns its type,
// its Vault data and the normalized endpoint.
func (s *service) encodeSecret(sec Secret, endpoint string) (CredentialType, map[string]string, string, error) {
	set := 0
	for _, b := range []bool{sec.Kubeconfig != nil, sec.Registry != nil, sec.Repository != nil} {
		if b {
			set++
		}
	}
	if set != 1 {
		return "", nil, "", validate.Field("secret", "exactly one of kubeconfig, registry or helm_repository is required")
	}
	switch {
	case sec.Kubeconfig != nil:
		if endpoint != "" {
			return "", nil, "", validate.Field("endpoint", "must be empty for kubeconfig credentials: it is the kubeconfig's server")
		}
		conn, err := s.parseConnection(Connection{Kubeconfig: orEmptyBytes(sec.Kubeconfig.Kubeconfig), KubeconfigContext: sec.Kubeconfig.KubeconfigContext}, "secret")
		if err != nil {
			return "", nil, "", err
		}
		data, err := encodeKubeconfig(conn, "credential")
		return TypeKubeconfig, data, conn.Server, err
	case sec.Registry != nil:
		host, err := s.registryHost(endpoint)
		if err != nil {
			return "", nil, "", err
		}
		r := sec.Registry
		if err := validate.First(required("registry.username", r.Username), required("registry.password", r.Password),
			validate.MaxLen("registry.username", r.Username, 256), validate.MaxLen("registry.password", r.Password, 8192)); err != nil {
			return "", nil, "", err
		}
		return TypeRegistry, map[string]string{"type": string(TypeRegistry), "username": r.Username, "password": r.Password}, host, nil
	default:
		ep, err := s.repositoryEndpoint(endpoint)
		if err != nil {
			return "", nil, "", err
		}
		data, err := encodeRepository(*sec.Repository)
		return TypeHelmRepository, data, ep, err
	}
}

// registryHost validates a registry endpoint: a host with an optional port.
func (s *service) registryHost(endpoint string) (string, error) {
	const field = "endpoint"
	if endpoint == "" {
		return "", validate.Field(field, "required: the registry host, e.g. ghcr.io or registry.example.com:5000")
	}
	host := strings.ToLower(endpoint)
	if host == "docker.io" || host == "index.docker.io" {
		host = "registry-1.docker.io"
	}
	u, err := url.Parse("https://" + host)
	if err != nil || u.Host != host || u.Hostname() == "" {
		return "", validate.Field(field, "must be a registry host with an optional port, got %q", endpoint)
	}
	if err := s.checker.CheckServer(u.String()); err != nil {
		return "", validate.Field(field, "%v", err)
	}
	return host, nil
}

// repositoryEndpoint validates a repository URL prefix (https:// or oci://).
func (s *service) repositoryEndpoint(endpoint string) (string, error) {
	const field = "endpoint"
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "oci") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", validate.Field(field, "must be an https:// or oci:// URL prefix without credentials or query, e.g. https://charts.example.com/")
	}
	if err := s.checker.CheckServer("https://" + u.Host); err != nil {
		return "", validate.Field(field, "%v", err)
	}
	return u.String(), nil
}

func encodeRepository(r RepositoryLogin) (map[string]string, error) {
	const f = "helm_repository"
	kinds := 0
	if r.Username != "" || r.Password != "" {
		kinds++
		if err := validate.First(required(f+".basic_auth.username", r.Username), required(f+".basic_auth.password", r.Password)); err != nil {
			return nil, err
		}
	}
	if r.BearerToken != "" {
		kinds++
	}
	if len(r.CertPEM) > 0 || len(r.KeyPEM) > 0 {
		kinds++
		if _, err := tls.X509KeyPair(r.CertPEM, r.KeyPEM); err != nil {
			return nil, validate.Field(f+".client_certificate", "certificate and key do not form a valid pair")
		}
	}
	if kinds != 1 {
		return nil, validate.Field(f, "exactly one of basic_auth, bearer_token or client_certificate is required")
	}
	if len(r.CAPEM) > 0 && !x509.NewCertPool().AppendCertsFromPEM(r.CAPEM) {
		return nil, validate.Field(f+".certificate_authority_pem", "holds no PEM certificate")
	}
	return map[string]string{
		"type": string(TypeHelmRepository), "username": r.Username, "password": r.Password, "bearer_token": r.BearerToken,
		"client_certificate_pem": string(r.CertPEM), "client_key_pem": string(r.KeyPEM), "certificate_authority_pem": string(r.CAPEM),
	}, nil
}

func decodeRepository(d map[string]string) RepositoryLogin {
	return RepositoryLogin{Username: d["username"], Password: d["password"], BearerToken: d["bearer_token"],
		CertPEM: []byte(d["client_certificate_pem"]), KeyPEM: []byte(d["client_key_pem"]), CAPEM: []byte(d["certificate_authority_pem"])}
}

func encodeKubeconfig(conn kube.Connection, name string) (map[string]string, error) {
	cfg, err := conn.Kubeconfig(name)
	if err != nil {
		return nil, fmt.Errorf("render kubeconfig: %w", err)
	}
	return map[string]string{"type": string(TypeKubeconfig), "kubeconfig": string(cfg)}, nil
}

func decodeKubeconfig(d map[string]string) (kube.Connection, error) {
	if d["type"] != string(TypeKubeconfig) {
		return kube.Connection{}, fmt.Errorf("secret is %q, not a kubeconfig", d["type"])
	}
	return kube.ParseKubeconfig([]byte(d["kubeconfig"]), "")
}

// endpointFor is the endpoint a rotation is validated against: kubeconfig
// credentials take theirs from the kubeconfig.
func endpointFor(t CredentialType, endpoint string) string {
	if t == TypeKubeconfig {
		return ""
	}
	return endpoint
}

func required(field, v string) error {
	if v == "" {
		return validate.Field(field, "required")
	}
	return nil
}

func orEmptyBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// hostPort splits a URL's host into host and port, defaulting by scheme.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return strings.ToLower(u.Host)
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), "443")
}
