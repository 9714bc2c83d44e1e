package e2e

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/slipwayhq/slipway/pkg/testenv"
	"github.com/slipwayhq/slipway/tools/internal/localrun"
)

// exportedSpan is one span as a process exported it, flattened.
type exportedSpan struct {
	service, name     string
	trace, id, parent string // hex; parent "" for a root
	kind              tracepb.Span_SpanKind
	status            tracepb.Status_StatusCode
	attrs             map[string]string
	allVals           []kv // every key and text the export carried about it, for the scan
}

type kv struct{ key, value string }

// decodeSpans reads every span of the exports (ExportTraceServiceRequest
// bodies, OTLP/HTTP protobuf).
func decodeSpans(bodies [][]byte) ([]exportedSpan, error) {
	var out []exportedSpan
	for i, b := range bodies {
		var req collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			return nil, fmt.Errorf("export %d: %w", i, err)
		}
		for _, rs := range req.GetResourceSpans() {
			res := flatten(rs.GetResource().GetAttributes())
			service := ""
			for _, a := range res {
				if a.key == "service.name" {
					service = a.value
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, sp := range ss.GetSpans() {
					attrs := flatten(sp.GetAttributes())
					all := append(slices.Clone(res), attrs...)
					all = append(all, kv{"span name", sp.GetName()}, kv{"status message", sp.GetStatus().GetMessage()},
						kv{"trace state", sp.GetTraceState()}, kv{"scope", ss.GetScope().GetName()})
					for _, e := range sp.GetEvents() {
						all = append(all, kv{"event name", e.GetName()})
						all = append(all, flatten(e.GetAttributes())...)
					}
					for _, l := range sp.GetLinks() {
						all = append(all, flatten(l.GetAttributes())...)
					}
					m := map[string]string{}
					for _, a := range attrs {
						m[a.key] = a.value
					}
					out = append(out, exportedSpan{
						service: service, name: sp.GetName(), kind: sp.GetKind(), status: sp.GetStatus().GetCode(),
						trace: hex.EncodeToString(sp.GetTraceId()), id: hex.EncodeToString(sp.GetSpanId()), parent: hex.EncodeToString(sp.GetParentSpanId()),
						attrs: m, allVals: all,
					})
				}
			}
		}
	}
	return out, nil
}

// flatten turns attributes into key/value text, nested values joined.
func flatten(attrs []*commonpb.KeyValue) []kv {
	out := make([]kv, 0, len(attrs))
	for _, a := range attrs {
		out = append(out, kv{a.GetKey(), anyText(a.GetValue())})
	}
	return out
}

func anyText(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	case *commonpb.AnyValue_BytesValue:
		return string(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		var parts []string
		for _, e := range x.ArrayValue.GetValues() {
			parts = append(parts, anyText(e))
		}
		return strings.Join(parts, "\n")
	case *commonpb.AnyValue_KvlistValue:
		var parts []string
		for _, e := range flatten(x.KvlistValue.GetValues()) {
			parts = append(parts, e.key+"="+e.value)
		}
		return strings.Join(parts, "\n")
	}
	return ""
}

// scanSpans looks for every registered secret in every attribute value,
// name and message of the spans.
func scanSpans(spans []exportedSpan) []finding {
	var out []finding
	for _, sp := range spans {
		for _, a := range sp.allVals {
			out = append(out, scanText(fmt.Sprintf("span %s of %s, %s", sp.name, sp.service, a.key), a.value)...)
		}
	}
	return out
}

// TestTraceScanFinds proves the attribute scan can fail: a marker in a
// span attribute, nested in an array, is found in the decoded export.
func TestTraceScanFinds(t *testing.T) {
	m := plant("trace-attribute")
	defer forget(m)
	str := func(s string) *commonpb.AnyValue {
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
	}
	body, err := proto.Marshal(&collectortrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{
			Name: "leaky", TraceId: make([]byte, 16), SpanId: make([]byte, 8),
			Attributes: []*commonpb.KeyValue{{Key: "rpc.args", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{
				ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{str("x"), str("password=" + m)}}}}}},
		}}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	spans, err := decodeSpans([][]byte{body})
	if err != nil || len(spans) != 1 {
		t.Fatalf("decoded %d spans, %v", len(spans), err)
	}
	fs := scanSpans(spans)
	if len(fs) != 1 || !strings.Contains(fs[0].place, "rpc.args") || strings.Contains(fs[0].String(), m) {
		t.Errorf("scan found %v, want one masked finding in rpc.args", fs)
	}
}

