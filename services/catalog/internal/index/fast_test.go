package index

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// treeDiff describes the first difference between fastParse's tree and
// yaml.v3's in what the decoder reads: kinds, values, quoting, nulls, lines
// and shape. Comments and tags other than null are not compared: the
// decoder does not read them.
func treeDiff(path string, f, y *yaml.Node) string {
	y = derefDoc(y)
	switch {
	case f.Kind != y.Kind:
		return fmt.Sprintf("%s: kind %v, yaml.v3 %v", path, f.Kind, y.Kind)
	case f.Kind == yaml.ScalarNode && f.Value != y.Value:
		return fmt.Sprintf("%s: value %q, yaml.v3 %q", path, f.Value, y.Value)
	case f.Style&(quotedStyles|yaml.FlowStyle) != y.Style&(quotedStyles|yaml.FlowStyle):
		return fmt.Sprintf("%s: style %v, yaml.v3 %v", path, f.Style, y.Style)
	case isNull(f) != isNull(y):
		return fmt.Sprintf("%s: null %v, yaml.v3 %v", path, isNull(f), isNull(y))
	case !isNull(f) && f.Line != y.Line:
		return fmt.Sprintf("%s: line %d, yaml.v3 %d", path, f.Line, y.Line)
	case len(f.Content) != len(y.Content):
		return fmt.Sprintf("%s: %d children, yaml.v3 %d", path, len(f.Content), len(y.Content))
	}
	for i := range f.Content {
		if d := treeDiff(fmt.Sprintf("%s/%d", path, i), f.Content[i], y.Content[i]); d != "" {
			return d
		}
	}
	return ""
}

func derefDoc(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		return n.Content[0]
	}
	return n
}

// checkFast parses part both ways; when fastParse takes it, the trees must
// agree, and yaml.v3 must accept it.
func checkFast(t *testing.T, part []byte) (took bool) {
	t.Helper()
	f, ok := fastParse(part, fastMaxDepth, 1_000_000)
	if !ok {
		return false
	}
	var y yaml.Node
	if err := yaml.Unmarshal(part, &y); err != nil {
		t.Fatalf("fastParse took a part yaml.v3 refuses (%v):\n%s", err, part)
	}
	if d := treeDiff("", f, &y); d != "" {
		t.Fatalf("fastParse differs from yaml.v3: %s\npart:\n%s", d, part)
	}
	return true
}

func TestFastParseMatchesYAML(t *testing.T) {
	for _, tc := range splitCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			sp, ok := split(tc.doc)
			if !ok {
				return
			}
			for _, part := range sp.charts {
				checkFast(t, part)
			}
		})
	}
}

// Every part of an index as Helm writes it takes the fast path, which is
// what BenchmarkParseIndex measures.
func TestFastParseTakesHelmLayout(t *testing.T) {
	_, gen := genIndex(t, 40, 8)
	sp, ok := split(gen)
	if !ok {
		t.Fatal("generated index not split")
	}
	for i, part := range sp.charts {
		if !checkFast(t, part) {
			t.Errorf("part %d not taken by fastParse:\n%s", i, part)
		}
	}
}

func TestFastParseScalars(t *testing.T) {
	tests := []struct {
		name string
		part string
		took bool
	}{
		{"plain", "  a:\n  - k: v\n", true},
		{"plain folded", "  a:\n  - k: one\n      two\n\n      three\n    j: x\n", true},
		{"plain comment", "  a:\n  - k: one # c\n    j: x #c\n", true},
		{"hash inside plain", "  a:\n  - k: one#two\n", true},
		{"double escapes", "  a:\n  - k: \"t\\tq\\\" \\u00e9 \\x41 \\U0001F600 \\\\ \\'\"\n", true},
		{"double folded", "  a:\n  - k: \"one  \n      two\n\n      three \\\n      four\\ \"\n", true},
		{"single", "  a:\n  - k: 'it''s'\n", true},
		{"single folded", "  a:\n  - k: 'one\n      two'\n", true},
		{"literal", "  a:\n  - k: |\n      one\n        two\n\n      three\n\n    j: x\n", true},
		{"literal strip", "  a:\n  - k: |-\n      one\n    j: x\n", true},
		{"literal leading blank", "  a:\n  - k: |\n\n      one\n", true},
		{"literal with hash", "  a:\n  - k: |\n      # not a comment\n    # a comment\n    j: x\n", true},
		{"empty flow", "  a:\n  - k: []\n    j: {}\n", true},
		{"null value", "  a:\n  - k:\n    j: ~\n", true},
		{"indented sequence", "  a:\n    - k: v\n    -   j: w\n        i: x\n", true},
		{"nested sequence", "  a:\n  - k:\n    - x\n    - y\n", true},
		{"sequence of null", "  a:\n  -\n  - x\n", true},
		{"quoted key", "  \"a b\":\n  - 'k': v\n", true},
		{"crlf", "  a:\r\n  - k: |\r\n      x\r\n    j: \"y\r\n      z\"\r\n", true},
		{"comments between", "  a:\n# c\n  - k: v\n\n    # c\n    j: w\n", true},
		{"anchor", "  a:\n  - &x k: v\n", false},
		{"alias", "  a:\n  - k: *x\n", false},
		{"tag", "  a:\n  - k: !!str v\n", false},
		{"merge", "  a:\n  - <<: {}\n", false},
		{"flow", "  a:\n  - k: [x]\n", false},
		{"folded", "  a:\n  - k: >\n      x\n", false},
		{"keep", "  a:\n  - k: |+\n      x\n", false},
		{"indent indicator", "  a:\n  - k: |2\n      x\n", false},
		{"literal at eof", "  a:\n  - k: |\n      x", false},
		{"colon in value", "  a:\n  - k: a: b\n", false},
		{"tab", "  a:\n  - k:\tv\n", false},
		{"control", "  a:\n  - k: \x01\n", false},
		{"scalar on next line", "  a:\n  - k:\n      v\n", false},
		{"odd indentation", "  a:\n  - k: v\n     j: w\n", false},
		{"two keys", "  a: []\n  b: []\n", true},
		{"seq in seq", "  a:\n  - - x\n", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkFast(t, []byte(tc.part)); got != tc.took {
				t.Errorf("fastParse took it = %v, want %v", got, tc.took)
			}
		})
	}
}

