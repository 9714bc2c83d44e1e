package registry

import (
	"context"
	"log/slog"

	grpctransport "github.com/go-kit/kit/transport/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/slipwayhq/slipway/pkg/validate"
	registryv1 "github.com/slipwayhq/slipway/proto/slipway/registry/v1"
)

type grpcServer struct {
	registryv1.UnimplementedRegistryServiceServer
	log         *slog.Logger
	createImage grpctransport.Handler
	getImage    grpctransport.Handler
	listImages  grpctransport.Handler
	deleteImage grpctransport.Handler

	receivePush, getPushRule, updatePushRule grpctransport.Handler
	imageDeployments, digestDeployments      grpctransport.Handler
}

var _ registryv1.RegistryServiceServer = (*grpcServer)(nil)

// NewGRPCServer serves eps as the generated RegistryService.
func NewGRPCServer(eps Endpoints, log *slog.Logger) registryv1.RegistryServiceServer {
	return &grpcServer{
		log:         log,
		createImage: grpctransport.NewServer(eps.CreateImage, decodeCreateImageRequest, encodeImageResponse(wrapCreate)),
		getImage:    grpctransport.NewServer(eps.GetImage, decodeGetImageRequest, encodeImageResponse(wrapGet)),
		listImages:  grpctransport.NewServer(eps.ListImages, decodeListImagesRequest, encodeListImagesResponse),
		deleteImage: grpctransport.NewServer(eps.DeleteImage, decodeDeleteImageRequest, encodeDeleteImageResponse),
		receivePush: grpctransport.NewServer(eps.ReceivePushEvents, decodePushEvents, func(_ context.Context, r any) (any, error) {
			res := r.(PushResult)
			out := &registryv1.ReceivePushEventsResponse{Created: make([]*registryv1.Image, 0, len(res.Created)), Existing: res.Existing, Skipped: res.Skipped}
			for _, img := range res.Created {
				out.Created = append(out.Created, toProto(img))
			}
			return out, nil
		}),
		getPushRule: grpctransport.NewServer(eps.GetPushRule, func(context.Context, any) (any, error) { return nil, nil }, func(_ context.Context, r any) (any, error) {
			return &registryv1.GetPushRuleResponse{Rule: pushRuleProto(r.(PushRule))}, nil
		}),
		updatePushRule: grpctransport.NewServer(eps.UpdatePushRule, func(_ context.Context, r any) (any, error) {
			rule := r.(*registryv1.UpdatePushRuleRequest).GetRule()
			return PushRule{RepositoryPrefix: rule.GetRepositoryPrefix(), Naming: PushNaming(rule.GetNaming())}, nil
		}, func(_ context.Context, r any) (any, error) {
			return &registryv1.UpdatePushRuleResponse{Rule: pushRuleProto(r.(PushRule))}, nil
		}),
		imageDeployments: grpctransport.NewServer(eps.ListImageDeployments, func(_ context.Context, r any) (any, error) {
			req := r.(*registryv1.ListImageDeploymentsRequest)
			return imageDeploymentsRequest{Name: req.GetName(), Version: req.GetVersion(), Page: PageRequest{Size: req.GetPageSize(), Token: req.GetPageToken()}}, nil
		}, func(_ context.Context, r any) (any, error) {
			deps, next := deploymentsProto(r.(DeploymentPage))
			return &registryv1.ListImageDeploymentsResponse{Deployments: deps, NextPageToken: next}, nil
		}),
		digestDeployments: grpctransport.NewServer(eps.ListDigestDeployments, func(_ context.Context, r any) (any, error) {
			req := r.(*registryv1.ListDigestDeploymentsRequest)
			return digestDeploymentsRequest{Digest: req.GetDigest(), Page: PageRequest{Size: req.GetPageSize(), Token: req.GetPageToken()}}, nil
		}, func(_ context.Context, r any) (any, error) {
			deps, next := deploymentsProto(r.(DeploymentPage))
			return &registryv1.ListDigestDeploymentsResponse{Deployments: deps, NextPageToken: next}, nil
		}),
	}
}

func (s *grpcServer) CreateImage(ctx context.Context, req *registryv1.CreateImageRequest) (*registryv1.CreateImageResponse, error) {
	return serve[*registryv1.CreateImageResponse](ctx, s, s.createImage, req)
}

func (s *grpcServer) GetImage(ctx context.Context, req *registryv1.GetImageRequest) (*registryv1.GetImageResponse, error) {
	return serve[*registryv1.GetImageResponse](ctx, s, s.getImage, req)
}

func (s *grpcServer) ListImages(ctx context.Context, req *registryv1.ListImagesRequest) (*registryv1.ListImagesResponse, error) {
	return serve[*registryv1.ListImagesResponse](ctx, s, s.listImages, req)
}

func (s *grpcServer) DeleteImage(ctx context.Context, req *registryv1.DeleteImageRequest) (*registryv1.DeleteImageResponse, error) {
	return serve[*registryv1.DeleteImageResponse](ctx, s, s.deleteImage, req)
}

