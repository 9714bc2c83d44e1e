package safeyaml

import (
	"fmt"
	"math"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Values parses a Helm values document into map[string]any. An empty or null
// document gives an empty map; a top level that is not a mapping is an error.
//
// It follows what Helm's chartutil.ReadValues (sigs.k8s.io/yaml) makes of the
// same document where that matters to a values consumer: every map key is a
// string (1 -> "1", true -> "true", 1.5 -> "1.5"), a repeated key keeps its
// last value, and timestamps stay the strings they were written as. Scalars
// otherwise keep YAML 1.2 types (int, float64, bool, string, nil) rather than
// Helm's JSON float64 numbers, so large integers survive.
func Values(data []byte, lim Limits) (map[string]any, error) {
	n, err := Parse(data, lim)
	if err != nil {
		return nil, err
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch {
	case n.Kind == 0, n.Kind == yaml.DocumentNode:
		return map[string]any{}, nil
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null":
		return map[string]any{}, nil
	case n.Kind != yaml.MappingNode:
		return nil, fmt.Errorf("values: line %d: top level is a %s, not a mapping", n.Line, kindName(n))
	}
	m := make(map[string]any, len(n.Content)/2)
	if err := fillMapping(m, n, false); err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	return m, nil
}

func value(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.AliasNode:
		// Parse has bounded the expansion, so repeating the anchor is safe.
		return value(n.Alias)
	case yaml.ScalarNode:
		return scalar(n)
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		for i, c := range n.Content {
			v, err := value(c)
			if err != nil {
				return nil, err
			}
			s[i] = v
		}
		return s, nil
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		if err := fillMapping(m, n, false); err != nil {
			return nil, err
		}
		return m, nil
	}
	return nil, fmt.Errorf("line %d: unexpected %s node", n.Line, kindName(n))
}

// fillMapping sets n's pairs into m. Explicit keys win over merged ("<<") ones
// and an earlier merge source over a later one, as the YAML merge key spec
// says; merged is true while filling from a merge source, which then only adds
// keys that are not there yet.
func fillMapping(m map[string]any, n *yaml.Node, merged bool) error {
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if isMerge(k) {
			merges = append(merges, v)
			continue
		}
		key, err := keyString(k)
		if err != nil {
			return err
		}
		if merged {
			if _, ok := m[key]; ok {
				continue
			}
		}
		val, err := value(v)
		if err != nil {
			return err
		}
		m[key] = val
	}
	if len(merges) == 0 {
		return nil
	}
	// Keys set so far are explicit and must not be overwritten by merges, but
	// a later explicit pair written after "<<" has already been set too, so
	// filling merges with merged=true is enough.
	for _, src := range merges {
		for src.Kind == yaml.AliasNode {
			src = src.Alias
		}
		var sources []*yaml.Node
		switch src.Kind {
		case yaml.MappingNode:
			sources = []*yaml.Node{src}
		case yaml.SequenceNode:
			sources = src.Content
		default:
			return fmt.Errorf("line %d: map merge requires a map or a sequence of maps", src.Line)
		}
		for _, s := range sources {
			for s.Kind == yaml.AliasNode {
				s = s.Alias
			}
			if s.Kind != yaml.MappingNode {
				return fmt.Errorf("line %d: map merge requires a map or a sequence of maps", s.Line)
			}
			if err := fillMapping(m, s, true); err != nil {
				return err
			}
		}
	}
	return nil
}

func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge"
}

func scalar(n *yaml.Node) (any, error) {
	switch n.ShortTag() {
	case "!!str", "!!timestamp":
		// Helm's decoder leaves timestamps as the text written.
		return n.Value, nil
	case "!!null":
		return nil, nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, fmt.Errorf("line %d: %w", n.Line, err)
	}
	return v, nil
}

// keyString gives the string sigs.k8s.io/yaml would make of a mapping key.
func keyString(k *yaml.Node) (string, error) {
	for k.Kind == yaml.AliasNode {
		k = k.Alias
	}
	if k.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("line %d: mapping key is a %s, not a scalar", k.Line, kindName(k))
	}
	v, err := scalar(k)
	if err != nil {
		return "", err
	}
	switch v := v.(type) {
	case string:
		return v, nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	case float64:
		switch {
		case math.IsInf(v, 1):
			return ".inf", nil
		case math.IsInf(v, -1):
			return "-.inf", nil
		case math.IsNaN(v):
			return ".nan", nil
		}
		// 32 bits as sigs.k8s.io/yaml formats float keys.
		return strconv.FormatFloat(v, 'g', -1, 32), nil
	case bool:
		return strconv.FormatBool(v), nil
	case nil:
		return "", fmt.Errorf("line %d: mapping key is null", k.Line)
	}
	return "", fmt.Errorf("line %d: unsupported mapping key %q", k.Line, k.Value)
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.DocumentNode:
		return "document"
	case yaml.SequenceNode:
		return "sequence"
	case yaml.MappingNode:
		return "mapping"
	case yaml.ScalarNode:
		return "scalar"
	case yaml.AliasNode:
		return "alias"
	}
	return "node of kind " + strconv.Itoa(int(n.Kind))
}
