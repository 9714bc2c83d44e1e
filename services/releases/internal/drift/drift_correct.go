package drift

import (
	"encoding/json"
	"fmt"
	"slices"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/kubernetes/scheme"
)

// Correction is the change that puts a live object back to its manifest.
type Correction struct {
	// Patch sets the drifted fields to the manifest's values and removes
	// list items the manifest does not have; nothing else (fields the
	// manifest does not set, the ignored paths) is touched. Empty when
	// the object is in sync. It holds a Secret's values: never show it.
	Patch []byte
	// Type is a strategic merge patch for the kinds client-go knows (list
	// items matched by their merge key, as kubectl and Helm patch), a
	// JSON merge patch for others (custom resources: lists replaced).
	Type types.PatchType
	// Fields are the drifted fields, a list as a whole ("spec.replicas",
	// "spec.template.spec.containers"): they name what a correction
	// changed without a value.
	Fields []Path
}

// Correct computes the correction of live to manifest, of exactly what
// Compare with the same ignore reports as drift.
func Correct(manifest, live map[string]any, ignore []Path) (Correction, error) {
	want := project(manifest, ignore)
	if isSecret(manifest) {
		want = secretData(want)
	}
	got, _ := mask(want, live).(map[string]any)
	if equal(want, got) {
		return Correction{}, nil
	}
	var fields []Path
	changed(nil, want, got, &fields)
	from, err := json.Marshal(got)
	if err != nil {
		return Correction{}, err
	}
	to, err := json.Marshal(want)
	if err != nil {
		return Correction{}, err
	}
	c := Correction{Fields: fields}
	apiVersion, _ := manifest["apiVersion"].(string)
	kind, _ := manifest["kind"].(string)
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return Correction{}, fmt.Errorf("apiVersion %q: %w", apiVersion, err)
	}
	if typed, err := scheme.Scheme.New(gv.WithKind(kind)); err == nil {
		c.Type = types.StrategicMergePatchType
		c.Patch, err = strategicpatch.CreateTwoWayMergePatch(from, to, typed)
		if err != nil {
			// No value in the message: a Secret's would leak.
			return Correction{}, fmt.Errorf("strategic merge patch of %s %s", apiVersion, kind)
		}
		return c, nil
	}
	c.Type = types.MergePatchType
	if c.Patch, err = jsonpatch.CreateMergePatch(from, to); err != nil {
		return Correction{}, fmt.Errorf("merge patch of %s %s", apiVersion, kind)
	}
	return c, nil
}

// changed collects the paths where got differs from want: into maps,
// not into lists.
func changed(at Path, want, got any, out *[]Path) {
	w, wok := want.(map[string]any)
	g, gok := got.(map[string]any)
	if !wok || !gok {
		if !equal(want, got) {
			*out = append(*out, slices.Clone(at))
		}
		return
	}
	keys := make([]string, 0, len(w))
	for k := range w {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		gv, ok := g[k]
		if !ok {
			*out = append(*out, append(slices.Clone(at), k))
			continue
		}
		changed(append(slices.Clone(at), k), w[k], gv, out)
	}
}
