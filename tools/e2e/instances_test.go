package e2e

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipwayhq/slipway/pkg/oidctest"
	"github.com/slipwayhq/slipway/tools/internal/devenv/chartrepo"
	"github.com/slipwayhq/slipway/tools/internal/localrun"
)

// instanceJSON is an instance as REST shows it.
type instanceJSON struct {
	ID, State, Location, Namespace, Release, Target, Cluster, Creator string
	Ttl                                                               string
	LaunchOperation                                                   string    `json:"launch_operation"`
	DeleteOperation                                                   string    `json:"delete_operation"`
	ExpireTime                                                        time.Time `json:"expire_time"`
	LastActivityTime                                                  time.Time `json:"last_activity_time"`
}

const (
	instLaunching = "INSTANCE_STATE_LAUNCHING"
	instRunning   = "INSTANCE_STATE_RUNNING"
	instDeleted   = "INSTANCE_STATE_DELETED"
)

// instancesFixture is an ops fixture whose catalog has the application
// "preview" of the e2e's own chart repository (a Deployment, a Service and
// an Ingress with a host per release), with target "dev" on c1; the
// releases service allows TTLs from 2s, 3 instances per org, and culls
// every second.
type instancesFixture struct {
	*opsFixture
	iss   *oidctest.Issuer
	insts string // org + "/applications/preview/instances"
}

func newInstancesFixture(t *testing.T) *instancesFixture {
	t.Helper()
	iss := oidctest.NewIssuer(t)
	f := newOpsFixture(t, "SLIPWAY_GATEWAY_OIDC_ISSUER="+iss.URL(), "SLIPWAY_GATEWAY_RATE_PER_IP=0", "SLIPWAY_GATEWAY_RATE_PER_CALLER=0",
		"SLIPWAY_RELEASES_INSTANCE_MIN_TTL=2s", "SLIPWAY_RELEASES_INSTANCES_PER_ORG=3", "SLIPWAY_RELEASES_INSTANCE_CULL_INTERVAL=1s")
	dir := t.TempDir()
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	if _, err := chartrepo.Package(filepath.Join("testdata", "charts"), dir, srv.URL); err != nil {
		t.Fatal(err)
	}
	f.expect(f.do(http.MethodPost, f.org+"/repositories", f.owner, map[string]any{"name": "e2e", "url": srv.URL}), http.StatusOK, "add the e2e repository")
	eventually(t, time.Minute, "the e2e repository synced", func() bool {
		var r struct{ Repository repositoryJSON }
		f.do(http.MethodGet, f.org+"/repositories/e2e", f.owner, nil).decode(t, &r)
		return r.Repository.Sync.ChartCount > 0
	})
	f.expect(f.do(http.MethodPost, f.org+"/applications", f.owner, map[string]any{
		"name": "preview", "chart": map[string]any{"repository": "e2e", "chart": "preview", "version": "1.0.0"},
		"values":  map[string]any{"domain": "app.example.test"},
		"targets": []map[string]any{{"name": "dev", "cluster": "c1", "namespace": f.ns, "values": map[string]any{"domain": "dev.example.test"}}},
	}), http.StatusOK, "create application")
	return &instancesFixture{opsFixture: f, iss: iss, insts: f.org + "/applications/preview/instances"}
}

// launch launches an instance and checks the answer: 202 with the launch
// operation's Location, the instance launching with no location.
func (f *instancesFixture) launch(t *testing.T, body map[string]any, header http.Header) (instanceJSON, opJSON) {
	t.Helper()
	a, err := f.send(http.MethodPost, f.insts, f.deployer, body, header)
	if err != nil {
		t.Fatal(err)
	}
	op, err := accepted(a)
	if err != nil {
		t.Fatalf("launch: %v", err)
	}
	var got struct{ Instance instanceJSON }
	a.decode(t, &got)
	i := got.Instance
	if !strings.HasPrefix(i.ID, "inst_") || i.State != instLaunching || i.Location != "" || i.LaunchOperation != op.ID || op.Kind != "OPERATION_KIND_LAUNCH_INSTANCE" ||
		i.Namespace != i.Release || !strings.HasPrefix(i.Release, "preview-") || i.Target != "dev" {
		t.Fatalf("launch answered %s; want a launching instance with no location, its operation %s", a.body, op.ID)
	}
	return i, op
}

func (f *instancesFixture) instance(t *testing.T, id string) instanceJSON {
	t.Helper()
	var got struct{ Instance instanceJSON }
	f.expect(f.do(http.MethodGet, f.insts+"/"+id, f.deployer, nil), http.StatusOK, "get instance "+id).decode(t, &got)
	return got.Instance
}

