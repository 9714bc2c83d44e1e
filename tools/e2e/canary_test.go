package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/slipwayhq/slipway/pkg/testenv"
	"github.com/slipwayhq/slipway/tools/internal/devenv/kube"
	"github.com/slipwayhq/slipway/tools/internal/localrun"
)

// canaries are every marker planted and every real secret used by any
// test of the package so far: each stack scans for all of them when its
// test ends, so a secret one test hands over is also looked for in what
// the other tests' stacks said.
var canaries = struct {
	mu     sync.Mutex
	values map[string]string // value -> what it is
}{values: map[string]string{}}

// plant returns a unique marker for a secret of kind and records it.
func plant(kind string) string {
	m := "slipway-canary-" + kind + "-" + strings.ToLower(rand.Text())
	secret(kind+" marker", m)
	return m
}

// secret registers a real secret a test uses, if it is long enough to be
// unique (a short one would match by chance), with its base64 form.
func secret(what, value string) {
	if len(value) < 16 {
		return
	}
	canaries.mu.Lock()
	defer canaries.mu.Unlock()
	canaries.values[value] = what
	canaries.values[base64.StdEncoding.EncodeToString([]byte(value))] = what + " (base64)"
}

// envSecrets registers the real secrets of the environment a stack runs
// on: registry password, Vault AppRole secrets, the clusters' client keys
// and tokens from their kubeconfigs.
func envSecrets(env map[string]string) {
	for k, v := range env {
		switch {
		case strings.Contains(k, "PASSWORD"), strings.HasPrefix(k, "VAULT_SECRET_ID"), k == "VAULT_TOKEN":
			secret("environment "+k, v)
		case strings.HasPrefix(k, "KUBECONFIG_"):
			cfg, err := clientcmd.LoadFromFile(v)
			if err != nil {
				continue
			}
			for name, ai := range cfg.AuthInfos {
				secret(k+" user "+name+" client key", string(ai.ClientKeyData))
				secret(k+" user "+name+" token", ai.Token)
			}
		}
	}
}

// finding is a secret found somewhere: where, and a masked excerpt.
type finding struct{ place, what, excerpt string }

func (f finding) String() string {
	return fmt.Sprintf("%s holds a secret (%s): %s", f.place, f.what, f.excerpt)
}

// scanText looks for every registered secret in text.
func scanText(place, text string) []finding {
	canaries.mu.Lock()
	defer canaries.mu.Unlock()
	var out []finding
	for v, what := range canaries.values {
		i := strings.Index(text, v)
		if i < 0 {
			continue
		}
		out = append(out, finding{place: place, what: what, excerpt: masked(text, i, len(v))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].what < out[j].what })
	return out
}

// masked is the text around a hit with the secret itself replaced by its
// first four characters and its length: never the secret in full.
func masked(text string, at, n int) string {
	from, to := max(0, at-40), min(len(text), at+n+40)
	mask := fmt.Sprintf("%s…[%d chars]", text[at:at+min(4, n)], n)
	return fmt.Sprintf("%q", text[from:at]+mask+text[at+n:to])
}

