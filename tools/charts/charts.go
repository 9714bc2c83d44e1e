// Package charts loads, renders and documents Slipway's Helm charts (the
// charts/ folder of the repository) with the Helm v3 SDK. Its tests are the
// charts' checks in `make test`: helm lint, a render of every ci/ scenario,
// a server-side dry-run apply on the real environment's API server, template
// assertions, and the per-chart README.md kept in step with values.yaml
// (`go test ./charts -run TestReadmes -update` regenerates them; `make
// charts` runs that).
package charts

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/releaseutil"
	"sigs.k8s.io/yaml"
)

// Services are the service charts, in the order the umbrella lists them.
var Services = []string{"gateway", "clusters", "registry", "catalog", "releases"}

// Umbrella is the chart that installs every service.
const Umbrella = "slipway"

// Library is the chart of shared helpers; it renders nothing.
const Library = "common"

// Dir returns the charts folder of the checkout holding the working folder
// (the nearest folder above it with a go.work).
func Dir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return filepath.Join(dir, "charts"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work above the working folder: run from a Slipway checkout")
		}
		dir = parent
	}
}

// Load loads chart name from dir/name with every file:// dependency loaded
// from its folder too, recursively. Archives a `helm dependency build` left
// in the chart's charts/ folder are ignored, so a stale one can never stand
// in for the source.
func Load(dir, name string) (*chart.Chart, error) {
	ch, err := loader.LoadDir(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", name, err)
	}
	var deps []*chart.Chart
	for _, d := range ch.Metadata.Dependencies {
		local, ok := strings.CutPrefix(d.Repository, "file://../")
		if !ok {
			return nil, fmt.Errorf("chart %s: dependency %s comes from %q, not a sibling folder", name, d.Name, d.Repository)
		}
		dep, err := Load(dir, local)
		if err != nil {
			return nil, err
		}
		if dep.Metadata.Version != d.Version {
			return nil, fmt.Errorf("chart %s: dependency %s wants version %s, the chart is %s", name, d.Name, d.Version, dep.Metadata.Version)
		}
		deps = append(deps, dep)
	}
	ch.SetDependencies(deps...)
	return ch, nil
}

// Package writes chart name, its dependencies inside, as a .tgz archive
// into out and returns the archive's path.
func Package(dir, name, out string) (string, error) {
	ch, err := Load(dir, name)
	if err != nil {
		return "", err
	}
	path, err := chartutil.Save(ch, out)
	if err != nil {
		return "", fmt.Errorf("package chart %s: %w", name, err)
	}
	return path, nil
}

// Scenario is a set of values a chart is rendered with.
type Scenario struct {
	Name   string
	Values map[string]any
}

// Scenarios returns the values chart name is checked with: "default" (the
// chart's own defaults, plus for a service chart the least it needs on its
// own: an identity Secret, and Vault's address for the clusters service),
// then every ci/*-values.yaml of the chart, and for the umbrella every
// example of deploy/values/.
func Scenarios(dir, name string) ([]Scenario, error) {
	def := map[string]any{}
	if name != Umbrella {
		def["identity"] = map[string]any{"existingSecret": "slipway-identity"}
		if name == "clusters" {
			def["vault"] = map[string]any{"addr": "http://vault.vault.svc:8200"}
		}
	}
	out := []Scenario{{Name: "default", Values: def}}
	files, err := filepath.Glob(filepath.Join(dir, name, "ci", "*-values.yaml"))
	if err != nil {
		return nil, err
	}
	if name == Umbrella {
		examples, err := filepath.Glob(filepath.Join(dir, "..", "deploy", "values", "*.yaml"))
		if err != nil {
			return nil, err
		}
		files = append(files, examples...)
	}
	sort.Strings(files)
	for _, f := range files {
		vals, err := chartutil.ReadValuesFile(f)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f, err)
		}
		rel, err := filepath.Rel(filepath.Join(dir, ".."), f)
		if err != nil {
			rel = f
		}
		out = append(out, Scenario{Name: rel, Values: vals.AsMap()})
	}
	return out, nil
}

// Object is one rendered Kubernetes object.
type Object map[string]any

// Kind returns the object's kind.
func (o Object) Kind() string { s, _ := o["kind"].(string); return s }

// APIVersion returns the object's apiVersion.
func (o Object) APIVersion() string { s, _ := o["apiVersion"].(string); return s }

// Name returns the object's metadata.name.
func (o Object) Name() string { s, _ := o.Get("metadata", "name").(string); return s }

// Get walks the object's maps along path; nil when a step is missing.
func (o Object) Get(path ...string) any {
	var cur any = map[string]any(o)
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

// Rendered is what a client-side render of a chart produced.
type Rendered struct {
	Manifest string
	Notes    string
	Objects  []Object
}

// Find returns the object of kind and name, or nil.
func (r Rendered) Find(kind, name string) Object {
	for _, o := range r.Objects {
		if o.Kind() == kind && o.Name() == name {
			return o
		}
	}
	return nil
}

// OfKind returns the objects of kind.
func (r Rendered) OfKind(kind string) []Object {
	var out []Object
	for _, o := range r.Objects {
		if o.Kind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// Render renders chart name as `helm template` does (client only: lookup
// finds nothing), as release "slipway" in namespace "slipway", validating
// the values against the charts' schemas.
func Render(dir, name string, values map[string]any) (Rendered, error) {
	ch, err := Load(dir, name)
	if err != nil {
		return Rendered{}, err
	}
	install := action.NewInstall(&action.Configuration{})
	install.DryRun = true
	install.ClientOnly = true
	install.Replace = true
	install.ReleaseName = "slipway"
	install.Namespace = "slipway"
	rel, err := install.Run(ch, values)
	if err != nil {
		return Rendered{}, fmt.Errorf("render chart %s: %w", name, err)
	}
	objs, err := Objects(rel.Manifest)
	if err != nil {
		return Rendered{}, fmt.Errorf("chart %s: %w", name, err)
	}
	return Rendered{Manifest: rel.Manifest, Notes: rel.Info.Notes, Objects: objs}, nil
}

// Objects splits a rendered manifest into its objects, in Helm's order.
func Objects(manifest string) ([]Object, error) {
	docs := releaseutil.SplitManifests(manifest)
	keys := make([]string, 0, len(docs))
	for k := range docs {
		keys = append(keys, k)
	}
	sort.Sort(releaseutil.BySplitManifestsOrder(keys))
	var out []Object
	for _, k := range keys {
		var o Object
		if err := yaml.Unmarshal([]byte(docs[k]), &o); err != nil {
			return nil, fmt.Errorf("parse rendered object: %w\n%s", err, docs[k])
		}
		if len(o) == 0 {
			continue
		}
		out = append(out, o)
	}
	return out, nil
}