// forget drops a marker planted by a test that proves a scan fails.
func forget(m string) {
	canaries.mu.Lock()
	defer canaries.mu.Unlock()
	delete(canaries.values, m)
	delete(canaries.values, base64.StdEncoding.EncodeToString([]byte(m)))
}

// TestTraces deploys an application through REST and follows the deploy
// request's trace, as the stack's own OTLP receiver got it: one trace
// holds the gateway's span, the releases, catalog, registry and clusters
// services' spans of the request, and the operation's execution, which a
// worker ran later, as a child of the request with the catalog's and the
// clusters' spans under it. No attribute of any span holds a secret: the
// cluster's service-account token, the private repository's planted
// password, the registry's login.
func TestTraces(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real stack")
	}
	env := testenv.Get(t, "vault", "kube", "registry")
	k := newKubeFixture(t, env)
	s := startStack(t, env, "SLIPWAY_CATALOG_SYNC_POLL=500ms")
	owner := s.owner()
	org := "/orgs/" + localrun.BootstrapOrg
	ctx := t.Context()

	// A devstack cluster reached with a service account's token.
	token := k.token(t, "deployer")
	secret("service account token", token)
	s.expect(s.do(http.MethodPost, org+"/clusters", owner, map[string]any{"name": "traced", "server_connection": k.direct(token)}), http.StatusOK, "register the cluster")
	// An image, and a private chart repository behind a planted password.
	ref, err := s.s.SeedRegistry(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	s.expect(s.do(http.MethodPost, org+"/images", owner, map[string]any{"name": "hello", "version": "1.0.0", "reference": ref}), http.StatusOK, "record the image")
	repoPass := plant("traced-repo-password")
	priv, ca := privateRepo(t, "reader", repoPass)
	s.expect(s.do(http.MethodPost, org+"/credentials", owner, map[string]any{"name": "traced-charts", "endpoint": priv.URL + "/",
		"helm_repository": map[string]any{"basic_auth": map[string]string{"username": "reader", "password": repoPass}, "certificate_authority_pem": ca}}),
		http.StatusOK, "record the repository's login")
	s.expect(s.do(http.MethodPost, org+"/repositories", owner, map[string]any{"name": "traced", "url": priv.URL, "credential_id": "traced-charts"}),
		http.StatusOK, "add the repository")
	eventually(t, time.Minute, "the repository synced", func() bool {
		var r struct{ Repository repositoryJSON }
		s.do(http.MethodGet, org+"/repositories/traced", owner, nil).decode(t, &r)
		return r.Repository.Sync.ChartCount > 0
	})
	s.expect(s.do(http.MethodPost, org+"/applications", owner, map[string]any{
		"name": "traced", "chart": map[string]any{"repository": "traced", "chart": "hello", "version": "~0.2"}, "image": "hello",
		"targets": []map[string]any{{"name": "dev", "cluster": "traced", "namespace": k.namespace}},
	}), http.StatusOK, "create the application")

	a := s.do(http.MethodPost, org+"/applications/traced/targets/dev:deploy", owner, map[string]any{"values_yaml": "service:\n  port: 8080\n"})
	if a.status != http.StatusOK && a.status != http.StatusAccepted {
		t.Fatalf("deploy: %d %s", a.status, a.body)
	}
	var resp struct{ Operation operationJSON }
	a.decode(t, &resp)
	// The gateway answers with its span's W3C trace context.
	tp := strings.Split(a.header.Get("Traceparent"), "-")
	if len(tp) != 4 || len(tp[1]) != 32 || len(tp[2]) != 16 {
		t.Fatalf("deploy answered Traceparent %q", a.header.Get("Traceparent"))
	}
	traceID, gatewaySpan := tp[1], tp[2]
	if op := s.awaitOperation(t, owner, resp.Operation.ID); !strings.HasSuffix(op.State, "SUCCEEDED") {
		t.Fatalf("deploy: %+v", op)
	}

	// The execution's span ends after the operation's outcome is written:
	// wait for it, and for the spans of the calls it made.
	services := []string{"slipway-gateway", "slipway-releases", "slipway-catalog", "slipway-registry", "slipway-clusters"}
	var spans, trace []exportedSpan
	var exec *exportedSpan
	byID := map[string]*exportedSpan{}
	under := map[string]bool{} // services with spans under the execution's
	defer func() {
		if t.Failed() {
			t.Logf("trace %s as received: %s", traceID, spanTree(trace))
		}
	}()
	eventually(t, 30*time.Second, "the deploy's trace with every service and the execution", func() bool {
		if spans, err = decodeSpans(s.traces.requests()); err != nil {
			t.Fatal(err)
		}
		trace, exec, byID, under = nil, nil, map[string]*exportedSpan{}, map[string]bool{}
		for i := range spans {
			if spans[i].trace == traceID {
				trace = append(trace, spans[i])
			}
		}
		for i := range trace {
			byID[trace[i].id] = &trace[i]
			if trace[i].name == "operation.execute" && trace[i].attrs["slipway.operation.id"] == resp.Operation.ID {
				exec = &trace[i]
			}
		}
		if exec == nil {
			return false
		}
		for _, sp := range trace {
			for p := byID[sp.parent]; p != nil; p = byID[p.parent] {
				if p == exec {
					under[sp.service] = true
					break
				}
			}
		}
		return !slices.ContainsFunc(services, func(svc string) bool {
			return !slices.ContainsFunc(trace, func(sp exportedSpan) bool { return sp.service == svc })
		}) &&
			under["slipway-catalog"] && under["slipway-clusters"]
	})
	t.Logf("trace %s: %d spans; %s", traceID, len(trace), spanTree(trace))

	// The gateway's span is the one its answer named, the trace's root.
	if g := byID[gatewaySpan]; g == nil || g.service != "slipway-gateway" || g.kind != tracepb.Span_SPAN_KIND_SERVER || g.parent != "" {
		t.Errorf("the answer's span %s is %+v; want the gateway's root server span", gatewaySpan, g)
	}
	// The execution: a child of the releases service's handling of the
	// request, with the operation's names as attributes.
	if p := byID[exec.parent]; p == nil || p.service != "slipway-releases" {
		t.Errorf("operation.execute's parent is %+v; want a span of the releases service", p)
	}
	if exec.service != "slipway-releases" || exec.status != tracepb.Status_STATUS_CODE_OK {
		t.Errorf("operation.execute of %s, status %v; want slipway-releases, OK", exec.service, exec.status)
	}
	for key, want := range map[string]string{
		"slipway.operation.id": resp.Operation.ID, "slipway.operation.kind": "deploy-application", "slipway.operation.attempt": "1",
		"slipway.org": localrun.BootstrapOrg, "slipway.namespace": k.namespace, "slipway.release": "traced-dev",
	} {
		if got := exec.attrs[key]; got != want {
			t.Errorf("operation.execute attribute %s = %q, want %q", key, got, want)
		}
	}
	if exec.attrs["slipway.cluster"] == "" {
		t.Errorf("operation.execute has no slipway.cluster: %v", exec.attrs)
	}
	if n := len(slices.DeleteFunc(slices.Clone(trace), func(sp exportedSpan) bool { return sp.name != "operation.execute" })); n != 1 {
		t.Errorf("%d operation.execute spans in the trace, want 1", n)
	}
	// Every span of the trace hangs from the gateway's.
	for _, sp := range trace {
		if sp.id != gatewaySpan && byID[sp.parent] == nil {
			t.Errorf("span %s of %s has parent %s, not in the trace", sp.name, sp.service, sp.parent)
		}
	}
	if fs := scanSpans(spans); len(fs) > 0 {
		for _, f := range fs {
			t.Errorf("trace scan: %s", f)
		}
	}
}

// spanTree prints a trace as an indented tree, for the log.
func spanTree(trace []exportedSpan) string {
	children := map[string][]exportedSpan{}
	for _, sp := range trace {
		children[sp.parent] = append(children[sp.parent], sp)
	}
	ids := map[string]bool{}
	for _, sp := range trace {
		ids[sp.id] = true
	}
	var b strings.Builder
	var walk func(sp exportedSpan, depth int)
	walk = func(sp exportedSpan, depth int) {
		fmt.Fprintf(&b, "\n%s%s %s", strings.Repeat("  ", depth), sp.service, sp.name)
		kids := children[sp.id]
		sort.Slice(kids, func(i, j int) bool { return kids[i].name < kids[j].name })
		for _, c := range kids {
			walk(c, depth+1)
		}
	}
	for _, sp := range trace {
		if !ids[sp.parent] {
			walk(sp, 0)
		}
	}
	return b.String()
}
