package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/slipwayhq/slipway/pkg/oidctest"
)

// driftJSON is GET .../drift's answer.
type driftJSON struct {
	Revision      int
	DriftedCount  int    `json:"drifted_count"`
	NextPageToken string `json:"next_page_token"`
	Resources     []struct {
		Object struct{ Kind, Namespace, Name string }
		State  string
		Diff   string
	}
}

// TestDrift: a release as installed is in sync; `kubectl scale` and a
// deleted Service are reported (the scale with a diff of spec.replicas);
// replicas an autoscaler owns are not drift; putting things back clears
// it. Another org's member gets 404.
func TestDrift(t *testing.T) {
	iss := oidctest.NewIssuer(t)
	f := newOpsFixture(t, "SLIPWAY_GATEWAY_OIDC_ISSUER="+iss.URL())
	const name = "drifty"
	f.install(t, name, "0.2.0", "replicaCount: 2\n")
	path := f.deployments + "/" + name + "/drift?namespace=" + f.ns
	drift := func() driftJSON {
		t.Helper()
		var d driftJSON
		f.expect(f.do(http.MethodGet, path, f.deployer, nil), http.StatusOK, "drift").decode(t, &d)
		return d
	}
	if d := drift(); d.DriftedCount != 0 || d.Revision != 1 || len(d.Resources) != 0 {
		t.Fatalf("drift right after the install = %+v; want none at revision 1", d)
	}

	ctx := context.Background()
	kc := f.kube(t)
	if _, err := kc.AppsV1().Deployments(f.ns).Patch(ctx, name, types.MergePatchType, []byte(`{"spec":{"replicas":5}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := kc.CoreV1().Services(f.ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	d := drift()
	states := map[string]string{}
	for _, r := range d.Resources {
		states[r.Object.Kind] = r.State
		if r.Object.Kind == "Deployment" && (!strings.Contains(r.Diff, "-  replicas: 2") || !strings.Contains(r.Diff, "+  replicas: 5")) {
			t.Errorf("the Deployment's diff does not show the scale:\n%s", r.Diff)
		}
		if r.Object.Kind == "Deployment" && strings.Contains(r.Diff, "image:") {
			t.Errorf("the diff shows unchanged fields as changed:\n%s", r.Diff)
		}
	}
	if d.DriftedCount != 2 || states["Deployment"] != "DRIFT_STATE_MODIFIED" || states["Service"] != "DRIFT_STATE_MISSING" {
		t.Fatalf("drift after scale and delete = %+v; want the Deployment modified and the Service missing", d)
	}
	var page driftJSON
	f.expect(f.do(http.MethodGet, path+"&page_size=1", f.deployer, nil), http.StatusOK, "drift page").decode(t, &page)
	if len(page.Resources) != 1 || page.DriftedCount != 2 || page.NextPageToken == "" {
		t.Errorf("a page of 1 = %+v; want 1 of 2 and a next token", page)
	}

	// An autoscaler owns the replicas: not drift any more.
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			MaxReplicas:    10,
		},
	}
	if _, err := kc.AutoscalingV2().HorizontalPodAutoscalers(f.ns).Create(ctx, hpa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := drift(); d.DriftedCount != 1 || d.Resources[0].Object.Kind != "Service" {
		t.Errorf("drift under an autoscaler = %+v; want only the Service", d)
	}

	// Put back: the autoscaler goes, the scale is undone, and an upgrade
	// makes the Service again.
	if err := kc.AutoscalingV2().HorizontalPodAutoscalers(f.ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.AppsV1().Deployments(f.ns).Patch(ctx, name, types.MergePatchType, []byte(`{"spec":{"replicas":2}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	up := f.submit(t, http.MethodPut, f.deployments+"/"+name, map[string]any{"namespace": f.ns, "chart": hello("0.2.0"), "values_yaml": "replicaCount: 2\n"}, nil)
	if op := f.await(t, up.ID, 2*time.Minute); op.State != stateSucceeded {
		t.Fatalf("upgrade: %+v", op)
	}
	if d := drift(); d.DriftedCount != 0 || d.Revision != 2 {
		t.Errorf("drift after putting things back = %+v; want none at revision 2", d)
	}

	bob := iss.Token(t, "bob-sub", "bob@example.com", "slipway", time.Hour)
	f.expect(f.do(http.MethodPost, "/orgs", bob, map[string]any{"name": "globex"}), http.StatusOK, "bob creates globex")
	a := f.do(http.MethodGet, path, bob, nil)
	f.expect(a, http.StatusNotFound, "bob reads default's drift")
	f.expect(f.do(http.MethodGet, "/orgs/globex/clusters/c1/deployments/"+name+"/drift?namespace="+f.ns, bob, nil), http.StatusNotFound, "bob's own org")
}
