package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/slipwayhq/slipway/pkg/oidctest"
	"github.com/slipwayhq/slipway/pkg/testenv"
	"github.com/slipwayhq/slipway/tools/internal/devenv/kube"
	"github.com/slipwayhq/slipway/tools/internal/localrun"
)

// opJSON is an operation as REST shows it, with what these tests compare.
type opJSON struct {
	ID                string
	State             string
	Kind              string
	IdempotencyKey    string    `json:"idempotency_key"`
	CreateTime        time.Time `json:"create_time"`
	StartTime         time.Time `json:"start_time"`
	EndTime           time.Time `json:"end_time"`
	DroppedEventCount int       `json:"dropped_event_count"`
	Error             struct{ Code, Message string }
	Result            struct{ Release releaseJSON }
	Events            []struct{ Phase, Message string }
}

type releaseJSON struct {
	Name, Namespace, Status, Operation, Description string
	Revision                                        int
	ChartVersion                                    string `json:"chart_version"`
}

const (
	stateQueued    = "OPERATION_STATE_QUEUED"
	stateRunning   = "OPERATION_STATE_RUNNING"
	stateSucceeded = "OPERATION_STATE_SUCCEEDED"
	stateFailed    = "OPERATION_STATE_FAILED"
	stateCancelled = "OPERATION_STATE_CANCELLED"
)

func finished(state string) bool {
	return state == stateSucceeded || state == stateFailed || state == stateCancelled
}

// opsFixture is a stack with cluster c1 and the environment's chart
// repository in the bootstrap org, and a namespace of this run's own: the
// environment's cluster outlives the stack.
type opsFixture struct {
	*stack
	env             testenv.Env
	owner, deployer string
	org             string // "/orgs/default"
	deployments     string // org + "/clusters/c1/deployments"
	ns              string
}

func newOpsFixture(t *testing.T, processEnv ...string) *opsFixture {
	t.Helper()
	return newOpsFixtureWith(t, nil, processEnv...)
}

// newOpsFixtureWith is newOpsFixture on an environment with parts too
// (testenv's, such as "kubelogs").
func newOpsFixtureWith(t *testing.T, parts []string, processEnv ...string) *opsFixture {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the real stack")
	}
	env := testenv.Get(t, append([]string{"vault", "kube", "registry", "chartrepo"}, parts...)...)
	s := startStack(t, env, append([]string{"SLIPWAY_CATALOG_SYNC_POLL=500ms"}, processEnv...)...)
	f := &opsFixture{stack: s, env: env, org: "/orgs/" + localrun.BootstrapOrg}
	f.owner = s.owner()
	f.deployer = s.token(localrun.BootstrapOrg, f.owner, "DEPLOYER")
	f.deployments = f.org + "/clusters/c1/deployments"
	f.ns = "ops-" + strconv.FormatUint(rand.Uint64()%(1<<40), 36)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.s.RegisterCluster(ctx, "c1", env[kube.EnvKubeconfig("c1")]); err != nil {
		t.Fatal(err)
	}
	if err := s.s.SeedCatalog(ctx, env); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the local repository synced", func() bool {
		var r struct{ Repository repositoryJSON }
		s.do(http.MethodGet, f.org+"/repositories/local", f.owner, nil).decode(t, &r)
		return r.Repository.Sync.ChartCount > 0
	})
	return f
}

func hello(version string) map[string]any {
	return map[string]any{"catalog": map[string]any{"repository": localrun.LocalRepository, "chart": "hello", "version": version}}
}

// send is do for any goroutine: it fails nothing, and sets header.
func (s *stack) send(method, path, token string, body any, header http.Header) (answer, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{}, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.api+path, r)
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	s.mu.Lock()
	s.answers.Write(b)
	s.answers.WriteByte('\n')
	s.mu.Unlock()
	return answer{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// accepted checks that a is 202 with the Location of the operation in its
// body, and returns that operation.
func accepted(a answer) (opJSON, error) {
	var got struct{ Operation opJSON }
	if a.status != http.StatusAccepted {
		return opJSON{}, fmt.Errorf("status %d, want 202: %s", a.status, a.body)
	}
	if err := json.Unmarshal(a.body, &got); err != nil {
		return opJSON{}, fmt.Errorf("decode %s: %w", a.body, err)
	}
	if want := "/api/v1/orgs/" + localrun.BootstrapOrg + "/operations/" + got.Operation.ID; got.Operation.ID == "" || a.header.Get("Location") != want {
		return opJSON{}, fmt.Errorf("Location %q, want %q", a.header.Get("Location"), want)
	}
	return got.Operation, nil
}

// submit sends a call that starts an operation and returns the operation.
func (f *opsFixture) submit(t *testing.T, method, path string, body any, header http.Header) opJSON {
	t.Helper()
	a, err := f.send(method, path, f.deployer, body, header)
	if err != nil {
		t.Fatal(err)
	}
	op, err := accepted(a)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return op
}

// operation GETs one operation.
func (f *opsFixture) operation(t *testing.T, id string) opJSON {
	t.Helper()
	var got struct{ Operation opJSON }
	f.expect(f.do(http.MethodGet, f.org+"/operations/"+id, f.deployer, nil), http.StatusOK, "get operation "+id).decode(t, &got)
	return got.Operation
}

// await polls an operation until it finishes.
func (f *opsFixture) await(t *testing.T, id string, within time.Duration) opJSON {
	t.Helper()
	var op opJSON
	eventually(t, within, "operation "+id+" finishes", func() bool {
		op = f.operation(t, id)
		return finished(op.State)
	})
	return op
}

// install installs hello at version as release name, waiting for it, and
// fails unless it made revision 1.
func (f *opsFixture) install(t *testing.T, name, version, values string) opJSON {
	t.Helper()
	op := f.submit(t, http.MethodPost, f.deployments, map[string]any{"name": name, "namespace": f.ns, "chart": hello(version), "values_yaml": values,
		"options": map[string]any{"wait": true, "create_namespace": true, "timeout": "120s"}}, nil)
	op = f.await(t, op.ID, 2*time.Minute)
	if op.State != stateSucceeded || op.Result.Release.Revision != 1 {
		t.Fatalf("install %s: %+v", name, op)
	}
	return op
}

// release GETs the release's latest revision and its active operation.
func (f *opsFixture) release(t *testing.T, name string) (releaseJSON, string) {
	t.Helper()
	var got struct {
		Release         releaseJSON
		ActiveOperation string `json:"active_operation"`
	}
	f.expect(f.do(http.MethodGet, f.deployments+"/"+name+"?namespace="+f.ns, f.deployer, nil), http.StatusOK, "get release "+name).decode(t, &got)
	return got.Release, got.ActiveOperation
}

// helmRecord is one of Helm's own release records, as its Secret's labels
// tell.
type helmRecord struct {
	version int
	status  string
}

// helmRecords reads Helm's records of a release from the cluster, oldest
// first.
func (f *opsFixture) helmRecords(t *testing.T, name string) []helmRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := f.kube(t).CoreV1().Secrets(f.ns).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	var out []helmRecord
	for _, s := range list.Items {
		v, err := strconv.Atoi(s.Labels["version"])
		if err != nil {
			t.Fatalf("helm record %s: version label %q", s.Name, s.Labels["version"])
		}
		out = append(out, helmRecord{version: v, status: s.Labels["status"]})
	}
	slices.SortFunc(out, func(a, b helmRecord) int { return a.version - b.version })
	return out
}