// reachable is what a running stack still answers about its secrets'
// neighbourhood that no test may have read: the audit log of every org
// the test used, and the Kubernetes Events of the devstack clusters.
func (s *stack) reachable() []finding {
	var out []finding
	s.mu.Lock()
	orgs := map[string]string{}
	for org, tok := range s.orgs {
		orgs[org] = tok
	}
	s.mu.Unlock()
	if tok, err := s.s.BootstrapToken(); err == nil {
		orgs[localrun.BootstrapOrg] = tok
	}
	get := func(path, tok string) []byte {
		req, err := http.NewRequest(http.MethodGet, s.api+path, nil)
		if err != nil {
			return nil
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil // the test stopped its stack already
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return b
	}
	for org, tok := range orgs {
		out = append(out, scanText("audit log of org "+org, string(get("/orgs/"+org+"/audit?page_size=1000", tok)))...)
		// Operations with their events (the last 50: a test makes few).
		var ops struct{ Operations []struct{ ID string } }
		b := get("/orgs/"+org+"/operations?page_size=50", tok)
		out = append(out, scanText("operations of org "+org, string(b))...)
		if json.Unmarshal(b, &ops) == nil {
			for _, op := range ops.Operations {
				out = append(out, scanText("operation "+op.ID+" of org "+org, string(get("/orgs/"+org+"/operations/"+op.ID, tok)))...)
			}
		}
	}
	out = append(out, kubeEvents(s.env)...)
	return out
}

// kubeEvents scans the Events of every devstack cluster, all namespaces.
func kubeEvents(env map[string]string) []finding {
	var out []finding
	for k, path := range env {
		if !strings.HasPrefix(k, "KUBECONFIG_") {
			continue
		}
		rc, err := kube.RESTConfig(path)
		if err != nil {
			continue
		}
		cs, err := kubernetes.NewForConfig(rc)
		if err != nil {
			continue
		}
		evs, err := cs.CoreV1().Events("").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			out = append(out, finding{place: "events of " + k, what: "unreadable", excerpt: err.Error()})
			continue
		}
		var b strings.Builder
		for _, e := range evs.Items {
			fmt.Fprintf(&b, "%s %s %s %s %s %s\n", e.Namespace, e.Name, e.Reason, e.Message, e.InvolvedObject.Name, e.InvolvedObject.FieldPath)
			for k, v := range e.Annotations {
				fmt.Fprintf(&b, "%s=%s\n", k, v)
			}
		}
		out = append(out, scanText("Kubernetes events of "+k, b.String())...)
	}
	return out
}

// said scans what the stack answered, logged and traced.
func (s *stack) said() []finding {
	s.mu.Lock()
	answers := s.answers.String()
	s.mu.Unlock()
	out := scanText("REST answers", answers)
	out = append(out, scanText("process logs", s.logs.String())...)
	if s.traces != nil {
		out = append(out, scanText("trace exports", s.traces.body.String())...)
	}
	return out
}

// scanCanaries is run by every stack when its test ends.
func (s *stack) report(fs []finding) {
	for _, f := range fs {
		if f.what == "unreadable" {
			s.t.Logf("canary scan: %s: %s", f.place, f.excerpt)
			continue
		}
		s.t.Errorf("canary scan: %s", f)
	}
}

// TestCanaryScanFinds proves the scan can fail: a marker in an answer, a
// log line or a trace is found, and reported masked.
func TestCanaryScanFinds(t *testing.T) {
	m := plant("scan-test")
	defer func() {
		canaries.mu.Lock()
		delete(canaries.values, m)
		delete(canaries.values, base64.StdEncoding.EncodeToString([]byte(m)))
		canaries.mu.Unlock()
	}()
	for _, place := range []string{"REST answers", "process logs", "trace exports"} {
		s := &stack{t: t, logs: &syncBuffer{}, traces: &otlpReceiver{}}
		leak := "level=INFO msg=\"register\" token=" + m + " done"
		switch place {
		case "REST answers":
			s.answers.WriteString(`{"kubeconfig":"` + base64.StdEncoding.EncodeToString([]byte(m)) + `"}`)
		case "process logs":
			_, _ = s.logs.Write([]byte(leak))
		default:
			_, _ = s.traces.body.Write([]byte(leak))
		}
		fs := s.said()
		if len(fs) != 1 || fs[0].place != place {
			t.Fatalf("%s: scan found %v, want one finding there", place, fs)
		}
		if strings.Contains(fs[0].String(), m) || strings.Contains(fs[0].String(), base64.StdEncoding.EncodeToString([]byte(m))) {
			t.Errorf("%s: the report prints the secret: %s", place, fs[0])
		}
	}
	if fs := scanText("clean", "nothing here"); len(fs) != 0 {
		t.Errorf("clean text: %v", fs)
	}
}

