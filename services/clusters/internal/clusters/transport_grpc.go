package clusters

import (
	"context"
	"log/slog"

	grpctransport "github.com/go-kit/kit/transport/grpc"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/slipwayhq/slipway/pkg/validate"
	clustersv1 "github.com/slipwayhq/slipway/proto/slipway/clusters/v1"
	"github.com/slipwayhq/slipway/services/clusters/internal/kube"
)

// GRPCServer serves the clusters, credentials and access APIs.
type GRPCServer struct {
	clustersv1.UnimplementedClustersServiceServer
	clustersv1.UnimplementedCredentialsServiceServer
	clustersv1.UnimplementedAccessServiceServer

	log      *slog.Logger
	changes  *Changes
	handlers map[string]grpctransport.Handler
}

var (
	_ clustersv1.ClustersServiceServer    = (*GRPCServer)(nil)
	_ clustersv1.CredentialsServiceServer = (*GRPCServer)(nil)
	_ clustersv1.AccessServiceServer      = (*GRPCServer)(nil)
)

// NewGRPCServer serves eps; changes feeds WatchCredentialChanges.
func NewGRPCServer(eps Endpoints, changes *Changes, log *slog.Logger) *GRPCServer {
	h := func(e func(context.Context, any) (any, error), dec grpctransport.DecodeRequestFunc, enc grpctransport.EncodeResponseFunc) grpctransport.Handler {
		return grpctransport.NewServer(e, dec, enc)
	}
	return &GRPCServer{log: log, changes: changes, handlers: map[string]grpctransport.Handler{
		"RegisterCluster": h(eps.RegisterCluster, decodeRegisterCluster, encodeCluster(func(c *clustersv1.Cluster) any {
			return &clustersv1.RegisterClusterResponse{Cluster: c}
		})),
		"GetCluster": h(eps.GetCluster, decodeRef[*clustersv1.GetClusterRequest], encodeCluster(func(c *clustersv1.Cluster) any {
			return &clustersv1.GetClusterResponse{Cluster: c}
		})),
		"ListClusters": h(eps.ListClusters, decodeListClusters, encodeListClusters),
		"UpdateCluster": h(eps.UpdateCluster, decodeUpdateCluster, encodeCluster(func(c *clustersv1.Cluster) any {
			return &clustersv1.UpdateClusterResponse{Cluster: c}
		})),
		"RotateClusterCredentials": h(eps.RotateClusterCredentials, decodeRotate, encodeCluster(func(c *clustersv1.Cluster) any {
			return &clustersv1.RotateClusterCredentialsResponse{Cluster: c}
		})),
		"DeleteCluster": h(eps.DeleteCluster, decodeDeleteCluster, encodeEmpty(&clustersv1.DeleteClusterResponse{})),
		"GetClusterConfig": h(eps.GetClusterConfig, decodeRef[*clustersv1.GetClusterConfigRequest], func(_ context.Context, r any) (any, error) {
			return &clustersv1.GetClusterConfigResponse{Kubeconfig: r.([]byte)}, nil
		}),
		"CheckCluster": h(eps.CheckCluster, decodeRef[*clustersv1.CheckClusterRequest], func(_ context.Context, r any) (any, error) {
			return &clustersv1.CheckClusterResponse{Health: healthProto(r.(kube.Health))}, nil
		}),

		"CreateCredential": h(eps.CreateCredential, decodeCreateCredential, encodeCredential(func(c *clustersv1.Credential) any {
			return &clustersv1.CreateCredentialResponse{Credential: c}
		})),
		"GetCredential": h(eps.GetCredential, decodeCredentialRef[*clustersv1.GetCredentialRequest], encodeCredential(func(c *clustersv1.Credential) any {
			return &clustersv1.GetCredentialResponse{Credential: c}
		})),
		"ListCredentials": h(eps.ListCredentials, decodeListCredentials, encodeListCredentials),
		"UpdateCredential": h(eps.UpdateCredential, decodeUpdateCredential, encodeCredential(func(c *clustersv1.Credential) any {
			return &clustersv1.UpdateCredentialResponse{Credential: c}
		})),
		"DeleteCredential": h(eps.DeleteCredential, decodeCredentialRef[*clustersv1.DeleteCredentialRequest], encodeEmpty(&clustersv1.DeleteCredentialResponse{})),

		"GetClusterAccess": h(eps.ClusterAccess, decodeRef[*clustersv1.GetClusterAccessRequest], encodeClusterAccess),
		"GetRegistryAuth": h(eps.RegistryAuth, func(_ context.Context, r any) (any, error) {
			return registryAuthRequest{Host: r.(*clustersv1.GetRegistryAuthRequest).GetHost()}, nil
		}, encodeRegistryAuth),
		"GetRepositoryAuth": h(eps.RepositoryAuth, func(_ context.Context, r any) (any, error) {
			req := r.(*clustersv1.GetRepositoryAuthRequest)
			return repositoryAuthRequest{Credential: req.GetCredential(), URL: req.GetUrl()}, nil
		}, encodeRepositoryAuth),
	}}
}

