package releases

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/pkg/sqldb/sqltest"
)

// TestLedgerAudit: the service's own audit events list newest first,
// scoped to one org, filtered and paged by id, with long details cut.
func TestLedgerAudit(t *testing.T) {
	sqltest.Backends(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		l, err := OpenLedger(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
		t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
		for i, e := range []AuditEvent{
			{Org: "acme", Actor: "service:releases", Action: actionRecover, Target: "/a", Result: 200, Detail: "one"},
			{Org: "globex", Actor: "service:releases", Action: actionRecover, Target: "/g", Result: 200, Detail: "theirs"},
			{Org: "acme", Actor: "service:releases", Action: "other", Target: "/b", Result: 200, Detail: strings.Repeat("x", 5000)},
			{Org: "acme", Actor: "service:releases", Action: actionRecover, Target: "/c", Result: 500, Detail: "three"},
		} {
			e.Time = t0.Add(time.Duration(i) * time.Minute)
			if err := l.AppendAudit(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		targets := func(evs []AuditEvent) string {
			var out []string
			for _, e := range evs {
				out = append(out, e.Target)
			}
			return strings.Join(out, " ")
		}
		all, err := l.ListAudit(ctx, "acme", AuditFilter{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if got := targets(all); got != "/c /b /a" {
			t.Errorf("acme's events = %q, want /c /b /a (newest first, no globex)", got)
		}
		if d := all[1].Detail; len(d) != maxAuditDetail || !strings.HasSuffix(d, "...") {
			t.Errorf("long detail kept %d bytes", len(d))
		}
		if !all[0].Time.Equal(t0.Add(3*time.Minute)) || all[0].Result != 500 || all[0].Actor != "service:releases" {
			t.Errorf("newest = %+v", all[0])
		}
		for _, tc := range []struct {
			f    AuditFilter
			n    int
			want string
		}{
			{AuditFilter{Action: actionRecover}, 10, "/c /a"},
			{AuditFilter{Since: t0.Add(2 * time.Minute)}, 10, "/c /b"},
			{AuditFilter{Before: all[0].ID}, 1, "/b"},
			{AuditFilter{Before: all[2].ID}, 10, ""},
			{AuditFilter{Actor: "user:alice"}, 10, ""},
		} {
			got, err := l.ListAudit(ctx, "acme", tc.f, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if g := targets(got); g != tc.want {
				t.Errorf("ListAudit(%+v, %d) = %q, want %q", tc.f, tc.n, g, tc.want)
			}
		}
	})
}
