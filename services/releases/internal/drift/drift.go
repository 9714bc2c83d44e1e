// Package drift compares the objects of a release as they run in the
// cluster with what its manifest declares.
//
// Only the fields the manifest sets are compared: defaults the API server
// fills in, status, and whatever other controllers add are not drift. Of
// metadata only labels and annotations count, and only the keys the
// manifest sets. Fields a controller owns by design are ignored through
// Rules (spec.replicas of a workload an autoscaler scales).
package drift

import (
	"encoding/base64"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// Redacted replaces every value under a Secret's data and stringData in a
// diff, as the manifest route does.
const Redacted = "REDACTED"

// Path is a field path from an object's root ("spec", "replicas").
type Path []string

// Result is how one live object differs from its manifest.
type Result struct {
	Drifted bool
	// Diff is a unified diff, manifest against live, of the fields the
	// manifest sets; Secret values redacted.
	Diff string
}

// Compare compares a live object with its manifest, ignoring the paths
// in ignore. Both are decoded JSON/YAML (map[string]any).
func Compare(manifest, live map[string]any, ignore []Path) (Result, error) {
	want := project(manifest, ignore)
	if isSecret(manifest) {
		want = secretData(want)
	}
	got := mask(want, live)
	if equal(want, got) {
		return Result{}, nil
	}
	var shownWant, shownGot any = want, got
	if isSecret(manifest) {
		// Say which keys differ without a value.
		shownWant, shownGot = redactSecret(want, got)
	}
	a, err := yaml.Marshal(shownWant)
	if err != nil {
		return Result{}, err
	}
	b, err := yaml.Marshal(shownGot)
	if err != nil {
		return Result{}, err
	}
	d, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(string(a)), B: difflib.SplitLines(string(b)), FromFile: "manifest", ToFile: "live", Context: 3,
	})
	if err != nil {
		return Result{}, err
	}
	return Result{Drifted: true, Diff: d}, nil
}

// project is the manifest's fields that count: all but metadata, of which
// labels and annotations, without the paths to ignore.
func project(m map[string]any, ignore []Path) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		switch k {
		case "metadata":
			md, _ := v.(map[string]any)
			keep := map[string]any{}
			for _, f := range []string{"labels", "annotations"} {
				if x, ok := md[f]; ok && x != nil {
					keep[f] = x
				}
			}
			if len(keep) > 0 {
				out[k] = keep
			}
		case "status", "apiVersion", "kind":
		default:
			if v = pruneNil(v); v != nil {
				out[k] = v
			}
		}
	}
	for _, p := range ignore {
		drop(out, p)
	}
	return out
}

// pruneNil drops the null fields of v's maps: a manifest's "key: null"
// (a template's empty value) leaves the field unset on the server.
func pruneNil(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if e = pruneNil(e); e != nil {
				out[k] = e
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = pruneNil(e)
		}
		return out
	}
	return v
}

func drop(m map[string]any, p Path) {
	for i, k := range p {
		if i == len(p)-1 {
			delete(m, k)
			return
		}
		next, ok := m[k].(map[string]any)
		if !ok {
			return
		}
		m = next
	}
}

// mask is live restricted to the shape of want: the value live has at
// each path want sets (absent where live has none).
func mask(want any, live any) any {
	switch w := want.(type) {
	case map[string]any:
		l, ok := live.(map[string]any)
		if !ok {
			return live
		}
		out := map[string]any{}
		for k, wv := range w {
			if lv, ok := l[k]; ok {
				out[k] = mask(wv, lv)
			}
		}
		return out
	case []any:
		l, ok := live.([]any)
		if !ok {
			return live
		}
		out := make([]any, 0, len(l))
		for i, lv := range l {
			if wv, ok := matching(w, l, i); ok {
				out = append(out, mask(wv, lv))
			} else {
				out = append(out, lv)
			}
		}
		return reorder(w, out)
	}
	if equal(want, live) {
		return want // one value in two spellings ("500m", 0.5): not shown as a change
	}
	return live
}

// matching is the element of want that live[i] stands for: the one with
// the same "name" when the elements are named (containers, ports, env),
// else the one at the same index.
func matching(want, live []any, i int) (any, bool) {
	if n := nameOf(live[i]); n != "" {
		for _, w := range want {
			if nameOf(w) == n {
				return w, true
			}
		}
		return nil, false
	}
	if i < len(want) {
		return want[i], true
	}
	return nil, false
}

