package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/tools/internal/localrun"
)

// stack is a running Slipway with every REST answer and log line kept, so
// that a test can search them all for secrets at the end.
type stack struct {
	t     *testing.T
	s     *localrun.Stack
	state string
	api   string
	logs  *syncBuffer
	env   map[string]string
	// traces is the stack's own OTLP receiver (a test passing its own
	// OTEL_EXPORTER_OTLP_ENDPOINT overrides it and scans its own).
	traces *otlpReceiver

	mu      sync.Mutex
	answers bytes.Buffer
	orgs    map[string]string // org created through do -> its creator's token
}

func startStack(t *testing.T, env map[string]string, processEnv ...string) *stack {
	t.Helper()
	return startStackWith(t, env, localrun.Options{}, processEnv...)
}

// startStackWith is startStack with localrun options of the test's own
// (its databases, say).
func startStackWith(t *testing.T, env map[string]string, o localrun.Options, processEnv ...string) *stack {
	t.Helper()
	base, err := localrun.FreeBasePort()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	state := t.TempDir()
	envSecrets(env)
	traces := newOTLPReceiver(t)
	o.State, o.BasePort, o.Output, o.Environment = state, base, logs, env
	// The test's own settings come last, so they win over the receiver's.
	o.Env = append(append(traces.env(), o.Env...), processEnv...)
	s, err := localrun.Start(context.Background(), o)
	if err != nil {
		t.Fatalf("start: %v\n%s", err, logs.String())
	}
	st := &stack{t: t, s: s, state: state, api: s.GatewayURL() + "/api/v1", logs: logs, env: env, traces: traces, orgs: map[string]string{}}
	if tok, err := s.BootstrapToken(); err == nil {
		secret("bootstrap owner token", tok)
	}
	// The canary scan: what REST still reaches first, then, once stopped
	// (the last spans and log lines flushed), everything it said.
	t.Cleanup(func() {
		st.report(st.reachable())
		s.Stop()
		st.report(st.said())
		if t.Failed() {
			os.Stderr.WriteString(logs.String())
		}
	})
	return st
}

// seedLocal registers kubeconfig as the bootstrap org's cluster and adds
// the environment's chart repository as "local", and waits for its sync.
func (s *stack) seedLocal(t *testing.T, cluster, kubeconfig string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.s.RegisterCluster(ctx, cluster, kubeconfig); err != nil {
		t.Fatal(err)
	}
	if err := s.s.SeedCatalog(ctx, s.env); err != nil {
		t.Fatal(err)
	}
	owner := s.owner()
	eventually(t, time.Minute, "the local repository synced", func() bool {
		var r struct{ Repository repositoryJSON }
		s.do(http.MethodGet, "/orgs/"+localrun.BootstrapOrg+"/repositories/local", owner, nil).decode(t, &r)
		return r.Repository.Sync.ChartCount > 0
	})
}

// helloChart is version of the local repository's hello chart, as a
// deploy names it.
func helloChart(version string) map[string]any {
	return map[string]any{"catalog": map[string]any{"repository": localrun.LocalRepository, "chart": "hello", "version": version}}
}

// submit makes a mutating call as token and returns the operation it was
// accepted as.
func (s *stack) submit(t *testing.T, token, method, path string, body map[string]any) operationJSON {
	t.Helper()
	var resp struct{ Operation operationJSON }
	a := s.do(method, path, token, body)
	if a.status != http.StatusOK && a.status != http.StatusAccepted {
		t.Fatalf("%s %s: %d %s", method, path, a.status, a.body)
	}
	a.decode(t, &resp)
	return resp.Operation
}

func (s *stack) owner() string {
	s.t.Helper()
	tok, err := s.s.BootstrapToken()
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) decode(t *testing.T, out any) {
	t.Helper()
	if err := json.Unmarshal(a.body, out); err != nil {
		t.Fatalf("decode %s: %v", a.body, err)
	}
}

func (a answer) code(t *testing.T) string {
	t.Helper()
	var p struct{ Code string }
	a.decode(t, &p)
	return p.Code
}

// do sends a REST request; body is marshalled to JSON unless nil.
func (s *stack) do(method, path, token string, body any) answer {
	s.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.api+path, r)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	// A kubeconfig download hands the secret to an admin by design, and a
	// token's creation its secret to its creator (kept for the scan, and
	// left out of that one answer only); every other answer is searched
	// for secrets at the end.
	bare := strings.SplitN(path, "?", 2)[0]
	kept := b
	if method == http.MethodPost && strings.HasSuffix(bare, "/tokens") && resp.StatusCode == http.StatusOK {
		var created map[string]any
		if json.Unmarshal(b, &created) == nil {
			if sec, ok := created["secret"].(string); ok {
				secret("API token", sec)
				delete(created, "secret")
			}
			kept, _ = json.Marshal(created)
		}
	}
	if method == http.MethodPost && bare == "/orgs" && resp.StatusCode == http.StatusOK {
		if m, ok := body.(map[string]any); ok {
			if name, ok := m["name"].(string); ok {
				s.mu.Lock()
				s.orgs[name] = token
				s.mu.Unlock()
			}
		}
	}
	if !strings.HasSuffix(bare, "/config") {
		s.mu.Lock()
		s.answers.Write(kept)
		s.answers.WriteByte('\n')
		s.mu.Unlock()
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// expect fails the test unless the answer has status.
func (s *stack) expect(a answer, status int, what string) answer {
	s.t.Helper()
	if a.status != status {
		s.t.Fatalf("%s: status %d, want %d: %s", what, a.status, status, a.body)
	}
	return a
}

// token creates an API token of role in org with the owner token.
func (s *stack) token(org, owner, role string) string {
	s.t.Helper()
	var tok struct{ Secret string }
	s.expect(s.do(http.MethodPost, "/orgs/"+org+"/tokens", owner, map[string]any{"name": "t-" + strings.ToLower(role), "role": "ROLE_" + role}), http.StatusOK, "create token").decode(s.t, &tok)
	return tok.Secret
}

// seen is everything the stack said: answers, then its processes' logs.
func (s *stack) seen() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.answers.String() + "\n" + s.logs.String()
}

// otlpReceiver takes the processes' OTLP/HTTP trace exports and keeps
// their raw bodies: protobuf carries strings as they are, so a secret in
// any span attribute is a substring of them.
type otlpReceiver struct {
	srv  *httptest.Server
	body syncBuffer

	mu   sync.Mutex
	reqs [][]byte // each export's body, for a test that decodes them
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		_, _ = r.body.Write(b)
		r.mu.Lock()
		r.reqs = append(r.reqs, b)
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// requests returns the bodies of the exports received so far.
func (r *otlpReceiver) requests() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.reqs...)
}

// env points the processes' exporters at the receiver, uncompressed and
// flushed often.
func (r *otlpReceiver) env() []string {
	return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + r.srv.URL, "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_EXPORTER_OTLP_COMPRESSION=none", "OTEL_BSP_SCHEDULE_DELAY=200"}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