// Register adds the three services to s.
func (g *GRPCServer) Register(s grpc.ServiceRegistrar) {
	clustersv1.RegisterClustersServiceServer(s, g)
	clustersv1.RegisterCredentialsServiceServer(s, g)
	clustersv1.RegisterAccessServiceServer(s, g)
}

func (g *GRPCServer) RegisterCluster(ctx context.Context, req *clustersv1.RegisterClusterRequest) (*clustersv1.RegisterClusterResponse, error) {
	return serve[*clustersv1.RegisterClusterResponse](ctx, g, "RegisterCluster", req)
}

func (g *GRPCServer) GetCluster(ctx context.Context, req *clustersv1.GetClusterRequest) (*clustersv1.GetClusterResponse, error) {
	return serve[*clustersv1.GetClusterResponse](ctx, g, "GetCluster", req)
}

func (g *GRPCServer) ListClusters(ctx context.Context, req *clustersv1.ListClustersRequest) (*clustersv1.ListClustersResponse, error) {
	return serve[*clustersv1.ListClustersResponse](ctx, g, "ListClusters", req)
}

func (g *GRPCServer) UpdateCluster(ctx context.Context, req *clustersv1.UpdateClusterRequest) (*clustersv1.UpdateClusterResponse, error) {
	return serve[*clustersv1.UpdateClusterResponse](ctx, g, "UpdateCluster", req)
}

func (g *GRPCServer) RotateClusterCredentials(ctx context.Context, req *clustersv1.RotateClusterCredentialsRequest) (*clustersv1.RotateClusterCredentialsResponse, error) {
	return serve[*clustersv1.RotateClusterCredentialsResponse](ctx, g, "RotateClusterCredentials", req)
}

func (g *GRPCServer) DeleteCluster(ctx context.Context, req *clustersv1.DeleteClusterRequest) (*clustersv1.DeleteClusterResponse, error) {
	return serve[*clustersv1.DeleteClusterResponse](ctx, g, "DeleteCluster", req)
}

func (g *GRPCServer) GetClusterConfig(ctx context.Context, req *clustersv1.GetClusterConfigRequest) (*clustersv1.GetClusterConfigResponse, error) {
	return serve[*clustersv1.GetClusterConfigResponse](ctx, g, "GetClusterConfig", req)
}

func (g *GRPCServer) CheckCluster(ctx context.Context, req *clustersv1.CheckClusterRequest) (*clustersv1.CheckClusterResponse, error) {
	return serve[*clustersv1.CheckClusterResponse](ctx, g, "CheckCluster", req)
}

func (g *GRPCServer) CreateCredential(ctx context.Context, req *clustersv1.CreateCredentialRequest) (*clustersv1.CreateCredentialResponse, error) {
	return serve[*clustersv1.CreateCredentialResponse](ctx, g, "CreateCredential", req)
}

