package catalog

import (
	"context"
	"log/slog"
	"time"

	"github.com/go-kit/kit/endpoint"
	grpctransport "github.com/go-kit/kit/transport/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/slipwayhq/slipway/pkg/validate"
	catalogv1 "github.com/slipwayhq/slipway/proto/slipway/catalog/v1"
)

type grpcServer struct {
	catalogv1.UnimplementedCatalogServiceServer
	log *slog.Logger

	createRepository, getRepository, listRepositories, updateRepository, deleteRepository, syncRepository grpctransport.Handler
	searchCharts, listCharts, getChart, getChartVersion, getChartArchive                                  grpctransport.Handler
	createApplication, getApplication, listApplications, updateApplication, deleteApplication             grpctransport.Handler
}

var _ catalogv1.CatalogServiceServer = (*grpcServer)(nil)

// handler is a go-kit gRPC handler with typed decode and encode.
func handler[P, D, R any](ep endpoint.Endpoint, dec func(P) (D, error), enc func(R) any) grpctransport.Handler {
	return grpctransport.NewServer(ep,
		func(_ context.Context, r any) (any, error) { return dec(r.(P)) },
		func(_ context.Context, r any) (any, error) { return enc(r.(R)), nil })
}

func page(size int32, token string) PageRequest { return PageRequest{Size: size, Token: token} }