// reorder puts named elements of got in want's order, so that a list the
// server keeps in another order is not drift.
func reorder(want, got []any) []any {
	if len(want) == 0 || nameOf(want[0]) == "" {
		return got
	}
	rank := map[string]int{}
	for i, w := range want {
		rank[nameOf(w)] = i
	}
	out := slices.Clone(got)
	slices.SortStableFunc(out, func(a, b any) int {
		ra, oka := rank[nameOf(a)]
		rb, okb := rank[nameOf(b)]
		switch {
		case oka && okb:
			return ra - rb
		case oka:
			return -1
		case okb:
			return 1
		}
		return 0
	})
	return out
}

func nameOf(x any) string {
	m, ok := x.(map[string]any)
	if !ok {
		return ""
	}
	s, _ := m["name"].(string)
	return s
}

// equal compares decoded values, with numbers by value (YAML gives
// float64, the API int64) and quantities by amount ("500m" is "0.5").
func equal(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !equal(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	fa, aNum := number(a)
	fb, bNum := number(b)
	sa, aStr := a.(string)
	sb, bStr := b.(string)
	switch {
	case aNum && bNum:
		return fa == fb
	case aStr && bStr:
		return sa == sb || sameQuantity(sa, sb)
	case aStr && bNum:
		return quantityIs(sa, fb)
	case aNum && bStr:
		return quantityIs(sb, fa)
	}
	return reflect.DeepEqual(a, b)
}

// sameQuantity: two spellings of one resource amount ("500m", "0.5").
func sameQuantity(a, b string) bool {
	qa, ea := resource.ParseQuantity(a)
	qb, eb := resource.ParseQuantity(b)
	return ea == nil && eb == nil && qa.Cmp(qb) == 0
}

// quantityIs: a quantity written as a number on one side (cpu: 1).
func quantityIs(s string, f float64) bool {
	q, err := resource.ParseQuantity(s)
	return err == nil && q.AsApproximateFloat64() == f
}

func number(x any) (float64, bool) {
	switch n := x.(type) {
	case int:
		return float64(n), true
	case int32:
		return float64(n), true
	case int64:
		return float64(n), true
	case float64:
		return n, true
	case float32:
		return float64(n), true
	}
	return 0, false
}

func isSecret(m map[string]any) bool {
	k, _ := m["kind"].(string)
	v, _ := m["apiVersion"].(string)
	return k == "Secret" && v == "v1"
}

// secretData folds a Secret's stringData into data, base64-encoded, as the
// API server stores it.
func secretData(m map[string]any) map[string]any {
	sd, ok := m["stringData"].(map[string]any)
	if !ok {
		return m
	}
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	delete(out, "stringData")
	data := map[string]any{}
	if d, ok := m["data"].(map[string]any); ok {
		for k, v := range d {
			data[k] = v
		}
	}
	for k, v := range sd {
		data[k] = base64.StdEncoding.EncodeToString([]byte(fmt.Sprint(v)))
	}
	out["data"] = data
	return out
}

// redactSecret replaces data values by markers that only tell whether the
// two sides agree.
func redactSecret(want, got any) (any, any) {
	w, _ := want.(map[string]any)
	g, _ := got.(map[string]any)
	wd, _ := w["data"].(map[string]any)
	gd, _ := g["data"].(map[string]any)
	if wd == nil {
		return want, got
	}
	rw, rg := map[string]any{}, map[string]any{}
	for k, v := range w {
		rw[k] = v
	}
	for k, v := range g {
		rg[k] = v
	}
	nwd, ngd := map[string]any{}, map[string]any{}
	for k, v := range wd {
		nwd[k] = Redacted
		if lv, ok := gd[k]; ok {
			if equal(v, lv) {
				ngd[k] = Redacted
			} else {
				ngd[k] = Redacted + " (changed)"
			}
		}
	}
	rw["data"], rg["data"] = nwd, ngd
	return rw, rg
}

// String names a path ("spec.replicas").
func (p Path) String() string { return strings.Join(p, ".") }
