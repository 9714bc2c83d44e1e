package releases

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/slipwayhq/slipway/pkg/identity"
	"github.com/slipwayhq/slipway/pkg/sqldb"
	"github.com/slipwayhq/slipway/pkg/validate"
	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

// AuditEvent is one thing the releases service did on its own, with no
// request behind it: the gateway merges these into the org's audit log.
// Like the log, it never holds values, a manifest or a secret.
type AuditEvent struct {
	ID     string // UUIDv7: time-ordered, the list order and page key
	Org    string
	Time   time.Time
	Actor  string // "service:releases"
	Action string // the RPC it amounts to
	Target string // the REST path of the release
	Result int    // the HTTP status the equivalent request would answer
	Detail string // what was found and done
}

// AuditFilter narrows ListAudit; zero fields match everything.
type AuditFilter struct {
	Actor, Action string
	Since         time.Time
	Before        string // only ids sorting before this one
}

// actionRecover is the audit action of a recovery.
const actionRecover = "slipway.releases.v1.ReleasesService/RecoverDeployment"

// maxAuditDetail bounds a detail: it quotes Helm's words, which quote the
// cluster's.
const maxAuditDetail = 1024

// AppendAudit records e, giving it an id and time when unset.
func (l *Ledger) AppendAudit(ctx context.Context, e AuditEvent) error {
	if e.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("audit event id: %w", err)
		}
		e.ID = id.String()
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if len(e.Detail) > maxAuditDetail {
		e.Detail = e.Detail[:maxAuditDetail-3] + "..."
	}
	_, err := l.db.ExecContext(ctx, l.db.Rebind(`INSERT INTO audit_events (id, org, occurred_at, actor, action, target, result, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), e.ID, e.Org, sqldb.Micros(e.Time), e.Actor, e.Action, e.Target, e.Result, e.Detail)
	if err != nil {
		return fmt.Errorf("append audit event: %w", err)
	}
	return nil
}

// ListAudit returns up to limit of org's events, newest first.
func (l *Ledger) ListAudit(ctx context.Context, org string, f AuditFilter, limit int) ([]AuditEvent, error) {
	where, args := []string{"org = ?"}, []any{org}
	if f.Actor != "" {
		where, args = append(where, "actor = ?"), append(args, f.Actor)
	}
	if f.Action != "" {
		where, args = append(where, "action = ?"), append(args, f.Action)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "occurred_at >= ?"), append(args, sqldb.Micros(f.Since))
	}
	if f.Before != "" {
		where, args = append(where, "id < ?"), append(args, f.Before)
	}
	args = append(args, limit)
	rows, err := l.db.QueryContext(ctx, l.db.Rebind(`SELECT id, org, occurred_at, actor, action, target, result, detail FROM audit_events
		WHERE `+strings.Join(where, " AND ")+` ORDER BY id DESC LIMIT ?`), args...)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	defer rows.Close()
	var out []AuditEvent
	for rows.Next() {
		var e AuditEvent
		var at int64
		if err := rows.Scan(&e.ID, &e.Org, &at, &e.Actor, &e.Action, &e.Target, &e.Result, &e.Detail); err != nil {
			return nil, fmt.Errorf("list audit events: %w", err)
		}
		e.Time = sqldb.FromMicros(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	return out, nil
}

// releasePath is the REST path of a release, an audit target.
func releasePath(org, cluster, namespace, name string) string {
	return "/api/v1/orgs/" + org + "/clusters/" + cluster + "/deployments/" + name + "?namespace=" + namespace
}

// ListAudit is Service.ListAudit: admins only, like the gateway's log.
func (s *service) ListAudit(ctx context.Context, f AuditFilter, limit int) ([]AuditEvent, error) {
	caller, err := callerWith(ctx, identity.RoleAdmin)
	if err != nil {
		return nil, err
	}
	return s.ledger.ListAudit(ctx, caller.Org, f, limit)
}

// ListSystemAuditEvents serves ListAudit to the gateway.
func (s *GRPCServer) ListSystemAuditEvents(ctx context.Context, req *releasesv1.ListSystemAuditEventsRequest) (*releasesv1.ListSystemAuditEventsResponse, error) {
	n := int(req.GetPageSize())
	switch {
	case n == 0:
		n = 100
	case n < 0 || n > 1000:
		return nil, s.status(ctx, validate.Field("page_size", "must be between 1 and 1000, got %d", n))
	}
	f := AuditFilter{Actor: req.GetActor(), Action: req.GetAction(), Before: req.GetBeforeId()}
	if req.GetSince() != nil {
		f.Since = req.GetSince().AsTime()
	}
	evs, err := s.svc.ListAudit(ctx, f, n)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &releasesv1.ListSystemAuditEventsResponse{}
	for _, e := range evs {
		out.Events = append(out.Events, &releasesv1.SystemAuditEvent{
			Id: e.ID, Time: timestamppb.New(e.Time), Actor: e.Actor, Action: e.Action, Target: e.Target, Result: int32(e.Result), Detail: e.Detail,
		})
	}
	return out, nil
}
