// Package safeyaml decodes YAML from untrusted sources (chart values, repository
// indexes) with bounds on size, nesting and alias expansion, so a small document
// cannot make the service spend unbounded memory or stack.
package safeyaml

import (
	"errors"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Limits bound a YAML document. Zero fields take the defaults below.
type Limits struct {
	MaxBytes   int // document size; default 4 MiB
	MaxDepth   int // nesting of mappings/sequences, counted after alias expansion; default 64
	MaxAliases int // alias nodes in the document as written; default 100
	MaxNodes   int // nodes after alias expansion; default 1_000_000
}

// Defaults of Limits' zero fields.
const (
	DefaultMaxBytes   = 4 << 20
	DefaultMaxDepth   = 64
	DefaultMaxAliases = 100
	DefaultMaxNodes   = 1_000_000
)

// ErrLimit is wrapped by every refusal of a document that exceeds its Limits.
var ErrLimit = errors.New("yaml exceeds limits")

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxAliases <= 0 {
		l.MaxAliases = DefaultMaxAliases
	}
	if l.MaxNodes <= 0 {
		l.MaxNodes = DefaultMaxNodes
	}
	return l
}

// Parse decodes data into a yaml.Node and checks it against lim before anything
// is expanded: the size before parsing, then depth, alias count and expanded
// node count by one walk of the tree. Only the first document of a stream is
// read. An empty document gives a zero Node.
func Parse(data []byte, lim Limits) (*yaml.Node, error) {
	lim = lim.withDefaults()
	if len(data) > lim.MaxBytes {
		return nil, fmt.Errorf("%w: size %d bytes > MaxBytes %d", ErrLimit, len(data), lim.MaxBytes)
	}
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		return nil, fmt.Errorf("parse yaml: %w", err)
	}
	if err := check(&n, lim); err != nil {
		return nil, err
	}
	return &n, nil
}

// Unmarshal is Parse followed by node.Decode(out).
func Unmarshal(data []byte, lim Limits, out any) error {
	n, err := Parse(data, lim)
	if err != nil {
		return err
	}
	if err := n.Decode(out); err != nil {
		return fmt.Errorf("decode yaml: %w", err)
	}
	return nil
}

// check walks a parsed tree and refuses it when its expansion would exceed lim
// (MaxBytes is not looked at).
func check(n *yaml.Node, lim Limits) error {
	w := walker{lim: lim.withDefaults()}
	_, _, err := w.walk(n, 0)
	return err
}

// extent is what an anchored subtree adds wherever an alias repeats it.
type extent struct {
	nodes  int // nodes after expansion, the root included
	height int // collection nesting inside, the root included
	done   bool
}

type walker struct {
	lim     Limits
	aliases int
	total   int
	// Only anchored nodes are remembered: they are the only ones an alias can
	// repeat, and remembering them keeps the walk linear in the written size
	// however deeply aliases nest.
	anchors map[*yaml.Node]*extent
}

// walk visits n, which sits inside depth collections, and returns the nodes
// and the collection nesting n stands for once aliases are expanded.
func (w *walker) walk(n *yaml.Node, depth int) (nodes, height int, err error) {
	if n == nil {
		return 0, 0, nil
	}
	if n.Kind == yaml.AliasNode {
		w.aliases++
		if w.aliases > w.lim.MaxAliases {
			return 0, 0, fmt.Errorf("%w: more than MaxAliases %d aliases (line %d)", ErrLimit, w.lim.MaxAliases, n.Line)
		}
		if n.Alias == nil {
			return 0, 0, fmt.Errorf("yaml: line %d: alias %q has no anchor", n.Line, n.Value)
		}
		e := w.anchors[n.Alias]
		if e == nil {
			// The parser defines anchors before their aliases and the walk is
			// in document order, so this is a tree built by hand: walk it here.
			return w.walk(n.Alias, depth)
		}
		if !e.done {
			return 0, 0, fmt.Errorf("yaml: line %d: anchor %q value contains itself", n.Line, n.Value)
		}
		if err := w.add(e.nodes, n); err != nil {
			return 0, 0, err
		}
		if depth+e.height > w.lim.MaxDepth {
			return 0, 0, fmt.Errorf("%w: nesting depth %d > MaxDepth %d (alias at line %d)", ErrLimit, depth+e.height, w.lim.MaxDepth, n.Line)
		}
		return e.nodes, e.height, nil
	}

	var e *extent
	if n.Anchor != "" {
		if w.anchors == nil {
			w.anchors = make(map[*yaml.Node]*extent)
		}
		e = &extent{}
		w.anchors[n] = e
	}
	if err := w.add(1, n); err != nil {
		return 0, 0, err
	}
	nodes = 1
	inner := depth
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		inner++
		if inner > w.lim.MaxDepth {
			return 0, 0, fmt.Errorf("%w: nesting depth %d > MaxDepth %d (line %d)", ErrLimit, inner, w.lim.MaxDepth, n.Line)
		}
	}
	for _, c := range n.Content {
		cn, ch, err := w.walk(c, inner)
		if err != nil {
			return 0, 0, err
		}
		nodes += cn
		height = max(height, ch)
	}
	if inner > depth {
		height++
	}
	if e != nil {
		*e = extent{nodes: nodes, height: height, done: true}
	}
	return nodes, height, nil
}

func (w *walker) add(nodes int, at *yaml.Node) error {
	w.total += nodes
	if w.total > w.lim.MaxNodes {
		return fmt.Errorf("%w: more than MaxNodes %d nodes after alias expansion (line %d)", ErrLimit, w.lim.MaxNodes, at.Line)
	}
	return nil
}
