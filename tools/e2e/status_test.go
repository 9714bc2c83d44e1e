package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/pkg/oidctest"
	"github.com/slipwayhq/slipway/tools/internal/devenv/kube"
	"github.com/slipwayhq/slipway/tools/internal/localrun"
)

// statusJSON is a DeploymentStatus as REST shows it.
type statusJSON struct {
	Release       releaseJSON
	Verdict       string
	Message       string
	WorkloadCount int `json:"workload_count"`
	Workloads     []struct {
		Object            struct{ Kind, Namespace, Name string }
		Verdict           string
		DesiredReplicas   int `json:"desired_replicas"`
		AvailableReplicas int `json:"available_replicas"`
	}
}

// sseStream GETs path as server-sent events and sends each event's data on
// the channel it returns, closed when the stream ends; an "error" event
// is sent prefixed with "error: ".
func (f *opsFixture) sseStream(ctx context.Context, t *testing.T, path, token string) <-chan string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.api+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body.Close()
		t.Fatalf("watch %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan string, 16)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 8<<20)
		var event, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event:"):
				event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
			case strings.HasPrefix(line, "data:"):
				data += strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")
			case line == "" && data != "":
				if event == "error" {
					data = "error: " + data
				}
				select {
				case out <- data:
				case <-ctx.Done():
					return
				}
				event, data = "", ""
			}
		}
	}()
	return out
}

