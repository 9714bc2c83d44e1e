package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/slipwayhq/slipway/pkg/oidctest"
	"github.com/slipwayhq/slipway/tools/internal/localrun"
)

// lastCheckJSON is the drift answer's last_check.
type lastCheckJSON struct {
	Revision     int
	DriftedCount int       `json:"drifted_count"`
	CheckTime    time.Time `json:"check_time"`
	Error        string
}

// driftEdit is a `kubectl edit` of the hello chart's Deployment: its
// message changed and a variable added.
const driftEdit = `{"spec":{"template":{"spec":{"containers":[{"name":"hello","env":[{"name":"HELLO_MESSAGE","value":"edited"},{"name":"DEBUG","value":"1"}]}]}}}}`

// helloEnv is the hello container's environment, NAME=value.
func helloEnv(d *appsv1.Deployment) []string {
	var out []string
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "hello" {
			for _, e := range c.Env {
				out = append(out, e.Name+"="+e.Value)
			}
		}
	}
	return out
}

// TestDriftCorrect: a scale, an edit and a deleted Service are reported,
// and a correct-drift operation puts them back to the manifest without a
// new revision; under an autoscaler the replicas stay the autoscaler's.
// A viewer may not correct; another org's member gets 404 on both routes;
// a release whose latest revision failed answers 409.
func TestDriftCorrect(t *testing.T) {
	iss := oidctest.NewIssuer(t)
	f := newOpsFixture(t, "SLIPWAY_GATEWAY_OIDC_ISSUER="+iss.URL())
	const name = "mend"
	f.install(t, name, "0.2.0", "replicaCount: 2\n")
	path := f.deployments + "/" + name + "/drift?namespace=" + f.ns
	correctPath := f.deployments + "/" + name + "/drift:correct"
	drift := func() driftJSON {
		t.Helper()
		var d driftJSON
		f.expect(f.do(http.MethodGet, path, f.deployer, nil), http.StatusOK, "drift").decode(t, &d)
		return d
	}
	ctx := context.Background()
	kc := f.kube(t)
	deployment := func() *appsv1.Deployment {
		t.Helper()
		d, err := kc.AppsV1().Deployments(f.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	wantEnv := "HELLO_MESSAGE=hello from 0.2.0"

	if _, err := kc.AppsV1().Deployments(f.ns).Patch(ctx, name, types.MergePatchType, []byte(`{"spec":{"replicas":5}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.AppsV1().Deployments(f.ns).Patch(ctx, name, types.StrategicMergePatchType, []byte(driftEdit), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := kc.CoreV1().Services(f.ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	d := drift()
	var diff string
	for _, r := range d.Resources {
		if r.Object.Kind == "Deployment" {
			diff = r.Diff
		}
	}
	if d.DriftedCount != 2 || !strings.Contains(diff, "+  replicas: 5") || !strings.Contains(diff, "value: edited") || !strings.Contains(diff, "DEBUG") {
		t.Fatalf("drift after scale, edit and delete = %+v; want the Deployment (replicas, env) and the Service", d)
	}

	viewer := f.token(localrun.BootstrapOrg, f.owner, "VIEWER")
	f.expect(f.do(http.MethodPost, correctPath, viewer, map[string]any{"namespace": f.ns}), http.StatusForbidden, "a viewer corrects")

	key := http.Header{"Idempotency-Key": {"mend-1"}}
	op := f.submit(t, http.MethodPost, correctPath, map[string]any{"namespace": f.ns}, key)
	if again := f.submit(t, http.MethodPost, correctPath, map[string]any{"namespace": f.ns}, key); again.ID != op.ID {
		t.Errorf("a retry with the same Idempotency-Key made operation %s, want %s", again.ID, op.ID)
	}
	op = f.await(t, op.ID, 2*time.Minute)
	if op.State != stateSucceeded || op.Kind != "OPERATION_KIND_CORRECT_DRIFT" || op.Result.Release.Revision != 1 {
		t.Fatalf("correct-drift operation = %+v; want succeeded, the release at revision 1", op)
	}
	events := ""
	for _, e := range op.Events {
		events += e.Phase + ": " + e.Message + "\n"
	}
	if !strings.Contains(events, "Deployment "+f.ns+"/"+name+": patched spec.replicas") || !strings.Contains(events, "Service "+f.ns+"/"+name+": created") {
		t.Errorf("the operation's events do not name each object put back:\n%s", events)
	}
	if d := drift(); d.DriftedCount != 0 || d.Revision != 1 {
		t.Errorf("drift after the correction = %+v; want none at revision 1", d)
	}
	live := deployment()
	if got := helloEnv(live); *live.Spec.Replicas != 2 || len(got) != 1 || got[0] != wantEnv {
		t.Errorf("Deployment after the correction: replicas %d, env %q; want 2 and [%s]", *live.Spec.Replicas, got, wantEnv)
	}
	svc, err := kc.CoreV1().Services(f.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the Service is not back: %v", err)
	}
	if svc.Annotations["meta.helm.sh/release-name"] != name || svc.Labels["app.kubernetes.io/managed-by"] != "Helm" {
		t.Errorf("the Service came back without Helm's marks: labels %v, annotations %v", svc.Labels, svc.Annotations)
	}
	if rel, _ := f.release(t, name); rel.Revision != 1 {
		t.Errorf("the release is at revision %d after the correction; want 1 (no new revision)", rel.Revision)
	}
	var withCheck struct {
		LastCheck lastCheckJSON `json:"last_check"`
	}
	f.expect(f.do(http.MethodGet, path, f.deployer, nil), http.StatusOK, "drift").decode(t, &withCheck)
	if c := withCheck.LastCheck; c.Revision != 1 || c.DriftedCount != 0 || c.CheckTime.IsZero() {
		t.Errorf("last_check after the correction = %+v; want revision 1 in sync", c)
	}

	// Under an autoscaler the replicas are its own: the edit is put back,
	// the scale stays.
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
	if _, err := kc.AppsV1().Deployments(f.ns).Patch(ctx, name, types.MergePatchType, []byte(`{"spec":{"replicas":7}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.AppsV1().Deployments(f.ns).Patch(ctx, name, types.StrategicMergePatchType, []byte(driftEdit), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := drift(); d.DriftedCount != 1 || strings.Contains(d.Resources[0].Diff, "replicas") {
		t.Fatalf("drift under an autoscaler = %+v; want the Deployment's env only", d)
	}
	op = f.await(t, f.submit(t, http.MethodPost, correctPath, map[string]any{"namespace": f.ns}, nil).ID, 2*time.Minute)
	if op.State != stateSucceeded {
		t.Fatalf("correct-drift under an autoscaler = %+v", op)
	}
	live = deployment()
	if got := helloEnv(live); *live.Spec.Replicas != 7 || len(got) != 1 || got[0] != wantEnv {
		t.Errorf("Deployment after the correction under an autoscaler: replicas %d, env %q; want 7 (the autoscaler's) and [%s]", *live.Spec.Replicas, got, wantEnv)
	}
	if d := drift(); d.DriftedCount != 0 {
		t.Errorf("drift after the correction under an autoscaler = %+v; want none", d)
	}

	bob := iss.Token(t, "bob-sub", "bob@example.com", "slipway", time.Hour)
	f.expect(f.do(http.MethodPost, "/orgs", bob, map[string]any{"name": "globex"}), http.StatusOK, "bob creates globex")
	f.expect(f.do(http.MethodGet, path, bob, nil), http.StatusNotFound, "bob reads default's drift")
	f.expect(f.do(http.MethodPost, correctPath, bob, map[string]any{"namespace": f.ns}), http.StatusNotFound, "bob corrects default's drift")
	f.expect(f.do(http.MethodPost, "/orgs/globex/clusters/c1/deployments/"+name+"/drift:correct", bob, map[string]any{"namespace": f.ns}),
		http.StatusNotFound, "bob corrects through his own org")
	f.expect(f.do(http.MethodPost, f.deployments+"/nothere/drift:correct", f.deployer, map[string]any{"namespace": f.ns}), http.StatusNotFound, "correct a missing release")

	// A release whose latest revision failed has no manifest known to run.
	up := f.submit(t, http.MethodPut, f.deployments+"/"+name, map[string]any{"namespace": f.ns, "chart": hello("0.2.0"),
		"values_yaml": "replicaCount: 2\nnodeSelector: {\"not a label!\": x}\n"}, nil)
	if op := f.await(t, up.ID, 2*time.Minute); op.State != stateFailed {
		t.Fatalf("an upgrade to an invalid Deployment = %+v; want failed", op)
	}
	f.expect(f.do(http.MethodPost, correctPath, f.deployer, map[string]any{"namespace": f.ns}), http.StatusConflict, "correct a failed revision")
}

// TestDriftCorrectedPeriodically: with the periodic check on and
// correction on, a scaled Deployment is put back by itself, by an
// operation the service queued, recorded in the org's audit log.
func TestDriftCorrectedPeriodically(t *testing.T) {
	f := newOpsFixture(t, "SLIPWAY_RELEASES_DRIFT_INTERVAL=1s", "SLIPWAY_RELEASES_DRIFT_CORRECT=true",
		"SLIPWAY_GATEWAY_RATE_PER_IP=0", "SLIPWAY_GATEWAY_RATE_PER_CALLER=0")
	const name = "self-mend"
	f.install(t, name, "0.2.0", "replicaCount: 2\n")
	path := f.deployments + "/" + name + "/drift?namespace=" + f.ns
	var checked struct {
		LastCheck *lastCheckJSON `json:"last_check"`
	}
	eventually(t, time.Minute, "a periodic check of the release in sync", func() bool {
		f.expect(f.do(http.MethodGet, path, f.deployer, nil), http.StatusOK, "drift").decode(t, &checked)
		return checked.LastCheck != nil && checked.LastCheck.Revision == 1 && checked.LastCheck.DriftedCount == 0
	})

	ctx := context.Background()
	kc := f.kube(t)
	if _, err := kc.AppsV1().Deployments(f.ns).Patch(ctx, name, types.MergePatchType, []byte(`{"spec":{"replicas":4}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	scaled := time.Now()
	var ops struct {
		Operations []struct {
			opJSON
			Creator string
		}
	}
	eventually(t, 2*time.Minute, "the scale put back by a correct-drift operation", func() bool {
		f.expect(f.do(http.MethodGet, f.org+"/operations?kind=OPERATION_KIND_CORRECT_DRIFT&namespace="+f.ns+"&release="+name, f.deployer, nil),
			http.StatusOK, "list correct-drift operations").decode(t, &ops)
		return len(ops.Operations) > 0 && finished(ops.Operations[0].State)
	})
	t.Logf("put back %s after the scale (checks every 1s)", time.Since(scaled).Round(time.Millisecond))
	if n := len(ops.Operations); n != 1 {
		t.Errorf("%d correct-drift operations, want 1 (every check of one drift asks for one)", n)
	}
	op := ops.Operations[0]
	if op.State != stateSucceeded || op.Creator != "service:releases" {
		t.Errorf("correct-drift operation = %+v; want succeeded, by the service", op)
	}
	d, err := kc.AppsV1().Deployments(f.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 2 {
		t.Errorf("replicas = %d after the correction, want 2", *d.Spec.Replicas)
	}

	var audit struct{ Events []auditJSON }
	f.expect(f.do(http.MethodGet, f.org+"/audit?actor=service:releases", f.owner, nil), http.StatusOK, "audit log").decode(t, &audit)
	found := map[string]auditJSON{}
	for _, e := range audit.Events {
		if strings.Contains(e.Target, "/deployments/"+name+"?") {
			found[e.Action] = e
		}
	}
	if e := found["slipway.releases.v1.ReleasesService/GetDeploymentDrift"]; !strings.Contains(e.Detail, "revision 1 drifted: Deployment "+f.ns+"/"+name+" (modified)") {
		t.Errorf("audit event of the drift found = %+v", e)
	}
	if e := found["slipway.releases.v1.ReleasesService/CorrectDeploymentDrift"]; !strings.Contains(e.Detail, "operation "+op.ID+" put back Deployment "+f.ns+"/"+name+" (patched spec.replicas)") {
		t.Errorf("audit event of the correction = %+v", e)
	}
	eventually(t, time.Minute, "a periodic check finds it in sync again", func() bool {
		f.expect(f.do(http.MethodGet, path, f.deployer, nil), http.StatusOK, "drift").decode(t, &checked)
		return checked.LastCheck != nil && checked.LastCheck.DriftedCount == 0 && checked.LastCheck.CheckTime.After(scaled)
	})
}