// FuzzFastParse mutates chart parts directly: wherever fastParse takes one,
// its tree must be yaml.v3's.
func FuzzFastParse(f *testing.F) {
	fuzzSeeds(f)
	for _, tc := range []string{
		"  a:\n  - k: one\n      two\n    j: \"x\\\n      y\"\n    l: |\n      z\n",
		"  a:\n    - k: 'q''s'\n      m:\n      - x\n",
	} {
		f.Add([]byte(tc))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		parts := [][]byte{data}
		if sp, ok := split(data); ok {
			parts = sp.charts
		}
		for _, part := range parts {
			checkFast(t, part)
		}
	})
}

// randomPart writes a chart part from the grammar fastParse takes, with
// scalars drawn from characters that make YAML decide things (": ", " #",
// quotes, escapes, leading indicators, blank and folded lines), so that
// about half the parts stay in the subset and the rest probe its edges.
func randomPart(r *rand.Rand) string {
	var b strings.Builder
	nl := "\n"
	if r.IntN(8) == 0 {
		nl = "\r\n"
	}
	pieces := []string{"a", "b", "1.0", "x y", "é", "v1", "https://x.example/a", "-x", "a-b", "~", "null", "0x1F",
		":", ": ", " #", "#", "-", "- ", "'", "\"", "\\", "\\n", "\\u00e9", "  ", "|", ">", "[", "]", "{}", "[]", "&", "*", "!", "?", ",", "%", "@"}
	const safe = 12 // pieces before this are harmless anywhere in a plain scalar
	scalarText := func() string {
		var s strings.Builder
		for range 1 + r.IntN(4) {
			if r.IntN(6) == 0 {
				s.WriteString(pieces[r.IntN(len(pieces))])
			} else {
				s.WriteString(pieces[r.IntN(safe)])
			}
		}
		return s.String()
	}
	var value func(indent int, inSeq bool, depth int)
	value = func(indent int, inSeq bool, depth int) {
		pad := strings.Repeat(" ", indent+2)
		switch k := r.IntN(9); {
		case k == 0:
			b.WriteString(nl) // null
		case k == 1:
			b.WriteString(" " + scalarText() + nl)
		case k == 2:
			b.WriteString(" " + scalarText() + nl + pad + scalarText() + nl)
			if r.IntN(2) == 0 {
				b.WriteString(nl + pad + scalarText() + nl)
			}
		case k == 3:
			q := "\""
			if r.IntN(2) == 0 {
				q = "'"
			}
			b.WriteString(" " + q + scalarText())
			if r.IntN(2) == 0 {
				b.WriteString(nl + pad + scalarText())
			}
			b.WriteString(q + nl)
		case k == 4:
			b.WriteString(" |")
			if r.IntN(2) == 0 {
				b.WriteString("-")
			}
			b.WriteString(nl)
			for range 1 + r.IntN(3) {
				b.WriteString(pad + strings.Repeat(" ", r.IntN(2)) + scalarText() + nl)
				if r.IntN(4) == 0 {
					b.WriteString(nl)
				}
			}
		case k == 5:
			b.WriteString([]string{" []", " {}"}[r.IntN(2)] + nl)
		case depth < 3 && k == 6:
			b.WriteString(nl)
			seqIndent := indent
			if inSeq || r.IntN(2) == 0 {
				seqIndent = indent + 2
			}
			for range 1 + r.IntN(3) {
				b.WriteString(strings.Repeat(" ", seqIndent) + "-")
				value(seqIndent, true, depth+1)
			}
		case depth < 3:
			b.WriteString(nl)
			for range 1 + r.IntN(3) {
				b.WriteString(pad + pieces[r.IntN(3)] + "abc"[r.IntN(3):] + ":")
				value(indent+2, false, depth+1)
			}
		default:
			b.WriteString(" " + scalarText() + nl)
		}
		if r.IntN(10) == 0 {
			b.WriteString(strings.Repeat(" ", r.IntN(6)) + "# comment" + nl)
		}
	}
	b.WriteString("  chart:" + nl)
	for range 1 + r.IntN(4) {
		b.WriteString("  -")
		for i := range 1 + r.IntN(4) {
			key := pieces[r.IntN(3)] + strings.Repeat("k", r.IntN(3))
			if i == 0 {
				b.WriteString(" " + key + ":") // on the dash's line
			} else {
				b.WriteString("    " + key + ":")
			}
			value(4, false, 1)
		}
	}
	return b.String()
}

func TestFastParseRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	took := 0
	const n = 20000
	for range n {
		if checkFast(t, []byte(randomPart(r))) {
			took++
		}
	}
	t.Logf("fastParse took %d of %d random parts", took, n)
	if took < n/10 {
		t.Errorf("fastParse took only %d of %d random parts: the test no longer probes it", took, n)
	}
}
