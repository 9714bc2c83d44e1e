package charts

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
)

// render renders chart name with values, failing the test on an error.
func render(t *testing.T, name string, values map[string]any) Rendered {
	t.Helper()
	r, err := Render(chartsDir(t), name, values)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// vals builds a values map from dotted paths: vals("a.b", 1) is {a: {b: 1}}.
func vals(kv ...any) map[string]any {
	out := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		parts := strings.Split(kv[i].(string), ".")
		m := out
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = kv[i+1]
	}
	return out
}

func strs(v any) []string {
	var out []string
	for _, x := range asList(v) {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

func asList(v any) []any { l, _ := v.([]any); return l }

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }

// calls reads who calls whom from the rendered Deployments: chart X dials
// chart Y when its container has SLIPWAY_X_Y_ADDR.
func calls(t *testing.T, r Rendered) map[string][]string {
	t.Helper()
	callers := map[string][]string{}
	for _, d := range r.OfKind("Deployment") {
		from := fmt.Sprint(d.Get("metadata", "labels", "app.kubernetes.io/name"))
		for _, c := range asList(d.Get("spec", "template", "spec", "containers")) {
			for _, e := range asList(asMap(c)["env"]) {
				name := fmt.Sprint(asMap(e)["name"])
				for _, to := range Services {
					if name == "SLIPWAY_"+strings.ToUpper(from)+"_"+strings.ToUpper(to)+"_ADDR" {
						callers[to] = append(callers[to], from)
					}
				}
			}
		}
	}
	for k := range callers {
		sort.Strings(callers[k])
	}
	return callers
}

// admitted returns the charts a NetworkPolicy lets reach port, the
// podSelector peers' app.kubernetes.io/name values, and whether the port is
// open to any source.
func admitted(t *testing.T, np Object, port string) (names []string, open bool, peers []any) {
	t.Helper()
	for _, rule := range asList(np.Get("spec", "ingress")) {
		rm := asMap(rule)
		match := false
		for _, p := range asList(rm["ports"]) {
			if fmt.Sprint(asMap(p)["port"]) == port {
				match = true
			}
		}
		if !match {
			continue
		}
		from := asList(rm["from"])
		if len(from) == 0 {
			open = true
		}
		for _, peer := range from {
			sel := asMap(asMap(peer)["podSelector"])
			if sel == nil {
				peers = append(peers, peer)
				continue
			}
			if asMap(sel["matchLabels"])["app.kubernetes.io/instance"] != "slipway" {
				t.Errorf("%s: a podSelector peer not scoped to the release: %v", np.Name(), sel)
			}
			for _, ex := range asList(sel["matchExpressions"]) {
				if asMap(ex)["key"] == "app.kubernetes.io/name" && asMap(ex)["operator"] == "In" {
					names = append(names, strs(asMap(ex)["values"])...)
				}
			}
		}
	}
	sort.Strings(names)
	return names, open, peers
}

// TestNetworkPolicyCallers checks each service's NetworkPolicy against the
// calls the rendered Deployments make: the grpc port admits exactly the
// charts whose pods dial it, the gateway's http port is open unless
// networkPolicy.from narrows it, and every policy selects its own pods.
func TestNetworkPolicyCallers(t *testing.T) {
	r := render(t, Umbrella, nil)
	callers := calls(t, r)
	if !slices.Equal(callers["clusters"], []string{"catalog", "gateway", "registry", "releases"}) {
		t.Errorf("callers of clusters per the Deployments = %v", callers["clusters"])
	}
	for _, svc := range Services {
		np := r.Find("NetworkPolicy", "slipway-"+svc)
		if np == nil {
			t.Errorf("%s: no NetworkPolicy", svc)
			continue
		}
		sel := asMap(np.Get("spec", "podSelector", "matchLabels"))
		if sel["app.kubernetes.io/name"] != svc || sel["app.kubernetes.io/instance"] != "slipway" {
			t.Errorf("%s: NetworkPolicy selects %v", svc, sel)
		}
		if !slices.Equal(strs(np.Get("spec", "policyTypes")), []string{"Ingress"}) {
			t.Errorf("%s: policyTypes %v", svc, np.Get("spec", "policyTypes"))
		}
		port := "grpc"
		if svc == "gateway" {
			port = "http"
		}
		names, open, peers := admitted(t, np, port)
		if !slices.Equal(names, callers[svc]) || len(peers) != 0 {
			t.Errorf("%s: the %s port admits %v %v; its callers are %v", svc, port, names, peers, callers[svc])
		}
		if open != (svc == "gateway") {
			t.Errorf("%s: %s port open to any source: %t", svc, port, open)
		}
		if _, adminOpen, _ := admitted(t, np, "admin"); !adminOpen {
			t.Errorf("%s: admin port not admitted by default", svc)
		}
	}

	ingress := []any{map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "ingress-nginx"}}}}
	monitoring := []any{map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "monitoring"}}}}
	r = render(t, Umbrella, vals("gateway.networkPolicy.from", ingress, "catalog.networkPolicy.metricsFrom", monitoring,
		"registry.networkPolicy.enabled", false, "releases.networkPolicy.callers", []any{"gateway"}))
	if names, open, peers := admitted(t, r.Find("NetworkPolicy", "slipway-gateway"), "http"); open || len(names) != 0 || len(peers) != 1 {
		t.Errorf("gateway with networkPolicy.from: open %t, charts %v, peers %v", open, names, peers)
	}
	if _, open, peers := admitted(t, r.Find("NetworkPolicy", "slipway-catalog"), "admin"); open || len(peers) != 1 {
		t.Errorf("catalog with metricsFrom: admin open %t, peers %v", open, peers)
	}
	if r.Find("NetworkPolicy", "slipway-registry") != nil {
		t.Error("registry: NetworkPolicy rendered with networkPolicy.enabled=false")
	}
	if names, _, _ := admitted(t, r.Find("NetworkPolicy", "slipway-releases"), "grpc"); !slices.Equal(names, []string{"gateway"}) {
		t.Errorf("releases with callers [gateway]: admits %v", names)
	}
}