// TestConcurrentUpgrades fires 50 upgrades of one release at once: all
// are accepted and queue behind each other, none meets Helm's "another
// operation is in progress", they run one at a time (revisions 2..51, no
// gap, none starting before the one before ended), and the values of the
// last to run are the release's. A no_queue request meanwhile answers 409;
// upgrades sent one after another run in their order, ids and create_time.
func TestConcurrentUpgrades(t *testing.T) {
	f := newOpsFixture(t)
	const name, n = "conc", 50
	f.install(t, name, "0.2.0", "message: \"m-0\"\n")
	upgrade := func(i int) map[string]any {
		return map[string]any{"namespace": f.ns, "chart": hello("0.2.0"), "values_yaml": fmt.Sprintf("message: \"m-%d\"\n", i)}
	}

	ops := make([]opJSON, n)
	errs := make([]error, n)
	message := map[string]string{} // operation id -> its message
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			a, err := f.send(http.MethodPut, f.deployments+"/"+name, f.deployer, upgrade(i+1), nil)
			if err == nil {
				ops[i], err = accepted(a)
			}
			errs[i] = err
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("upgrade %d: %v", i+1, err)
		}
		message[ops[i].ID] = fmt.Sprintf("m-%d", i+1)
	}
	if len(message) != n {
		t.Fatalf("%d distinct operations for %d upgrades", len(message), n)
	}

	// The queue is long now: a request that will not queue is refused, and
	// starts nothing.
	body := upgrade(999)
	body["no_queue"] = true
	a := f.do(http.MethodPut, f.deployments+"/"+name, f.deployer, body)
	if a.status != http.StatusConflict || a.code(t) != "aborted" {
		t.Errorf("no_queue upgrade while busy: %d %s; want 409 aborted", a.status, a.body)
	}
	if _, active := f.release(t, name); active == "" {
		t.Error("the release shows no active operation while 50 are queued")
	}

	var all []opJSON
	for _, op := range ops {
		all = append(all, f.await(t, op.ID, 5*time.Minute))
	}
	for i, op := range all {
		if op.State != stateSucceeded || strings.Contains(op.Error.Message, "another operation") {
			t.Fatalf("upgrade %d (%s): %s %s: %s", i+1, op.ID, op.State, op.Error.Code, op.Error.Message)
		}
	}
	// One at a time: in the order they ran, revisions 2..51, each started
	// once the one before ended.
	slices.SortFunc(all, func(a, b opJSON) int { return a.Result.Release.Revision - b.Result.Release.Revision })
	for i, op := range all {
		if want := i + 2; op.Result.Release.Revision != want {
			t.Errorf("revisions made: the %d-th is %d, want %d", i+1, op.Result.Release.Revision, want)
		}
		if i > 0 && op.StartTime.Before(all[i-1].EndTime) {
			t.Errorf("revision %d started %s, before revision %d ended %s", op.Result.Release.Revision, op.StartTime.Format(time.StampMicro),
				all[i-1].Result.Release.Revision, all[i-1].EndTime.Format(time.StampMicro))
		}
	}
	t.Run("ran in id and create_time order", func(t *testing.T) {
		for i, op := range all[1:] {
			if prev := all[i]; op.ID < prev.ID || op.CreateTime.Before(prev.CreateTime) {
				t.Errorf("revision %d made by %s created %s, after revision %d by %s created %s", op.Result.Release.Revision, op.ID,
					op.CreateTime.Format(time.StampMicro), prev.Result.Release.Revision, prev.ID, prev.CreateTime.Format(time.StampMicro))
			}
		}
	})

	rel, active := f.release(t, name)
	last := all[n-1]
	if rel.Revision != n+1 || rel.Status != "RELEASE_STATUS_DEPLOYED" || rel.Operation != last.ID || active != "" {
		t.Errorf("release after the upgrades = %+v, active %q; want revision %d by %s", rel, active, n+1, last.ID)
	}
	var values struct {
		ValuesYaml string `json:"values_yaml"`
	}
	f.expect(f.do(http.MethodGet, f.deployments+"/"+name+"/values?namespace="+f.ns, f.deployer, nil), http.StatusOK, "values").decode(t, &values)
	if want := "message: " + message[last.ID]; !strings.Contains(values.ValuesYaml, want) {
		t.Errorf("values after the upgrades = %q; want the last to run, %q", values.ValuesYaml, want)
	}
	if recs := f.helmRecords(t, name); len(recs) == 0 || recs[len(recs)-1] != (helmRecord{n + 1, "deployed"}) {
		t.Errorf("helm's records = %v; want revision %d deployed last", recs, n+1)
	}

	// Idle again, no_queue is accepted.
	op := f.await(t, f.submit(t, http.MethodPut, f.deployments+"/"+name, body, nil).ID, time.Minute)
	if op.State != stateSucceeded || op.Result.Release.Revision != n+2 {
		t.Errorf("no_queue upgrade of an idle release: %+v", op)
	}
	// Upgrades sent one after another's answer run in that order, which
	// their ids and create_time follow.
	var seq []opJSON
	for i := range 5 {
		seq = append(seq, f.submit(t, http.MethodPut, f.deployments+"/"+name, upgrade(100+i), nil))
	}
	for i, op := range seq {
		op = f.await(t, op.ID, 2*time.Minute)
		if op.State != stateSucceeded || op.Result.Release.Revision != n+3+i {
			t.Errorf("upgrade %d of 5 sent in turn: %s revision %d; want revision %d", i+1, op.State, op.Result.Release.Revision, n+3+i)
		}
		if i > 0 && (op.ID <= seq[i-1].ID || op.CreateTime.Before(seq[i-1].CreateTime)) {
			t.Errorf("upgrade %d of 5 sent in turn: id %s created %s; the one before %s created %s", i+1, op.ID, op.CreateTime, seq[i-1].ID, seq[i-1].CreateTime)
		}
	}
}

