package orgs

import (
	"strings"
	"testing"

	"github.com/slipwayhq/slipway/gateway/internal/store"
)

func TestMergeNewestFirst(t *testing.T) {
	evs := func(ids string) []store.AuditEvent {
		var out []store.AuditEvent
		for _, id := range strings.Fields(ids) {
			out = append(out, store.AuditEvent{ID: id})
		}
		return out
	}
	for _, tc := range []struct {
		a, b  string
		limit int
		want  string
	}{
		{"9 7 5", "8 6", 10, "9 8 7 6 5"},
		{"9 7 5", "8 6", 3, "9 8 7"},
		{"", "8 6", 10, "8 6"},
		{"9 7", "", 1, "9"},
		{"", "", 5, ""},
		{"3 2", "9 8", 3, "9 8 3"},
	} {
		var got []string
		for _, e := range mergeNewestFirst(evs(tc.a), evs(tc.b), tc.limit) {
			got = append(got, e.ID)
		}
		if g := strings.Join(got, " "); g != tc.want {
			t.Errorf("merge(%q, %q, %d) = %q, want %q", tc.a, tc.b, tc.limit, g, tc.want)
		}
	}
}