func (g *GRPCServer) GetCredential(ctx context.Context, req *clustersv1.GetCredentialRequest) (*clustersv1.GetCredentialResponse, error) {
	return serve[*clustersv1.GetCredentialResponse](ctx, g, "GetCredential", req)
}

func (g *GRPCServer) ListCredentials(ctx context.Context, req *clustersv1.ListCredentialsRequest) (*clustersv1.ListCredentialsResponse, error) {
	return serve[*clustersv1.ListCredentialsResponse](ctx, g, "ListCredentials", req)
}

func (g *GRPCServer) UpdateCredential(ctx context.Context, req *clustersv1.UpdateCredentialRequest) (*clustersv1.UpdateCredentialResponse, error) {
	return serve[*clustersv1.UpdateCredentialResponse](ctx, g, "UpdateCredential", req)
}

func (g *GRPCServer) DeleteCredential(ctx context.Context, req *clustersv1.DeleteCredentialRequest) (*clustersv1.DeleteCredentialResponse, error) {
	return serve[*clustersv1.DeleteCredentialResponse](ctx, g, "DeleteCredential", req)
}

func (g *GRPCServer) GetClusterAccess(ctx context.Context, req *clustersv1.GetClusterAccessRequest) (*clustersv1.GetClusterAccessResponse, error) {
	return serve[*clustersv1.GetClusterAccessResponse](ctx, g, "GetClusterAccess", req)
}

func (g *GRPCServer) GetRegistryAuth(ctx context.Context, req *clustersv1.GetRegistryAuthRequest) (*clustersv1.GetRegistryAuthResponse, error) {
	return serve[*clustersv1.GetRegistryAuthResponse](ctx, g, "GetRegistryAuth", req)
}

func (g *GRPCServer) GetRepositoryAuth(ctx context.Context, req *clustersv1.GetRepositoryAuthRequest) (*clustersv1.GetRepositoryAuthResponse, error) {
	return serve[*clustersv1.GetRepositoryAuthResponse](ctx, g, "GetRepositoryAuth", req)
}

// WatchCredentialChanges streams the change feed: a reset first, then every
// change until the client goes away or falls too far behind (the stream
// then ends with UNAVAILABLE and the client reconnects, dropping its cache).
func (g *GRPCServer) WatchCredentialChanges(_ *clustersv1.WatchCredentialChangesRequest, stream grpc.ServerStreamingServer[clustersv1.WatchCredentialChangesResponse]) error {
	ctx := stream.Context()
	if err := requireServiceCaller(ctx); err != nil {
		return errorTable.ToStatus(err)
	}
	ch, stop := g.changes.Subscribe()
	defer stop()
	if err := stream.Send(&clustersv1.WatchCredentialChangesResponse{Reset_: true}); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case c, ok := <-ch:
			if !ok {
				return errorTable.ToStatus(ErrWatchLagging)
			}
			if err := stream.Send(&clustersv1.WatchCredentialChangesResponse{
				Org: c.Org, CredentialId: c.CredentialID, ClusterId: c.ClusterID, Version: c.Version,
			}); err != nil {
				return err
			}
		}
	}
}

// serve runs one go-kit handler and turns its error into a status; an error
// the caller only sees as "internal error" is logged in full here.
func serve[Resp any](ctx context.Context, g *GRPCServer, name string, req any) (Resp, error) {
	var zero Resp
	_, resp, err := g.handlers[name].ServeGRPC(ctx, req)
	if err != nil {
		if errorTable.IsInternal(err) {
			g.log.ErrorContext(ctx, "request failed", "method", name, "error", err)
		}
		return zero, errorTable.ToStatus(err)
	}
	return resp.(Resp), nil
}

type clusterRef interface{ GetCluster() string }

func decodeRef[T clusterRef](_ context.Context, r any) (any, error) {
	return refRequest{Ref: r.(T).GetCluster()}, nil
}

type credentialRef interface{ GetCredential() string }