// TestIdempotency retries calls with an Idempotency-Key: the same key and
// request answer the operation the first call started, before and after
// it ran, and make one release; the same key with another request is 422;
// a new key is a new request (for an install of a release that exists
// now, 409 already_exists; for an upgrade, a new operation). A malformed
// key reaches no service.
func TestIdempotency(t *testing.T) {
	f := newOpsFixture(t)
	const name = "idem"
	key := func(k string) http.Header { return http.Header{"Idempotency-Key": {k}} }
	// It waits for its pod, so that the retries below come while it runs.
	opts := map[string]any{"create_namespace": true, "wait": true, "timeout": "120s"}
	install := map[string]any{"name": name, "namespace": f.ns, "chart": hello("0.2.0"), "values_yaml": "message: \"once\"\n", "options": opts}
	other := map[string]any{"name": name, "namespace": f.ns, "chart": hello("0.2.0"), "values_yaml": "message: \"twice\"\n", "options": opts}
	post := func(body any, h http.Header) answer {
		t.Helper()
		a, err := f.send(http.MethodPost, f.deployments, f.deployer, body, h)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}

	first := f.submit(t, http.MethodPost, f.deployments, install, key("k1"))
	if first.IdempotencyKey != "k1" {
		t.Errorf("operation's idempotency_key = %q, want k1", first.IdempotencyKey)
	}
	if again := f.submit(t, http.MethodPost, f.deployments, install, key("k1")); again.ID != first.ID {
		t.Errorf("retry with the same key: operation %s, want %s", again.ID, first.ID)
	}
	if a := post(other, key("k1")); a.status != http.StatusUnprocessableEntity || a.code(t) != "unprocessable" {
		t.Errorf("same key, another request, while the install runs: %d %s; want 422 unprocessable", a.status, a.body)
	}
	if op := f.await(t, first.ID, 2*time.Minute); op.State != stateSucceeded || op.Result.Release.Revision != 1 {
		t.Fatalf("install: %+v", op)
	}
	// A retry after the work is done (the first answer was lost) still
	// answers the operation it started, for 24 hours.
	t.Run("retry once the install ran", func(t *testing.T) {
		if a := post(install, key("k1")); a.status != http.StatusAccepted {
			t.Errorf("retry with the same key: %d %s; want 202 and operation %s", a.status, a.body, first.ID)
		} else if op, err := accepted(a); err != nil || op.ID != first.ID {
			t.Errorf("retry with the same key: %+v, %v; want operation %s", op, err, first.ID)
		}
		if a := post(other, key("k1")); a.status != http.StatusUnprocessableEntity || a.code(t) != "unprocessable" {
			t.Errorf("same key, another request: %d %s; want 422 unprocessable", a.status, a.body)
		}
	})
	// A new key is a new request: the release exists now.
	if a := post(install, key("k2")); a.status != http.StatusConflict || a.code(t) != "already_exists" {
		t.Errorf("install with a new key: %d %s; want 409 already_exists", a.status, a.body)
	}
	var list struct{ Operations []opJSON }
	f.expect(f.do(http.MethodGet, f.org+"/operations?release="+name+"&namespace="+f.ns, f.deployer, nil), http.StatusOK, "list operations").decode(t, &list)
	if len(list.Operations) != 1 || list.Operations[0].ID != first.ID {
		t.Errorf("operations on the release = %+v; want the one install", list.Operations)
	}
	if recs := f.helmRecords(t, name); len(recs) != 1 || recs[0] != (helmRecord{1, "deployed"}) {
		t.Errorf("helm's records = %v; want revision 1 deployed", recs)
	}

	// Upgrades: the same key and request are one operation, a new key
	// another; the install's key on an upgrade is another request.
	upgrade := map[string]any{"namespace": f.ns, "chart": hello("0.2.0"), "values_yaml": "message: \"up\"\n"}
	put := func(body any, h http.Header) answer {
		t.Helper()
		a, err := f.send(http.MethodPut, f.deployments+"/"+name, f.deployer, body, h)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	up1 := f.submit(t, http.MethodPut, f.deployments+"/"+name, upgrade, key("u1"))
	if again := f.submit(t, http.MethodPut, f.deployments+"/"+name, upgrade, key("u1")); again.ID != up1.ID {
		t.Errorf("upgrade retried with the same key: operation %s, want %s", again.ID, up1.ID)
	}
	up2 := f.submit(t, http.MethodPut, f.deployments+"/"+name, upgrade, key("u2"))
	if up2.ID == up1.ID {
		t.Errorf("upgrade with a new key answered the first one's operation %s", up1.ID)
	}
	if a := put(upgrade, key("k1")); a.status != http.StatusUnprocessableEntity || a.code(t) != "unprocessable" {
		t.Errorf("the install's key on an upgrade: %d %s; want 422 unprocessable", a.status, a.body)
	}
	// The key may also come in the body; both are fine when equal.
	withKey := map[string]any{"namespace": f.ns, "chart": hello("0.2.0"), "values_yaml": "message: \"up\"\n", "idempotency_key": "u1"}
	if op, err := accepted(put(withKey, key("u1"))); err != nil || op.ID != up1.ID {
		t.Errorf("the same key in body and header: %+v, %v; want operation %s", op, err, up1.ID)
	}
	if op, err := accepted(put(withKey, nil)); err != nil || op.ID != up1.ID {
		t.Errorf("the key in the body only: %+v, %v; want operation %s", op, err, up1.ID)
	}
	for _, op := range []opJSON{up1, up2} {
		if got := f.await(t, op.ID, 2*time.Minute); got.State != stateSucceeded {
			t.Errorf("upgrade %s: %+v", op.ID, got)
		}
	}
	if rel, _ := f.release(t, name); rel.Revision != 3 {
		t.Errorf("release after two upgrades = %+v; want revision 3", rel)
	}

	// Malformed keys are refused at the edge.
	for _, tc := range []struct {
		name   string
		header http.Header
		body   map[string]any
		field  string
	}{
		{"too long", key(strings.Repeat("k", 256)), upgrade, "Idempotency-Key"},
		{"empty", key(""), upgrade, "Idempotency-Key"},
		{"control character", key("k\t1"), upgrade, "Idempotency-Key"},
		{"not ASCII", key("clé"), upgrade, "Idempotency-Key"},
		{"twice", http.Header{"Idempotency-Key": {"a", "b"}}, upgrade, "Idempotency-Key"},
		{"another key in the body", key("u9"), withKey, "idempotency_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := f.send(http.MethodPut, f.deployments+"/"+name, f.deployer, tc.body, tc.header)
			if err != nil {
				t.Fatal(err)
			}
			var p struct {
				Code   string
				Errors []struct{ Field string }
			}
			if err := json.Unmarshal(a.body, &p); err != nil || a.status != http.StatusBadRequest || p.Code != "invalid_argument" ||
				len(p.Errors) == 0 || p.Errors[0].Field != tc.field {
				t.Errorf("%d %s; want 400 invalid_argument naming %s", a.status, a.body, tc.field)
			}
		})
	}
	if rel, active := f.release(t, name); rel.Revision != 3 || active != "" {
		t.Errorf("release after the refused calls = %+v, active %q; want revision 3, idle", rel, active)
	}

	// An uninstall retried with its key once it ran is the same one too.
	del := f.deployments + "/" + name + "?namespace=" + f.ns
	un := f.submit(t, http.MethodDelete, del, nil, key("d1"))
	if got := f.await(t, un.ID, 2*time.Minute); got.State != stateSucceeded {
		t.Fatalf("uninstall: %+v", got)
	}
	t.Run("retry once the uninstall ran", func(t *testing.T) {
		a, err := f.send(http.MethodDelete, del, f.deployer, nil, key("d1"))
		if err != nil {
			t.Fatal(err)
		}
		if op, err := accepted(a); err != nil || op.ID != un.ID {
			t.Errorf("uninstall retried with its key: %v; want operation %s", err, un.ID)
		}
	})
}

