package clusters

import (
	"context"

	"github.com/go-kit/kit/endpoint"
)

// Endpoints collects one go-kit endpoint per Service method.
type Endpoints struct {
	RegisterCluster, GetCluster, ListClusters, UpdateCluster, RotateClusterCredentials endpoint.Endpoint
	DeleteCluster, GetClusterConfig, CheckCluster                                      endpoint.Endpoint

	CreateCredential, GetCredential, ListCredentials, UpdateCredential, DeleteCredential endpoint.Endpoint

	ClusterAccess, RegistryAuth, RepositoryAuth endpoint.Endpoint
}

type (
	refRequest          struct{ Ref string }
	listClustersRequest struct {
		Selector string
		Page     PageRequest
	}
	updateClusterRequest struct {
		Ref    string
		Update ClusterUpdate
	}
	rotateRequest struct {
		Ref        string
		Connection Connection
	}
	deleteClusterRequest struct {
		Ref   string
		Force bool
	}
	listCredentialsRequest struct {
		Type CredentialType
		Page PageRequest
	}
	updateCredentialRequest struct {
		Ref    string
		Update CredentialUpdate
	}
	registryAuthRequest   struct{ Host string }
	repositoryAuthRequest struct{ Credential, URL string }
	emptyResponse         struct{}
)

// MakeEndpoints returns the endpoints of s.
func MakeEndpoints(s Service) Endpoints {
	return Endpoints{
		RegisterCluster: func(ctx context.Context, r any) (any, error) { return s.RegisterCluster(ctx, r.(NewCluster)) },
		GetCluster:      func(ctx context.Context, r any) (any, error) { return s.GetCluster(ctx, r.(refRequest).Ref) },
		ListClusters: func(ctx context.Context, r any) (any, error) {
			req := r.(listClustersRequest)
			return s.ListClusters(ctx, req.Selector, req.Page)
		},
		UpdateCluster: func(ctx context.Context, r any) (any, error) {
			req := r.(updateClusterRequest)
			return s.UpdateCluster(ctx, req.Ref, req.Update)
		},
		RotateClusterCredentials: func(ctx context.Context, r any) (any, error) {
			req := r.(rotateRequest)
			return s.RotateClusterCredentials(ctx, req.Ref, req.Connection)
		},
		DeleteCluster: func(ctx context.Context, r any) (any, error) {
			req := r.(deleteClusterRequest)
			return emptyResponse{}, s.DeleteCluster(ctx, req.Ref, req.Force)
		},
		GetClusterConfig: func(ctx context.Context, r any) (any, error) { return s.GetClusterConfig(ctx, r.(refRequest).Ref) },
		CheckCluster:     func(ctx context.Context, r any) (any, error) { return s.CheckCluster(ctx, r.(refRequest).Ref) },

		CreateCredential: func(ctx context.Context, r any) (any, error) { return s.CreateCredential(ctx, r.(NewCredential)) },
		GetCredential:    func(ctx context.Context, r any) (any, error) { return s.GetCredential(ctx, r.(refRequest).Ref) },
		ListCredentials: func(ctx context.Context, r any) (any, error) {
			req := r.(listCredentialsRequest)
			return s.ListCredentials(ctx, req.Type, req.Page)
		},
		UpdateCredential: func(ctx context.Context, r any) (any, error) {
			req := r.(updateCredentialRequest)
			return s.UpdateCredential(ctx, req.Ref, req.Update)
		},
		DeleteCredential: func(ctx context.Context, r any) (any, error) {
			return emptyResponse{}, s.DeleteCredential(ctx, r.(refRequest).Ref)
		},

		ClusterAccess: func(ctx context.Context, r any) (any, error) { return s.ClusterAccess(ctx, r.(refRequest).Ref) },
		RegistryAuth: func(ctx context.Context, r any) (any, error) {
			return s.RegistryAuth(ctx, r.(registryAuthRequest).Host)
		},
		RepositoryAuth: func(ctx context.Context, r any) (any, error) {
			req := r.(repositoryAuthRequest)
			return s.RepositoryAuth(ctx, req.Credential, req.URL)
		},
	}
}
