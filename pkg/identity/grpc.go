package identity

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// orgScoped is implemented by every generated request message that names an
// organization (its `org` field).
type orgScoped interface{ GetOrg() string }

// publicMethod reports whether fullMethod is served without an identity:
// health checks and reflection, which reveal no tenant data.
func publicMethod(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.") ||
		strings.HasPrefix(fullMethod, "/grpc.reflection.")
}

// UnaryServerInterceptor verifies the identity token on every call and puts
// the identity in the context. A request whose `org` field names another
// organization than the identity's answers NotFound, exactly like a missing
// organization, so organizations cannot be enumerated.
func UnaryServerInterceptor(v *Verifier) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if publicMethod(info.FullMethod) {
			return handler(ctx, req)
		}
		ctx, err := authenticate(ctx, v)
		if err != nil {
			return nil, err
		}
		if err := checkOrg(ctx, req); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor is UnaryServerInterceptor for streams; the org
// check applies to every message the client sends.
func StreamServerInterceptor(v *Verifier) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if publicMethod(info.FullMethod) {
			return handler(srv, ss)
		}
		ctx, err := authenticate(ss.Context(), v)
		if err != nil {
			return err
		}
		return handler(srv, &scopedStream{ServerStream: ss, ctx: ctx})
	}
}

type scopedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *scopedStream) Context() context.Context { return s.ctx }

func (s *scopedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return checkOrg(s.ctx, m)
}

func authenticate(ctx context.Context, v *Verifier) (context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(MetadataKey)
	if len(vals) != 1 || vals[0] == "" {
		return nil, status.Error(codes.Unauthenticated, "missing caller identity")
	}
	id, err := v.Verify(vals[0])
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, "invalid caller identity")
	}
	return NewContext(ctx, id, vals[0]), nil
}

func checkOrg(ctx context.Context, req any) error {
	r, ok := req.(orgScoped)
	if !ok {
		return nil
	}
	id, _ := FromContext(ctx)
	switch org := r.GetOrg(); {
	case org == "":
		return status.Error(codes.InvalidArgument, "org: required")
	case org != id.Org:
		return status.Errorf(codes.NotFound, "organization %q not found", org)
	}
	return nil
}

// UnaryClientInterceptor forwards the caller's identity token on outgoing
// calls, so a service calling another acts as the original caller.
func UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(forward(ctx), method, req, reply, cc, opts...)
	}
}

// StreamClientInterceptor is UnaryClientInterceptor for streams.
func StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return streamer(forward(ctx), desc, cc, method, opts...)
	}
}

func forward(ctx context.Context) context.Context {
	tok, ok := TokenFromContext(ctx)
	if !ok {
		return ctx
	}
	if md, ok := metadata.FromOutgoingContext(ctx); ok && len(md.Get(MetadataKey)) > 0 {
		return ctx // set explicitly by the caller (the gateway)
	}
	return metadata.AppendToOutgoingContext(ctx, MetadataKey, tok)
}

// OutgoingContext returns ctx with token attached for the next call; the
// gateway uses it after minting.
func OutgoingContext(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, MetadataKey, token)
}
