package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/pkg/oidctest"
	"github.com/slipwayhq/slipway/tools/internal/devenv/kube"
	"github.com/slipwayhq/slipway/tools/internal/localrun"
)

// logLineJSON is a LogLine as REST shows it.
type logLineJSON struct {
	Pod, Container, Line string
	Time                 time.Time
	Truncated            bool
}

// TestDeploymentLogs: through the REST edge, the logs of a two-pod
// release (its container's log is the devstack's ten known lines): a
// tail across both pods, one pod, the tail bound, a pod not in the
// release, and ?follow=true as server-sent events, one line each, until
// the client leaves, and new lines appended to a followed log reach
// every client following it; another org's member gets 404.
func TestDeploymentLogs(t *testing.T) {
	iss := oidctest.NewIssuer(t)
	f := newOpsFixtureWith(t, []string{"kubelogs"}, "SLIPWAY_GATEWAY_OIDC_ISSUER="+iss.URL())
	const name = "talk"
	f.install(t, name, "0.1.0", "replicaCount: 2\n")
	dep := f.deployments + "/" + name
	q := "?namespace=" + f.ns
	known := kube.LogLines()

	// logs reads a non-following answer: grpc-gateway's newline-delimited
	// JSON, one batch of lines per row.
	logs := func(t *testing.T, query string) []logLineJSON {
		t.Helper()
		a := f.expect(f.do(http.MethodGet, dep+"/logs"+q+query, f.deployer, nil), http.StatusOK, "logs"+query)
		var out []logLineJSON
		for _, row := range strings.Split(strings.TrimSpace(string(a.body)), "\n") {
			var msg struct {
				Result struct{ Lines []logLineJSON }
				Error  json.RawMessage
			}
			if err := json.Unmarshal([]byte(row), &msg); err != nil || msg.Error != nil {
				t.Fatalf("logs%s: row %q: %v", query, row, err)
			}
			out = append(out, msg.Result.Lines...)
		}
		return out
	}
	byPod := func(lines []logLineJSON) map[string][]string {
		out := map[string][]string{}
		for _, l := range lines {
			if l.Container != "hello" || l.Time.IsZero() {
				t.Errorf("line %+v: want container hello and a time", l)
			}
			out[l.Pod] = append(out[l.Pod], l.Line)
		}
		return out
	}

	all := byPod(logs(t, "&tail_lines=3"))
	var pods []string
	for pod, lines := range all {
		pods = append(pods, pod)
		if fmt.Sprint(lines) != fmt.Sprint(known[7:]) {
			t.Errorf("pod %s: %q, want the last 3 of %q", pod, lines, known)
		}
	}
	slices.Sort(pods)
	if len(pods) != 2 {
		t.Fatalf("lines of pods %v, want both pods'", pods)
	}
	one := byPod(logs(t, "&pod="+pods[1]+"&container=hello"))
	if len(one) != 1 || fmt.Sprint(one[pods[1]]) != fmt.Sprint(known) {
		t.Errorf("pod %s: %v, want its %d lines only", pods[1], one, len(known))
	}
	if got := logs(t, "&since=1h&tail_lines=1"); len(got) != 2 {
		t.Errorf("tail 1 since 1h: %d lines, want one per pod", len(got))
	}
	f.expect(f.do(http.MethodGet, dep+"/logs"+q+"&tail_lines=5001", f.deployer, nil), http.StatusBadRequest, "tail past the bound")
	f.expect(f.do(http.MethodGet, dep+"/logs"+q+"&pod=not-"+pods[0], f.deployer, nil), http.StatusNotFound, "a pod not in the release")
	f.expect(f.do(http.MethodGet, dep+"/logs"+q+"&container=nope", f.deployer, nil), http.StatusNotFound, "a container not in the release")

	// Following: each event one line, labelled; the stream stays open
	// until the client leaves.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	stream := f.sseStream(ctx, t, dep+"/logs"+q+"&follow=true&tail_lines=2", f.deployer)
	got := map[string][]string{}
	for n := 0; n < 4; n++ {
		select {
		case data, ok := <-stream:
			var msg struct{ Lines []logLineJSON }
			if !ok || strings.HasPrefix(data, "error: ") || json.Unmarshal([]byte(data), &msg) != nil || len(msg.Lines) != 1 {
				t.Fatalf("follow: event %q (open %v), want one line", data, ok)
			}
			l := msg.Lines[0]
			got[l.Pod] = append(got[l.Pod], l.Container+": "+l.Line)
		case <-ctx.Done():
			t.Fatalf("follow: %d events within a minute, want 4", n)
		}
	}
	for _, pod := range pods {
		if want := fmt.Sprint([]string{"hello: " + known[8], "hello: " + known[9]}); fmt.Sprint(got[pod]) != want {
			t.Errorf("followed pod %s: %q, want %s", pod, got[pod], want)
		}
	}
	cancel()
	for range stream { // closes once the client has gone
	}

	checkFollowAppended(t, f)

	// Another org's member: 404, naming default (not his) or globex (the
	// same real cluster, no such release).
	bob := iss.Token(t, "bob-sub", "bob@example.com", "slipway", time.Hour)
	f.expect(f.do(http.MethodPost, "/orgs", bob, map[string]any{"name": "globex"}), http.StatusOK, "bob creates globex")
	kc, err := os.ReadFile(f.env[kube.EnvKubeconfig("c1")])
	if err != nil {
		t.Fatal(err)
	}
	f.expect(f.do(http.MethodPost, "/orgs/globex/clusters", bob, map[string]any{"name": "c1", "kubeconfig": map[string]any{"kubeconfig": kc}}),
		http.StatusOK, "bob registers the same cluster as c1")
	path := "/clusters/c1/deployments/" + name + "/logs" + q
	for _, h := range []http.Header{nil, {"Accept": {"text/event-stream"}}} {
		for _, org := range []string{localrun.BootstrapOrg, "globex"} {
			for _, query := range []string{"", "&follow=true", "&pod=" + pods[0]} {
				a, err := f.send(http.MethodGet, "/orgs/"+org+path+query, bob, nil, h)
				if err != nil {
					t.Fatal(err)
				}
				if a.status != http.StatusNotFound || a.code(t) != "not_found" {
					t.Errorf("bob in %s, logs%s (%v): %d %s, want 404", org, query, h, a.status, a.body)
				}
			}
		}
	}
}

