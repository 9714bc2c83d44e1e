package chartarchive

import (
	"slices"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// maxValidationCost bounds the work one Validate may hand to the schema
// library, in schema evaluations (plus string, enum and const work in the
// same unit). The library evaluates every branch of anyOf/oneOf and follows
// $refs without memoising, so a small recursive schema over values a few
// dozen levels deep would run for hours. Real charts need a few thousand;
// the library manages about 200k a second, so this caps a call near a second.
const maxValidationCost = 1 << 18

// costEstimator walks a compiled schema over an instance the way the
// library's validator would, counting an upper bound of its evaluations and
// stopping as soon as the budget is spent, so the estimate itself costs at
// most the budget. It over-approximates: every applicator is taken, whether
// or not the library would short-circuit it.
type costEstimator struct {
	left int64
	root *jsonschema.Schema
	all  []*jsonschema.Schema // every reachable schema; built when a dynamic reference needs it
}

func withinBudget(root *jsonschema.Schema, inst any) bool {
	e := &costEstimator{left: maxValidationCost, root: root}
	return e.eval(root, inst, nil)
}

func (e *costEstimator) charge(n int64) bool {
	e.left -= n
	return e.left >= 0
}

// eval charges the evaluation of s against v. inPlace holds the schemas
// already applied to v itself along this chain: the library reports a repeat
// as a reference cycle at once.
func (e *costEstimator) eval(s *jsonschema.Schema, v any, inPlace []*jsonschema.Schema) bool {
	if s == nil {
		return true
	}
	if !e.charge(1) {
		return false
	}
	if s.Bool != nil || slices.Contains(inPlace, s) {
		return true
	}
	inPlace = append(inPlace, s)
	for _, sub := range e.inPlace(s) {
		if !e.eval(sub, v, inPlace) {
			return false
		}
	}

	switch v := v.(type) {
	case string:
		if s.Pattern != nil || s.Format != nil {
			if !e.charge(int64(len(v)) / 256) {
				return false
			}
		}
	case map[string]any:
		for k, c := range v {
			if !e.eval(s.PropertyNames, k, nil) || !e.charge(int64(len(s.PatternProperties))*(1+int64(len(k))/256)) {
				return false
			}
			children := []*jsonschema.Schema{s.Properties[k], s.UnevaluatedProperties}
			if ap, ok := s.AdditionalProperties.(*jsonschema.Schema); ok {
				children = append(children, ap)
			}
			for _, p := range s.PatternProperties {
				children = append(children, p)
			}
			for _, sub := range children {
				if !e.eval(sub, c, nil) {
					return false
				}
			}
		}
	case []any:
		for i, c := range v {
			children := []*jsonschema.Schema{s.Items2020, s.Contains, s.UnevaluatedItems}
			switch items := s.Items.(type) {
			case *jsonschema.Schema:
				children = append(children, items)
			case []*jsonschema.Schema:
				if i < len(items) {
					children = append(children, items[i])
				}
			}
			if i < len(s.PrefixItems) {
				children = append(children, s.PrefixItems[i])
			}
			if ai, ok := s.AdditionalItems.(*jsonschema.Schema); ok {
				children = append(children, ai)
			}
			for _, sub := range children {
				if !e.eval(sub, c, nil) {
					return false
				}
			}
		}
		// Duplicates are found by hashing and comparing, each a walk of the items.
		if s.UniqueItems && !e.charge(2*e.size(v)) {
			return false
		}
	}
	if s.Enum != nil && !e.charge(int64(len(s.Enum.Values))*e.size(v)) {
		return false
	}
	if s.Const != nil && !e.charge(e.size(v)) {
		return false
	}
	return e.left >= 0
}

// inPlace lists the subschemas s applies to the instance it is applied to.
func (e *costEstimator) inPlace(s *jsonschema.Schema) []*jsonschema.Schema {
	subs := []*jsonschema.Schema{s.Ref, s.Not, s.If, s.Then, s.Else}
	subs = append(subs, s.AllOf...)
	subs = append(subs, s.AnyOf...)
	subs = append(subs, s.OneOf...)
	for _, d := range s.DependentSchemas {
		subs = append(subs, d)
	}
	for _, d := range s.Dependencies {
		if d, ok := d.(*jsonschema.Schema); ok {
			subs = append(subs, d)
		}
	}
	// A dynamic reference may land on any schema carrying its anchor, so
	// each is charged.
	if s.RecursiveRef != nil {
		subs = append(subs, s.RecursiveRef)
		for _, c := range e.reachable() {
			if c.RecursiveAnchor {
				subs = append(subs, c)
			}
		}
	}
	if d := s.DynamicRef; d != nil {
		subs = append(subs, d.Ref)
		if d.Anchor != "" {
			for _, c := range e.reachable() {
				if c.DynamicAnchor == d.Anchor {
					subs = append(subs, c)
				}
			}
		}
	}
	return subs
}

// reachable returns every schema reachable from the root.
func (e *costEstimator) reachable() []*jsonschema.Schema {
	if e.all != nil {
		return e.all
	}
	seen := map[*jsonschema.Schema]bool{}
	stack := []*jsonschema.Schema{e.root}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if s == nil || seen[s] {
			continue
		}
		seen[s] = true
		e.all = append(e.all, s)
		stack = append(stack, s.Ref, s.Not, s.If, s.Then, s.Else, s.RecursiveRef,
			s.PropertyNames, s.UnevaluatedProperties, s.Items2020, s.Contains, s.UnevaluatedItems, s.ContentSchema)
		stack = append(stack, s.AllOf...)
		stack = append(stack, s.AnyOf...)
		stack = append(stack, s.OneOf...)
		stack = append(stack, s.PrefixItems...)
		if s.DynamicRef != nil {
			stack = append(stack, s.DynamicRef.Ref)
		}
		for _, m := range []map[string]*jsonschema.Schema{s.Properties, s.DependentSchemas} {
			for _, c := range m {
				stack = append(stack, c)
			}
		}
		for _, c := range s.PatternProperties {
			stack = append(stack, c)
		}
		for _, c := range s.Dependencies {
			if c, ok := c.(*jsonschema.Schema); ok {
				stack = append(stack, c)
			}
		}
		for _, c := range []any{s.AdditionalProperties, s.AdditionalItems, s.Items} {
			switch c := c.(type) {
			case *jsonschema.Schema:
				stack = append(stack, c)
			case []*jsonschema.Schema:
				stack = append(stack, c...)
			}
		}
	}
	return e.all
}

// size counts the nodes under v (a string counts a node per 256 bytes),
// giving up past the budget left so that a large instance costs no more to
// measure than it is charged.
func (e *costEstimator) size(v any) int64 {
	var n int64
	stack := []any{v}
	for len(stack) > 0 && n <= e.left {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n++
		switch v := v.(type) {
		case string:
			n += int64(len(v)) / 256
		case map[string]any:
			for k, c := range v {
				n += int64(len(k)) / 256
				stack = append(stack, c)
			}
		case []any:
			stack = append(stack, v...)
		}
	}
	return n
}