// TestDeploymentStatus: through the REST edge, a release's status becomes
// ready, its resources and events are listed, the status:watch stream
// (server-sent events) pushes the rollout of an upgrade, and another
// org's member gets 404 on each of these routes.
func TestDeploymentStatus(t *testing.T) {
	iss := oidctest.NewIssuer(t)
	f := newOpsFixture(t, "SLIPWAY_GATEWAY_OIDC_ISSUER="+iss.URL())
	const name = "web"
	f.install(t, name, "0.1.0", "replicaCount: 2\n")
	dep := f.deployments + "/" + name
	q := "?namespace=" + f.ns

	var st struct{ Status statusJSON }
	eventually(t, time.Minute, "status ready", func() bool {
		f.expect(f.do(http.MethodGet, dep+"/status"+q, f.deployer, nil), http.StatusOK, "status").decode(t, &st)
		return st.Status.Verdict == "VERDICT_READY"
	})
	s := st.Status
	if s.Release.Name != name || s.Release.Status != "RELEASE_STATUS_DEPLOYED" || s.WorkloadCount != 1 || len(s.Workloads) != 1 ||
		s.Workloads[0].Object.Kind != "Deployment" || s.Workloads[0].DesiredReplicas != 2 || s.Workloads[0].AvailableReplicas != 2 {
		t.Errorf("status: %+v", s)
	}

	var res struct {
		Resources []struct {
			Object  struct{ Kind, Name string }
			Owner   *struct{ Kind, Name string }
			Verdict string
		}
	}
	f.expect(f.do(http.MethodGet, dep+"/resources"+q+"&include_pods=true", f.deployer, nil), http.StatusOK, "resources").decode(t, &res)
	var kinds []string
	for _, r := range res.Resources {
		kinds = append(kinds, r.Object.Kind+" "+r.Verdict)
		if r.Object.Kind == "Pod" && (r.Owner == nil || r.Owner.Name != name) {
			t.Errorf("pod %s: owner %v", r.Object.Name, r.Owner)
		}
	}
	if got := strings.Join(kinds, ", "); got != "Service VERDICT_READY, Deployment VERDICT_READY, Pod VERDICT_READY, Pod VERDICT_READY" {
		t.Errorf("resources: %s", got)
	}
	var page struct {
		Resources     []json.RawMessage
		NextPageToken string `json:"next_page_token"`
	}
	f.expect(f.do(http.MethodGet, dep+"/resources"+q+"&page_size=1", f.deployer, nil), http.StatusOK, "a page of resources").decode(t, &page)
	if len(page.Resources) != 1 || page.NextPageToken == "" {
		t.Errorf("page of 1: %d resources, next %q", len(page.Resources), page.NextPageToken)
	}

	var evs struct {
		Events []struct {
			InvolvedObject struct{ Kind string } `json:"involved_object"`
			Reason, Type   string
		}
	}
	eventually(t, time.Minute, "events of the deployment and its pods", func() bool {
		f.expect(f.do(http.MethodGet, dep+"/events"+q, f.deployer, nil), http.StatusOK, "events").decode(t, &evs)
		seen := map[string]bool{}
		for _, e := range evs.Events {
			seen[e.InvolvedObject.Kind] = true
		}
		return seen["Deployment"] && seen["Pod"]
	})
	f.expect(f.do(http.MethodGet, dep+"/events"+q+"&type=Bad", f.deployer, nil), http.StatusBadRequest, "events of a bad type")

	// The watch: the current status first, then the upgrade's rollout.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	stream := f.sseStream(ctx, t, dep+"/status:watch"+q, f.deployer)
	next := func() statusJSON {
		t.Helper()
		select {
		case data, ok := <-stream:
			var msg struct{ Status statusJSON }
			if !ok || strings.HasPrefix(data, "error: ") || json.Unmarshal([]byte(data), &msg) != nil {
				t.Fatalf("watch: %q (open %v)", data, ok)
			}
			return msg.Status
		case <-ctx.Done():
			t.Fatal("watch: nothing within 2 minutes")
		}
		return statusJSON{}
	}
	if first := next(); first.Verdict != "VERDICT_READY" {
		t.Errorf("first watched status: %+v", first)
	}
	// An upgrade whose new pods can never be scheduled: the rollout stays
	// under way (the old pods serve on), and the watch says so; the next
	// upgrade, with one more replica and no such selector, rolls out.
	var verdicts []string
	until := func(verdict string, revision int, ok func(statusJSON) bool) {
		t.Helper()
		for {
			s := next()
			verdicts = append(verdicts, fmt.Sprintf("%s revision %d: %s", s.Verdict, s.Release.Revision, s.Message))
			if s.Verdict == verdict && s.Release.Revision == revision && ok(s) {
				return
			}
		}
	}
	stuck := f.submit(t, http.MethodPut, dep, map[string]any{"namespace": f.ns, "chart": hello("0.1.0"),
		"values_yaml": "replicaCount: 2\nnodeSelector: {slipway.test/no-such-node: \"true\"}\n"}, nil)
	until("VERDICT_PROGRESSING", 2, func(statusJSON) bool { return true })
	if got := f.await(t, stuck.ID, time.Minute); got.State != stateSucceeded {
		t.Errorf("upgrade to unschedulable pods: %+v", got)
	}
	fixed := f.submit(t, http.MethodPut, dep, map[string]any{"namespace": f.ns, "chart": hello("0.1.0"), "values_yaml": "replicaCount: 3\n"}, nil)
	until("VERDICT_READY", 3, func(s statusJSON) bool { return len(s.Workloads) == 1 && s.Workloads[0].AvailableReplicas == 3 })
	t.Logf("watched through the upgrades:\n%s", strings.Join(verdicts, "\n"))
	if got := f.await(t, fixed.ID, time.Minute); got.State != stateSucceeded {
		t.Errorf("upgrade: %+v", got)
	}
	cancel()

	// Another org's member: 404 on each route, whether he names default
	// (not his) or globex, which has the same real cluster as c1 but no
	// such release.
	bob := iss.Token(t, "bob-sub", "bob@example.com", "slipway", time.Hour)
	f.expect(f.do(http.MethodPost, "/orgs", bob, map[string]any{"name": "globex"}), http.StatusOK, "bob creates globex")
	kc, err := os.ReadFile(f.env[kube.EnvKubeconfig("c1")])
	if err != nil {
		t.Fatal(err)
	}
	f.expect(f.do(http.MethodPost, "/orgs/globex/clusters", bob, map[string]any{"name": "c1", "kubeconfig": map[string]any{"kubeconfig": kc}}),
		http.StatusOK, "bob registers the same cluster as c1")
	path := "/clusters/c1/deployments/" + name
	for _, r := range []struct {
		path   string
		header http.Header
	}{
		{path + "/status" + q, nil},
		{path + "/status:watch" + q, http.Header{"Accept": {"text/event-stream"}}},
		{path + "/status:watch" + q, nil},
		{path + "/resources" + q, nil},
		{path + "/events" + q, nil},
	} {
		for _, org := range []string{localrun.BootstrapOrg, "globex"} {
			a, err := f.send(http.MethodGet, "/orgs/"+org+r.path, bob, nil, r.header)
			if err != nil {
				t.Fatal(err)
			}
			missing, err := f.send(http.MethodGet, f.org+strings.Replace(r.path, "/"+name+"/", "/no-such-release/", 1), f.deployer, nil, r.header)
			if err != nil {
				t.Fatal(err)
			}
			if a.status != http.StatusNotFound || a.code(t) != "not_found" || missing.status != http.StatusNotFound {
				t.Errorf("bob in %s, %s: %d %s; a missing release answers %d %s", org, r.path, a.status, a.body, missing.status, missing.body)
			}
		}
	}
}
