package clusters

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/services/clusters/internal/kube"
)

// Which Slipway services may use each internal access RPC.
var (
	clusterAccessServices    = []string{"releases"}
	registryAuthServices     = []string{"registry", "releases"}
	repositoryAuthServices   = []string{"catalog", "releases"}
	credentialChangeServices = []string{"releases", "registry", "catalog"}
)

// ClusterAccess is a cluster's connection with where it came from.
type ClusterAccess struct {
	ClusterID  string
	Connection kube.Connection
	Credential Credential
}

// RegistryAuth is an org's login for a registry host; Found is false when
// the org has none (the registry is reached anonymously).
type RegistryAuth struct {
	Found      bool
	Login      RegistryLogin
	Credential Credential
}

// RepositoryAuth is a repository login with its credential.
type RepositoryAuth struct {
	Login      RepositoryLogin
	Credential Credential
}

func (s *service) ClusterAccess(ctx context.Context, ref string) (ClusterAccess, error) {
	caller, err := serviceCaller(ctx, clusterAccessServices)
	if err != nil {
		return ClusterAccess{}, err
	}
	c, err := s.cluster(ctx, caller.Org, ref)
	if err != nil {
		return ClusterAccess{}, err
	}
	cred, err := s.store.GetCredential(ctx, c.Org, c.CredentialID)
	if err != nil {
		return ClusterAccess{}, fmt.Errorf("load credential of cluster %s: %w", c.ID, err)
	}
	conn, err := s.readConnection(ctx, cred)
	if err != nil {
		return ClusterAccess{}, err
	}
	return ClusterAccess{ClusterID: c.ID, Connection: conn, Credential: cred}, nil
}

func (s *service) RegistryAuth(ctx context.Context, host string) (RegistryAuth, error) {
	caller, err := serviceCaller(ctx, registryAuthServices)
	if err != nil {
		return RegistryAuth{}, err
	}
	host, err = s.registryHost(host)
	if err != nil {
		return RegistryAuth{}, err
	}
	cred, err := s.store.CredentialForEndpoint(ctx, caller.Org, TypeRegistry, host)
	if errors.Is(err, ErrCredentialNotFound) {
		return RegistryAuth{}, nil
	}
	if err != nil {
		return RegistryAuth{}, err
	}
	data, err := s.getSecret(ctx, cred)
	if err != nil {
		return RegistryAuth{}, err
	}
	return RegistryAuth{Found: true, Login: RegistryLogin{Username: data["username"], Password: data["password"]}, Credential: cred}, nil
}

func (s *service) RepositoryAuth(ctx context.Context, credRef, rawURL string) (RepositoryAuth, error) {
	caller, err := serviceCaller(ctx, repositoryAuthServices)
	if err != nil {
		return RepositoryAuth{}, err
	}
	cred, err := s.credential(ctx, caller.Org, credRef)
	if err != nil {
		return RepositoryAuth{}, err
	}
	if cred.Type != TypeHelmRepository {
		return RepositoryAuth{}, fmt.Errorf("%w: credential %s is %s, not helm-repository", ErrWrongCredentialType, cred.Name, cred.Type)
	}
	if !underPrefix(rawURL, cred.Endpoint) {
		return RepositoryAuth{}, fmt.Errorf("%w: credential %s is only sent under %s", ErrUnauthorized, cred.Name, cred.Endpoint)
	}
	data, err := s.getSecret(ctx, cred)
	if err != nil {
		return RepositoryAuth{}, err
	}
	return RepositoryAuth{Login: decodeRepository(data), Credential: cred}, nil
}

// underPrefix reports whether target lies under prefix: same scheme, same
// host and port, and a path that starts at a segment boundary of prefix's.
func underPrefix(target, prefix string) bool {
	t, err := url.Parse(target)
	if err != nil || t.User != nil {
		return false
	}
	p, err := url.Parse(prefix)
	if err != nil {
		return false
	}
	if t.Scheme != p.Scheme || hostPort(t) != hostPort(p) {
		return false
	}
	pp := strings.TrimSuffix(p.EscapedPath(), "/")
	tp := t.EscapedPath()
	if strings.Contains(tp, "/../") || strings.HasSuffix(tp, "/..") {
		return false
	}
	return pp == "" || tp == pp || strings.HasPrefix(tp, pp+"/")
}

// serviceCaller returns the caller when it is one of the Slipway services
// allowed; users, whatever their role, are refused.
func serviceCaller(ctx context.Context, allowed []string) (identity.Identity, error) {
	id, ok := identity.FromContext(ctx)
	if !ok {
		return identity.Identity{}, fmt.Errorf("%w: no caller identity", ErrUnauthorized)
	}
	if id.Service == "" || !slices.Contains(allowed, id.Service) {
		who := id.Service
		if who == "" {
			who = "a user"
		}
		return identity.Identity{}, fmt.Errorf("%w: internal access is for the %s service(s), not %s", ErrUnauthorized, strings.Join(allowed, " and "), who)
	}
	return id, nil
}

// requireServiceCaller checks the caller of the change feed.
func requireServiceCaller(ctx context.Context) error {
	_, err := serviceCaller(ctx, credentialChangeServices)
	return err
}