func decodeCredentialRef[T credentialRef](_ context.Context, r any) (any, error) {
	return refRequest{Ref: r.(T).GetCredential()}, nil
}

func decodeRegisterCluster(_ context.Context, r any) (any, error) {
	req := r.(*clustersv1.RegisterClusterRequest)
	in := NewCluster{Name: req.GetName(), Labels: req.GetLabels(), AllowUnreachable: req.GetAllowUnreachable()}
	switch c := req.GetConnection().(type) {
	case *clustersv1.RegisterClusterRequest_Kubeconfig:
		in.Connection = kubeconfigConnection(c.Kubeconfig)
	case *clustersv1.RegisterClusterRequest_ServerConnection:
		in.Connection = Connection{Direct: directConnection(c.ServerConnection)}
	case *clustersv1.RegisterClusterRequest_CredentialId:
		if c.CredentialId == "" {
			return nil, validate.Field("credential_id", "required")
		}
		in.Connection = Connection{CredentialRef: c.CredentialId}
	}
	return in, nil
}

func decodeRotate(_ context.Context, r any) (any, error) {
	req := r.(*clustersv1.RotateClusterCredentialsRequest)
	out := rotateRequest{Ref: req.GetCluster()}
	switch c := req.GetConnection().(type) {
	case *clustersv1.RotateClusterCredentialsRequest_Kubeconfig:
		out.Connection = kubeconfigConnection(c.Kubeconfig)
	case *clustersv1.RotateClusterCredentialsRequest_ServerConnection:
		out.Connection = Connection{Direct: directConnection(c.ServerConnection)}
	}
	return out, nil
}

// kubeconfigConnection keeps an empty kubeconfig non-nil, so that "given but
// empty" is reported as such rather than as "missing".
func kubeconfigConnection(k *clustersv1.KubeconfigSecret) Connection {
	return Connection{Kubeconfig: orEmptyBytes(k.GetKubeconfig()), KubeconfigContext: k.GetContext()}
}

func directConnection(d *clustersv1.ServerConnectionSecret) *DirectConnection {
	return &DirectConnection{
		Server: d.GetServer(), CAPEM: d.GetCertificateAuthorityPem(), TLSServerName: d.GetTlsServerName(),
		BearerToken: d.GetBearerToken(),
		CertPEM:     d.GetClientCertificate().GetCertificatePem(), KeyPEM: d.GetClientCertificate().GetPrivateKeyPem(),
	}
}

func decodeListClusters(_ context.Context, r any) (any, error) {
	req := r.(*clustersv1.ListClustersRequest)
	return listClustersRequest{Selector: req.GetLabelSelector(), Page: PageRequest{Size: req.GetPageSize(), Token: req.GetPageToken()}}, nil
}

func decodeUpdateCluster(_ context.Context, r any) (any, error) {
	req := r.(*clustersv1.UpdateClusterRequest)
	var u ClusterUpdate
	for _, p := range req.GetUpdateMask().GetPaths() {
		switch p {
		case "name":
			name := req.GetName()
			u.Name = &name
		case "labels":
			u.Labels, u.SetLabels = req.GetLabels(), true
		default:
			return nil, validate.Field("update_mask", "unknown field %q: name and labels may change", p)
		}
	}
	return updateClusterRequest{Ref: req.GetCluster(), Update: u}, nil
}

func decodeDeleteCluster(_ context.Context, r any) (any, error) {
	req := r.(*clustersv1.DeleteClusterRequest)
	return deleteClusterRequest{Ref: req.GetCluster(), Force: req.GetForce()}, nil
}

func decodeCreateCredential(_ context.Context, r any) (any, error) {
	req := r.(*clustersv1.CreateCredentialRequest)
	return NewCredential{Name: req.GetName(), Endpoint: req.GetEndpoint(), Secret: secretOf(req)}, nil
}

// secretRequest is what create and update share: the oneof of secrets.
type secretRequest interface {
	GetKubeconfig() *clustersv1.KubeconfigSecret
	GetRegistry() *clustersv1.RegistrySecret
	GetHelmRepository() *clustersv1.HelmRepositorySecret
}