// neverReady are values of the hello charts whose pod is never scheduled
// (as helmexec's tests make it): kwok makes a pod ready only once it is
// bound to one of its nodes, and none carries this label.
const neverReady = "nodeSelector:\n  slipway.test/no-such-node: \"true\"\n"

// watchOperation watches an operation through REST, as server-sent
// events (sse) or newline-delimited JSON, and returns the snapshots it
// read, each as it came, until the stream ended.
func (f *opsFixture) watchOperation(ctx context.Context, id string, sse bool) ([]opJSON, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.api+f.org+"/operations/"+id+":watch", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+f.deployer)
	if sse {
		req.Header.Set("Accept", "text/event-stream")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	wantType := "application/json"
	if sse {
		wantType = "text/event-stream"
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, wantType) {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("watch: %d %s: %s", resp.StatusCode, ct, b)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 8<<20)
	var (
		out         []opJSON
		event, data string
	)
	for sc.Scan() {
		line := sc.Text()
		var msg struct{ Operation opJSON }
		switch {
		case !sse:
			var l struct {
				Result *json.RawMessage
				Error  *json.RawMessage
			}
			if err := json.Unmarshal([]byte(line), &l); err != nil || l.Error != nil || l.Result == nil {
				return out, fmt.Errorf("watch: line %q: %v", line, err)
			}
			if err := json.Unmarshal(*l.Result, &msg); err != nil {
				return out, fmt.Errorf("watch: line %q: %w", line, err)
			}
			out = append(out, msg.Operation)
		case strings.HasPrefix(line, ":"): // a keep-alive
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data += strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")
		case line == "" && data != "":
			if event != "" && event != "message" {
				return out, fmt.Errorf("watch: event %s: %s", event, data)
			}
			if err := json.Unmarshal([]byte(data), &msg); err != nil {
				return out, fmt.Errorf("watch: event %q: %w", data, err)
			}
			out = append(out, msg.Operation)
			event, data = "", ""
		}
	}
	return out, sc.Err()
}

// stateRank orders an operation's states: it only moves forward.
var stateRank = map[string]int{stateQueued: 1, stateRunning: 2, stateSucceeded: 3, stateFailed: 3, stateCancelled: 3}

