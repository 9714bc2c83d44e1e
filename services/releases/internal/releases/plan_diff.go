package releases

import (
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

// secretValuesChanged is the diff of a Secret whose data or stringData
// values alone change: the values themselves are never shown.
const secretValuesChanged = "# Secret data or stringData values change (redacted)\n"

// unifiedDiff is the unified diff of two texts, current against planned;
// "" when they are equal.
func unifiedDiff(current, planned string) string {
	if current == planned {
		return ""
	}
	d, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(current), B: difflib.SplitLines(planned), FromFile: "current", ToFile: "planned", Context: 3,
	})
	if err != nil {
		// Only a failing writer makes difflib fail; a strings.Builder does not.
		return ""
	}
	return d
}

// valuesDiff is the diff of user-supplied values as YAML.
func valuesDiff(current, planned map[string]any) (string, error) {
	a, err := valuesYAML(current)
	if err != nil {
		return "", err
	}
	b, err := valuesYAML(planned)
	if err != nil {
		return "", err
	}
	return unifiedDiff(a, b), nil
}

// manifestObject is one object of a manifest: as shown (Secret values
// redacted) and as rendered, to tell a change of redacted values.
type manifestObject struct {
	key      ObjectKey
	shown    string
	rendered string
}

// manifestObjects are a manifest's objects in manifest order.
func manifestObjects(manifest string) []manifestObject {
	var out []manifestObject
	for _, text := range manifestTexts(manifest) {
		d, ok := document(text)
		if !ok {
			continue
		}
		out = append(out, manifestObject{
			key:   ObjectKey{APIVersion: d.APIVersion, Kind: d.Kind, Namespace: d.Namespace, Name: d.Name},
			shown: d.YAML, rendered: strings.TrimSpace(text),
		})
	}
	return out
}

// diffManifests compares two manifests object by object (by API
// version, kind, namespace and name): the planned manifest's new and
// changed objects in its order, then the current one's objects it drops.
// Diffs stop being included past budget bytes in all (truncated).
func diffManifests(current, planned string, budget int) (changes []ObjectChange, unchanged int, truncated bool) {
	old := map[ObjectKey]manifestObject{}
	cur := manifestObjects(current)
	for _, o := range cur {
		old[o.key] = o
	}
	add := func(c ObjectChange) {
		if len(c.Diff) > budget {
			c.Diff, truncated = "", true
		}
		budget -= len(c.Diff)
		changes = append(changes, c)
	}
	seen := map[ObjectKey]bool{}
	for _, o := range manifestObjects(planned) {
		seen[o.key] = true
		was, ok := old[o.key]
		switch {
		case !ok:
			add(ObjectChange{Object: o.key, Action: ActionCreate, Diff: unifiedDiff("", o.shown)})
		case was.rendered == o.rendered:
			unchanged++
		default:
			d := unifiedDiff(was.shown, o.shown)
			if d == "" {
				d = secretValuesChanged
			}
			add(ObjectChange{Object: o.key, Action: ActionUpdate, Diff: d})
		}
	}
	for _, o := range cur {
		if !seen[o.key] {
			seen[o.key] = true
			changes = append(changes, ObjectChange{Object: o.key, Action: ActionDelete})
		}
	}
	return changes, unchanged, truncated
}
