package charts

import (
	"bytes"
	"encoding/json"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
)

var update = flag.Bool("update", false, "rewrite each chart's README.md from its values.yaml")

// all is every chart: the library, the services and the umbrella.
func all() []string { return append(append([]string{Library}, Services...), Umbrella) }

func chartsDir(t *testing.T) string {
	t.Helper()
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// stage copies chart name into a temporary folder with its dependencies
// packaged into its charts/ folder, as `helm dependency build` leaves it,
// for the tools that read a folder (lint).
func stage(t *testing.T, dir, name string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	src := filepath.Join(dir, name)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "charts" && d.IsDir() {
			return filepath.SkipDir
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(out, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(out, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := Load(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	if deps := ch.Dependencies(); len(deps) > 0 {
		if err := os.MkdirAll(filepath.Join(out, "charts"), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, d := range deps {
			if _, err := chartutil.Save(d, filepath.Join(out, "charts")); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// TestLint runs helm lint (strict: warnings fail) on every chart with each
// of its scenarios' values.
func TestLint(t *testing.T) {
	dir := chartsDir(t)
	// Informational findings that do not apply: no chart has an icon, and
	// the library chart has no values.
	allowed := []string{"icon is recommended", "values.yaml: file does not exist"}
	message := func(m support.Message) string { return m.Path + ": " + m.Err.Error() }
	for _, name := range all() {
		staged := stage(t, dir, name)
		scenarios := []Scenario{{Name: "default"}}
		if name != Library {
			var err error
			if scenarios, err = Scenarios(dir, name); err != nil {
				t.Fatal(err)
			}
		}
		for _, sc := range scenarios {
			t.Run(name+"/"+sc.Name, func(t *testing.T) {
				linter := lint.AllWithKubeVersion(staged, sc.Values, "slipway", nil)
				for _, m := range linter.Messages {
					if m.Severity == support.InfoSev && slices.ContainsFunc(allowed, func(a string) bool { return strings.Contains(message(m), a) }) {
						continue
					}
					t.Errorf("%s: %s", []string{"unknown", "info", "warning", "error"}[m.Severity], message(m))
				}
			})
		}
	}
}

// TestRender renders every chart with each scenario and checks that each
// object has a kind, a name and the chart's labels.
func TestRender(t *testing.T) {
	dir := chartsDir(t)
	var total, renders int
	for _, name := range append(slices.Clone(Services), Umbrella) {
		scenarios, err := Scenarios(dir, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, sc := range scenarios {
			t.Run(name+"/"+sc.Name, func(t *testing.T) {
				r, err := Render(dir, name, sc.Values)
				if err != nil {
					t.Fatal(err)
				}
				if len(r.Objects) == 0 {
					t.Fatal("renders nothing")
				}
				if len(r.OfKind("Deployment")) == 0 {
					t.Error("renders no Deployment")
				}
				for _, o := range r.Objects {
					if o.Kind() == "" || o.APIVersion() == "" || o.Name() == "" {
						t.Errorf("object without kind, apiVersion or name: %v", o)
					}
					if o.Get("metadata", "labels", "app.kubernetes.io/part-of") != "slipway" {
						t.Errorf("%s %s: no app.kubernetes.io/part-of=slipway label", o.Kind(), o.Name())
					}
				}
				total += len(r.Objects)
				renders++
			})
		}
	}
	t.Logf("%d renders, %d objects", renders, total)
}

// TestVersions checks the one version rule: every chart, its appVersion and
// every dependency pin name the same version.
func TestVersions(t *testing.T) {
	dir := chartsDir(t)
	want := ""
	for _, name := range all() {
		ch, err := Load(dir, name)
		if err != nil {
			t.Fatal(err)
		}
		if want == "" {
			want = ch.Metadata.Version
		}
		if ch.Metadata.Version != want || ch.Metadata.AppVersion != want {
			t.Errorf("%s: version %s, appVersion %s; want %s for both", name, ch.Metadata.Version, ch.Metadata.AppVersion, want)
		}
		for _, d := range ch.Metadata.Dependencies {
			if name == Umbrella && d.Name != Library && d.Condition != d.Name+".enabled" {
				t.Errorf("umbrella dependency %s: condition %q, want %s.enabled", d.Name, d.Condition, d.Name)
			}
		}
	}
}

// TestReadmes checks that each chart's README.md is what its values.yaml
// generates; -update rewrites them.
func TestReadmes(t *testing.T) {
	dir := chartsDir(t)
	for _, name := range all() {
		got, err := Readme(dir, name)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name, "README.md")
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("charts/%s/README.md is not what values.yaml generates: run `make charts` (%v)", name, err)
		}
	}
}

// TestValuesDocumented checks that every value has a comment, its own or
// (for the keys of a small map) its parent's.
func TestValuesDocumented(t *testing.T) {
	dir := chartsDir(t)
	for _, name := range append(slices.Clone(Services), Umbrella) {
		data, err := os.ReadFile(filepath.Join(dir, name, "values.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		values, err := ParseValues(data)
		if err != nil {
			t.Fatal(err)
		}
		doc := map[string]string{}
		for _, v := range values {
			doc[v.Path] = v.Doc
		}
		for _, v := range values {
			if !v.Leaf || v.Doc != "" {
				continue
			}
			parent := v.Path[:max(strings.LastIndex(v.Path, "."), 0)]
			if doc[parent] == "" {
				t.Errorf("%s: value %s has no comment in values.yaml", name, v.Path)
			}
		}
	}
}

// TestSchemaInStep checks values.yaml against values.schema.json: every
// key of values.yaml is a property of the schema, and every property the
// schema declares (where it forbids others) is in values.yaml.
func TestSchemaInStep(t *testing.T) {
	dir := chartsDir(t)
	for _, name := range append(slices.Clone(Services), Umbrella) {
		t.Run(name, func(t *testing.T) {
			var schema map[string]any
			b, err := os.ReadFile(filepath.Join(dir, name, "values.schema.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &schema); err != nil {
				t.Fatal(err)
			}
			ch, err := Load(dir, name)
			if err != nil {
				t.Fatal(err)
			}
			defs, _ := schema["definitions"].(map[string]any)
			compare(t, "", ch.Values, schema, defs, name == Umbrella)
		})
	}
}

// compare walks values and schema together. Keys Helm adds (global, and
// each dependency's values) may be absent from values.yaml.
func compare(t *testing.T, path string, values map[string]any, schema, defs map[string]any, umbrella bool) {
	t.Helper()
	schema = resolve(schema, defs)
	props, _ := schema["properties"].(map[string]any)
	if props == nil {
		return
	}
	for k, v := range values {
		p, ok := props[k].(map[string]any)
		if !ok {
			t.Errorf("values.yaml key %s%s is not in values.schema.json", path, k)
			continue
		}
		if m, ok := v.(map[string]any); ok && !(umbrella && path == "" && slices.Contains(Services, k)) {
			compare(t, path+k+".", m, p, defs, umbrella)
		}
	}
	if schema["additionalProperties"] != false {
		return
	}
	for k := range props {
		if _, ok := values[k]; !ok && !(path == "" && (k == "global" || k == Library)) {
			t.Errorf("values.schema.json property %s%s is not in values.yaml (document it there)", path, k)
		}
	}
}

func resolve(s, defs map[string]any) map[string]any {
	if ref, ok := s["$ref"].(string); ok {
		if d, ok := defs[strings.TrimPrefix(ref, "#/definitions/")].(map[string]any); ok {
			return d
		}
	}
	return s
}

// TestDockerfiles checks that the five Dockerfiles differ only in the
// service's name.
func TestDockerfiles(t *testing.T) {
	dir := filepath.Join(chartsDir(t), "..", "deploy", "docker")
	norm := func(svc string) string {
		b, err := os.ReadFile(filepath.Join(dir, svc+".Dockerfile"))
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(string(b), "./services/"+svc+"/cmd/slipway-"+svc, "PKG")
		s = strings.ReplaceAll(s, "./gateway/cmd/slipway-gateway", "PKG")
		return strings.ReplaceAll(s, svc, "SVC")
	}
	want := norm(Services[0])
	for _, svc := range Services[1:] {
		if got := norm(svc); got != want {
			t.Errorf("deploy/docker/%s.Dockerfile differs from gateway.Dockerfile beyond the service's name", svc)
		}
	}
	for _, svc := range Services {
		s := norm(svc)
		for _, must := range []string{"CGO_ENABLED=0", "FROM gcr.io/distroless/static-debian12:nonroot", "USER 65532:65532", `ENTRYPOINT ["/slipway"]`} {
			if !strings.Contains(s, must) {
				t.Errorf("deploy/docker/%s.Dockerfile lacks %q", svc, must)
			}
		}
	}
}