// TestCanaries plants a marker in every kind of secret Slipway keeps and
// drives the routes that touch them; the stack's scan (startStack) then
// proves no marker reached an answer, log, trace, audit record or event.
func TestCanaries(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real stack")
	}
	env := testenv.Get(t, "vault", "kube", "registry")
	k := newKubeFixture(t, env)
	s := startStack(t, env)
	owner := s.owner()
	org := "/orgs/" + localrun.BootstrapOrg
	deployToken := k.token(t, "deployer")
	secret("service account token", deployToken)

	// Cluster kubeconfig: an unused user carrying a marker.
	s.expect(s.do(http.MethodPost, org+"/clusters", owner, map[string]any{"name": "canary",
		"kubeconfig": map[string]any{"kubeconfig": k.plantedKubeconfig(t, plant("kubeconfig-user"))}}), http.StatusOK, "register from a planted kubeconfig")
	// Server connection tokens: rejected on registration and on rotation.
	if a := s.do(http.MethodPost, org+"/clusters", owner, map[string]any{"name": "canary-sa", "server_connection": k.direct(plant("bearer-token"))}); a.status != http.StatusConflict {
		t.Errorf("register with a rejected token: %d %s", a.status, a.body)
	}
	s.expect(s.do(http.MethodPost, org+"/clusters", owner, map[string]any{"name": "canary-sa", "server_connection": k.direct(deployToken)}), http.StatusOK, "register from a server connection")
	if a := s.do(http.MethodPost, org+"/clusters/canary-sa:rotateCredentials", owner, map[string]any{"server_connection": k.direct(plant("rotated-token"))}); a.status != http.StatusConflict {
		t.Errorf("rotate to a rejected token: %d %s", a.status, a.body)
	}
	// Registry credentials: kept, then used for a registry that refuses them.
	host := env["OCI_REGISTRY"]
	s.expect(s.do(http.MethodPost, org+"/credentials", owner, map[string]any{"name": "canary-registry", "endpoint": host,
		"registry": map[string]string{"username": "canary", "password": plant("registry-password")}}), http.StatusOK, "registry credential")
	s.do(http.MethodPost, org+"/images", owner, map[string]any{"name": "canary", "version": "1.0.0", "reference": host + "/canary/none:1.0.0"})
	// Repository credentials: basic auth and a bearer-like password, then a sync.
	s.expect(s.do(http.MethodPost, org+"/credentials", owner, map[string]any{"name": "canary-charts", "endpoint": "oci://" + host + "/canary-charts",
		"helm_repository": map[string]any{"basic_auth": map[string]string{"username": "canary", "password": plant("repo-password")}}}), http.StatusOK, "repository credential")
	s.expect(s.do(http.MethodPost, org+"/repositories", owner, map[string]any{"name": "canary-charts", "url": "oci://" + host + "/canary-charts",
		"credential_id": "canary-charts", "oci_charts": []string{"hello"}}), http.StatusOK, "add a repository with the credential")
	s.do(http.MethodPost, org+"/repositories/canary-charts:sync", owner, map[string]any{})
	s.do(http.MethodGet, org+"/repositories/canary-charts", owner, nil)
	// API tokens: created (secret registered by do), used, a wrong one refused.
	dep := s.token(localrun.BootstrapOrg, owner, "DEPLOYER")
	if a := s.do(http.MethodGet, org+"/clusters", plant("api-token"), nil); a.status != http.StatusUnauthorized {
		t.Errorf("a made-up API token: %d %s", a.status, a.body)
	}
	// Reads of everything holding a secret, and the audit log.
	for _, path := range []string{"/clusters", "/clusters/canary", "/clusters/canary-sa", "/credentials", "/credentials/canary-registry", "/credentials/canary-charts", "/tokens", "/audit"} {
		s.do(http.MethodGet, org+path, dep, nil)
		s.do(http.MethodGet, org+path, owner, nil)
	}
	s.expect(s.do(http.MethodGet, org+"/clusters/canary/config", owner, nil), http.StatusOK, "kubeconfig download")
	s.expect(s.do(http.MethodPost, org+"/clusters/canary:check", owner, map[string]any{}), http.StatusOK, "check")
	if fs := s.said(); len(fs) > 0 {
		t.Errorf("before the end already: %v", fs)
	}
	// The trace part of the scan proves something only if spans arrive.
	eventually(t, 10*time.Second, "spans at the stack's OTLP receiver", func() bool {
		return strings.Contains(s.traces.body.String(), "slipway.clusters.v1.ClustersService/RegisterCluster")
	})
}