// awaitInstance polls an instance until it is in state.
func (f *instancesFixture) awaitInstance(t *testing.T, id, state string, within time.Duration) instanceJSON {
	t.Helper()
	var i instanceJSON
	eventually(t, within, "instance "+id+" "+state, func() bool {
		i = f.instance(t, id)
		return i.State == state
	})
	return i
}

// namespace reads the labels of namespace ns, and whether it exists.
func (f *instancesFixture) namespace(t *testing.T, ns string) (labels map[string]string, exists bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := f.kube(t).CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return got.Labels, true
}

// TestInstances launches an application instance through the REST edge,
// as binder's clients do: the launch answers at once with an id and no
// location; polling shows it running at its Ingress's host in its own
// namespace; a keepalive moves its expiry; the list shows it. One launched
// with the shortest TTL is culled: deleted, its namespace gone, its
// release's uninstall in the ledger, both operations listed. Bad input,
// the per-org limit, idempotency and DELETE answer as documented, and
// another org's member reaches none of it.
func TestInstances(t *testing.T) {
	f := newInstancesFixture(t)

	// Launch, then poll until it has a location.
	a, launchOp := f.launch(t, map[string]any{"target": "dev", "ttl": "600s", "values_yaml": "image:\n  tag: \"1.1\"\n"}, nil)
	run := f.awaitInstance(t, a.ID, instRunning, 2*time.Minute)
	if want := "http://" + a.Release + ".dev.example.test"; run.Location != want {
		t.Errorf("location %q; want the Ingress's host %q (the target's domain over the application's)", run.Location, want)
	}
	if op := f.operation(t, launchOp.ID); op.State != stateSucceeded || op.Result.Release.Name != a.Release || op.Result.Release.Namespace != a.Namespace {
		t.Errorf("launch operation: %+v", op)
	}
	if labels, ok := f.namespace(t, a.Namespace); !ok || labels["slipway.dev/instance"] != a.ID {
		t.Errorf("namespace %s: exists %t, labels %v; want it labelled with the instance", a.Namespace, ok, labels)
	}
	var vals struct {
		ValuesYaml string `json:"values_yaml"`
	}
	f.expect(f.do(http.MethodGet, f.org+"/clusters/c1/deployments/"+a.Release+"/values?namespace="+a.Namespace, f.deployer, nil), http.StatusOK, "instance values").decode(t, &vals)
	if !strings.Contains(vals.ValuesYaml, "domain: dev.example.test") || !strings.Contains(vals.ValuesYaml, `tag: "1.1"`) {
		t.Errorf("instance values:\n%s\nwant the target's domain and the request's tag", vals.ValuesYaml)
	}

	// Keepalive with a new TTL moves the expiry.
	var kept struct{ Instance instanceJSON }
	f.expect(f.do(http.MethodPost, f.insts+"/"+a.ID+":keepalive", f.deployer, map[string]any{"ttl": "900s"}), http.StatusOK, "keepalive").decode(t, &kept)
	if kept.Instance.Ttl != "900s" || !kept.Instance.ExpireTime.After(run.ExpireTime) || !kept.Instance.LastActivityTime.After(run.LastActivityTime) ||
		kept.Instance.ExpireTime.Sub(kept.Instance.LastActivityTime) != 900*time.Second {
		t.Errorf("after keepalive: %+v (was expiring at %s)", kept.Instance, run.ExpireTime)
	}

	// Bad input.
	for _, c := range []struct {
		body       map[string]any
		status     int
		code, word string
	}{
		{map[string]any{"target": "dev", "ttl": "1s"}, http.StatusBadRequest, "invalid_argument", "ttl"},
		{map[string]any{"target": "dev", "ttl": "90000s"}, http.StatusBadRequest, "invalid_argument", "ttl"},
		{map[string]any{"target": "dev", "values_yaml": "- a list\n"}, http.StatusBadRequest, "invalid_argument", "values_yaml"},
		{map[string]any{"target": "nope"}, http.StatusNotFound, "not_found", "nope"},
		{map[string]any{}, http.StatusBadRequest, "invalid_argument", "target"},
	} {
		got := f.do(http.MethodPost, f.insts, f.deployer, c.body)
		if got.status != c.status || got.code(t) != c.code || !strings.Contains(string(got.body), c.word) {
			t.Errorf("launch %v: %d %s; want %d %s naming %s", c.body, got.status, got.body, c.status, c.code, c.word)
		}
	}
	if got := f.do(http.MethodPost, f.org+"/applications/no-such-app/instances", f.deployer, map[string]any{"target": "dev"}); got.status != http.StatusNotFound {
		t.Errorf("launch of a missing application: %d %s; want 404", got.status, got.body)
	}
	viewer := f.token(localrun.BootstrapOrg, f.owner, "VIEWER")
	if got := f.do(http.MethodPost, f.insts, viewer, map[string]any{"target": "dev"}); got.status != http.StatusForbidden {
		t.Errorf("launch by a viewer: %d %s; want 403", got.status, got.body)
	}

	// Idempotency: the same key and body is the same instance; another body
	// with that key is 422. b has the shortest TTL, 2s: it is culled below.
	c, _ := f.launch(t, map[string]any{"target": "dev"}, nil)
	key := http.Header{"Idempotency-Key": {"inst-e2e-" + f.ns}}
	b, _ := f.launch(t, map[string]any{"target": "dev", "ttl": "2s"}, key)
	again, _ := f.launch(t, map[string]any{"target": "dev", "ttl": "2s"}, key)
	if again.ID != b.ID {
		t.Errorf("a retried launch made instance %s; want %s", again.ID, b.ID)
	}
	if got, err := f.send(http.MethodPost, f.insts, f.deployer, map[string]any{"target": "dev", "ttl": "3s"}, key); err != nil || got.status != http.StatusUnprocessableEntity {
		t.Errorf("the key with another body: %v %d %s; want 422", err, got.status, got.body)
	}

	// The per-org limit (3): a fourth is refused (b is far from deleted
	// yet: its delete waits for its launch).
	if got := f.do(http.MethodPost, f.insts, f.deployer, map[string]any{"target": "dev"}); got.status != http.StatusTooManyRequests || got.code(t) != "resource_exhausted" {
		t.Errorf("a fourth instance: %d %s; want 429 resource_exhausted", got.status, got.body)
	}

	// List: newest first, filters.
	var list struct {
		Instances []instanceJSON
		Next      string `json:"next_page_token"`
	}
	f.expect(f.do(http.MethodGet, f.insts+"?page_size=2", f.deployer, nil), http.StatusOK, "list instances").decode(t, &list)
	if len(list.Instances) != 2 || list.Instances[0].ID != b.ID || list.Instances[1].ID != c.ID || list.Next == "" {
		t.Errorf("first page: %+v; want %s then %s and a next page", list, b.ID, c.ID)
	}
	f.expect(f.do(http.MethodGet, f.insts+"?page_size=2&page_token="+list.Next, f.deployer, nil), http.StatusOK, "list page 2").decode(t, &list)
	if len(list.Instances) != 1 || list.Instances[0].ID != a.ID || list.Next != "" {
		t.Errorf("second page: %+v; want %s alone", list, a.ID)
	}
	f.expect(f.do(http.MethodGet, f.insts+"?state=INSTANCE_STATE_RUNNING&target=dev", f.deployer, nil), http.StatusOK, "running instances").decode(t, &list)
	found := false
	for _, i := range list.Instances {
		found = found || i.ID == a.ID
		if i.State != instRunning {
			t.Errorf("listed running: %+v", i)
		}
	}
	if !found {
		t.Errorf("running instances %+v miss %s", list.Instances, a.ID)
	}

	// b, with a 2s TTL and no keepalive, is culled.
	culled := f.awaitInstance(t, b.ID, instDeleted, 3*time.Minute)
	if culled.Location != "" || culled.DeleteOperation == "" {
		t.Errorf("culled instance: %+v", culled)
	}
	del := f.await(t, culled.DeleteOperation, time.Minute)
	if del.State != stateSucceeded || del.Kind != "OPERATION_KIND_DELETE_INSTANCE" {
		t.Errorf("delete operation: %+v", del)
	}
	eventually(t, 2*time.Minute, "namespace "+b.Namespace+" gone", func() bool { _, ok := f.namespace(t, b.Namespace); return !ok })
	// Its launch ran at once, so it was installed before the cull (one
	// culled before its launch ran is never installed: its launch fails).
	if op := f.operation(t, b.LaunchOperation); op.State != stateSucceeded {
		if !strings.Contains(op.Error.Message, "not launched") {
			t.Errorf("launch of the culled instance: %+v", op)
		}
		t.Logf("instance %s was culled before its launch ran", b.ID)
	} else {
		var hist struct{ Releases []releaseJSON }
		f.expect(f.do(http.MethodGet, f.org+"/clusters/c1/deployments/"+b.Release+"/history?namespace="+b.Namespace, f.deployer, nil), http.StatusOK, "culled release history").decode(t, &hist)
		if len(hist.Releases) == 0 || hist.Releases[0].Status != "RELEASE_STATUS_UNINSTALLED" || hist.Releases[0].Operation != del.ID {
			t.Errorf("culled release's history %+v; want its uninstall by %s first", hist.Releases, del.ID)
		}
	}
	var opsList struct{ Operations []opJSON }
	f.expect(f.do(http.MethodGet, f.org+"/operations?application=preview", f.deployer, nil), http.StatusOK, "operations").decode(t, &opsList)
	kinds := map[string]int{}
	for _, op := range opsList.Operations {
		kinds[op.Kind]++
	}
	if kinds["OPERATION_KIND_LAUNCH_INSTANCE"] != 3 || kinds["OPERATION_KIND_DELETE_INSTANCE"] < 1 {
		t.Errorf("operations of the application by kind: %v; want 3 launches and the cull", kinds)
	}
	if got := f.do(http.MethodPost, f.insts+"/"+b.ID+":keepalive", f.deployer, map[string]any{}); got.status != http.StatusConflict || got.code(t) != "failed_precondition" {
		t.Errorf("keepalive of a deleted instance: %d %s; want 409 failed_precondition", got.status, got.body)
	}
	// Deleted, it left the count: another launch fits again (and is deleted
	// at once below).
	d, _ := f.launch(t, map[string]any{"target": "dev"}, nil)

	// Cross-org: bob, not a member of default, and bob's own org globex
	// (which registered the same cluster), reach none of it.
	bob := f.iss.Token(t, "bob-sub", "bob@example.com", "slipway", time.Hour)
	f.expect(f.do(http.MethodPost, "/orgs", bob, map[string]any{"name": "globex"}), http.StatusOK, "bob creates globex")
	inst := "/applications/preview/instances/" + a.ID
	routes := []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, inst, nil},
		{http.MethodPost, inst + ":keepalive", map[string]any{}},
		{http.MethodDelete, inst, nil},
		{http.MethodPost, "/applications/preview/instances", map[string]any{"target": "dev"}},
		{http.MethodGet, "/applications/preview/instances", nil},
	}
	for _, r := range routes {
		for _, org := range []string{localrun.BootstrapOrg, "globex"} {
			got, err := f.send(r.method, "/orgs/"+org+r.path, bob, r.body, nil)
			if err != nil {
				t.Fatal(err)
			}
			if org == "globex" && r.method == http.MethodGet && strings.HasSuffix(r.path, "/instances") {
				// A list of a missing application is empty, not 404: another
				// org's answers the same.
				missing, err := f.send(http.MethodGet, f.org+"/applications/no-such-app/instances", f.deployer, nil, nil)
				if err != nil || got.status != missing.status || !bytes.Equal(got.body, missing.body) {
					t.Errorf("bob lists globex's preview instances: %d %s; a missing application answers %d %s", got.status, got.body, missing.status, missing.body)
				}
				continue
			}
			if got.status != http.StatusNotFound || got.code(t) != "not_found" {
				t.Errorf("bob %s %s in %s: %d %s; want 404 not_found", r.method, r.path, org, got.status, got.body)
			}
		}
	}
	if now := f.instance(t, a.ID); now.State != instRunning || !now.ExpireTime.Equal(kept.Instance.ExpireTime) {
		t.Errorf("after bob's calls: %+v; want it running, expiring at %s", now, kept.Instance.ExpireTime)
	}

	// DELETE: 202 with the delete operation; again, the same operation.
	for _, i := range []instanceJSON{a, c, d} {
		a1, err := f.send(http.MethodDelete, f.insts+"/"+i.ID, f.deployer, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		op1, err := accepted(a1)
		if err != nil {
			t.Fatalf("delete %s: %v", i.ID, err)
		}
		a2, _ := f.send(http.MethodDelete, f.insts+"/"+i.ID, f.deployer, nil, nil)
		if op2, err := accepted(a2); err != nil || op2.ID != op1.ID {
			t.Errorf("a second delete of %s: %v, operation %s; want %s", i.ID, err, op2.ID, op1.ID)
		}
	}
	for _, i := range []instanceJSON{a, c, d} {
		f.awaitInstance(t, i.ID, instDeleted, 3*time.Minute)
		eventually(t, 2*time.Minute, "namespace "+i.Namespace+" gone", func() bool { _, ok := f.namespace(t, i.Namespace); return !ok })
	}
}