func (s *grpcServer) ReceivePushEvents(ctx context.Context, req *registryv1.ReceivePushEventsRequest) (*registryv1.ReceivePushEventsResponse, error) {
	return serve[*registryv1.ReceivePushEventsResponse](ctx, s, s.receivePush, req)
}

func (s *grpcServer) GetPushRule(ctx context.Context, req *registryv1.GetPushRuleRequest) (*registryv1.GetPushRuleResponse, error) {
	return serve[*registryv1.GetPushRuleResponse](ctx, s, s.getPushRule, req)
}

func (s *grpcServer) UpdatePushRule(ctx context.Context, req *registryv1.UpdatePushRuleRequest) (*registryv1.UpdatePushRuleResponse, error) {
	return serve[*registryv1.UpdatePushRuleResponse](ctx, s, s.updatePushRule, req)
}

func pushRuleProto(r PushRule) *registryv1.PushRule {
	return &registryv1.PushRule{RepositoryPrefix: r.RepositoryPrefix, Naming: registryv1.PushNaming(r.Naming)}
}

func decodePushEvents(_ context.Context, r any) (any, error) {
	req := r.(*registryv1.ReceivePushEventsRequest)
	events := make([]PushEvent, 0, len(req.GetEvents()))
	for _, e := range req.GetEvents() {
		t := e.GetTarget()
		events = append(events, PushEvent{ID: e.GetId(), Action: e.GetAction(), MediaType: t.GetMediaType(), Digest: t.GetDigest(),
			Repository: t.GetRepository(), URL: t.GetUrl(), Tag: t.GetTag()})
	}
	return events, nil
}

func (s *grpcServer) ListImageDeployments(ctx context.Context, req *registryv1.ListImageDeploymentsRequest) (*registryv1.ListImageDeploymentsResponse, error) {
	return serve[*registryv1.ListImageDeploymentsResponse](ctx, s, s.imageDeployments, req)
}

func (s *grpcServer) ListDigestDeployments(ctx context.Context, req *registryv1.ListDigestDeploymentsRequest) (*registryv1.ListDigestDeploymentsResponse, error) {
	return serve[*registryv1.ListDigestDeploymentsResponse](ctx, s, s.digestDeployments, req)
}

func deploymentsProto(p DeploymentPage) ([]*registryv1.ImageDeployment, string) {
	out := make([]*registryv1.ImageDeployment, 0, len(p.Deployments))
	for _, d := range p.Deployments {
		out = append(out, &registryv1.ImageDeployment{Cluster: d.Cluster, Namespace: d.Namespace, Release: d.Release, Revision: d.Revision, Digest: d.Digest})
	}
	return out, p.NextPageToken
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

func decodeCreateImageRequest(_ context.Context, r any) (any, error) {
	img := r.(*registryv1.CreateImageRequest).GetImage()
	if img == nil {
		return nil, validate.Field("image", "required")
	}
	// Output-only fields (org, digest, create_time, creator) are ignored.
	return createImageRequest{Image: NewImage{Name: img.GetName(), Version: img.GetVersion(), Reference: img.GetReference()}}, nil
}

func decodeGetImageRequest(_ context.Context, r any) (any, error) {
	req := r.(*registryv1.GetImageRequest)
	return imageKey{Name: req.GetName(), Version: req.GetVersion()}, nil
}

func decodeListImagesRequest(_ context.Context, r any) (any, error) {
	req := r.(*registryv1.ListImagesRequest)
	return listImagesRequest{
		Filter: ImageFilter{Name: req.GetName(), Version: req.GetVersion()},
		Page:   PageRequest{Size: req.GetPageSize(), Token: req.GetPageToken()},
	}, nil
}

func decodeDeleteImageRequest(_ context.Context, r any) (any, error) {
	req := r.(*registryv1.DeleteImageRequest)
	return imageKey{Name: req.GetName(), Version: req.GetVersion()}, nil
}

func wrapCreate(img *registryv1.Image) any { return &registryv1.CreateImageResponse{Image: img} }
func wrapGet(img *registryv1.Image) any    { return &registryv1.GetImageResponse{Image: img} }

func encodeImageResponse(wrap func(*registryv1.Image) any) grpctransport.EncodeResponseFunc {
	return func(_ context.Context, r any) (any, error) {
		return wrap(toProto(r.(Image))), nil
	}
}

func encodeListImagesResponse(_ context.Context, r any) (any, error) {
	page := r.(ImagePage)
	out := &registryv1.ListImagesResponse{Images: make([]*registryv1.Image, 0, len(page.Images)), NextPageToken: page.NextPageToken}
	for _, img := range page.Images {
		out.Images = append(out.Images, toProto(img))
	}
	return out, nil
}

func encodeDeleteImageResponse(context.Context, any) (any, error) {
	return &registryv1.DeleteImageResponse{}, nil
}

// toProto copies the fields an API response may carry, one by one, so a
// field added to Image is never exposed by default.
func toProto(img Image) *registryv1.Image {
	return &registryv1.Image{
		Org:        img.Org,
		Name:       img.Name,
		Version:    img.Version,
		Reference:  img.Reference,
		Digest:     img.Digest,
		CreateTime: timestamppb.New(img.Created),
		Creator:    img.Creator,
	}
}
