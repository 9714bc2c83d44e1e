package e2e

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/pkg/oidctest"
	"github.com/slipwayhq/slipway/tools/internal/devenv/kube"
	"github.com/slipwayhq/slipway/tools/internal/localrun"
)

// planJSON is a plan as REST shows it.
type planJSON struct {
	PlanID              string `json:"plan_id"`
	CurrentRevision     int    `json:"current_revision"`
	CurrentChartVersion string `json:"current_chart_version"`
	PlannedChartVersion string `json:"planned_chart_version"`
	ValuesDiff          string `json:"values_diff"`
	UnchangedCount      int    `json:"unchanged_count"`
	Changes             []struct {
		Object struct {
			Kind, Name string
		}
		Action, Diff string
	}
}

// TestPlanApply plans an upgrade of a release through REST and applies
// it: the plan shows the values' and the Deployment's change, the apply
// deploys exactly the planned values. A plan made stale by an upgrade in
// between is refused with 409, an unknown plan with 404, values the
// chart's schema refuses with 400 at planning; another org's member gets
// 404 from both routes.
func TestPlanApply(t *testing.T) {
	iss := oidctest.NewIssuer(t)
	f := newOpsFixture(t, "SLIPWAY_GATEWAY_OIDC_ISSUER="+iss.URL())
	const name = "planned"
	f.install(t, name, "0.2.0", "message: one\n")
	dep := f.deployments + "/" + name
	plan := func(values string) planJSON {
		t.Helper()
		var p planJSON
		f.expect(f.do(http.MethodPost, dep+":plan", f.deployer, map[string]any{"namespace": f.ns, "chart": hello("0.2.0"), "values_yaml": values}),
			http.StatusOK, "plan").decode(t, &p)
		return p
	}
	apply := func(id string) (answer, error) {
		return f.send(http.MethodPost, dep+":apply", f.deployer, map[string]any{"namespace": f.ns, "plan_id": id}, nil)
	}

	p := plan("message: two\nreplicaCount: 2\n")
	if p.PlanID == "" || p.CurrentRevision != 1 || p.CurrentChartVersion != "0.2.0" || p.PlannedChartVersion != "0.2.0" {
		t.Fatalf("plan = %+v; want a plan_id, against revision 1 of 0.2.0", p)
	}
	for _, line := range []string{"-message: one", "+message: two", "+replicaCount: 2"} {
		if !strings.Contains(p.ValuesDiff, line+"\n") {
			t.Errorf("values diff lacks %q:\n%s", line, p.ValuesDiff)
		}
	}
	if len(p.Changes) != 1 || p.Changes[0].Object.Kind != "Deployment" || p.Changes[0].Action != "CHANGE_ACTION_UPDATE" || p.UnchangedCount != 1 {
		t.Fatalf("changes = %+v, %d unchanged; want the Deployment updated, the Service unchanged", p.Changes, p.UnchangedCount)
	}
	for _, line := range []string{"-  replicas: 1", "+  replicas: 2", `+              value: "two"`} {
		if !strings.Contains(p.Changes[0].Diff, line+"\n") {
			t.Errorf("Deployment's diff lacks %q:\n%s", line, p.Changes[0].Diff)
		}
	}
	// Planning changed nothing.
	if rel, _ := f.release(t, name); rel.Revision != 1 {
		t.Fatalf("after the plan the release is at revision %d, want 1", rel.Revision)
	}

	a, err := apply(p.PlanID)
	if err != nil {
		t.Fatal(err)
	}
	op, err := accepted(a)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if op = f.await(t, op.ID, 2*time.Minute); op.State != stateSucceeded || op.Kind != "OPERATION_KIND_UPGRADE" || op.Result.Release.Revision != 2 {
		t.Fatalf("apply's operation = %+v; want an upgrade that made revision 2", op)
	}
	var values struct {
		ValuesYaml string `json:"values_yaml"`
	}
	f.expect(f.do(http.MethodGet, dep+"/values?namespace="+f.ns, f.deployer, nil), http.StatusOK, "values").decode(t, &values)
	if values.ValuesYaml != "message: two\nreplicaCount: 2\n" {
		t.Errorf("revision 2's values = %q; want the planned ones", values.ValuesYaml)
	}
	// The same plan again: the release is past the revision it was made against.
	if a, err := apply(p.PlanID); err != nil || a.status != http.StatusConflict || a.code(t) != "failed_precondition" {
		t.Errorf("applying the plan twice: %v %d %s; want 409 failed_precondition", err, a.status, a.body)
	}

	// An upgrade between plan and apply makes the plan stale.
	stale := plan("message: three\n")
	up := f.submit(t, http.MethodPut, dep, map[string]any{"namespace": f.ns, "chart": hello("0.2.0"), "values_yaml": "message: between\n"}, nil)
	if up = f.await(t, up.ID, 2*time.Minute); up.State != stateSucceeded {
		t.Fatalf("upgrade between: %+v", up)
	}
	if a, err := apply(stale.PlanID); err != nil || a.status != http.StatusConflict || a.code(t) != "failed_precondition" {
		t.Errorf("applying a stale plan: %v %d %s; want 409 failed_precondition", err, a.status, a.body)
	}
	if rel, _ := f.release(t, name); rel.Revision != 3 {
		t.Errorf("after the refused apply the release is at revision %d, want 3", rel.Revision)
	}

	// An unknown plan, and values the chart's schema refuses.
	if a, err := apply("no-such-plan"); err != nil || a.status != http.StatusNotFound || a.code(t) != "not_found" {
		t.Errorf("applying an unknown plan: %v %d %s; want 404 not_found", err, a.status, a.body)
	}
	bad, err := f.send(http.MethodPost, dep+":plan", f.deployer, map[string]any{"namespace": f.ns, "chart": hello("0.2.0"), "values_yaml": "replicaCount: many\n"}, nil)
	if err != nil || bad.status != http.StatusBadRequest || !strings.Contains(string(bad.body), "replicaCount") {
		t.Errorf("planning schema-invalid values: %v %d %s; want 400 naming replicaCount", err, bad.status, bad.body)
	}

	// Another org's member: 404 on both routes, through default (which he
	// is not in) or through his own org holding the same cluster as c1.
	bob := iss.Token(t, "bob-sub", "bob@example.com", "slipway", time.Hour)
	f.expect(f.do(http.MethodPost, "/orgs", bob, map[string]any{"name": "globex"}), http.StatusOK, "bob creates globex")
	kc, err := os.ReadFile(f.env[kube.EnvKubeconfig("c1")])
	if err != nil {
		t.Fatal(err)
	}
	f.expect(f.do(http.MethodPost, "/orgs/globex/clusters", bob, map[string]any{"name": "c1", "kubeconfig": map[string]any{"kubeconfig": kc}}),
		http.StatusOK, "bob registers the same cluster as c1")
	fresh := plan("message: four\n")
	for _, org := range []string{localrun.BootstrapOrg, "globex"} {
		path := "/orgs/" + org + "/clusters/c1/deployments/" + name
		for _, r := range []struct {
			route string
			body  map[string]any
		}{
			{":plan", map[string]any{"namespace": f.ns, "chart": hello("0.2.0"), "values_yaml": "message: bob\n"}},
			{":apply", map[string]any{"namespace": f.ns, "plan_id": fresh.PlanID}},
		} {
			a, err := f.send(http.MethodPost, path+r.route, bob, r.body, nil)
			if err != nil {
				t.Fatal(err)
			}
			if a.status != http.StatusNotFound || a.code(t) != "not_found" {
				t.Errorf("bob in %s, %s: %d %s; want 404 not_found", org, r.route, a.status, a.body)
			}
		}
	}
	if rel, _ := f.release(t, name); rel.Revision != 3 {
		t.Errorf("after bob's calls the release is at revision %d, want 3", rel.Revision)
	}
}