// NewGRPCServer serves eps as the generated CatalogService.
func NewGRPCServer(eps Endpoints, log *slog.Logger) catalogv1.CatalogServiceServer {
	repoResp := func(wrap func(*catalogv1.Repository) any) func(Repository) any {
		return func(r Repository) any { return wrap(repositoryProto(r)) }
	}
	return &grpcServer{
		log: log,
		createRepository: handler(eps.CreateRepository, func(r *catalogv1.CreateRepositoryRequest) (NewRepository, error) {
			in := r.GetRepository()
			if in == nil {
				return NewRepository{}, validate.Field("repository", "required")
			}
			// Output-only fields (org, sync, times, creator) are ignored.
			return NewRepository{Name: in.GetName(), URL: in.GetUrl(), Credential: in.GetCredentialId(), OCICharts: in.GetOciCharts(),
				SyncInterval: duration(in.GetSyncInterval())}, nil
		}, repoResp(func(r *catalogv1.Repository) any { return &catalogv1.CreateRepositoryResponse{Repository: r} })),
		getRepository: handler(eps.GetRepository, func(r *catalogv1.GetRepositoryRequest) (nameRequest, error) {
			return nameRequest{Name: r.GetRepository()}, nil
		}, repoResp(func(r *catalogv1.Repository) any { return &catalogv1.GetRepositoryResponse{Repository: r} })),
		listRepositories: handler(eps.ListRepositories, func(r *catalogv1.ListRepositoriesRequest) (listReposRequest, error) {
			return listReposRequest{CredentialID: r.GetCredentialId(), Page: page(r.GetPageSize(), r.GetPageToken())}, nil
		}, func(p RepositoryPage) any {
			out := &catalogv1.ListRepositoriesResponse{Repositories: make([]*catalogv1.Repository, 0, len(p.Repositories)), NextPageToken: p.NextPageToken}
			for _, r := range p.Repositories {
				out.Repositories = append(out.Repositories, repositoryProto(r))
			}
			return out
		}),
		updateRepository: handler(eps.UpdateRepository, func(r *catalogv1.UpdateRepositoryRequest) (updateRepoRequest, error) {
			return updateRepoRequest{Name: r.GetRepository(), Update: RepositoryUpdate{
				URL: r.GetUrl(), Credential: r.GetCredentialId(), OCICharts: r.GetOciCharts(), SyncInterval: duration(r.GetSyncInterval()),
				Mask: r.GetUpdateMask().GetPaths(),
			}}, nil
		}, repoResp(func(r *catalogv1.Repository) any { return &catalogv1.UpdateRepositoryResponse{Repository: r} })),
		deleteRepository: handler(eps.DeleteRepository, func(r *catalogv1.DeleteRepositoryRequest) (nameRequest, error) {
			return nameRequest{Name: r.GetRepository()}, nil
		}, func(empty) any { return &catalogv1.DeleteRepositoryResponse{} }),
		syncRepository: handler(eps.SyncRepository, func(r *catalogv1.SyncRepositoryRequest) (nameRequest, error) {
			return nameRequest{Name: r.GetRepository()}, nil
		}, repoResp(func(r *catalogv1.Repository) any { return &catalogv1.SyncRepositoryResponse{Repository: r} })),

		searchCharts: handler(eps.SearchCharts, func(r *catalogv1.SearchChartsRequest) (searchRequest, error) {
			return searchRequest{Query: ChartQuery{Q: r.GetQ(), Repository: r.GetRepository(), IncludeDeprecated: r.GetIncludeDeprecated()},
				Page: page(r.GetPageSize(), r.GetPageToken())}, nil
		}, func(p ChartPage) any {
			return &catalogv1.SearchChartsResponse{Charts: chartsProto(p.Charts), NextPageToken: p.NextPageToken}
		}),
		listCharts: handler(eps.ListCharts, func(r *catalogv1.ListChartsRequest) (listChartsRequest, error) {
			return listChartsRequest{Repository: r.GetRepository(), Page: page(r.GetPageSize(), r.GetPageToken())}, nil
		}, func(p ChartPage) any {
			return &catalogv1.ListChartsResponse{Charts: chartsProto(p.Charts), NextPageToken: p.NextPageToken}
		}),
		getChart: handler(eps.GetChart, func(r *catalogv1.GetChartRequest) (getChartRequest, error) {
			return getChartRequest{Repository: r.GetRepository(), Chart: r.GetChart(), Page: page(r.GetPageSize(), r.GetPageToken())}, nil
		}, func(d ChartDetail) any {
			out := &catalogv1.GetChartResponse{Chart: chartProto(d.Chart), NextPageToken: d.NextPageToken}
			for _, v := range d.Versions {
				out.Versions = append(out.Versions, versionProto(v))
			}
			return out
		}),
		getChartVersion: handler(eps.GetChartVersion, func(r *catalogv1.GetChartVersionRequest) (chartVersionRequest, error) {
			return chartVersionRequest{Repository: r.GetRepository(), Chart: r.GetChart(), Version: r.GetVersion()}, nil
		}, func(f ChartFiles) any {
			return &catalogv1.GetChartVersionResponse{ChartVersion: versionProto(f.Version), ValuesYaml: f.ValuesYAML,
				ValuesSchemaJson: f.SchemaJSON, Readme: f.Readme, TruncatedFields: f.Truncated}
		}),

		getChartArchive: handler(eps.GetChartArchive, func(r *catalogv1.GetChartArchiveRequest) (ChartRef, error) {
			c := r.GetChart()
			switch {
			case c != nil && r.GetOciReference() != "":
				return ChartRef{}, validate.Field("oci_reference", "excludes chart: name the chart one way")
			case r.GetOciReference() != "":
				return ChartRef{OCI: r.GetOciReference()}, nil
			case c == nil:
				return ChartRef{}, validate.Field("chart", "required")
			}
			return ChartRef{Repository: c.GetRepository(), Chart: c.GetChart(), Version: c.GetVersion()}, nil
		}, func(a chartArchive) any {
			return &catalogv1.GetChartArchiveResponse{ChartVersion: versionProto(a.Version), Archive: a.Data}
		}),
		createApplication: handler(eps.CreateApplication, func(r *catalogv1.CreateApplicationRequest) (Application, error) {
			return applicationFromProto(r.GetApplication())
		}, func(a Application) any { return &catalogv1.CreateApplicationResponse{Application: applicationProto(a)} }),
		getApplication: handler(eps.GetApplication, func(r *catalogv1.GetApplicationRequest) (nameRequest, error) {
			return nameRequest{Name: r.GetApplication()}, nil
		}, func(a Application) any { return &catalogv1.GetApplicationResponse{Application: applicationProto(a)} }),
		listApplications: handler(eps.ListApplications, func(r *catalogv1.ListApplicationsRequest) (listAppsRequest, error) {
			return listAppsRequest{Filter: ApplicationFilter{Name: r.GetName(), Chart: r.GetChart(), Image: r.GetImage(), Cluster: r.GetCluster()},
				Page: page(r.GetPageSize(), r.GetPageToken())}, nil
		}, func(p ApplicationPage) any {
			out := &catalogv1.ListApplicationsResponse{Applications: make([]*catalogv1.Application, 0, len(p.Applications)), NextPageToken: p.NextPageToken}
			for _, a := range p.Applications {
				out.Applications = append(out.Applications, applicationProto(a))
			}
			return out
		}),
		updateApplication: handler(eps.UpdateApplication, func(r *catalogv1.UpdateApplicationRequest) (Application, error) {
			return applicationFromProto(r.GetApplication())
		}, func(a Application) any { return &catalogv1.UpdateApplicationResponse{Application: applicationProto(a)} }),
		deleteApplication: handler(eps.DeleteApplication, func(r *catalogv1.DeleteApplicationRequest) (nameRequest, error) {
			return nameRequest{Name: r.GetApplication()}, nil
		}, func(empty) any { return &catalogv1.DeleteApplicationResponse{} }),
	}
}

