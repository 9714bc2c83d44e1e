package drift

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/kubernetes/scheme"
)

// apply applies c to live as the API server would, for the kinds here.
func apply(t *testing.T, manifest, live map[string]any, c Correction) map[string]any {
	t.Helper()
	doc, err := json.Marshal(live)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	switch c.Type {
	case types.StrategicMergePatchType:
		typed, err := scheme.Scheme.New(gvkOf(t, manifest))
		if err != nil {
			t.Fatal(err)
		}
		out, err = strategicpatch.StrategicMergePatch(doc, c.Patch, typed)
		if err != nil {
			t.Fatalf("apply %s: %v", c.Patch, err)
		}
	case types.MergePatchType:
		if out, err = jsonpatch.MergePatch(doc, c.Patch); err != nil {
			t.Fatalf("apply %s: %v", c.Patch, err)
		}
	default:
		t.Fatalf("patch type %q", c.Type)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// liveDeployment is the manifest's Deployment as the server keeps it, with
// its defaults and status, changed by edit (YAML merged over it).
const liveDeployment = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, uid: x, labels: {app: web, app.kubernetes.io/managed-by: Helm}}
spec:
  replicas: 2
  progressDeadlineSeconds: 600
  template:
    spec:
      containers:
      - name: web
        image: nginx:1.27
        imagePullPolicy: IfNotPresent
        resources: {requests: {cpu: 500m, memory: 64Mi}}
        ports: [{containerPort: 80, protocol: TCP}]
      - name: side
        image: busybox
        imagePullPolicy: Always
status: {replicas: 2}
`

// TestCorrect: the correction applied to the live object leaves it in
// sync with the manifest, changes only the drifted fields (the server's
// defaults and the ignored paths stay), and names them.
func TestCorrect(t *testing.T) {
	for _, tc := range []struct {
		name   string
		live   string // the live Deployment
		ignore []Path
		fields []string
		keep   map[string]any // field path => value the corrected object keeps
	}{
		{name: "in sync", live: liveDeployment},
		{name: "scaled", live: strings.Replace(liveDeployment, "replicas: 2\n  progress", "replicas: 5\n  progress", 1),
			fields: []string{"spec.replicas"}, keep: map[string]any{"spec.progressDeadlineSeconds": 600.0, "status.replicas": 2.0}},
		{name: "scaled under an autoscaler", live: strings.Replace(liveDeployment, "replicas: 2\n  progress", "replicas: 5\n  progress", 1),
			ignore: []Path{{"spec", "replicas"}}, keep: map[string]any{"spec.replicas": 5.0}},
		{name: "scaled under an autoscaler, image edited", ignore: []Path{{"spec", "replicas"}},
			live:   strings.Replace(strings.Replace(liveDeployment, "replicas: 2\n  progress", "replicas: 5\n  progress", 1), "nginx:1.27", "nginx:1.28", 1),
			fields: []string{"spec.template.spec.containers"}, keep: map[string]any{"spec.replicas": 5.0}},
		{name: "a container added, an env added, a label removed", fields: []string{"metadata.labels.app", "spec.template.spec.containers"},
			live: strings.Replace(strings.Replace(strings.Replace(liveDeployment, "app: web, ", "", 1),
				"        imagePullPolicy: Always\n", "        imagePullPolicy: Always\n        env: [{name: DEBUG, value: \"1\"}]\n", 1),
				"      - name: side\n", "      - name: extra\n        image: evil\n      - name: side\n", 1),
			keep: map[string]any{"metadata.labels.app.kubernetes.io/managed-by": "Helm"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			manifest, live := obj(t, deployment), obj(t, tc.live)
			c, err := Correct(manifest, live, tc.ignore)
			if err != nil {
				t.Fatal(err)
			}
			if got := paths(c.Fields); !slices.Equal(got, tc.fields) {
				t.Errorf("fields = %q, want %q", got, tc.fields)
			}
			if tc.fields == nil {
				if c.Patch != nil {
					t.Fatalf("a patch of an object in sync: %s", c.Patch)
				}
				return
			}
			if c.Type != types.StrategicMergePatchType {
				t.Errorf("patch type %q, want strategic", c.Type)
			}
			fixed := apply(t, manifest, live, c)
			if r, err := Compare(manifest, fixed, tc.ignore); err != nil || r.Drifted {
				t.Fatalf("still drifted after %s:\n%s (%v)", c.Patch, r.Diff, err)
			}
			for p, want := range tc.keep {
				if got := at(fixed, p); got != want {
					t.Errorf("%s = %v after the correction, want %v (patch %s)", p, got, want, c.Patch)
				}
			}
			if strings.Contains(string(c.Patch), "progressDeadlineSeconds") || strings.Contains(string(c.Patch), "imagePullPolicy") {
				t.Errorf("the patch touches fields the manifest does not set: %s", c.Patch)
			}
		})
	}
}

// at reads a dotted path; the last key may hold dots (a label).
func at(m map[string]any, p string) any {
	var cur any = m
	for p != "" {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if v, ok := mm[p]; ok {
			return v
		}
		k, rest, _ := strings.Cut(p, ".")
		cur, p = mm[k], rest
	}
	return cur
}

func paths(ps []Path) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

// TestCorrectSecret: a changed key is put back, named without a value.
func TestCorrectSecret(t *testing.T) {
	manifest := obj(t, "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {password: hunter2, user: admin}\n")
	live := obj(t, "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: Opaque\ndata: {password: c2VjcmV0, user: YWRtaW4=, extra: eA==}\n")
	c, err := Correct(manifest, live, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := paths(c.Fields); !slices.Equal(got, []string{"data.password"}) {
		t.Errorf("fields = %q, want data.password", got)
	}
	fixed := apply(t, manifest, live, c)
	if r, err := Compare(manifest, fixed, nil); err != nil || r.Drifted {
		t.Fatalf("still drifted: %s (%v)", r.Diff, err)
	}
	if at(fixed, "type") != "Opaque" || at(fixed, "data.extra") != "eA==" {
		t.Errorf("the correction changed what the manifest does not set: %v", fixed)
	}
}

// TestCorrectCustomResource: a kind client-go does not know gets a JSON
// merge patch.
func TestCorrectCustomResource(t *testing.T) {
	manifest := obj(t, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 3, colours: [red, blue], nested: {a: 1}}\n")
	live := obj(t, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, generation: 4}\nspec: {size: 7, colours: [red], nested: {a: 1, b: 2}, added: x}\n")
	c, err := Correct(manifest, live, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Type != types.MergePatchType {
		t.Fatalf("patch type %q, want merge", c.Type)
	}
	if got := paths(c.Fields); !slices.Equal(got, []string{"spec.colours", "spec.size"}) {
		t.Errorf("fields = %q", got)
	}
	fixed := apply(t, manifest, live, c)
	if r, err := Compare(manifest, fixed, nil); err != nil || r.Drifted {
		t.Fatalf("still drifted: %s (%v)", r.Diff, err)
	}
	if at(fixed, "spec.added") != "x" || at(fixed, "spec.nested.b") != 2.0 {
		t.Errorf("the correction changed what the manifest does not set: %v", fixed)
	}
}

// TestNullInManifest: a field a template left null is unset, not drift.
func TestNullInManifest(t *testing.T) {
	manifest := obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: x, b: null}\nbinaryData: null\n")
	live := obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: x}\n")
	if r, err := Compare(manifest, live, nil); err != nil || r.Drifted {
		t.Errorf("drifted: %s (%v)", r.Diff, err)
	}
	if c, err := Correct(manifest, live, nil); err != nil || c.Patch != nil {
		t.Errorf("correction %s (%v), want none", c.Patch, err)
	}
}

func gvkOf(t *testing.T, m map[string]any) schema.GroupVersionKind {
	t.Helper()
	gv, err := schema.ParseGroupVersion(m["apiVersion"].(string))
	if err != nil {
		t.Fatal(err)
	}
	return gv.WithKind(m["kind"].(string))
}