// checkFollowAppended: two clients follow, as server-sent events, a
// release whose container reads the devstack's followed log (kwok's
// kube.FollowContainer), across both its pods: each gets every line
// appended, labelled with its pod and container, in order, once; a third
// that joins later gets its tail, then the next line. The releases
// service reads each pod's log once for all three (podlogs.Shared).
func checkFollowAppended(t *testing.T, f *opsFixture) {
	t.Helper()
	const name = "tailer"
	op := f.submit(t, http.MethodPost, f.deployments, map[string]any{"name": name, "namespace": f.ns, "chart": map[string]any{"archive": followChart(t)},
		"options": map[string]any{"wait": true, "timeout": "120s"}}, nil)
	if op = f.await(t, op.ID, 2*time.Minute); op.State != stateSucceeded {
		t.Fatalf("install %s: %+v", name, op)
	}
	logFile, err := os.OpenFile(filepath.Join(f.env[kube.EnvLogDir("c1")], kube.FollowLogFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	prefix := "e2e " + f.ns + " "
	write := func(n int) {
		if _, err := logFile.WriteString(kube.CRILogLine(time.Now(), prefix+strconv.Itoa(n))); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	path := f.deployments + "/" + name + "/logs?namespace=" + f.ns + "&follow=true&tail_lines="
	// follower collects, per pod, the numbers of this test's lines.
	type follower struct {
		mu  sync.Mutex
		got map[string][]int
	}
	follow := func(tail int) *follower {
		fl := &follower{got: map[string][]int{}}
		stream := f.sseStream(ctx, t, path+strconv.Itoa(tail), f.deployer)
		go func() {
			for data := range stream {
				var msg struct{ Lines []logLineJSON }
				if strings.HasPrefix(data, "error: ") || json.Unmarshal([]byte(data), &msg) != nil || len(msg.Lines) != 1 {
					t.Errorf("follow: event %q, want one line", data)
					return
				}
				l := msg.Lines[0]
				num, ok := strings.CutPrefix(l.Line, prefix)
				if !ok {
					continue // another test's line
				}
				n, err := strconv.Atoi(num)
				if err != nil || l.Container != kube.FollowContainer || l.Time.IsZero() {
					t.Errorf("follow: line %+v, want container %s, a time and a number", l, kube.FollowContainer)
				}
				fl.mu.Lock()
				fl.got[l.Pod] = append(fl.got[l.Pod], n)
				fl.mu.Unlock()
			}
		}()
		return fl
	}
	// lines returns what fl has of each pod after the last line 0 (the
	// lines appended until every stream was open).
	lines := func(fl *follower) map[string][]int {
		fl.mu.Lock()
		defer fl.mu.Unlock()
		out := map[string][]int{}
		for pod, ns := range fl.got {
			i := len(ns)
			for i > 0 && ns[i-1] != 0 {
				i--
			}
			out[pod] = append([]int{}, ns[i:]...)
		}
		return out
	}
	a, b := follow(1), follow(1)
	eventually(t, time.Minute, "both clients follow both pods", func() bool {
		write(0) // kwok may not watch the file yet
		for _, fl := range []*follower{a, b} {
			fl.mu.Lock()
			n := len(fl.got)
			fl.mu.Unlock()
			if n != 2 {
				return false
			}
		}
		return true
	})
	// What follows the last line 0 is what counts.
	write(1)
	write(2)
	want := fmt.Sprint([]int{1, 2})
	for name, fl := range map[string]*follower{"a": a, "b": b} {
		eventually(t, time.Minute, name+" gets lines 1 and 2 of both pods", func() bool {
			got := lines(fl)
			for _, ns := range got {
				if len(ns) > 2 || fmt.Sprint(ns) != fmt.Sprint([]int{1, 2}[:len(ns)]) {
					t.Fatalf("%s: lines %v, want %s of each pod, once, in order", name, got, want)
				}
				if len(ns) < 2 {
					return false
				}
			}
			return len(got) == 2
		})
	}
	c := follow(2)
	eventually(t, time.Minute, "c gets its tail of both pods", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.got) < 2 {
			return false
		}
		for _, ns := range c.got {
			if len(ns) == 0 || ns[len(ns)-1] != 2 {
				return false
			}
		}
		return true
	})
	write(3)
	for name, fl := range map[string]*follower{"a": a, "b": b, "c": c} {
		eventually(t, time.Minute, name+" gets line 3 of both pods", func() bool {
			fl.mu.Lock()
			defer fl.mu.Unlock()
			for _, ns := range fl.got {
				if ns[len(ns)-1] != 3 {
					return false
				}
			}
			return true
		})
	}
	for name, fl := range map[string]*follower{"a": a, "b": b} {
		got := lines(fl)
		for _, ns := range got {
			if fmt.Sprint(ns) != fmt.Sprint([]int{1, 2, 3}) || len(got) != 2 {
				t.Errorf("%s: lines %v, want 1 2 3 of each pod", name, got)
			}
		}
	}
	// c's tail: the last two lines of the log when it joined (another
	// test may have appended one of its own since line 2).
	c.mu.Lock()
	for pod, ns := range c.got {
		if s := fmt.Sprint(ns); s != fmt.Sprint([]int{1, 2, 3}) && s != fmt.Sprint([]int{2, 3}) {
			t.Errorf("c: pod %s lines %s, want its tail (1) 2, then 3", pod, s)
		}
	}
	c.mu.Unlock()
	cancel()
}

// followChart is kube.FollowChart's archive, named tailer.
func followChart(t *testing.T) []byte {
	t.Helper()
	data, err := kube.FollowChart(t.TempDir(), "tailer")
	if err != nil {
		t.Fatal(err)
	}
	return data
}