func (s *grpcServer) CreateRepository(ctx context.Context, req *catalogv1.CreateRepositoryRequest) (*catalogv1.CreateRepositoryResponse, error) {
	return serve[*catalogv1.CreateRepositoryResponse](ctx, s, s.createRepository, req)
}

func (s *grpcServer) GetRepository(ctx context.Context, req *catalogv1.GetRepositoryRequest) (*catalogv1.GetRepositoryResponse, error) {
	return serve[*catalogv1.GetRepositoryResponse](ctx, s, s.getRepository, req)
}

func (s *grpcServer) ListRepositories(ctx context.Context, req *catalogv1.ListRepositoriesRequest) (*catalogv1.ListRepositoriesResponse, error) {
	return serve[*catalogv1.ListRepositoriesResponse](ctx, s, s.listRepositories, req)
}

func (s *grpcServer) UpdateRepository(ctx context.Context, req *catalogv1.UpdateRepositoryRequest) (*catalogv1.UpdateRepositoryResponse, error) {
	return serve[*catalogv1.UpdateRepositoryResponse](ctx, s, s.updateRepository, req)
}

func (s *grpcServer) DeleteRepository(ctx context.Context, req *catalogv1.DeleteRepositoryRequest) (*catalogv1.DeleteRepositoryResponse, error) {
	return serve[*catalogv1.DeleteRepositoryResponse](ctx, s, s.deleteRepository, req)
}

func (s *grpcServer) SyncRepository(ctx context.Context, req *catalogv1.SyncRepositoryRequest) (*catalogv1.SyncRepositoryResponse, error) {
	return serve[*catalogv1.SyncRepositoryResponse](ctx, s, s.syncRepository, req)
}

func (s *grpcServer) SearchCharts(ctx context.Context, req *catalogv1.SearchChartsRequest) (*catalogv1.SearchChartsResponse, error) {
	return serve[*catalogv1.SearchChartsResponse](ctx, s, s.searchCharts, req)
}

func (s *grpcServer) ListCharts(ctx context.Context, req *catalogv1.ListChartsRequest) (*catalogv1.ListChartsResponse, error) {
	return serve[*catalogv1.ListChartsResponse](ctx, s, s.listCharts, req)
}

func (s *grpcServer) GetChart(ctx context.Context, req *catalogv1.GetChartRequest) (*catalogv1.GetChartResponse, error) {
	return serve[*catalogv1.GetChartResponse](ctx, s, s.getChart, req)
}

func (s *grpcServer) GetChartVersion(ctx context.Context, req *catalogv1.GetChartVersionRequest) (*catalogv1.GetChartVersionResponse, error) {
	return serve[*catalogv1.GetChartVersionResponse](ctx, s, s.getChartVersion, req)
}