// TestRBAC checks that no chart grants Kubernetes API access by default
// (no Role, no binding, no API token in any pod), and that the clusters
// chart's token reviewer binding, when on, is the built-in
// system:auth-delegator for its own ServiceAccount only.
func TestRBAC(t *testing.T) {
	rbacKinds := []string{"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
	r := render(t, Umbrella, nil)
	for _, o := range r.Objects {
		if slices.Contains(rbacKinds, o.Kind()) {
			t.Errorf("default install renders %s %s", o.Kind(), o.Name())
		}
		if o.Kind() == "ServiceAccount" && o["automountServiceAccountToken"] != false {
			t.Errorf("ServiceAccount %s mounts its API token", o.Name())
		}
	}
	for _, d := range r.OfKind("Deployment") {
		if d.Get("spec", "template", "spec", "automountServiceAccountToken") != false {
			t.Errorf("Deployment %s mounts an API token", d.Name())
		}
	}

	r = render(t, Umbrella, vals("clusters.rbac.tokenReviewer", true))
	var got []Object
	for _, o := range r.Objects {
		if slices.Contains(rbacKinds, o.Kind()) {
			got = append(got, o)
		}
	}
	if len(got) != 1 || got[0].Kind() != "ClusterRoleBinding" {
		t.Fatalf("with the token reviewer: RBAC objects %v, want one ClusterRoleBinding", got)
	}
	b := got[0]
	if ref := asMap(b["roleRef"]); ref["kind"] != "ClusterRole" || ref["name"] != "system:auth-delegator" {
		t.Errorf("token reviewer binds %v", ref)
	}
	subjects := asList(b["subjects"])
	want := map[string]any{"kind": "ServiceAccount", "name": "slipway-clusters", "namespace": "slipway"}
	if len(subjects) != 1 || fmt.Sprint(subjects[0]) != fmt.Sprint(want) {
		t.Errorf("token reviewer subjects %v, want [%v]", subjects, want)
	}

	if _, err := Render(chartsDir(t), Umbrella, vals("clusters.rbac.tokenReviewer", true, "clusters.vault.auth", "approle", "clusters.vault.approle.existingSecret", "x")); err == nil || !strings.Contains(err.Error(), "rbac.tokenReviewer is for vault.auth=kubernetes") {
		t.Errorf("token reviewer with AppRole: %v", err)
	}
}

// TestValuesRefused checks that the schemas and the templates refuse
// values that cannot work, each with an error that says which.
func TestValuesRefused(t *testing.T) {
	dir := chartsDir(t)
	id := "identity.existingSecret"
	cases := []struct {
		name  string
		chart string
		vals  map[string]any
		want  string
	}{
		{"unknown top-level key", "gateway", vals(id, "x", "replicas", 2), "additional properties 'replicas' not allowed"},
		{"negative replicas", "registry", vals(id, "x", "replicaCount", -1), "replicaCount"},
		{"bad pull policy", "catalog", vals(id, "x", "image.pullPolicy", "Sometimes"), "pullPolicy"},
		{"unknown caller", "releases", vals(id, "x", "networkPolicy.callers", []any{"nobody"}), "callers"},
		{"caller itself", "clusters", vals(id, "x", "vault.addr", "http://v", "networkPolicy.callers", []any{"clusters"}), "callers"},
		{"peer with an unknown field", "gateway", vals(id, "x", "networkPolicy.from", []any{map[string]any{"podSelectr": map[string]any{}}}), "from"},
		{"zero maxUnavailable", "releases", vals(id, "x", "podDisruptionBudget.maxUnavailable", 0), "maxUnavailable"},
		{"OTLP over UDP", "registry", vals(id, "x", "otlp.protocol", "udp"), "protocol"},
		{"OTLP endpoint without scheme", "registry", vals(id, "x", "otlp.endpoint", "collector:4317"), "endpoint"},
		{"CPU target above 100%", "gateway", vals(id, "x", "autoscaling.targetCPUUtilizationPercentage", 150), "targetCPUUtilizationPercentage"},
		{"scrape interval not a duration", "catalog", vals(id, "x", "serviceMonitor.interval", "often"), "interval"},
		{"token reviewer not a bool", "clusters", vals(id, "x", "vault.addr", "http://v", "rbac.tokenReviewer", "yes"), "tokenReviewer"},
		{"umbrella unknown key", Umbrella, vals("identty.generate", true), "additional properties 'identty' not allowed"},
		{"subchart schema through the umbrella", Umbrella, vals("releases.networkPolicy.enabled", "no"), "enabled"},
		// Template checks: what a schema cannot see.
		{"two pods on SQLite", "gateway", vals(id, "x", "replicaCount", 2), "replicaCount > 1 needs database.existingSecret"},
		{"autoscaled on SQLite", "catalog", vals(id, "x", "autoscaling.enabled", true), "autoscaling.maxReplicas > 1 needs database.existingSecret"},
		{"min above max", "releases", vals(id, "x", "database.existingSecret", "db", "autoscaling.enabled", true, "autoscaling.minReplicas", 4, "autoscaling.maxReplicas", 2), "minReplicas (4) is above autoscaling.maxReplicas (2)"},
		{"no Vault address", "clusters", vals(id, "x"), "set vault.addr"},
		{"no identity Secret", "registry", nil, "set identity.existingSecret"},
		{"AppRole without a Secret", Umbrella, vals("clusters.vault.auth", "approle"), "vault.auth=approle needs vault.approle.existingSecret"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Render(dir, tc.chart, tc.vals)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v; want one mentioning %q", err, tc.want)
			}
		})
	}
}