func secretOf(r secretRequest) Secret {
	var s Secret
	if k := r.GetKubeconfig(); k != nil {
		c := kubeconfigConnection(k)
		s.Kubeconfig = &c
	}
	if reg := r.GetRegistry(); reg != nil {
		s.Registry = &RegistryLogin{Username: reg.GetUsername(), Password: reg.GetPassword()}
	}
	if h := r.GetHelmRepository(); h != nil {
		s.Repository = &RepositoryLogin{
			Username: h.GetBasicAuth().GetUsername(), Password: h.GetBasicAuth().GetPassword(),
			BearerToken: h.GetBearerToken(),
			CertPEM:     h.GetClientCertificate().GetCertificatePem(), KeyPEM: h.GetClientCertificate().GetPrivateKeyPem(),
			CAPEM: h.GetCertificateAuthorityPem(),
		}
	}
	return s
}

func decodeListCredentials(_ context.Context, r any) (any, error) {
	req := r.(*clustersv1.ListCredentialsRequest)
	typ, err := typeFromProto(req.GetType(), true)
	if err != nil {
		return nil, err
	}
	return listCredentialsRequest{Type: typ, Page: PageRequest{Size: req.GetPageSize(), Token: req.GetPageToken()}}, nil
}

func decodeUpdateCredential(_ context.Context, r any) (any, error) {
	req := r.(*clustersv1.UpdateCredentialRequest)
	var u CredentialUpdate
	for _, p := range req.GetUpdateMask().GetPaths() {
		switch p {
		case "name":
			name := req.GetName()
			u.Name = &name
		case "endpoint":
			ep := req.GetEndpoint()
			u.Endpoint = &ep
		default:
			return nil, validate.Field("update_mask", "unknown field %q: name and endpoint may change (the secret is rotated by giving a new one)", p)
		}
	}
	if req.GetSecret() != nil {
		s := secretOf(req)
		u.Secret = &s
	}
	return updateCredentialRequest{Ref: req.GetCredential(), Update: u}, nil
}

func encodeEmpty(resp any) grpctransport.EncodeResponseFunc {
	return func(context.Context, any) (any, error) { return resp, nil }
}

func encodeCluster(wrap func(*clustersv1.Cluster) any) grpctransport.EncodeResponseFunc {
	return func(_ context.Context, r any) (any, error) { return wrap(clusterProto(r.(Cluster))), nil }
}

func encodeListClusters(_ context.Context, r any) (any, error) {
	page := r.(ClusterPage)
	out := &clustersv1.ListClustersResponse{Clusters: make([]*clustersv1.Cluster, 0, len(page.Clusters)), NextPageToken: page.NextPageToken}
	for _, c := range page.Clusters {
		out.Clusters = append(out.Clusters, clusterProto(c))
	}
	return out, nil
}

func encodeCredential(wrap func(*clustersv1.Credential) any) grpctransport.EncodeResponseFunc {
	return func(_ context.Context, r any) (any, error) { return wrap(credentialProto(r.(Credential))), nil }
}

func encodeListCredentials(_ context.Context, r any) (any, error) {
	page := r.(CredentialPage)
	out := &clustersv1.ListCredentialsResponse{Credentials: make([]*clustersv1.Credential, 0, len(page.Credentials)), NextPageToken: page.NextPageToken}
	for _, c := range page.Credentials {
		out.Credentials = append(out.Credentials, credentialProto(c))
	}
	return out, nil
}

func encodeClusterAccess(_ context.Context, r any) (any, error) {
	a := r.(ClusterAccess)
	c := a.Connection
	return &clustersv1.GetClusterAccessResponse{Access: &clustersv1.ClusterAccess{
		ClusterId: a.ClusterID, Server: c.Server, CertificateAuthorityPem: c.CAPEM, TlsServerName: c.TLSServerName,
		BearerToken: c.BearerToken, ClientCertificatePem: c.ClientCertPEM, ClientKeyPem: c.ClientKeyPEM,
		CredentialId: a.Credential.ID, CredentialVersion: a.Credential.Version,
	}}, nil
}