func (s *grpcServer) GetChartArchive(ctx context.Context, req *catalogv1.GetChartArchiveRequest) (*catalogv1.GetChartArchiveResponse, error) {
	return serve[*catalogv1.GetChartArchiveResponse](ctx, s, s.getChartArchive, req)
}

func (s *grpcServer) CreateApplication(ctx context.Context, req *catalogv1.CreateApplicationRequest) (*catalogv1.CreateApplicationResponse, error) {
	return serve[*catalogv1.CreateApplicationResponse](ctx, s, s.createApplication, req)
}

func (s *grpcServer) GetApplication(ctx context.Context, req *catalogv1.GetApplicationRequest) (*catalogv1.GetApplicationResponse, error) {
	return serve[*catalogv1.GetApplicationResponse](ctx, s, s.getApplication, req)
}

func (s *grpcServer) ListApplications(ctx context.Context, req *catalogv1.ListApplicationsRequest) (*catalogv1.ListApplicationsResponse, error) {
	return serve[*catalogv1.ListApplicationsResponse](ctx, s, s.listApplications, req)
}

func (s *grpcServer) UpdateApplication(ctx context.Context, req *catalogv1.UpdateApplicationRequest) (*catalogv1.UpdateApplicationResponse, error) {
	return serve[*catalogv1.UpdateApplicationResponse](ctx, s, s.updateApplication, req)
}

func (s *grpcServer) DeleteApplication(ctx context.Context, req *catalogv1.DeleteApplicationRequest) (*catalogv1.DeleteApplicationResponse, error) {
	return serve[*catalogv1.DeleteApplicationResponse](ctx, s, s.deleteApplication, req)
}

// serve runs one go-kit handler and turns its error into a status; an error
// the caller only sees as "internal error" is logged in full here.
func serve[Resp any](ctx context.Context, s *grpcServer, h grpctransport.Handler, req any) (Resp, error) {
	var zero Resp
	_, resp, err := h.ServeGRPC(ctx, req)
	if err != nil {
		if errorTable.IsInternal(err) {
			s.log.ErrorContext(ctx, "request failed", "error", err)
		}
		return zero, errorTable.ToStatus(err)
	}
	return resp.(Resp), nil
}

func duration(d *durationpb.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.AsDuration()
}

func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// The *Proto functions copy the fields an API response may carry, one by
// one, so a field added to a domain type is never exposed by default.

func repositoryProto(r Repository) *catalogv1.Repository {
	return &catalogv1.Repository{
		Org: r.Org, Name: r.Name, Url: r.URL, CredentialId: r.CredentialID, OciCharts: r.OCICharts,
		SyncInterval: durationpb.New(r.SyncInterval),
		Sync: &catalogv1.RepositorySync{
			State:           catalogv1.RepositorySyncState(r.Sync.State),
			LastSyncTime:    timestamp(r.Sync.LastSync),
			LastSuccessTime: timestamp(r.Sync.LastSuccess),
			ChartCount:      int32(r.Sync.ChartCount),
			LastError:       r.Sync.LastError,
			SkippedVersions: int32(r.Sync.SkippedVersions),
		},
		CreateTime: timestamp(r.Created), UpdateTime: timestamp(r.Updated), Creator: r.Creator,
	}
}

func chartsProto(cs []Chart) []*catalogv1.Chart {
	out := make([]*catalogv1.Chart, 0, len(cs))
	for _, c := range cs {
		out = append(out, chartProto(c))
	}
	return out
}

func chartProto(c Chart) *catalogv1.Chart {
	return &catalogv1.Chart{
		Repository: c.Repository, Name: c.Name, LatestVersion: c.LatestVersion, AppVersion: c.AppVersion, Description: c.Description,
		Keywords: c.Keywords, HomeUrl: c.Home, IconUrl: c.Icon, Deprecated: c.Deprecated, VersionCount: int32(c.VersionCount),
		UpdateTime: timestamp(c.Updated),
	}
}

