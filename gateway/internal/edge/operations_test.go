package edge

import (
	"net/http"
	"testing"

	releasesv1 "github.com/slipwayhq/slipway/proto/slipway/releases/v1"
)

const deploymentPath = "/api/v1/orgs/acme/clusters/prod/deployments/web"

// startingCalls are the REST calls that start an operation, one per RPC.
var startingCalls = []struct {
	rpc, method, path, body string
}{
	{"CreateDeployment", http.MethodPost, "/api/v1/orgs/acme/clusters/prod/deployments", `{"name":"web","chart":{}}`},
	{"UpdateDeployment", http.MethodPut, deploymentPath, `{}`},
	{"DeleteDeployment", http.MethodDelete, deploymentPath, ``},
	{"RollbackDeployment", http.MethodPost, deploymentPath + "/rollback", `{"revision":2}`},
	{"RecoverDeployment", http.MethodPost, deploymentPath + "/recover", `{}`},
	{"ApplyDeploymentPlan", http.MethodPost, deploymentPath + ":apply", `{"plan_id":"p1"}`},
	{"CorrectDeploymentDrift", http.MethodPost, deploymentPath + "/drift:correct", `{}`},
	{"DeployApplication", http.MethodPost, "/api/v1/orgs/acme/applications/web/targets/staging:deploy", `{}`},
	{"RollbackApplication", http.MethodPost, "/api/v1/orgs/acme/applications/web/targets/staging:rollback", `{}`},
	{"LaunchInstance", http.MethodPost, "/api/v1/orgs/acme/applications/web/instances", `{"target":"staging"}`},
	{"DeleteInstance", http.MethodDelete, "/api/v1/orgs/acme/applications/web/instances/pr-42", ``},
}

func TestStartingAnOperationAnswers202WithLocation(t *testing.T) {
	// Every mutating ReleasesService RPC whose response carries the
	// operation it started must be listed above.
	methods := releasesv1.File_slipway_releases_v1_releases_proto.Services().ByName("ReleasesService").Methods()
	listed := map[string]bool{}
	for _, c := range startingCalls {
		listed[c.rpc] = true
	}
	for i := range methods.Len() {
		m := methods.Get(i)
		if f := m.Output().Fields().ByName("operation"); f != nil && !m.IsStreamingServer() && !listed[string(m.Name())] {
			t.Errorf("%s returns an operation but is not in startingCalls", m.Name())
		}
	}

	h := newHarness(t, harnessOptions{releases: &fakeReleases{}})
	for _, c := range startingCalls {
		t.Run(c.rpc, func(t *testing.T) {
			r := h.do(c.method, c.path, h.owner, c.body)
			if r.status != http.StatusAccepted {
				t.Fatalf("%s %s: status %d, want 202; body %s", c.method, c.path, r.status, r.body)
			}
			if got, want := r.header.Get("Location"), "/api/v1/orgs/acme/operations/"+fakeOperationID; got != want {
				t.Errorf("Location = %q, want %q", got, want)
			}
			op, _ := r.json(t)["operation"].(map[string]any)
			if op["id"] != fakeOperationID || op["state"] != "OPERATION_STATE_QUEUED" {
				t.Errorf("body = %s, want the operation", r.body)
			}
		})
	}

	// The Location answers the operation.
	r := h.do(http.MethodGet, "/api/v1/orgs/acme/operations/"+fakeOperationID, h.owner, "")
	if op, _ := r.json(t)["operation"].(map[string]any); r.status != http.StatusOK || op["id"] != fakeOperationID {
		t.Errorf("GET Location: status %d body %s", r.status, r.body)
	}
}

func TestOtherCallsAnswer200(t *testing.T) {
	h := newHarness(t, harnessOptions{releases: &fakeReleases{}})
	op := "/api/v1/orgs/acme/operations/" + fakeOperationID
	for _, c := range []struct{ name, method, path, body string }{
		{"get deployment", http.MethodGet, deploymentPath, ""},
		{"get operation", http.MethodGet, op, ""},
		{"cancel operation", http.MethodPost, op + ":cancel", "{}"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := h.do(c.method, c.path, h.owner, c.body)
			if r.status != http.StatusOK || r.header.Get("Location") != "" {
				t.Errorf("%s %s: status %d Location %q, want 200 and none; body %s", c.method, c.path, r.status, r.header.Get("Location"), r.body)
			}
		})
	}
}

func TestHeadDeployment(t *testing.T) {
	f := &fakeReleases{}
	h := newHarness(t, harnessOptions{releases: f})

	r := h.do(http.MethodHead, deploymentPath, h.owner, "")
	if r.status != http.StatusNotFound || len(r.body) != 0 {
		t.Errorf("missing: status %d body %q, want 404 and no body", r.status, r.body)
	}
	if r.header.Get(ReleaseStatusHeader) != "" {
		t.Errorf("missing: %s = %q", ReleaseStatusHeader, r.header.Get(ReleaseStatusHeader))
	}

	f.head = &releasesv1.HeadDeploymentResponse{Status: releasesv1.ReleaseStatus_RELEASE_STATUS_PENDING_UPGRADE, Revision: 7}
	r = h.do(http.MethodHead, deploymentPath+"?namespace=shop", h.owner, "")
	if r.status != http.StatusOK || len(r.body) != 0 {
		t.Fatalf("status %d body %q, want 200 and no body", r.status, r.body)
	}
	if got := r.header.Get(ReleaseStatusHeader); got != "RELEASE_STATUS_PENDING_UPGRADE" {
		t.Errorf("%s = %q", ReleaseStatusHeader, got)
	}
	if got := r.header.Get(ReleaseRevisionHeader); got != "7" {
		t.Errorf("%s = %q", ReleaseRevisionHeader, got)
	}
	reqs := f.requests()
	if req, ok := reqs[len(reqs)-1].(*releasesv1.HeadDeploymentRequest); !ok ||
		req.GetOrg() != "acme" || req.GetCluster() != "prod" || req.GetName() != "web" || req.GetNamespace() != "shop" {
		t.Errorf("service got %v", reqs[len(reqs)-1])
	}
}