// checkSnapshots fails unless snaps are one operation's life as it
// happened: states forward only, from queued through running to
// succeeded, the one finished snapshot last, and events that only grow.
func checkSnapshots(t *testing.T, how, id string, snaps []opJSON) {
	t.Helper()
	var states []string
	for i, op := range snaps {
		states = append(states, strings.TrimPrefix(op.State, "OPERATION_STATE_"))
		if op.ID != id {
			t.Errorf("%s: snapshot %d is of operation %s, want %s", how, i, op.ID, id)
		}
		if finished(op.State) != (i == len(snaps)-1) {
			t.Errorf("%s: snapshot %d is %s; only the last is finished", how, i, op.State)
		}
		if i == 0 {
			continue
		}
		prev := snaps[i-1]
		if stateRank[op.State] < stateRank[prev.State] {
			t.Errorf("%s: state went back from %s to %s", how, prev.State, op.State)
		}
		if n, m := len(prev.Events)+prev.DroppedEventCount, len(op.Events)+op.DroppedEventCount; m < n {
			t.Errorf("%s: snapshot %d has %d events, the one before %d", how, i, m, n)
		} else if op.DroppedEventCount == 0 && !slices.Equal(prev.Events, op.Events[:len(prev.Events)]) {
			t.Errorf("%s: snapshot %d rewrote earlier events: %v, then %v", how, i, prev.Events, op.Events)
		}
	}
	t.Logf("%s: %d snapshots: %s", how, len(snaps), strings.Join(states, " "))
	if len(snaps) == 0 || snaps[len(snaps)-1].State != stateSucceeded {
		t.Fatalf("%s: snapshots end %v; want SUCCEEDED", how, states)
	}
	if !slices.Contains(states, "QUEUED") || !slices.Contains(states, "RUNNING") {
		t.Errorf("%s: states %v; want QUEUED and RUNNING before SUCCEEDED", how, states)
	}
}

// TestOperationStream watches an upgrade from the moment it is accepted,
// as server-sent events and as newline-delimited JSON at once: each shows
// it queued (behind an upgrade that holds the release), running with
// progress events that only grow, and succeeded, and then ends. A
// finished operation's watch is its one last snapshot; a missing one is
// 404 before any event.
func TestOperationStream(t *testing.T) {
	f := newOpsFixture(t)
	const name = "stream"
	f.install(t, name, "0.1.0", "")
	// It holds the release for its whole timeout, and then rolls back.
	blocker := f.submit(t, http.MethodPut, f.deployments+"/"+name, map[string]any{"namespace": f.ns, "chart": hello("0.2.0"),
		"values_yaml": neverReady, "options": map[string]any{"atomic": true, "timeout": "5s"}}, nil)
	op := f.submit(t, http.MethodPut, f.deployments+"/"+name, map[string]any{"namespace": f.ns, "chart": hello("0.2.0"),
		"values_yaml": "message: \"streamed\"\n", "options": map[string]any{"wait": true, "timeout": "120s"}}, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var (
		wg    sync.WaitGroup
		snaps [2][]opJSON
		errs  [2]error
	)
	for i, sse := range []bool{true, false} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			snaps[i], errs[i] = f.watchOperation(ctx, op.ID, sse)
		}()
	}
	wg.Wait()
	for i, how := range []string{"server-sent events", "NDJSON"} {
		if errs[i] != nil {
			t.Errorf("%s: %v", how, errs[i])
		}
		checkSnapshots(t, how, op.ID, snaps[i])
	}
	if got := f.operation(t, blocker.ID); got.State != stateFailed {
		t.Errorf("the blocking upgrade: %+v; want FAILED", got)
	}
	final := f.operation(t, op.ID)
	for i, how := range []string{"server-sent events", "NDJSON"} {
		last := snaps[i][len(snaps[i])-1]
		if last.Result.Release.Revision != final.Result.Release.Revision || !last.EndTime.Equal(final.EndTime) {
			t.Errorf("%s: last snapshot %+v; GET says %+v", how, last, final)
		}
	}
	var phases []string
	for _, e := range final.Events {
		if len(phases) == 0 || phases[len(phases)-1] != e.Phase {
			phases = append(phases, e.Phase)
		}
	}
	t.Logf("phases: %v", phases)
	for _, want := range [][2]string{{"resolving", "applying"}, {"applying", "waiting"}, {"waiting", "recording"}} {
		a, b := slices.Index(phases, want[0]), slices.Index(phases, want[1])
		if a < 0 || b < 0 || a > b {
			t.Errorf("phases %v; want %s before %s", phases, want[0], want[1])
		}
	}

	// A finished operation: its last snapshot, and the end.
	for _, sse := range []bool{true, false} {
		got, err := f.watchOperation(ctx, op.ID, sse)
		if err != nil || len(got) != 1 || got[0].State != stateSucceeded {
			t.Errorf("watch a finished operation (sse %t): %d snapshots, %v; want its one last", sse, len(got), err)
		}
	}
	// A missing one: a problem, before any event.
	const missing = "op_00000000000000000000000000"
	for _, accept := range []string{"text/event-stream", ""} {
		a, err := f.send(http.MethodGet, f.org+"/operations/"+missing+":watch", f.deployer, nil, http.Header{"Accept": {accept}})
		if err != nil {
			t.Fatal(err)
		}
		if a.status != http.StatusNotFound || !strings.HasPrefix(a.header.Get("Content-Type"), "application/problem+json") {
			t.Errorf("watch a missing operation (Accept %q): %d %s %s; want a 404 problem", accept, a.status, a.header.Get("Content-Type"), a.body)
		}
	}
}