func versionProto(v ChartVersion) *catalogv1.ChartVersion {
	out := &catalogv1.ChartVersion{
		Repository: v.Repository, Chart: v.Chart, Version: v.Version.Version, AppVersion: v.AppVersion, Description: v.Description,
		ApiVersion: v.APIVersion, Type: v.Type, KubeVersion: v.KubeVersion, Keywords: v.Keywords, HomeUrl: v.Home, IconUrl: v.Icon,
		Sources: v.Sources, Deprecated: v.Deprecated, Digest: v.Digest, CreateTime: timestamp(v.Created),
	}
	for _, d := range v.Dependencies {
		out.Dependencies = append(out.Dependencies, &catalogv1.ChartDependency{Name: d.Name, Version: d.Version, Repository: d.Repository, Condition: d.Condition, Alias: d.Alias})
	}
	for _, m := range v.Maintainers {
		out.Maintainers = append(out.Maintainers, &catalogv1.ChartMaintainer{Name: m.Name, Email: m.Email, Url: m.URL})
	}
	return out
}

func applicationFromProto(a *catalogv1.Application) (Application, error) {
	if a == nil {
		return Application{}, validate.Field("application", "required")
	}
	if a.GetChart() == nil {
		return Application{}, validate.Field("chart", "required")
	}
	// Output-only fields (org, times, creator, target status) are ignored;
	// etag is the caller's precondition.
	app := Application{
		Name:           a.GetName(),
		Chart:          ChartRef{Repository: a.GetChart().GetRepository(), Chart: a.GetChart().GetChart(), Version: a.GetChart().GetVersion()},
		Image:          a.GetImage(),
		ImageValuesKey: a.GetImageValuesKey(),
		Values:         structMap(a.GetValues()),
		Etag:           a.GetEtag(),
	}
	if p := a.GetProbes(); p != nil {
		app.Probes = Probes{HealthPath: p.GetHealthPath(), HealthPort: p.GetHealthPort(), MetricsPort: p.GetMetricsPort(), MetricsPath: p.GetMetricsPath()}
	}
	for _, t := range a.GetTargets() {
		app.Targets = append(app.Targets, Target{Name: t.GetName(), Cluster: t.GetCluster(), Namespace: t.GetNamespace(), Values: structMap(t.GetValues())})
	}
	return app, nil
}

func structMap(s *structpb.Struct) map[string]any {
	if s == nil {
		return nil
	}
	return s.AsMap()
}

func mapStruct(m map[string]any) *structpb.Struct {
	if m == nil {
		return nil
	}
	s, err := structpb.NewStruct(m)
	if err != nil {
		// Stored values came from a Struct: they always convert back.
		return nil
	}
	return s
}

func applicationProto(a Application) *catalogv1.Application {
	out := &catalogv1.Application{
		Org: a.Org, Name: a.Name,
		Chart: &catalogv1.ChartReference{Repository: a.Chart.Repository, Chart: a.Chart.Chart, Version: a.Chart.Version},
		Image: a.Image, ImageValuesKey: a.ImageValuesKey, Values: mapStruct(a.Values),
		Etag: a.Etag, CreateTime: timestamp(a.Created), UpdateTime: timestamp(a.Updated), Creator: a.Creator,
	}
	if p := a.Probes; p != (Probes{}) {
		out.Probes = &catalogv1.ApplicationProbes{HealthPath: p.HealthPath, HealthPort: p.HealthPort, MetricsPort: p.MetricsPort, MetricsPath: p.MetricsPath}
	}
	for _, t := range a.Targets {
		pt := &catalogv1.ApplicationTarget{Name: t.Name, Cluster: t.Cluster, Namespace: t.Namespace, Values: mapStruct(t.Values)}
		if t.Status != (TargetStatus{}) {
			pt.Status = &catalogv1.ApplicationTargetStatus{
				ChartVersion: t.Status.ChartVersion, DeployedChartVersion: t.Status.DeployedChartVersion,
				UpgradeAvailable: t.Status.UpgradeAvailable, LatestChartVersion: t.Status.LatestChartVersion, Error: t.Status.Error,
			}
		}
		out.Targets = append(out.Targets, pt)
	}
	return out
}
