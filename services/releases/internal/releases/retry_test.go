package releases

import (
	"errors"
	"testing"

	"helm.sh/helm/v3/pkg/release"

	"github.com/slipwayhq/slipway/services/releases/internal/helmexec"
)

func TestMadeEarlier(t *testing.T) {
	rev := func(v int, op string, st release.Status, desc string) *release.Release {
		r := &release.Release{Name: "web", Version: v, Info: &release.Info{Status: st, Description: desc}}
		if op != "" {
			r.Labels = map[string]string{helmexec.OperationLabel: op, "owner": "helm"}
		}
		return r
	}
	interrupted := "Upgrade interrupted: marked failed by Slipway's recovery"
	for _, tc := range []struct {
		name    string
		hist    []*release.Release
		want    int // revision; 0: none
		wantErr bool
	}{
		{"nothing made", []*release.Release{rev(1, "op_a", release.StatusDeployed, "")}, 0, false},
		{"no history", nil, 0, false},
		{"made and deployed", []*release.Release{rev(1, "op_a", release.StatusSuperseded, ""), rev(2, "op_b", release.StatusDeployed, "")}, 2, false},
		{"made, then superseded by a later op", []*release.Release{rev(1, "op_b", release.StatusSuperseded, ""), rev(2, "op_c", release.StatusDeployed, "")}, 1, false},
		{"cut short and settled by the recovery", []*release.Release{
			rev(1, "op_a", release.StatusSuperseded, ""), rev(2, "op_b", release.StatusFailed, interrupted), rev(3, "", release.StatusDeployed, "Rollback to 1"),
		}, 0, false},
		{"cut short once, then made", []*release.Release{rev(2, "op_b", release.StatusFailed, interrupted), rev(3, "op_b", release.StatusDeployed, "")}, 3, false},
		{"failed in Helm", []*release.Release{rev(1, "op_a", release.StatusDeployed, ""), rev(2, "op_b", release.StatusFailed, "Upgrade \"web\" failed: boom")}, 0, true},
		{"atomic: failed and undone", []*release.Release{
			rev(1, "op_a", release.StatusSuperseded, ""), rev(2, "op_b", release.StatusFailed, "Upgrade \"web\" failed: timed out"), rev(3, "op_b", release.StatusDeployed, "Rollback to 1"),
		}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := madeEarlier(tc.hist, "op_b")
			if tc.wantErr {
				if !errors.Is(err, errEarlierFailed) {
					t.Fatalf("err = %v, want errEarlierFailed", err)
				}
				if code, _ := failure(err); code != "ABORTED" {
					t.Errorf("code = %s, want ABORTED", code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.want == 0 && got != nil:
				t.Fatalf("got revision %d, want none", got.Version)
			case tc.want != 0 && (got == nil || got.Version != tc.want):
				t.Fatalf("got %v, want revision %d", got, tc.want)
			}
		})
	}
}
