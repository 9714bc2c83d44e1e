package registry

import (
	"context"

	"github.com/go-kit/kit/endpoint"
)

// Endpoints collects one go-kit endpoint per Service method.
type Endpoints struct {
	CreateImage endpoint.Endpoint
	GetImage    endpoint.Endpoint
	ListImages  endpoint.Endpoint
	DeleteImage endpoint.Endpoint

	ReceivePushEvents, GetPushRule, UpdatePushRule endpoint.Endpoint
	ListImageDeployments, ListDigestDeployments    endpoint.Endpoint
}

// MakeEndpoints returns the endpoints of s.
func MakeEndpoints(s Service) Endpoints {
	return Endpoints{
		CreateImage: makeCreateImageEndpoint(s),
		GetImage:    makeGetImageEndpoint(s),
		ListImages:  makeListImagesEndpoint(s),
		DeleteImage: makeDeleteImageEndpoint(s),
		ReceivePushEvents: func(ctx context.Context, request any) (any, error) {
			return s.ReceivePushEvents(ctx, request.([]PushEvent))
		},
		GetPushRule:    func(ctx context.Context, _ any) (any, error) { return s.GetPushRule(ctx) },
		UpdatePushRule: func(ctx context.Context, request any) (any, error) { return s.UpdatePushRule(ctx, request.(PushRule)) },
		ListImageDeployments: func(ctx context.Context, request any) (any, error) {
			req := request.(imageDeploymentsRequest)
			return s.ListImageDeployments(ctx, req.Name, req.Version, req.Page)
		},
		ListDigestDeployments: func(ctx context.Context, request any) (any, error) {
			req := request.(digestDeploymentsRequest)
			return s.ListDigestDeployments(ctx, req.Digest, req.Page)
		},
	}
}

type imageDeploymentsRequest struct {
	Name, Version string
	Page          PageRequest
}

type digestDeploymentsRequest struct {
	Digest string
	Page   PageRequest
}

type createImageRequest struct{ Image NewImage }

type imageKey struct{ Name, Version string }

type listImagesRequest struct {
	Filter ImageFilter
	Page   PageRequest
}

type deleteImageResponse struct{}

func makeCreateImageEndpoint(s Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(createImageRequest)
		return s.CreateImage(ctx, req.Image)
	}
}

func makeGetImageEndpoint(s Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(imageKey)
		return s.GetImage(ctx, req.Name, req.Version)
	}
}

func makeListImagesEndpoint(s Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(listImagesRequest)
		return s.ListImages(ctx, req.Filter, req.Page)
	}
}

func makeDeleteImageEndpoint(s Service) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req := request.(imageKey)
		return deleteImageResponse{}, s.DeleteImage(ctx, req.Name, req.Version)
	}
}
