package catalog

import (
	"context"

	"github.com/go-kit/kit/endpoint"
)

// Endpoints collects one go-kit endpoint per Service method.
type Endpoints struct {
	CreateRepository, GetRepository, ListRepositories, UpdateRepository, DeleteRepository, SyncRepository endpoint.Endpoint
	SearchCharts, ListCharts, GetChart, GetChartVersion, GetChartArchive                                  endpoint.Endpoint
	CreateApplication, GetApplication, ListApplications, UpdateApplication, DeleteApplication             endpoint.Endpoint
}

// Request types of the endpoints that take more than one value.
type (
	nameRequest      struct{ Name string }
	listReposRequest struct {
		CredentialID string
		Page         PageRequest
	}
	updateRepoRequest struct {
		Name   string
		Update RepositoryUpdate
	}
	searchRequest struct {
		Query ChartQuery
		Page  PageRequest
	}
	listChartsRequest struct {
		Repository string
		Page       PageRequest
	}
	getChartRequest struct {
		Repository, Chart string
		Page              PageRequest
	}
	chartVersionRequest struct{ Repository, Chart, Version string }
	listAppsRequest     struct {
		Filter ApplicationFilter
		Page   PageRequest
	}
	chartArchive struct {
		Version ChartVersion
		Data    []byte
	}
	// empty is the response of deletes.
	empty struct{}
)

// typed adapts a typed method to an endpoint.
func typed[Req, Resp any](f func(context.Context, Req) (Resp, error)) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) { return f(ctx, request.(Req)) }
}

// MakeEndpoints returns the endpoints of s.
func MakeEndpoints(s Service) Endpoints {
	return Endpoints{
		CreateRepository: typed(s.CreateRepository),
		GetRepository:    typed(func(ctx context.Context, r nameRequest) (Repository, error) { return s.GetRepository(ctx, r.Name) }),
		ListRepositories: typed(func(ctx context.Context, r listReposRequest) (RepositoryPage, error) {
			return s.ListRepositories(ctx, r.CredentialID, r.Page)
		}),
		UpdateRepository: typed(func(ctx context.Context, r updateRepoRequest) (Repository, error) {
			return s.UpdateRepository(ctx, r.Name, r.Update)
		}),
		DeleteRepository: typed(func(ctx context.Context, r nameRequest) (empty, error) {
			return empty{}, s.DeleteRepository(ctx, r.Name)
		}),
		SyncRepository: typed(func(ctx context.Context, r nameRequest) (Repository, error) { return s.SyncRepository(ctx, r.Name) }),
		SearchCharts: typed(func(ctx context.Context, r searchRequest) (ChartPage, error) {
			return s.SearchCharts(ctx, r.Query, r.Page)
		}),
		ListCharts: typed(func(ctx context.Context, r listChartsRequest) (ChartPage, error) {
			return s.ListCharts(ctx, r.Repository, r.Page)
		}),
		GetChart: typed(func(ctx context.Context, r getChartRequest) (ChartDetail, error) {
			return s.GetChart(ctx, r.Repository, r.Chart, r.Page)
		}),
		GetChartVersion: typed(func(ctx context.Context, r chartVersionRequest) (ChartFiles, error) {
			return s.GetChartVersion(ctx, r.Repository, r.Chart, r.Version)
		}),
		GetChartArchive: typed(func(ctx context.Context, ref ChartRef) (chartArchive, error) {
			v, data, err := s.GetChartArchive(ctx, ref)
			return chartArchive{Version: v, Data: data}, err
		}),
		CreateApplication: typed(s.CreateApplication),
		GetApplication:    typed(func(ctx context.Context, r nameRequest) (Application, error) { return s.GetApplication(ctx, r.Name) }),
		ListApplications: typed(func(ctx context.Context, r listAppsRequest) (ApplicationPage, error) {
			return s.ListApplications(ctx, r.Filter, r.Page)
		}),
		UpdateApplication: typed(s.UpdateApplication),
		DeleteApplication: typed(func(ctx context.Context, r nameRequest) (empty, error) {
			return empty{}, s.DeleteApplication(ctx, r.Name)
		}),
	}
}