// TestWaitAtomic upgrades to values whose pod never becomes ready, with
// wait, atomic and a 10 s timeout: the operation fails as timed out once
// the timeout passed, and the release is rolled back to what ran before
// (0.1.0, deployed), as the API, Helm's own records and the cluster's
// Deployment all say.
func TestWaitAtomic(t *testing.T) {
	f := newOpsFixture(t)
	const name = "atomic"
	f.install(t, name, "0.1.0", "")
	op := f.submit(t, http.MethodPut, f.deployments+"/"+name, map[string]any{"namespace": f.ns, "chart": hello("0.2.0"), "values_yaml": neverReady,
		"options": map[string]any{"wait": true, "atomic": true, "timeout": "10s"}}, nil)
	op = f.await(t, op.ID, 2*time.Minute)
	t.Logf("operation %s: %s after %s: %s: %s", op.ID, op.State, op.EndTime.Sub(op.StartTime).Round(time.Millisecond), op.Error.Code, op.Error.Message)
	if op.State != stateFailed || op.Error.Code != "DEADLINE_EXCEEDED" || !strings.Contains(op.Error.Message, "not ready") {
		t.Errorf("upgrade: %s %s %q; want FAILED DEADLINE_EXCEEDED saying what was not ready", op.State, op.Error.Code, op.Error.Message)
	}
	if took := op.EndTime.Sub(op.StartTime); took < 10*time.Second {
		t.Errorf("upgrade failed after %s, before its 10s timeout", took)
	}
	if !slices.ContainsFunc(op.Events, func(e struct{ Phase, Message string }) bool { return e.Phase == "rolling-back" }) {
		t.Errorf("no rolling-back event: %+v", op.Events)
	}

	rel, active := f.release(t, name)
	if rel.Status != "RELEASE_STATUS_DEPLOYED" || rel.ChartVersion != "0.1.0" || active != "" {
		t.Errorf("release after the failed upgrade = %+v, active %q; want 0.1.0 deployed", rel, active)
	}
	recs := f.helmRecords(t, name)
	if want := []helmRecord{{1, "superseded"}, {2, "failed"}, {3, "deployed"}}; !slices.Equal(recs, want) {
		t.Errorf("helm's records = %v; want %v", recs, want)
	}
	if len(recs) > 0 && rel.Revision != recs[len(recs)-1].version {
		t.Errorf("the API says revision %d, Helm %d", rel.Revision, recs[len(recs)-1].version)
	}
	var hist struct{ Releases []releaseJSON }
	f.expect(f.do(http.MethodGet, f.deployments+"/"+name+"/history?namespace="+f.ns, f.deployer, nil), http.StatusOK, "history").decode(t, &hist)
	var got []string
	for _, r := range hist.Releases {
		got = append(got, fmt.Sprintf("%d %s %s", r.Revision, strings.TrimPrefix(r.Status, "RELEASE_STATUS_"), r.ChartVersion))
	}
	if want := []string{"3 DEPLOYED 0.1.0", "2 FAILED 0.2.0", "1 SUPERSEDED 0.1.0"}; !slices.Equal(got, want) {
		t.Errorf("history = %q; want %q", got, want)
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", f.env[kube.EnvKubeconfig("c1")])
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d, err := cs.AppsV1().Deployments(f.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sel := d.Spec.Template.Spec.NodeSelector; len(sel) != 0 {
		t.Errorf("the Deployment still selects nodes %v after the rollback", sel)
	}
}

// TestReleasesCrash kills the releases service with SIGKILL at three random
// moments while 50 operations run on five releases (per release: an
// install, then seven upgrades, a rollback and an upgrade queued at once),
// restarting it each time. Every operation reaches a terminal state, once:
// one finished before a crash is not run again; each release's succeeded
// operations made one revision each, in order; no Helm record is left
// pending; the ledger's head is Helm's newest record. An operation fails
// only when crashes interrupted every attempt it had, saying so.
func TestReleasesCrash(t *testing.T) {
	// The test polls 50 operations: the gateway's per-caller limit is off.
	f := newOpsFixture(t, "SLIPWAY_RELEASES_OPERATION_LEASE=5s", "SLIPWAY_GATEWAY_RATE_PER_CALLER=0", "SLIPWAY_GATEWAY_RATE_PER_IP=0")
	const releases, kills = 5, 3
	type planned struct {
		release string
		kind    string
		id      string
	}
	var plan []planned
	for r := range releases {
		name := fmt.Sprintf("crash-%d", r)
		op := f.submit(t, http.MethodPost, f.deployments, map[string]any{"name": name, "namespace": f.ns, "chart": hello("0.2.0"),
			"values_yaml": "message: \"c-0\"\n", "options": map[string]any{"wait": true, "create_namespace": true, "timeout": "120s"}}, nil)
		plan = append(plan, planned{name, "OPERATION_KIND_INSTALL", op.ID})
	}
	// An upgrade is accepted once the ledger has the release: the
	// installs run first (the crashes may still meet their last steps).
	for _, p := range plan {
		f.await(t, p.id, 2*time.Minute)
	}
	for r := range releases {
		name := fmt.Sprintf("crash-%d", r)
		var op opJSON
		for i := 1; i <= 9; i++ {
			if i == 8 {
				op = f.submit(t, http.MethodPost, f.deployments+"/"+name+"/rollback", map[string]any{"namespace": f.ns,
					"options": map[string]any{"wait": true, "timeout": "120s"}}, nil)
				plan = append(plan, planned{name, "OPERATION_KIND_ROLLBACK", op.ID})
				continue
			}
			op = f.submit(t, http.MethodPut, f.deployments+"/"+name, map[string]any{"namespace": f.ns, "chart": hello("0.2.0"),
				"values_yaml": fmt.Sprintf("message: \"c-%d\"\n", i), "options": map[string]any{"wait": true, "timeout": "120s"}}, nil)
			plan = append(plan, planned{name, "OPERATION_KIND_UPGRADE", op.ID})
		}
	}
	if len(plan) != 50 {
		t.Fatalf("%d operations planned, want 50", len(plan))
	}
	list := func() map[string]opJSON {
		out := map[string]opJSON{}
		for r := range releases {
			var l struct{ Operations []opJSON }
			f.expect(f.do(http.MethodGet, fmt.Sprintf("%s/operations?page_size=100&release=crash-%d&namespace=%s", f.org, r, f.ns), f.deployer, nil),
				http.StatusOK, "list operations").decode(t, &l)
			for _, op := range l.Operations {
				out[op.ID] = op
			}
		}
		return out
	}
	succeeded := func(m map[string]opJSON) int {
		n := 0
		for _, op := range m {
			if op.State == stateSucceeded {
				n++
			}
		}
		return n
	}
	// Snapshots taken just before each kill: what had finished then must
	// never change.
	finishedBefore := map[string]opJSON{}
	for k := range kills {
		// Some progress since the last restart, then a random moment: the
		// crash may come in any phase of any operation.
		base := succeeded(list())
		eventually(t, 3*time.Minute, fmt.Sprintf("an operation succeeds before crash %d", k+1), func() bool { return succeeded(list()) > base })
		time.Sleep(rand.N(2 * time.Second))
		before := list()
		var running []string
		for id, op := range before {
			if finished(op.State) {
				if _, ok := finishedBefore[id]; !ok {
					finishedBefore[id] = op
				}
			}
			if op.State == stateRunning {
				running = append(running, fmt.Sprintf("%s (%d events, last %q)", id, len(op.Events), lastPhase(op)))
			}
		}
		if err := f.s.Kill("releases"); err != nil {
			t.Fatal(err)
		}
		t.Logf("crash %d: %d of 50 finished, running: %s", k+1, len(finishedBefore), strings.Join(running, ", "))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := f.s.Restart(ctx, "releases")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		// The gateway's connection backs off while the service is down:
		// until it reconnects it answers 503, which clients retry.
		eventually(t, time.Minute, "the gateway reaches the restarted service", func() bool {
			a, err := f.send(http.MethodGet, f.org+"/operations/"+plan[0].id, f.deployer, nil, nil)
			if err != nil || a.status != http.StatusOK && a.status != http.StatusServiceUnavailable {
				t.Fatalf("get operation after the restart: %v %d %s", err, a.status, a.body)
			}
			return a.status == http.StatusOK
		})
	}

	gaveUp := 0
	for r := range releases {
		name := fmt.Sprintf("crash-%d", r)
		var prev opJSON
		var last string
		for _, p := range plan {
			if p.release != name {
				continue
			}
			op := f.await(t, p.id, 4*time.Minute)
			if op.Kind != p.kind {
				t.Errorf("%s %s is a %s", p.kind, p.id, op.Kind)
			}
			if b, ok := finishedBefore[p.id]; ok && (b.State != op.State || !b.EndTime.Equal(op.EndTime) || b.Result.Release.Revision != op.Result.Release.Revision) {
				t.Errorf("%s %s of %s finished before a crash as %s at %s (revision %d), and again as %s at %s (revision %d)", p.kind, p.id, name,
					b.State, b.EndTime, b.Result.Release.Revision, op.State, op.EndTime, op.Result.Release.Revision)
			}
			if op.State != stateSucceeded {
				if op.State == stateFailed && strings.Contains(op.Error.Message, "interrupted") {
					gaveUp++
					t.Logf("%s %s of %s gave up after crashes: %s", p.kind, p.id, name, op.Error.Message)
					continue
				}
				t.Errorf("%s %s of %s: %s %s: %s", p.kind, p.id, name, op.State, op.Error.Code, op.Error.Message)
				continue
			}
			if prev.ID != "" && op.Result.Release.Revision <= prev.Result.Release.Revision {
				t.Errorf("%s: %s made revision %d after %s made %d", name, p.id, op.Result.Release.Revision, prev.ID, prev.Result.Release.Revision)
			}
			if slices.ContainsFunc(op.Events, func(e struct{ Phase, Message string }) bool { return e.Phase == "recovering" }) {
				t.Logf("%s %s of %s recovered: %+v", p.kind, p.id, name, op.Events)
			}
			prev, last = op, p.id
		}
		rel, active := f.release(t, name)
		if rel.Status != "RELEASE_STATUS_DEPLOYED" || rel.Operation != last || rel.Revision != prev.Result.Release.Revision || active != "" {
			t.Errorf("%s after the crashes = %+v, active %q; want the last succeeded operation's revision %d deployed", name, rel, active, prev.Result.Release.Revision)
		}
		recs := f.helmRecords(t, name)
		for _, rc := range recs {
			if strings.HasPrefix(rc.status, "pending") {
				t.Errorf("%s: helm's record %d is left %s", name, rc.version, rc.status)
			}
		}
		if len(recs) == 0 || recs[len(recs)-1] != (helmRecord{rel.Revision, "deployed"}) {
			t.Errorf("%s: helm's records = %v; want revision %d deployed last", name, recs, rel.Revision)
		}
		var hist struct{ Releases []releaseJSON }
		f.expect(f.do(http.MethodGet, f.deployments+"/"+name+"/history?page_size=100&namespace="+f.ns, f.deployer, nil), http.StatusOK, "history").decode(t, &hist)
		// Each succeeded operation completed exactly its result's revision.
		// A revision a crash cut short mid-apply is its operation's too,
		// marked failed by the retry before acting again: not a second run.
		made := map[string][]int{}
		for _, h := range hist.Releases {
			if h.Status == "RELEASE_STATUS_FAILED" && strings.HasSuffix(h.Description, " interrupted: marked failed by Slipway's recovery") {
				continue
			}
			made[h.Operation] = append(made[h.Operation], h.Revision)
		}
		for _, p := range plan {
			if op := f.operation(t, p.id); p.release == name && op.State == stateSucceeded && !slices.Equal(made[p.id], []int{op.Result.Release.Revision}) {
				t.Errorf("%s %s of %s made revisions %v; its result says %d", p.kind, p.id, name, made[p.id], op.Result.Release.Revision)
			}
		}
	}
	t.Logf("50 operations, %d crashes: %d gave up after crashes interrupted every attempt", kills, gaveUp)
}

func lastPhase(op opJSON) string {
	if len(op.Events) == 0 {
		return ""
	}
	return op.Events[len(op.Events)-1].Phase
}

// TestReleasesCrossOrg: another org's member (bob, owner of globex, which
// registers the same real cluster as c1 too) gets 404 on every releases
// route for default's release, application and operations, whether he
// names default (he is not a member) or globex (where none of it is), and
// changes nothing; default's own deployer reaches the same routes.
func TestReleasesCrossOrg(t *testing.T) {
	iss := oidctest.NewIssuer(t)
	f := newOpsFixture(t, "SLIPWAY_GATEWAY_OIDC_ISSUER="+iss.URL())
	const name = "web"
	op := f.install(t, name, "0.1.0", "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ref, err := f.s.SeedRegistry(ctx, f.env)
	if err != nil {
		t.Fatal(err)
	}
	f.expect(f.do(http.MethodPost, f.org+"/images", f.owner, map[string]any{"name": "hello", "version": "1.0.0", "reference": ref}), http.StatusOK, "record image")
	f.expect(f.do(http.MethodPost, f.org+"/applications", f.owner, map[string]any{
		"name": "greeter", "chart": map[string]any{"repository": localrun.LocalRepository, "chart": "hello", "version": "~0.2"}, "image": "hello",
		"targets": []map[string]any{{"name": "dev", "cluster": "c1", "namespace": f.ns}},
	}), http.StatusOK, "create application")
	if got := f.await(t, f.submit(t, http.MethodPost, f.org+"/applications/greeter/targets/dev:deploy", map[string]any{}, nil).ID, 2*time.Minute); got.State != stateSucceeded {
		t.Fatalf("deploy: %+v", got)
	}

	bob := iss.Token(t, "bob-sub", "bob@example.com", "slipway", time.Hour)
	f.expect(f.do(http.MethodPost, "/orgs", bob, map[string]any{"name": "globex"}), http.StatusOK, "bob creates globex")
	kc, err := os.ReadFile(f.env[kube.EnvKubeconfig("c1")])
	if err != nil {
		t.Fatal(err)
	}
	f.expect(f.do(http.MethodPost, "/orgs/globex/clusters", bob, map[string]any{"name": "c1", "kubeconfig": map[string]any{"kubeconfig": kc}}),
		http.StatusOK, "bob registers the same cluster as c1")

	var before struct{ Operations []opJSON }
	f.expect(f.do(http.MethodGet, f.org+"/operations", f.deployer, nil), http.StatusOK, "list operations").decode(t, &before)
	rel, _ := f.release(t, name)

	dep := "/clusters/c1/deployments/" + name
	q := "?namespace=" + f.ns
	upgrade := map[string]any{"namespace": f.ns, "chart": hello("0.2.0")}
	routes := []struct {
		method, path string
		body         any
		header       http.Header
		own          int // what default's deployer gets; 0: not asked (it would change something)
	}{
		{http.MethodGet, dep + q, nil, nil, http.StatusOK},
		{http.MethodHead, dep + q, nil, nil, http.StatusOK},
		{http.MethodPut, dep, upgrade, nil, 0},
		{http.MethodDelete, dep + q, nil, nil, 0},
		{http.MethodPost, dep + "/rollback", map[string]any{"namespace": f.ns}, nil, 0},
		{http.MethodGet, dep + "/history" + q, nil, nil, http.StatusOK},
		{http.MethodGet, dep + "/values" + q, nil, nil, http.StatusOK},
		{http.MethodGet, dep + "/notes" + q, nil, nil, http.StatusOK},
		{http.MethodGet, "/operations/" + op.ID, nil, nil, http.StatusOK},
		{http.MethodPost, "/operations/" + op.ID + ":cancel", map[string]any{}, nil, http.StatusConflict},
		{http.MethodGet, "/operations/" + op.ID + ":watch", nil, http.Header{"Accept": {"text/event-stream"}}, http.StatusOK},
		{http.MethodGet, "/operations/" + op.ID + ":watch", nil, nil, http.StatusOK},
		{http.MethodPost, "/applications/greeter/targets/dev:deploy", map[string]any{}, nil, 0},
		{http.MethodPost, "/applications/greeter/targets/dev:rollback", map[string]any{}, nil, 0},
		{http.MethodGet, "/applications/greeter/targets/dev/releases", nil, nil, http.StatusOK},
	}
	for _, r := range routes {
		t.Run(r.method+" "+strings.SplitN(r.path, "?", 2)[0], func(t *testing.T) {
			if r.own != 0 {
				a, err := f.send(r.method, f.org+r.path, f.deployer, r.body, r.header)
				if err != nil || a.status != r.own {
					t.Errorf("default's deployer: %v %d %s; want %d", err, a.status, a.body, r.own)
				}
			}
			for _, org := range []string{localrun.BootstrapOrg, "globex"} {
				a, err := f.send(r.method, "/orgs/"+org+r.path, bob, r.body, r.header)
				if err != nil {
					t.Fatal(err)
				}
				if org == "globex" && strings.HasSuffix(r.path, "/releases") {
					// The releases service answers a missing application's
					// releases with an empty list, not 404: another org's
					// must answer the same.
					missing, err := f.send(r.method, f.org+"/applications/no-such-app/targets/dev/releases", f.deployer, nil, nil)
					if err != nil || a.status != missing.status || !bytes.Equal(a.body, missing.body) || a.status != http.StatusOK && a.status != http.StatusNotFound {
						t.Errorf("bob in %s: %d %s; a missing application answers %d %s", org, a.status, a.body, missing.status, missing.body)
					}
					continue
				}
				if a.status != http.StatusNotFound || r.method != http.MethodHead && a.code(t) != "not_found" || r.method == http.MethodHead && len(a.body) != 0 {
					t.Errorf("bob in %s: %d %s; want 404 not_found", org, a.status, a.body)
				}
			}
		})
	}
	// globex's own lists hold none of it.
	var deps struct{ Releases []releaseJSON }
	f.expect(f.do(http.MethodGet, "/orgs/globex/clusters/c1/deployments", bob, nil), http.StatusOK, "globex's deployments").decode(t, &deps)
	var globexOps struct{ Operations []opJSON }
	f.expect(f.do(http.MethodGet, "/orgs/globex/operations", bob, nil), http.StatusOK, "globex's operations").decode(t, &globexOps)
	if len(deps.Releases) != 0 || len(globexOps.Operations) != 0 {
		t.Errorf("globex lists releases %+v and operations %+v; want none", deps.Releases, globexOps.Operations)
	}
	// And nothing changed in default.
	var after struct{ Operations []opJSON }
	f.expect(f.do(http.MethodGet, f.org+"/operations", f.deployer, nil), http.StatusOK, "list operations").decode(t, &after)
	if now, _ := f.release(t, name); now != rel || len(after.Operations) != len(before.Operations) {
		t.Errorf("after bob's calls: release %+v (was %+v), %d operations (were %d)", now, rel, len(after.Operations), len(before.Operations))
	}
}
