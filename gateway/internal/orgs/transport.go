package orgs

import (
	"context"
	"log/slog"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/slipwayhq/slipway/gateway/internal/authn"
	"github.com/slipwayhq/slipway/gateway/internal/store"
	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/requestid"
	gatewayv1 "github.com/slipwayhq/slipway/proto/slipway/gateway/v1"
)

// Server adapts Service to the generated servers, served in process by the
// edge's REST router.
type Server struct {
	gatewayv1.UnimplementedOrganizationsServiceServer
	gatewayv1.UnimplementedMembersServiceServer
	gatewayv1.UnimplementedTokensServiceServer
	gatewayv1.UnimplementedAuditServiceServer
	svc *Service
	log *slog.Logger
}

var (
	_ gatewayv1.OrganizationsServiceServer = (*Server)(nil)
	_ gatewayv1.MembersServiceServer       = (*Server)(nil)
	_ gatewayv1.TokensServiceServer        = (*Server)(nil)
	_ gatewayv1.AuditServiceServer         = (*Server)(nil)
)

// NewServer returns the adapter.
func NewServer(svc *Service, log *slog.Logger) *Server { return &Server{svc: svc, log: log} }

// Register adds the four services' routes to the edge's router.
func (s *Server) Register(ctx context.Context, mux *runtime.ServeMux) error {
	for _, reg := range []func() error{
		func() error { return gatewayv1.RegisterOrganizationsServiceHandlerServer(ctx, mux, s) },
		func() error { return gatewayv1.RegisterMembersServiceHandlerServer(ctx, mux, s) },
		func() error { return gatewayv1.RegisterTokensServiceHandlerServer(ctx, mux, s) },
		func() error { return gatewayv1.RegisterAuditServiceHandlerServer(ctx, mux, s) },
	} {
		if err := reg(); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) fail(ctx context.Context, err error) error {
	if errorTable.IsInternal(err) {
		s.log.ErrorContext(ctx, "request failed", "error", err)
	}
	return errorTable.ToStatus(err)
}

// scoped returns the verified identity of an org-scoped call. The edge sets
// it; its absence is a wiring bug, answered as internal.
func scoped(ctx context.Context) (identity.Identity, bool) {
	return identity.FromContext(ctx)
}

func (s *Server) CreateOrganization(ctx context.Context, req *gatewayv1.CreateOrganizationRequest) (*gatewayv1.CreateOrganizationResponse, error) {
	org, err := s.svc.CreateOrg(ctx, req.GetOrganization().GetName(), req.GetOrganization().GetDisplayName())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	p, _ := authn.FromContext(ctx)
	if err := s.svc.RecordCreated(ctx, org, p.Subject(), p.TokenID, requestid.FromContext(ctx)); err != nil {
		s.log.ErrorContext(ctx, "append audit event failed", "error", err)
	}
	return &gatewayv1.CreateOrganizationResponse{Organization: orgProto(org)}, nil
}

func (s *Server) ListOrganizations(ctx context.Context, req *gatewayv1.ListOrganizationsRequest) (*gatewayv1.ListOrganizationsResponse, error) {
	orgs, next, err := s.svc.ListOrgs(ctx, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &gatewayv1.ListOrganizationsResponse{NextPageToken: next}
	for _, o := range orgs {
		out.Organizations = append(out.Organizations, orgProto(o))
	}
	return out, nil
}

func (s *Server) GetOrganization(ctx context.Context, _ *gatewayv1.GetOrganizationRequest) (*gatewayv1.GetOrganizationResponse, error) {
	id, ok := scoped(ctx)
	if !ok {
		return nil, s.fail(ctx, errNoIdentity)
	}
	org, err := s.svc.GetOrg(ctx, id)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &gatewayv1.GetOrganizationResponse{Organization: orgProto(org)}, nil
}

func (s *Server) UpdateOrganization(ctx context.Context, req *gatewayv1.UpdateOrganizationRequest) (*gatewayv1.UpdateOrganizationResponse, error) {
	id, ok := scoped(ctx)
	if !ok {
		return nil, s.fail(ctx, errNoIdentity)
	}
	org, err := s.svc.RenameOrg(ctx, id, req.GetDisplayName())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &gatewayv1.UpdateOrganizationResponse{Organization: orgProto(org)}, nil
}

func (s *Server) DeleteOrganization(ctx context.Context, _ *gatewayv1.DeleteOrganizationRequest) (*gatewayv1.DeleteOrganizationResponse, error) {
	id, ok := scoped(ctx)
	if !ok {
		return nil, s.fail(ctx, errNoIdentity)
	}
	if err := s.svc.DeleteOrg(ctx, id); err != nil {
		return nil, s.fail(ctx, err)
	}
	return &gatewayv1.DeleteOrganizationResponse{}, nil
}

func (s *Server) AddMember(ctx context.Context, req *gatewayv1.AddMemberRequest) (*gatewayv1.AddMemberResponse, error) {
	id, ok := scoped(ctx)
	if !ok {
		return nil, s.fail(ctx, errNoIdentity)
	}
	m, err := s.svc.AddMember(ctx, id, req.GetEmail(), req.GetSubject(), roleFromProto(req.GetRole()))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &gatewayv1.AddMemberResponse{Member: memberProto(m)}, nil
}

func (s *Server) ListMembers(ctx context.Context, req *gatewayv1.ListMembersRequest) (*gatewayv1.ListMembersResponse, error) {
	id, ok := scoped(ctx)
	if !ok {
		return nil, s.fail(ctx, errNoIdentity)
	}
	ms, next, err := s.svc.ListMembers(ctx, id, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &gatewayv1.ListMembersResponse{NextPageToken: next}
	for _, m := range ms {
		out.Members = append(out.Members, memberProto(m))
	}
	return out, nil
}

func (s *Server) UpdateMember(ctx context.Context, req *gatewayv1.UpdateMemberRequest) (*gatewayv1.UpdateMemberResponse, error) {
	id, ok := scoped(ctx)
	if !ok {
		return nil, s.fail(ctx, errNoIdentity)
	}
	m, err := s.svc.SetMemberRole(ctx, id, req.GetMember(), roleFromProto(req.GetRole()))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &gatewayv1.UpdateMemberResponse{Member: memberProto(m)}, nil
}

func (s *Server) RemoveMember(ctx context.Context, req *gatewayv1.RemoveMemberRequest) (*gatewayv1.RemoveMemberResponse, error) {
	id, ok := scoped(ctx)
	if !ok {
		return nil, s.fail(ctx, errNoIdentity)
	}
	if err := s.svc.RemoveMember(ctx, id, req.GetMember()); err != nil {
		return nil, s.fail(ctx, err)
	}
	return &gatewayv1.RemoveMemberResponse{}, nil
}

func (s *Server) CreateToken(ctx context.Context, req *gatewayv1.CreateTokenRequest) (*gatewayv1.CreateTokenResponse, error) {
	id, ok := scoped(ctx)
	if !ok {
		return nil, s.fail(ctx, errNoIdentity)
	}
	var expires time.Time
	if req.GetExpireTime() != nil {
		expires = req.GetExpireTime().AsTime()
	}
	t, secret, err := s.svc.CreateToken(ctx, id, req.GetName(), roleFromProto(req.GetRole()), expires)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &gatewayv1.CreateTokenResponse{Token: tokenProto(t), Secret: secret}, nil
}

func (s *Server) ListTokens(ctx context.Context, req *gatewayv1.ListTokensRequest) (*gatewayv1.ListTokensResponse, error) {
	id, ok := scoped(ctx)
	if !ok {
		return nil, s.fail(ctx, errNoIdentity)
	}
	ts, next, err := s.svc.ListTokens(ctx, id, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &gatewayv1.ListTokensResponse{NextPageToken: next}
	for _, t := range ts {
		out.Tokens = append(out.Tokens, tokenProto(t))
	}
	return out, nil
}

func (s *Server) RevokeToken(ctx context.Context, req *gatewayv1.RevokeTokenRequest) (*gatewayv1.RevokeTokenResponse, error) {
	id, ok := scoped(ctx)
	if !ok {
		return nil, s.fail(ctx, errNoIdentity)
	}
	if err := s.svc.RevokeToken(ctx, id, req.GetToken()); err != nil {
		return nil, s.fail(ctx, err)
	}
	return &gatewayv1.RevokeTokenResponse{}, nil
}

func (s *Server) ListAuditEvents(ctx context.Context, req *gatewayv1.ListAuditEventsRequest) (*gatewayv1.ListAuditEventsResponse, error) {
	id, ok := scoped(ctx)
	if !ok {
		return nil, s.fail(ctx, errNoIdentity)
	}
	f := store.AuditFilter{Actor: req.GetActor(), Action: req.GetAction()}
	if req.GetSince() != nil {
		f.Since = req.GetSince().AsTime()
	}
	evs, next, err := s.svc.ListAudit(ctx, id, f, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &gatewayv1.ListAuditEventsResponse{NextPageToken: next}
	for _, e := range evs {
		out.Events = append(out.Events, &gatewayv1.AuditEvent{
			Id: e.ID, Time: timestamppb.New(e.Time), Actor: e.Actor, TokenId: e.TokenID,
			Action: e.Action, Target: e.Target, Result: int32(e.Result), RequestId: e.RequestID, Detail: e.Detail,
		})
	}
	return out, nil
}

// The responses copy an allow-list of fields: a token's hash never leaves.

func orgProto(o store.Org) *gatewayv1.Organization {
	return &gatewayv1.Organization{Name: o.Name, DisplayName: o.DisplayName, CreateTime: timestamppb.New(o.Created), UpdateTime: timestamppb.New(o.Updated)}
}

func memberProto(m store.Member) *gatewayv1.Member {
	return &gatewayv1.Member{Id: m.User.ID, Email: m.User.Email, Subject: m.User.Subject, Role: roleToProto(m.Role), CreateTime: timestamppb.New(m.Created)}
}

func tokenProto(t store.Token) *gatewayv1.Token {
	out := &gatewayv1.Token{Id: t.ID, Name: t.Name, Role: roleToProto(t.Role), CreateTime: timestamppb.New(t.Created), Creator: t.Creator}
	if !t.Expires.IsZero() {
		out.ExpireTime = timestamppb.New(t.Expires)
	}
	if !t.LastUsed.IsZero() {
		out.LastUsedTime = timestamppb.New(t.LastUsed)
	}
	if !t.Revoked.IsZero() {
		out.RevokeTime = timestamppb.New(t.Revoked)
	}
	return out
}

var roles = map[gatewayv1.Role]identity.Role{
	gatewayv1.Role_ROLE_VIEWER:   identity.RoleViewer,
	gatewayv1.Role_ROLE_DEPLOYER: identity.RoleDeployer,
	gatewayv1.Role_ROLE_ADMIN:    identity.RoleAdmin,
	gatewayv1.Role_ROLE_OWNER:    identity.RoleOwner,
}

func roleFromProto(r gatewayv1.Role) identity.Role { return roles[r] }

func roleToProto(r identity.Role) gatewayv1.Role {
	for k, v := range roles {
		if v == r {
			return k
		}
	}
	return gatewayv1.Role_ROLE_UNSPECIFIED
}