// keyPair decodes a rendered key Secret's private and public key and
// checks that they belong together.
func keyPair(t *testing.T, s Object, privKey, pubKey string) (ed25519.PrivateKey, ed25519.PublicKey) {
	t.Helper()
	data := asMap(s["data"])
	decode := func(k string) []byte {
		b, err := base64.StdEncoding.DecodeString(fmt.Sprint(data[k]))
		if err != nil {
			t.Fatalf("%s %s: %v", s.Name(), k, err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			t.Fatalf("%s %s: not PEM: %q", s.Name(), k, b)
		}
		return blk.Bytes
	}
	priv, err := x509.ParsePKCS8PrivateKey(decode(privKey))
	if err != nil {
		t.Fatalf("%s %s: %v", s.Name(), privKey, err)
	}
	pub, err := x509.ParsePKIXPublicKey(decode(pubKey))
	if err != nil {
		t.Fatalf("%s %s: %v", s.Name(), pubKey, err)
	}
	sk, ok1 := priv.(ed25519.PrivateKey)
	pk, ok2 := pub.(ed25519.PublicKey)
	if !ok1 || !ok2 {
		t.Fatalf("%s: keys are %T and %T, want Ed25519", s.Name(), priv, pub)
	}
	if !pk.Equal(sk.Public()) {
		t.Fatalf("%s: %s is not the public key of %s", s.Name(), pubKey, privKey)
	}
	return sk, pk
}

// TestGeneratedKeys checks the Secrets the umbrella makes on a first
// install: the identity pair and one pair per acting service, each private
// key in PKCS#8 and its own public key in PKIX, new on every render (the
// lookup that keeps them on upgrades is TestServerDryRun's), each mounted
// only where it belongs.
func TestGeneratedKeys(t *testing.T) {
	r1, r2 := render(t, Umbrella, nil), render(t, Umbrella, nil)
	secrets := map[string][2]string{
		"slipway-identity":             {"identity.key", "identity.pub"},
		"slipway-registry-service-key": {"service.key", "service.pub"},
		"slipway-catalog-service-key":  {"service.key", "service.pub"},
		"slipway-releases-service-key": {"service.key", "service.pub"},
	}
	if got := len(r1.OfKind("Secret")); got != len(secrets) {
		t.Errorf("%d Secrets rendered, want %d", got, len(secrets))
	}
	for name, keys := range secrets {
		s1, s2 := r1.Find("Secret", name), r2.Find("Secret", name)
		if s1 == nil || s2 == nil {
			t.Errorf("no Secret %s", name)
			continue
		}
		k1, _ := keyPair(t, s1, keys[0], keys[1])
		k2, _ := keyPair(t, s2, keys[0], keys[1])
		if k1.Equal(k2) {
			t.Errorf("%s: two first installs made the same key", name)
		}
	}
	// Each pod mounts only the key items it needs.
	for _, d := range r1.OfKind("Deployment") {
		svc := fmt.Sprint(d.Get("metadata", "labels", "app.kubernetes.io/name"))
		for _, v := range asList(d.Get("spec", "template", "spec", "volumes")) {
			vm := asMap(v)
			var items []string
			if sec := asMap(vm["secret"]); sec != nil {
				for _, it := range asList(sec["items"]) {
					items = append(items, fmt.Sprint(sec["secretName"])+"/"+fmt.Sprint(asMap(it)["key"]))
				}
			}
			for _, src := range asList(asMap(vm["projected"])["sources"]) {
				if sec := asMap(asMap(src)["secret"]); sec != nil {
					for _, it := range asList(sec["items"]) {
						items = append(items, fmt.Sprint(sec["name"])+"/"+fmt.Sprint(asMap(it)["key"]))
					}
				}
			}
			for _, it := range items {
				private := strings.HasSuffix(it, ".key")
				own := it == "slipway-identity/identity.key" && svc == "gateway" || it == "slipway-"+svc+"-service-key/service.key"
				if private && !own {
					t.Errorf("%s mounts the private key %s", svc, it)
				}
			}
		}
	}

	// Bring your own: no Secret is generated.
	r := render(t, Umbrella, vals("identity.generate", false, "serviceKeys.generate", false))
	if s := r.OfKind("Secret"); len(s) != 0 {
		t.Errorf("generate=false still renders %d Secrets", len(s))
	}
}

// TestPods checks every Deployment of every scenario against the restricted
// Pod Security Standard and the probes on the binaries' real endpoints.
func TestPods(t *testing.T) {
	dir := chartsDir(t)
	for _, name := range append(slices.Clone(Services), Umbrella) {
		scenarios, err := Scenarios(dir, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, sc := range scenarios {
			r := render(t, name, sc.Values)
			for _, d := range r.OfKind("Deployment") {
				where := name + "/" + sc.Name + ": " + d.Name()
				pod := asMap(d.Get("spec", "template", "spec"))
				psc := asMap(pod["securityContext"])
				if psc["runAsNonRoot"] != true || asMap(psc["seccompProfile"])["type"] != "RuntimeDefault" {
					t.Errorf("%s: pod securityContext %v", where, psc)
				}
				for _, c := range asList(pod["containers"]) {
					cm := asMap(c)
					sc := asMap(cm["securityContext"])
					if sc["readOnlyRootFilesystem"] != true || sc["allowPrivilegeEscalation"] != false || !slices.Equal(strs(asMap(sc["capabilities"])["drop"]), []string{"ALL"}) {
						t.Errorf("%s: container securityContext %v", where, sc)
					}
					for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
						get := asMap(asMap(cm[probe])["httpGet"])
						if get["path"] != path || get["port"] != "admin" {
							t.Errorf("%s: %s %v, want GET %s on admin", where, probe, get, path)
						}
					}
					var ports []string
					for _, p := range asList(cm["ports"]) {
						ports = append(ports, fmt.Sprint(asMap(p)["name"]))
					}
					if !slices.Contains(ports, "admin") {
						t.Errorf("%s: no admin port in %v", where, ports)
					}
				}
				autoscaled := r.Find("HorizontalPodAutoscaler", d.Name()) != nil
				if _, fixed := asMap(d["spec"])["replicas"]; fixed == autoscaled {
					t.Errorf("%s: replicas set %t with an autoscaler %t", where, fixed, autoscaled)
				}
				if pdb := r.Find("PodDisruptionBudget", d.Name()); pdb != nil && fmt.Sprint(pdb.Get("spec", "selector", "matchLabels")) != fmt.Sprint(d.Get("spec", "selector", "matchLabels")) {
					t.Errorf("%s: PodDisruptionBudget selects %v", where, pdb.Get("spec", "selector"))
				}
			}
		}
	}
}