func encodeRegistryAuth(_ context.Context, r any) (any, error) {
	a := r.(RegistryAuth)
	if !a.Found {
		return &clustersv1.GetRegistryAuthResponse{}, nil
	}
	return &clustersv1.GetRegistryAuthResponse{
		Found: true, Username: a.Login.Username, Password: a.Login.Password,
		CredentialId: a.Credential.ID, CredentialVersion: a.Credential.Version,
	}, nil
}

func encodeRepositoryAuth(_ context.Context, r any) (any, error) {
	a := r.(RepositoryAuth)
	l := a.Login
	return &clustersv1.GetRepositoryAuthResponse{
		Username: l.Username, Password: l.Password, BearerToken: l.BearerToken,
		ClientCertificatePem: l.CertPEM, ClientKeyPem: l.KeyPEM, CertificateAuthorityPem: l.CAPEM,
		CredentialId: a.Credential.ID, CredentialVersion: a.Credential.Version,
	}, nil
}

// clusterProto copies the fields a response may carry, one by one, so that
// a field added to Cluster is never exposed by default.
func clusterProto(c Cluster) *clustersv1.Cluster {
	return &clustersv1.Cluster{
		Id: c.ID, Org: c.Org, Name: c.Name, Labels: c.Labels, Server: c.Server, CredentialId: c.CredentialID,
		Health: healthProto(c.Health), CreateTime: timestamppb.New(c.Created), UpdateTime: timestamppb.New(c.Updated),
		Creator: c.Creator,
	}
}

func healthProto(h kube.Health) *clustersv1.ClusterHealth {
	out := &clustersv1.ClusterHealth{
		Reachability:      clustersv1.ClusterReachability(h.Reachability),
		KubernetesVersion: h.Version, NodeCount: int32(min(h.Nodes, 1<<31-1)), Message: h.Message,
	}
	if !h.CheckedAt.IsZero() {
		out.LastCheckTime = timestamppb.New(h.CheckedAt)
	}
	return out
}

// credentialProto copies the metadata fields of a credential; the Vault
// path is internal and stays out too.
func credentialProto(c Credential) *clustersv1.Credential {
	typ, _ := typeToProto(c.Type)
	return &clustersv1.Credential{
		Id: c.ID, Org: c.Org, Name: c.Name, Type: typ, Endpoint: c.Endpoint, Version: c.Version,
		OwnerClusterId: c.OwnerClusterID, CreateTime: timestamppb.New(c.Created), UpdateTime: timestamppb.New(c.Updated),
		Creator: c.Creator,
	}
}

var credentialTypes = []struct {
	proto  clustersv1.CredentialType
	domain CredentialType
}{
	{clustersv1.CredentialType_CREDENTIAL_TYPE_KUBECONFIG, TypeKubeconfig},
	{clustersv1.CredentialType_CREDENTIAL_TYPE_REGISTRY, TypeRegistry},
	{clustersv1.CredentialType_CREDENTIAL_TYPE_HELM_REPOSITORY, TypeHelmRepository},
}

func typeToProto(t CredentialType) (clustersv1.CredentialType, bool) {
	for _, e := range credentialTypes {
		if e.domain == t {
			return e.proto, true
		}
	}
	return clustersv1.CredentialType_CREDENTIAL_TYPE_UNSPECIFIED, false
}

// typeFromProto maps a filter type; UNSPECIFIED means "any" when allowed.
func typeFromProto(t clustersv1.CredentialType, allowAny bool) (CredentialType, error) {
	if t == clustersv1.CredentialType_CREDENTIAL_TYPE_UNSPECIFIED && allowAny {
		return "", nil
	}
	for _, e := range credentialTypes {
		if e.proto == t {
			return e.domain, nil
		}
	}
	return "", validate.Field("type", "unknown credential type %d", int32(t))
}
